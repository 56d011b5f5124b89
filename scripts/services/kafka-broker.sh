#!/usr/bin/env bash
# Starts one Apache Kafka KRaft node (combined broker+controller) in the
# foreground: kafka-broker.sh LIB_DIR NODE_DIR
#   LIB_DIR   the broker's jars (scripts/test.sh puts them in .test-cache/)
#   NODE_DIR  holds server.properties (log.dirs inside it); formatted on the
#             first start (cluster id in NODE_DIR/cluster.id, SCRAM users from
#             NODE_DIR/scram-users, one `--add-scram` value per line), reused
#             as it is on later starts, so a restart keeps the log on disk.
# Used by scripts/test.sh and by the tests that stop and start a broker of
# their own (LOGPIPE_TEST_KAFKA_BROKER_SH, LOGPIPE_TEST_KAFKA_LIB).
set -euo pipefail
lib=$1 dir=$2
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
jvm=(-Xms128m -Xmx${KAFKA_HEAP:-512m} -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -Djava.awt.headless=true "-Dlog4j2.configurationFile=$(dirname "$0")/kafka-log4j2.properties"
  "-Dkafka.logs.dir=$dir")
if [[ ! -f $dir/formatted ]]; then
  # 16 random bytes, base64url; never starting with '-', which the storage
  # tool would take for an option (Kafka's own Uuid.randomUuid() avoids it
  # the same way): one start in 64 failed with "expected one argument".
  [[ -f $dir/cluster.id ]] || head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' \
    | sed 's/^-/A/' >"$dir/cluster.id"
  scram=()
  if [[ -f $dir/scram-users ]]; then
    while IFS= read -r u; do [[ -n $u ]] && scram+=(--add-scram "$u"); done <"$dir/scram-users"
  fi
  "$java" "${jvm[@]}" -cp "$lib/*" kafka.tools.StorageTool format --ignore-formatted \
    -t "$(cat "$dir/cluster.id")" -c "$dir/server.properties" "${scram[@]}" >"$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; exit 1; }
  touch "$dir/formatted"
fi
exec "$java" "${jvm[@]}" -cp "$lib/*" kafka.Kafka "$dir/server.properties"
