#!/bin/bash
# cdc-spec/connect entrypoint: a Kafka Connect distributed worker with the Debezium plugins and
# the worker properties of pytest_cdc/stack/native/kafka.py.
#   cdc-connect                 start (CONNECT_PORT, KAFKA_BOOTSTRAP, CONNECT_GROUP_ID,
#                               CONNECT_TOPIC_PREFIX; METRICS_PORT: the Prometheus JMX
#                               exporter answers http://127.0.0.1:PORT/metrics)
#   cdc-connect --print-config  print connect.properties and exit
#   cdc-connect --health        exit 0 when GET /connectors answers 200
set -euo pipefail
CONNECT_PORT=${CONNECT_PORT:-8083}
KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP:-127.0.0.1:9092}
CONNECT_GROUP_ID=${CONNECT_GROUP_ID:-cdc-spec-connect}
CONNECT_TOPIC_PREFIX=${CONNECT_TOPIC_PREFIX:-_connect}
CONFIG=/var/lib/kafka/connect.properties
# The JMX exporter (rules /etc/cdc-spec/jmx.yaml) on 127.0.0.1:$METRICS_PORT when it is set.
AGENT=()
if [ -n "${METRICS_PORT:-}" ]; then
  jars=(/opt/jmx-exporter/jmx_prometheus_javaagent-*.jar) # one, from runtime/dist/agents
  AGENT=("-javaagent:${jars[-1]}=127.0.0.1:$METRICS_PORT:/etc/cdc-spec/jmx.yaml")
fi

properties() {
  cat <<PROPERTIES
bootstrap.servers=$KAFKA_BOOTSTRAP
group.id=$CONNECT_GROUP_ID
config.storage.topic=${CONNECT_TOPIC_PREFIX}_configs
offset.storage.topic=${CONNECT_TOPIC_PREFIX}_offsets
status.storage.topic=${CONNECT_TOPIC_PREFIX}_status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=/opt/connect/plugins
plugin.discovery=service_load
offset.flush.interval.ms=1000
scheduled.rebalance.max.delay.ms=1000
task.shutdown.graceful.timeout.ms=5000
PROPERTIES
}

health() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$CONNECT_PORT"
  printf 'GET /connectors HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  read -r -t 5 _ status _ <&3
  [ "$status" = 200 ]
}

case "${1:-}" in
  --print-config)
    properties
    exit 0
    ;;
  --health)
    health
    exit
    ;;
esac
properties >"$CONFIG"
# C1 only (-XX:TieredStopAtLevel=1): see pytest_cdc/stack/native/kafka.py
exec java -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
  -Dlog4j2.configurationFile=/etc/cdc-spec/log4j2.properties -Dcdc.component=connect \
  -Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager \
  "${AGENT[@]}" -cp '/opt/connect/libs/*' \
  org.apache.kafka.connect.cli.ConnectDistributed "$CONFIG"
