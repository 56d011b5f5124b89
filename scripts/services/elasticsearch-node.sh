#!/usr/bin/env bash
# Starts one Elasticsearch node in the foreground with the distribution's
# own launcher (bin/elasticsearch):
#   elasticsearch-node.sh HOME NODE_DIR HTTP_PORT TRANSPORT_PORT [-Esetting=value ...]
#   HOME      the unpacked integ-test-zip (scripts/test.sh keeps it in .test-cache/)
#   NODE_DIR  config/, data/ and logs/ of this node (made here; HOME stays read-only)
# Single node, security off, loopback only; heap ELASTICSEARCH_HEAP (256m).
set -euo pipefail
home=$1 dir=$2 http=$3 transport=$4; shift 4
mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/tmp"
cp "$home/config/log4j2.properties" "$dir/config/"
mkdir -p "$dir/config/jvm.options.d"
# The distribution's jvm.options, less G1 (a small heap does better with
# the serial collector) and the GC log and heap dumps it puts under the
# working directory.
cat >"$dir/config/jvm.options" <<OPTS
-Djava.io.tmpdir=\${ES_TMPDIR}
-XX:+ExitOnOutOfMemoryError
-XX:ErrorFile=$dir/logs/hs_err_pid%p.log
OPTS
cat >"$dir/config/elasticsearch.yml" <<YML
cluster.name: logpipe-test
node.name: node-1
discovery.type: single-node
network.host: 127.0.0.1
http.port: $http
transport.port: $transport
path.data: $dir/data
path.logs: $dir/logs
bootstrap.memory_lock: false
action.auto_create_index: true
cluster.routing.allocation.disk.threshold_enabled: false
xpack.security.enabled: false
YML
heap=${ELASTICSEARCH_HEAP:-256m}
export ES_PATH_CONF=$dir/config ES_TMPDIR=$dir/tmp
export ES_JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
export ES_JAVA_OPTS="-Xms$heap -Xmx$heap -XX:+UseSerialGC -XX:TieredStopAtLevel=1 ${ES_JAVA_OPTS:-}"
exec "$home/bin/elasticsearch" "$@"
