#!/usr/bin/env bash
# Run a Kafka class with the image's jars (a small subset of Kafka's own script).
cls="$1"; shift
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="${KAFKA_LOG4J_CONFIG:-/opt/kafka/config/tools-log4j2.yaml}" \
  -cp '/opt/kafka/libs/*' "$cls" "$@"
