#!/usr/bin/env bash
# The benchmark command: starts the test services (scripts/test.sh, without
# lint and tests) and runs bench/run.py with them. Arguments go to run.py.
#   bench/run.sh                       # all phases, 2M lines, medians of 3
#   bench/run.sh --lines 200000 --runs 1 --phases parse,ship
set -euo pipefail
cd "$(dirname "$0")/.."
LOGPIPE_TEST_CMD='python3 bench/run.py "$@"' exec scripts/test.sh "$@"
