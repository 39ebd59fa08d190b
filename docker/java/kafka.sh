#!/bin/bash
# cdc-spec/kafka entrypoint: a single-node broker in KRaft combined mode with the properties of
# pytest_cdc/stack/native/kafka.py; storage is formatted on first start.
#   cdc-kafka                 start (KAFKA_PORT, KAFKA_CONTROLLER_PORT; METRICS_PORT: the
#                             Prometheus JMX exporter answers http://127.0.0.1:PORT/metrics)
#   cdc-kafka --print-config  print server.properties and exit
#   cdc-kafka --health        exit 0 when the broker's port accepts a TCP connection
set -euo pipefail
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
HOME_DIR=/var/lib/kafka
DATA_DIR=$HOME_DIR/data
CONFIG=$HOME_DIR/server.properties
# C1 only (-XX:TieredStopAtLevel=1): see pytest_cdc/stack/native/kafka.py
JAVA=(java -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
  -Dlog4j2.configurationFile=/etc/cdc-spec/log4j2.properties -Dcdc.component=kafka
  -Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager
  -cp '/opt/kafka/libs/*')
# The JMX exporter (rules /etc/cdc-spec/jmx.yaml) on 127.0.0.1:$METRICS_PORT when it is set.
AGENT=()
if [ -n "${METRICS_PORT:-}" ]; then
  jars=(/opt/jmx-exporter/jmx_prometheus_javaagent-*.jar) # one, from runtime/dist/agents
  AGENT=("-javaagent:${jars[-1]}=127.0.0.1:$METRICS_PORT:/etc/cdc-spec/jmx.yaml")
fi

properties() {
  cat <<PROPERTIES
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=9223372036854775807
PROPERTIES
}

cluster_id() { # URL-safe base64 of 16 random bytes, unpadded, not starting with '-' or '_'
  local id=-
  while [[ $id == [-_]* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  echo "$id"
}

case "${1:-}" in
  --print-config)
    properties
    exit 0
    ;;
  --health)
    exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT"
    exit 0
    ;;
esac
properties >"$CONFIG"
if [ ! -f "$DATA_DIR/meta.properties" ]; then
  "${JAVA[@]}" -Xmx256m kafka.tools.StorageTool format --standalone -t "$(cluster_id)" \
    -c "$CONFIG" >/dev/null
  line='{"timestamp":"%s","level":"INFO","component":"kafka","logger":"cdc-kafka",'
  printf "$line"'"message":"storage formatted in %s"}\n' "$(date -u +%FT%T.%3NZ)" "$DATA_DIR"
fi
exec "${JAVA[@]}" "${AGENT[@]}" -Xmx768m kafka.Kafka "$CONFIG"
