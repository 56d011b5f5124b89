#!/usr/bin/env bash
# Benchmark of the file input: generates a seeded httpd access log (default
# 512 MB), warms the page cache, then measures read+split alone and the whole
# input into a null sink, with CPU seconds and peak RSS from /usr/bin/time -v.
# The generated log is removed at the end.
#   scripts/bench-file-input.sh [MB] [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-512}
DIR=${2:-${TMPDIR:-/tmp}}
LOG=$(mktemp "$DIR/bench-access-log.XXXXXX")
trap 'rm -f "$LOG" "$LOG.time"' EXIT

cargo build --release --example bench_file_input
BIN=target/release/examples/bench_file_input
"$BIN" gen "$LOG" "$MB" 42
cat "$LOG" > /dev/null   # page cache: measure the CPU path, not the disk
for mode in split tail; do
  /usr/bin/time -v "$BIN" "$mode" "$LOG" 2> "$LOG.time"
  grep -E 'User time|System time|Elapsed|Maximum resident' "$LOG.time" | sed 's/^\s*/    /'
  rm -f "$LOG.time"
done
