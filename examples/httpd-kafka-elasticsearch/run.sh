#!/usr/bin/env bash
# The whole seed flow on one machine, against the project's test services:
#   web host (role ship) -> Kafka topic `httpd` -> indexer (role index)
#   -> httpd_access-YYYY.MM.dd and httpd_error-YYYY.MM.dd in Elasticsearch.
#
#   examples/httpd-kafka-elasticsearch/run.sh
#
# Starts Kafka and Elasticsearch through scripts/test.sh, builds logpipe,
# writes access and error lines into a temp dir, runs both roles, and prints
# what got indexed.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ -z ${LOGPIPE_TEST_KAFKA:-} ]]; then
  exec env LOGPIPE_TEST_CMD="$0" scripts/test.sh
fi
cargo build --release --quiet --bin logpipe
BIN=$PWD/target/release/logpipe
HERE=examples/httpd-kafka-elasticsearch
WORK=$(mktemp -d)
trap 'kill $SHIP $INDEX 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT

export LOGPIPE_ACCESS_LOG=$WORK/access_log LOGPIPE_ERROR_LOG=$WORK/error_log
export KAFKA_BROKERS=$LOGPIPE_TEST_KAFKA ES_HOSTS=$LOGPIPE_TEST_ES KAFKA_SESSION_TIMEOUT=6s
now() { date -u "$@"; }
for i in $(seq 1 50); do
  echo "192.0.2.$i - - [$(now +%d/%b/%Y:%H:%M:%S) +0000] \"GET /page/$i HTTP/1.1\" 200 $((i * 100)) \"-\" \"curl/8.5.0\"" >> "$LOGPIPE_ACCESS_LOG"
done
# 10 error lines: over 1024 bytes, so the file is identified at once (README: File identity)
for i in $(seq 1 10); do
  echo "[$(now '+%a %b %d %H:%M:%S.%6N %Y')] [core:error] [pid 1234:tid 5678] [client 192.0.2.9:4242] AH00128: File does not exist: /srv/www/missing-$i" >> "$LOGPIPE_ERROR_LOG"
done

echo "== logpipe topics ensure"
"$BIN" topics ensure "$HERE/httpd.toml"
echo "== web host: logpipe run --role ship; indexer: logpipe run --role index"
"$BIN" run "$HERE/httpd.toml" --role ship --state-dir "$WORK/ship" --metrics-address off 2> "$WORK/ship.log" &
SHIP=$!
"$BIN" run "$HERE/httpd.toml" --role index --state-dir "$WORK/index" --metrics-address 127.0.0.1:0 2> "$WORK/index.log" &
INDEX=$!

count() { curl -s -XPOST "$ES_HOSTS/$1/_refresh" > /dev/null; curl -s "$ES_HOSTS/$1/_count" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))'; }
for _ in $(seq 1 120); do
  a=$(count 'httpd_access-*'); e=$(count 'httpd_error-*')
  [[ $a -ge 50 && $e -ge 10 ]] && break
  sleep 1
done
echo "== indexed"
curl -s "$ES_HOSTS/_cat/indices/httpd_*?v"
echo "httpd_access-*: $(count 'httpd_access-*') documents (50 written)"
echo "httpd_error-*:  $(count 'httpd_error-*') documents (10 written)"
echo "== one access document"
curl -s -XPOST "$ES_HOSTS/httpd_access-*/_search" -H 'content-type: application/json' \
  -d '{"size":1,"query":{"match_all":{}}}' | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["hits"]["hits"][0]["_source"], indent=2))'
[[ $(count 'httpd_access-*') -eq 50 && $(count 'httpd_error-*') -eq 10 ]]
