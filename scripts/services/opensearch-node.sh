#!/usr/bin/env bash
# Starts one OpenSearch node in the foreground, the way the distribution's
# bin/opensearch does (java -cp "lib/*" org.opensearch.bootstrap.OpenSearch):
#   opensearch-node.sh HOME NODE_DIR HTTP_PORT TRANSPORT_PORT [-Esetting=value ...]
#   HOME      lib/ and modules/ (scripts/test.sh assembles them in .test-cache/)
#   NODE_DIR  config/, data/ and logs/ of this node (made here)
# Single node, security off (there is no security plugin), loopback only.
set -euo pipefail
home=$1 dir=$2 http=$3 transport=$4; shift 4
here=$(cd "$(dirname "$0")" && pwd)
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/tmp"
cp "$here/opensearch-log4j2.properties" "$dir/config/log4j2.properties"
cat >"$dir/config/opensearch.yml" <<YML
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
YML
export OPENSEARCH_PATH_CONF=$dir/config
exec "$java" -Xms${OPENSEARCH_HEAP:-512m} -Xmx${OPENSEARCH_HEAP:-512m} -XX:+UseSerialGC \
  -XX:TieredStopAtLevel=1 -Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
  -Djna.nosys=true -XX:-OmitStackTraceInFastThrow -Dio.netty.noUnsafe=true \
  -Dio.netty.noKeySetOptimization=true -Dio.netty.recycler.maxCapacityPerThread=0 \
  -Dio.netty.allocator.numDirectArenas=0 -Dlog4j.shutdownHookEnabled=false \
  -Dlog4j2.disable.jmx=true -Djava.locale.providers=SPI,COMPAT \
  "-Djava.io.tmpdir=$dir/tmp" "-Dopensearch.path.home=$home" "-Dopensearch.path.conf=$dir/config" \
  -Dopensearch.distribution.type=tar -Dopensearch.bundled_jdk=false \
  -cp "$home/lib/*" org.opensearch.bootstrap.OpenSearch "$@"
