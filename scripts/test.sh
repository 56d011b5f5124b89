#!/usr/bin/env bash
# THE test command of logpipe: lint, start a throwaway Apache Kafka (KRaft),
# OpenSearch and Elasticsearch on free loopback ports, run `cargo test "$@"`,
# always stop them.
#   LOGPIPE_TEST_CMD='bash' scripts/test.sh   -> skip cargo steps, run that command
#   (via `bash -c`, extra args as "$@") with the services up and the env exported.
#   LOGPIPE_TEST_KEEP=1                       -> keep the run dir (logs, data).
#   JAVA_HOME=/path/to/jdk                    -> the JDK for both (default: java on PATH, 17+).
# The servers' jars are resolved with Maven into .test-cache/ on first use
# (versions pinned in scripts/services/*.pom.xml); later runs use the cache
# and need no network.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SVC=$ROOT/scripts/services
CACHE=$ROOT/.test-cache

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

# A full build takes ~3 GB of target/ and the services ~2 GB of .test-cache/;
# say so up front rather than fail in the linker (seen on a CI machine).
avail_kb=$(df -Pk "$ROOT" | awk 'NR==2 {print $4}')
if [[ -n $avail_kb && $avail_kb -lt $((5 * 1024 * 1024)) ]]; then
  log "WARNING: only $((avail_kb / 1024)) MiB free on $(df -P "$ROOT" | awk 'NR==2 {print $6}'); the build and services need ~5 GiB"
fi

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

# ---- 2. the servers' jars, resolved with Maven into .test-cache/ once -------------
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
"$JAVA" -version >/dev/null 2>&1 || die "no java (set JAVA_HOME to a JDK 17 or newer)"
command -v openssl >/dev/null || die "openssl is needed to make the test certificates"
# fetch NAME -> prints the folder with NAME's jars (lib/), copied from the
# Maven dependencies of scripts/services/NAME.pom.xml; the pom's hash is the
# stamp, so an unchanged pom means no Maven run at all (no network).
fetch() {
  local name=$1 pom=$SVC/$1.pom.xml stamp version dest
  stamp=$(sha256sum "$pom" | cut -c1-16)
  version=$(sed -n 's:^  <version>\(.*\)</version>:\1:p' "$pom")
  dest=$CACHE/$name-$version
  if [[ $(cat "$dest/.stamp" 2>/dev/null) != "$stamp" ]]; then
    command -v mvn >/dev/null || die "mvn is needed once to fetch $name $version into $CACHE"
    local t0=$SECONDS
    log "fetching $name $version with Maven into $dest (once)" >&2
    rm -rf "$dest.tmp"; mkdir -p "$dest.tmp"
    mvn -B -Dstyle.color=never -f "$pom" -Dmaven.repo.local="$CACHE/m2" dependency:copy-dependencies \
      -DoutputDirectory="$dest.tmp/lib" -DincludeScope=runtime >"$CACHE/maven-$name.log" 2>&1 \
      || { tail -n 40 "$CACHE/maven-$name.log" >&2; die "Maven could not resolve $pom (log: $CACHE/maven-$name.log)"; }
    echo "$stamp" >"$dest.tmp/.stamp"
    rm -rf "$dest"; mv "$dest.tmp" "$dest"
    log "$name $version fetched in $((SECONDS - t0))s" >&2
  fi
  echo "$dest"
}
KAFKA_HOME=$(fetch kafka)
OS_JARS=$(fetch opensearch)
# An Elasticsearch distribution zip fetched into $1/lib, unpacked once into
# $1/home, less the modules named after it; prints the home.
unpack_es() {
  local zip_dir=$1 home=$1/home module
  shift
  if [[ ! -f $home/.done ]]; then
    rm -rf "$home" "$home.tmp"; mkdir -p "$home.tmp"
    python3 -m zipfile -e "$(ls "$zip_dir"/lib/elasticsearch-*.zip)" "$home.tmp" \
      || die "cannot unpack $zip_dir/lib/elasticsearch-*.zip"
    mv "$home.tmp"/elasticsearch-* "$home"; rm -rf "$home.tmp"
    for module in "$@"; do rm -rf "$home/modules/$module"; done
    chmod +x "$home"/bin/*   # zipfile keeps no modes
    touch "$home/.done"
  fi
  echo "$home"
}
# Elasticsearch: its integ-test-zip distribution.
ES_ZIP_DIR=$(fetch elasticsearch)
ES_HOME=$(unpack_es "$ES_ZIP_DIR")
# Elasticsearch 6.8 with ILM, for tests/retention.rs to start as a node of
# its own: the default distribution, less x-pack-ml.
ES_ILM_ZIP_DIR=$(fetch elasticsearch-ilm)
ES_ILM_HOME=$(unpack_es "$ES_ILM_ZIP_DIR" x-pack-ml)
# OpenSearch laid out as its distribution is: the server in lib/, each module
# in modules/NAME/ with its descriptor (what the distribution's build writes).
OS_HOME=$OS_JARS/home
if [[ ! -f $OS_HOME/.done ]]; then
  rm -rf "$OS_HOME"; mkdir -p "$OS_HOME/lib" "$OS_HOME/modules/transport-netty4" \
    "$OS_HOME/modules/analysis-common" "$OS_HOME/plugins"
  for jar in "$OS_JARS"/lib/*.jar; do
    case ${jar##*/} in
      netty-*|transport-netty4-client-*) cp "$jar" "$OS_HOME/modules/transport-netty4/" ;;
      analysis-common-*) cp "$jar" "$OS_HOME/modules/analysis-common/" ;;
      *) cp "$jar" "$OS_HOME/lib/" ;;
    esac
  done
  osv=${OS_JARS##*-}
  descriptor() { printf 'description=%s\nversion=%s\nname=%s\nclassname=%s\njava.version=11\nopensearch.version=%s\nextended.plugins=\nhas.native.controller=false\n' "$1" "$osv" "$2" "$3" "$osv"; }
  descriptor "Netty 4 based transport implementation" transport-netty4 org.opensearch.transport.Netty4Plugin \
    >"$OS_HOME/modules/transport-netty4/plugin-descriptor.properties"
  cp "$SVC/transport-netty4.plugin-security.policy" "$OS_HOME/modules/transport-netty4/plugin-security.policy"
  descriptor "Adds analysis components" analysis-common org.opensearch.analysis.common.CommonAnalysisPlugin \
    >"$OS_HOME/modules/analysis-common/plugin-descriptor.properties"
  touch "$OS_HOME/.done"
fi
# OpenSearch refuses to run as root (CI runs as root): run it as uid 1000 of a
# user namespace of its own (files stay root's), else as nobody.
AS_USER=()
if [[ $EUID -eq 0 ]]; then
  if unshare --user --map-user=1000 --map-group=1000 true 2>/dev/null; then
    AS_USER=(unshare --user --map-user=1000 --map-group=1000)
  else
    AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  fi
fi

# ---- 3. start the services (each in its own session/process group) ----------------
mkdir -p .test-services
find .test-services -mindepth 1 -maxdepth 1 -name 'run-*' -mmin +1440 -exec rm -rf {} + 2>/dev/null || true
RUN=$(mktemp -d "$ROOT/.test-services/run-XXXXXX")
if [[ ${AS_USER[0]:-} == setpriv ]]; then   # nobody must reach its node dirs
  chmod 755 "$RUN"; mkdir -p "$RUN/opensearch" "$RUN/elasticsearch"
  chown 65534:65534 "$RUN/opensearch" "$RUN/elasticsearch"
fi
KAFKA_PID="" ES_PID="" ELASTIC_PID=""

cleanup() {
  local rc=$? pid _
  trap - EXIT INT TERM
  for pid in $ELASTIC_PID $ES_PID $KAFKA_PID; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in $ELASTIC_PID $ES_PID $KAFKA_PID; do
    for _ in {1..100}; do alive "$pid" || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true   # stragglers in the group, if any
    wait "$pid" 2>/dev/null || true             # reap, so nothing is left behind
  done
  # brokers and nodes the tests started themselves (they record their pids here)
  for f in "$RUN"/pids/*; do
    [[ -f $f ]] || continue
    pid=$(cat "$f"); alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  # logpipe processes a failed test left running (a panic skips its
  # SIGTERM): everything started under this run carries its run dir.
  local env_file
  for env_file in /proc/[0-9]*/environ; do
    pid=${env_file#/proc/}; pid=${pid%/environ}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    if { tr '\0' '\n' <"$env_file"; } 2>/dev/null | grep -qx "LOGPIPE_TEST_RUN_DIR=$RUN"; then
      alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [[ $rc -eq 0 && -z ${LOGPIPE_TEST_KEEP:-} ]]; then rm -rf "$RUN"
  elif [[ -d $RUN ]]; then log "service logs kept in $RUN"; fi
  log "services stopped; exit $rc"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free ports: all bound at once (so distinct), printed, released. The proxy
# ports (advertised by the broker, bound later by tests) come from below the
# ephemeral range, so outgoing connections do not take them meanwhile.
free_ports() { # COUNT LOW_RANGE(0|1)
  python3 - "$1" "$2" <<'PY'
import random, socket, sys
n, low = int(sys.argv[1]), sys.argv[2] == "1"
ss = []
while len(ss) < n:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(20000, 32000) if low else 0))
    except OSError:
        s.close(); continue
    ss.append(s)
print(*(s.getsockname()[1] for s in ss))
PY
}
PROXY_SLOTS=8
read -r -a PORTS < <(free_ports $((10 + PROXY_SLOTS)) 0)
read -r KAFKA_PORT SASL_PORT SSL_PORT MTLS_PORT BADHOST_PORT CONTROLLER_PORT ES_PORT ES_TRANSPORT_PORT \
  ELASTIC_PORT ELASTIC_TRANSPORT_PORT <<<"${PORTS[*]:0:10}"
PROXY_LISTEN=("${PORTS[@]:10}")
read -r -a PROXY_ADVERTISED < <(free_ports "$PROXY_SLOTS" 1)

# Certificates, made for this run: a CA, the broker's (127.0.0.1 and
# localhost), one for a wrong host name, a client's, and a second CA that
# signed none of them.
CERTS=$RUN/certs
mkdir -p "$CERTS"
(
  cd "$CERTS"
  ossl() { openssl "$@" 2>/dev/null; }
  ca() { ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" -keyout "$1.key" -out "$1.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign; }
  leaf() { # name CN extensions...
    local name=$1 cn=$2; shift 2
    ossl req -newkey rsa:2048 -nodes -subj "/CN=$cn" -keyout "$name.key" -out "$name.csr"
    printf '%s\n' "$@" >"$name.ext"
    ossl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$name.ext" -out "$name.pem"
    cat "$name.key" "$name.pem" >"$name.keystore.pem"   # Kafka's PEM key store: key + chain
    rm -f "$name.csr" "$name.ext"
  }
  ca ca "logpipe test CA" && ca other-ca "some other CA" &&
    leaf broker 127.0.0.1 "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" &&
    leaf badhost wrong.invalid "subjectAltName=DNS:wrong.invalid" "extendedKeyUsage=serverAuth" &&
    leaf client logpipe-test-client "extendedKeyUsage=clientAuth"
) || die "openssl could not make the test certificates"

# Credentials, made for this run (the tests check that none appears in a log).
secret() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
SCRAM_USER=logpipe-scram SCRAM_PASSWORD=$(secret)
PLAIN_USER=logpipe-plain PLAIN_PASSWORD=$(secret)

KAFKA_DIR=$RUN/kafka
mkdir -p "$KAFKA_DIR"
echo "SCRAM-SHA-512=[name=$SCRAM_USER,password=$SCRAM_PASSWORD]" >"$KAFKA_DIR/scram-users"
listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT,SSL://127.0.0.1:$SSL_PORT"
listeners+=",MTLS://127.0.0.1:$MTLS_PORT,BADHOST://127.0.0.1:$BADHOST_PORT"
advertised=${listeners}
protocols="PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,MTLS:SSL,BADHOST:SSL,CONTROLLER:PLAINTEXT"
PROXIED=""
for ((k = 0; k < PROXY_SLOTS; k++)); do
  listeners+=",PROXY$k://127.0.0.1:${PROXY_LISTEN[k]}"
  advertised+=",PROXY$k://127.0.0.1:${PROXY_ADVERTISED[k]}"
  protocols+=",PROXY$k:PLAINTEXT"
  PROXIED+="${PROXIED:+,}${PROXY_LISTEN[k]}:${PROXY_ADVERTISED[k]}"
done
cat >"$KAFKA_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=$advertised
listener.security.protocol.map=$protocols
log.dirs=$KAFKA_DIR/data
num.network.threads=2
num.io.threads=4
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# KIP-848 groups: the session timeout is the broker's (45 s by default, and
# not below 45 s); here 10 s, logpipe's classic default (6 s allowed)
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=10000
group.consumer.min.heartbeat.interval.ms=1000
group.consumer.heartbeat.interval.ms=2000
log.flush.interval.messages=10000
# SASL_PLAINTEXT: SCRAM-SHA-512 (user made by the storage format) and PLAIN
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$PLAIN_USER="$PLAIN_PASSWORD";
# SSL: the broker's certificate; MTLS also requires a client certificate;
# BADHOST serves a certificate for another host name
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/broker.keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
ssl.client.auth=none
listener.name.mtls.ssl.client.auth=required
listener.name.badhost.ssl.keystore.type=PEM
listener.name.badhost.ssl.keystore.location=$CERTS/badhost.keystore.pem
EOF

# setsid: own process group (pgid == pid, since a script's background jobs are never
# group leaders), so cleanup can signal the whole tree; and a terminal Ctrl-C reaches
# only this script, whose trap then stops the services in order.
t_start=$SECONDS
setsid "$SVC/kafka-broker.sh" "$KAFKA_HOME/lib" "$KAFKA_DIR" </dev/null >"$RUN/kafka.log" 2>&1 &
KAFKA_PID=$!
setsid "${AS_USER[@]}" "$SVC/opensearch-node.sh" "$OS_HOME" "$RUN/opensearch" "$ES_PORT" "$ES_TRANSPORT_PORT" \
  </dev/null >"$RUN/opensearch.log" 2>&1 &
ES_PID=$!
setsid "${AS_USER[@]}" "$SVC/elasticsearch-node.sh" "$ES_HOME" "$RUN/elasticsearch" "$ELASTIC_PORT" \
  "$ELASTIC_TRANSPORT_PORT" </dev/null >"$RUN/elasticsearch.log" 2>&1 &
ELASTIC_PID=$!
log "kafka ${KAFKA_HOME##*-}      pid $KAFKA_PID  127.0.0.1:$KAFKA_PORT (sasl $SASL_PORT, ssl $SSL_PORT, mtls $MTLS_PORT)  log $RUN/kafka.log"
log "opensearch ${OS_JARS##*-} pid $ES_PID  127.0.0.1:$ES_PORT  log $RUN/opensearch.log"
log "elasticsearch ${ES_ZIP_DIR##*-} pid $ELASTIC_PID  127.0.0.1:$ELASTIC_PORT  log $RUN/elasticsearch.log"

# ---- 4. wait until both answer (120 s; LOGPIPE_TEST_READY_TIMEOUT overrides) ----
kafka_ready() { grep -q 'Kafka Server started' "$RUN/kafka.log" 2>/dev/null; }
es_ready() { http_ready "$ES_PORT"; }
elastic_ready() { http_ready "$ELASTIC_PORT"; }
http_ready() {
  local url="http://127.0.0.1:$1/_cluster/health?wait_for_status=yellow&timeout=1s"
  if command -v curl >/dev/null; then curl -fsS -o /dev/null --max-time 3 "$url" 2>/dev/null
  else python3 -c 'import sys, urllib.request as u
sys.exit(u.urlopen(sys.argv[1], timeout=3).status != 200)' "$url" 2>/dev/null; fi
}
READY_TIMEOUT=${LOGPIPE_TEST_READY_TIMEOUT:-120}
wait_for() { # name pid logfile probe
  local name=$1 pid=$2 logf=$3 probe=$4 deadline=$((SECONDS + READY_TIMEOUT))
  until $probe; do
    alive "$pid" || { tail -n 30 "$logf" >&2; die "$name exited during startup (log: $logf)"; }
    (( SECONDS < deadline )) || { tail -n 30 "$logf" >&2; die "$name not ready after $READY_TIMEOUT s (log: $logf)"; }
    sleep 0.2
  done
  log "$name ready ($((SECONDS - t_start))s after start)"
}
wait_for kafka "$KAFKA_PID" "$RUN/kafka.log" kafka_ready
wait_for opensearch "$ES_PID" "$RUN/opensearch.log" es_ready
wait_for elasticsearch "$ELASTIC_PID" "$RUN/elasticsearch.log" elastic_ready

# ---- 5. run the tests (or the developer's command) with the services up -----------
export LOGPIPE_TEST_KAFKA=127.0.0.1:$KAFKA_PORT
export LOGPIPE_TEST_KAFKA_SASL=127.0.0.1:$SASL_PORT
export LOGPIPE_TEST_KAFKA_SSL=127.0.0.1:$SSL_PORT
export LOGPIPE_TEST_KAFKA_MTLS=127.0.0.1:$MTLS_PORT
export LOGPIPE_TEST_KAFKA_BADHOST=127.0.0.1:$BADHOST_PORT
export LOGPIPE_TEST_KAFKA_PROXIED=$PROXIED   # LISTEN:ADVERTISED,... (tests/common: proxied_broker)
export LOGPIPE_TEST_KAFKA_SCRAM_USER=$SCRAM_USER LOGPIPE_TEST_KAFKA_SCRAM_PASSWORD=$SCRAM_PASSWORD
export LOGPIPE_TEST_KAFKA_PLAIN_USER=$PLAIN_USER LOGPIPE_TEST_KAFKA_PLAIN_PASSWORD=$PLAIN_PASSWORD
export LOGPIPE_TEST_CERTS=$CERTS   # ca.pem other-ca.pem client.pem client.key broker.pem
export LOGPIPE_TEST_KAFKA_BROKER_SH=$SVC/kafka-broker.sh LOGPIPE_TEST_KAFKA_LIB=$KAFKA_HOME/lib
export LOGPIPE_TEST_OPENSEARCH_SH=$SVC/opensearch-node.sh LOGPIPE_TEST_OPENSEARCH_HOME=$OS_HOME
export LOGPIPE_TEST_AS_USER="${AS_USER[*]}"
export LOGPIPE_TEST_RUN_DIR=$RUN
export LOGPIPE_TEST_ES=http://127.0.0.1:$ES_PORT
export LOGPIPE_TEST_ELASTICSEARCH=http://127.0.0.1:$ELASTIC_PORT
export LOGPIPE_TEST_ELASTICSEARCH_SH=$SVC/elasticsearch-node.sh LOGPIPE_TEST_ELASTICSEARCH_HOME=$ES_HOME
export LOGPIPE_TEST_ELASTICSEARCH_ILM_SH=$SVC/elasticsearch-node.sh LOGPIPE_TEST_ELASTICSEARCH_ILM_HOME=$ES_ILM_HOME
export LOGPIPE_TEST_REQUIRE_SERVICES=1
mkdir -p "$RUN/pids"
log "LOGPIPE_TEST_KAFKA=$LOGPIPE_TEST_KAFKA LOGPIPE_TEST_ES=$LOGPIPE_TEST_ES LOGPIPE_TEST_ELASTICSEARCH=$LOGPIPE_TEST_ELASTICSEARCH"
if [[ -n ${LOGPIPE_TEST_CMD:-} ]]; then
  step "LOGPIPE_TEST_CMD: $LOGPIPE_TEST_CMD" bash -c "$LOGPIPE_TEST_CMD" test.sh "$@"
else
  step "cargo test${*:+ $*}" cargo test "$@"   # no --all-targets: that would skip doc tests
fi
