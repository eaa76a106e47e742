#!/usr/bin/env bash
# Real Kafka (4.x, KRaft, single node) and real Redis on this machine, without Docker.
#
#   services/local.sh deps     fetch the Kafka jars (Maven) and install redis-server (apt) if missing
#   services/local.sh up [kafka|redis]    start both (or one), wait until Kafka answers metadata
#                                         and Redis answers PING
#   services/local.sh down [kafka|redis]  stop exactly the processes `up` started (pid files)
#   services/local.sh status   say what runs where
#   services/local.sh clean    down, then delete the data (a fresh cluster id next time)
#
# `make services` / `make services-down` call this; so do the test fixtures (devtools/servers.py),
# with their own SERVICES_DIR and free ports, so there is one recipe for both.
#
# Environment (all optional):
#   SERVICES_DIR           pid files, logs and data          (default: .cache/services)
#   KAFKA_PORT             client listener on 127.0.0.1        (default: 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener           (default: 9093)
#   REDIS_PORT             Redis on 127.0.0.1                  (default: 6379)
#   KAFKA_HOME             an existing Kafka installation: its libs/ is used instead of Maven
#   KAFKA_HEAP_OPTS        JVM heap for the broker             (default: -Xms256m -Xmx1g)
#   PYTHON                 interpreter with confluent-kafka, for the readiness probe
#   KAFKA_EXTRA_PROPERTIES a file of broker properties appended to the generated ones (the
#                          last value of a key wins): e.g. an extra SASL_SSL listener
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
SERVICES_DIR="${SERVICES_DIR:-$root/.cache/services}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
REDIS_PORT="${REDIS_PORT:-6379}"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
JARS_DIR="${KAFKA_JARS_DIR:-$root/.cache/kafka-$KAFKA_VERSION/libs}"

die() { echo "services: $*" >&2; exit 1; }
say() { echo "services: $*"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

need_java() {
  command -v java >/dev/null 2>&1 || die "Java 17+ is required for Kafka: install a JDK (e.g. apt-get install -y openjdk-17-jre-headless)"
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [ -n "$v" ] && [ "$v" -ge 17 ] || die "Java 17+ is required for Kafka, found: $(java -version 2>&1 | head -n1)"
}

kafka_classpath() {
  if [ -n "${KAFKA_HOME:-}" ]; then
    [ -d "$KAFKA_HOME/libs" ] || die "KAFKA_HOME=$KAFKA_HOME has no libs/ folder"
    echo "$KAFKA_HOME/libs/*"
  else
    echo "$JARS_DIR/*"
  fi
}

fetch_kafka() {
  [ -n "${KAFKA_HOME:-}" ] && return 0
  ls "$JARS_DIR"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 && return 0
  command -v mvn >/dev/null 2>&1 || die "Maven is required to fetch Kafka $KAFKA_VERSION (or set KAFKA_HOME to a Kafka installation)"
  say "fetching Kafka $KAFKA_VERSION jars from Maven Central into $JARS_DIR"
  mkdir -p "$JARS_DIR"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$JARS_DIR" >"$JARS_DIR/../mvn.log" 2>&1 \
    || { tail -n 20 "$JARS_DIR/../mvn.log" >&2; die "Maven could not fetch Kafka (log: $JARS_DIR/../mvn.log)"; }
}

ensure_redis() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing redis-server with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) \
      >/tmp/wikipulse-apt.log 2>&1 || die "apt-get could not install redis-server (log: /tmp/wikipulse-apt.log)"
  else
    die "redis-server is required: install it (e.g. sudo apt-get install -y redis-server)"
  fi
}

deps() {
  need_java
  fetch_kafka
  ensure_redis
  [ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || die "no Python for the readiness probe at $PYTHON (run make venv, or set PYTHON)"
}

start_kafka() {
  local dir="$SERVICES_DIR/kafka"
  if pid_alive "$dir/kafka.pid"; then say "kafka already running (pid $(cat "$dir/kafka.pid"))"; return 0; fi
  port_busy "$KAFKA_PORT" && die "port $KAFKA_PORT is taken: stop what listens there or set KAFKA_PORT"
  port_busy "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT is taken: set KAFKA_CONTROLLER_PORT"
  mkdir -p "$dir/data" "$dir/logs"
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
# one node: internal topics must not ask for replicas that cannot exist,
# or consumer offsets and exactly-once transactions never become available
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    [ -f "$KAFKA_EXTRA_PROPERTIES" ] || die "KAFKA_EXTRA_PROPERTIES=$KAFKA_EXTRA_PROPERTIES is not a file"
    { echo "# from $KAFKA_EXTRA_PROPERTIES"; cat "$KAFKA_EXTRA_PROPERTIES"; } >>"$dir/server.properties"
  fi
  local cp; cp="$(kafka_classpath)"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    java -cp "$cp" kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$dir/server.properties" \
      >"$dir/logs/format.log" 2>&1 || { cat "$dir/logs/format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  local log4j="$here/log4j2.properties"
  [ -n "${KAFKA_HOME:-}" ] && [ -f "$KAFKA_HOME/config/log4j2.yaml" ] && log4j="$KAFKA_HOME/config/log4j2.yaml"
  # shellcheck disable=SC2086
  setsid nohup java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$log4j" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
}

start_redis() {
  local dir="$SERVICES_DIR/redis"
  if pid_alive "$dir/redis.pid"; then say "redis already running (pid $(cat "$dir/redis.pid"))"; return 0; fi
  port_busy "$REDIS_PORT" && die "port $REDIS_PORT is taken: stop what listens there or set REDIS_PORT"
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    --appendonly yes --appendfsync always --save "" >/dev/null || die "redis-server failed to start (log: $dir/redis.log)"
  local i
  for i in $(seq 1 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
}

up() {
  local which="${1:-all}" k r
  deps
  mkdir -p "$SERVICES_DIR"
  if [ "$which" != redis ]; then
    start_kafka
    k="$("$PYTHON" "$here/probe.py" kafka "127.0.0.1:$KAFKA_PORT" 90)" \
      || { tail -n 30 "$SERVICES_DIR/kafka/logs/stdout.log" "$SERVICES_DIR/kafka/logs/server.log" >&2 2>/dev/null; die "kafka did not become ready"; }
    say "kafka $KAFKA_VERSION ready on 127.0.0.1:$KAFKA_PORT ($k); logs: $SERVICES_DIR/kafka/logs/server.log"
  fi
  if [ "$which" != kafka ]; then
    start_redis
    r="$("$PYTHON" "$here/probe.py" redis "127.0.0.1:$REDIS_PORT" 30)" || die "redis did not become ready"
    say "redis ready on 127.0.0.1:$REDIS_PORT ($r); log: $SERVICES_DIR/redis/redis.log"
  fi
}

stop_pid() {
  local name="$1" pidfile="$2" i
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then say "$name did not stop in 30 s, killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
    say "$name stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

down() {
  local which="${1:-all}"
  [ "$which" = kafka ] || stop_pid redis "$SERVICES_DIR/redis/redis.pid"
  [ "$which" = redis ] || stop_pid kafka "$SERVICES_DIR/kafka/kafka.pid"
}

status() {
  pid_alive "$SERVICES_DIR/kafka/kafka.pid" && say "kafka running on 127.0.0.1:$KAFKA_PORT (pid $(cat "$SERVICES_DIR/kafka/kafka.pid"))" || say "kafka not running"
  pid_alive "$SERVICES_DIR/redis/redis.pid" && say "redis running on 127.0.0.1:$REDIS_PORT (pid $(cat "$SERVICES_DIR/redis/redis.pid"))" || say "redis not running"
}

case "${1:-}" in
  deps) deps ;;
  up) up "${2:-all}" ;;
  down) down "${2:-all}" ;;
  status) status ;;
  clean) down; rm -rf "$SERVICES_DIR"; say "removed $SERVICES_DIR" ;;
  *) echo "usage: $0 deps|up [kafka|redis]|down [kafka|redis]|status|clean" >&2; exit 2 ;;
esac
