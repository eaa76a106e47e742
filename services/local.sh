#!/usr/bin/env bash
# Real Kafka (4.x, KRaft) and real Redis on this machine, without Docker.
#
#   services/local.sh deps     fetch the Kafka jars (Maven) and install redis-server (apt) if missing
#   services/local.sh up [--brokers N] [kafka|redis|kafka-I]
#                              start both (or one), wait until Kafka answers metadata (with all
#                              N brokers registered) and Redis answers PING. --brokers 3 starts a
#                              KRaft cluster of three combined broker+controller nodes (kafka-1..3):
#                              replication factor 3 and min.insync.replicas=2 by default and for
#                              the internal topics, unclean leader election off; kafka-I starts
#                              (or restarts) node I of that cluster alone
#                              REDIS_REPLICAS=2 (or --redis-replicas 2) makes Redis highly available:
#                              the primary on REDIS_PORT, replicas on the next ports, and three
#                              Sentinels (26379..26381) monitoring it as `wikipulse` (quorum 2);
#                              redis-I / sentinel-I (re)starts one of them
#   services/local.sh down [kafka|redis|kafka-I|redis-I|sentinel-I]
#                              stop exactly the processes `up` started (pid files)
#   services/local.sh status   say what runs where
#   services/local.sh bootstrap [--brokers N]     print the bootstrap list (KAFKA_BROKER_ADDRESS)
#   services/local.sh sentinels                  print the Sentinels (REDIS_SENTINELS), if any
#   services/local.sh clean    down, then delete the data (a fresh cluster id next time)
#
# `make services` / `make services-down` call this; so do the test fixtures (devtools/servers.py),
# with their own SERVICES_DIR and free ports, so there is one recipe for both.
#
# Environment (all optional):
#   SERVICES_DIR           pid files, logs and data          (default: .cache/services)
#   KAFKA_PORT             client listener on 127.0.0.1        (default: 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller listener           (default: 9093)
#   KAFKA_BROKERS          brokers, as --brokers               (default: 1)
#   KAFKA_PORTS            a cluster's client ports, comma-separated, one per node
#                          (default: KAFKA_PORT, KAFKA_PORT+2, ...)
#   KAFKA_CONTROLLER_PORTS a cluster's controller ports, likewise
#                          (default: KAFKA_CONTROLLER_PORT, KAFKA_CONTROLLER_PORT+2, ...)
#   REDIS_PORT             Redis on 127.0.0.1 (the first node) (default: 6379)
#   REDIS_REPLICAS         replicas of the Redis primary, with three Sentinels when above 0
#                                                              (default: 0, a single Redis)
#   REDIS_REPLICA_PORTS    their ports, comma-separated        (default: REDIS_PORT+1, +2, ...)
#   REDIS_SENTINEL_PORTS   the three Sentinels' ports          (default: 26379,26380,26381)
#   REDIS_SENTINEL_MASTER  the name they monitor the primary as (default: wikipulse)
#   REDIS_DOWN_AFTER_MS    a primary silent this long is down for a Sentinel (default: 5000)
#   KAFKA_HOME             an existing Kafka installation: its libs/ is used instead of Maven
#   KAFKA_HEAP_OPTS        JVM heap of each broker             (default: -Xms256m -Xmx1g; in a
#                                                              cluster -Xms128m -Xmx512m, so
#                                                              three fit a 2-core laptop)
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
KAFKA_BROKERS="${KAFKA_BROKERS:-1}"
REDIS_REPLICAS="${REDIS_REPLICAS:-0}"
REDIS_SENTINEL_PORTS="${REDIS_SENTINEL_PORTS:-26379,26380,26381}"
REDIS_SENTINEL_MASTER="${REDIS_SENTINEL_MASTER:-wikipulse}"
REDIS_DOWN_AFTER_MS="${REDIS_DOWN_AFTER_MS:-5000}"
SENTINELS=3
PYTHON="${PYTHON:-$root/.venv/bin/python}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")"
JARS_DIR="${KAFKA_JARS_DIR:-$root/.cache/kafka-$KAFKA_VERSION/libs}"

die() { echo "services: $*" >&2; exit 1; }
say() { echo "services: $*"; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# a process that exited but is not reaped yet (a SIGKILLed broker, a slow init) answers
# kill -0 for a while: its state in /proc says it is a zombie
pid_alive() {
  [ -f "$1" ] || return 1
  local pid; pid="$(cat "$1")"
  kill -0 "$pid" 2>/dev/null || return 1
  [ ! -r "/proc/$pid/stat" ] || ! sed 's/.*) //' "/proc/$pid/stat" | grep -q '^[ZX]'
}

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

# port $3 of node... : the $2-based port of node $3, or the $3rd of the list $1
node_port() {
  local list="$1" base="$2" i="$3"
  if [ -n "$list" ]; then echo "$list" | cut -d, -f"$i"; else echo $((base + 2 * (i - 1))); fi
}

client_port() { node_port "${KAFKA_PORTS:-}" "$KAFKA_PORT" "$1"; }
controller_port() { node_port "${KAFKA_CONTROLLER_PORTS:-}" "$KAFKA_CONTROLLER_PORT" "$1"; }

cluster_voters() {
  local i voters=""
  for i in $(seq 1 "$KAFKA_BROKERS"); do voters="$voters${voters:+,}$i@127.0.0.1:$(controller_port "$i")"; done
  echo "$voters"
}

# the bootstrap list of every broker: what KAFKA_BROKER_ADDRESS should be
bootstrap() {
  local i list=""
  for i in $(seq 1 "$KAFKA_BROKERS"); do list="$list${list:+,}127.0.0.1:$(client_port "$i")"; done
  echo "$list"
}

# the data, logs and pid file of a node: kafka/ for a single broker, kafka-I/ in a cluster
node_dir() { if [ "$KAFKA_BROKERS" = 1 ]; then echo "$SERVICES_DIR/kafka"; else echo "$SERVICES_DIR/kafka-$1"; fi; }

start_kafka() {
  local i
  if [ "$KAFKA_BROKERS" != 1 ] && pid_alive "$SERVICES_DIR/kafka/kafka.pid"; then
    die "a single broker runs from $SERVICES_DIR/kafka: stop it first (services/local.sh down kafka)"
  fi
  for i in $(seq 1 "$KAFKA_BROKERS"); do start_node "$i"; done
}

start_node() {
  local id="$1" dir port cport
  dir="$(node_dir "$id")"
  port="$(client_port "$id")"
  cport="$(controller_port "$id")"
  [ -n "$port" ] && [ -n "$cport" ] || die "no ports for node $id in KAFKA_PORTS / KAFKA_CONTROLLER_PORTS"
  if pid_alive "$dir/kafka.pid"; then say "kafka node $id already running (pid $(cat "$dir/kafka.pid"))"; return 0; fi
  port_busy "$port" && die "port $port is taken: stop what listens there or set KAFKA_PORT(S)"
  port_busy "$cport" && die "port $cport is taken: set KAFKA_CONTROLLER_PORT(S)"
  mkdir -p "$dir/data" "$dir/logs"
  # Internal topics (consumer offsets, exactly-once transactions) and topics created
  # without a factor get one replica per broker, at most 3, and with 3 need 2 in sync
  # to take a write: one broker lost loses nothing, two lost stop writes instead.
  local replicas=1 min_isr=1
  if [ "$KAFKA_BROKERS" -ge 3 ]; then replicas=3; min_isr=2; elif [ "$KAFKA_BROKERS" = 2 ]; then replicas=2; fi
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(cluster_voters)
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=1
# on one node internal topics must not ask for replicas that cannot exist,
# or consumer offsets and exactly-once transactions never become available
default.replication.factor=$replicas
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replicas
share.coordinator.state.topic.min.isr=$min_isr
# a replica that fell behind never becomes leader: that would drop acknowledged records
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
log.retention.hours=168
EOF
  if [ "$KAFKA_BROKERS" != 1 ]; then
    # fewer internal partitions than the default 50: a cluster on one laptop moves the
    # leadership of each of them whenever a broker goes
    printf '%s\n' "offsets.topic.num.partitions=10" "transaction.state.log.num.partitions=10" \
      >>"$dir/server.properties"
    # Idle client connections are closed after 10 s (default 10 min). A mitigation of a
    # librdkafka hang (confluentinc/librdkafka#5511): after the broker that was a
    # consumer group's coordinator dies, a transactional producer's
    # send_offsets_to_transaction() may wait for good, until some other broker
    # connection changes state; an idle one closed by its broker is such a change.
    echo "connections.max.idle.ms=10000" >>"$dir/server.properties"
  fi
  if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
    [ -f "$KAFKA_EXTRA_PROPERTIES" ] || die "KAFKA_EXTRA_PROPERTIES=$KAFKA_EXTRA_PROPERTIES is not a file"
    { echo "# from $KAFKA_EXTRA_PROPERTIES"; cat "$KAFKA_EXTRA_PROPERTIES"; } >>"$dir/server.properties"
  fi
  local cp; cp="$(kafka_classpath)"
  if [ ! -f "$dir/data/meta.properties" ]; then
    # every node of a cluster is formatted with the same cluster id, kept beside them
    local cluster_id id_file="$SERVICES_DIR/kafka-cluster.id"
    if [ "$KAFKA_BROKERS" != 1 ] && [ -s "$id_file" ]; then
      cluster_id="$(cat "$id_file")"
    else
      cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
      [ "$KAFKA_BROKERS" = 1 ] || echo "$cluster_id" >"$id_file"
    fi
    java -cp "$cp" kafka.tools.StorageTool format --cluster-id="$cluster_id" -c "$dir/server.properties" \
      >"$dir/logs/format.log" 2>&1 || { cat "$dir/logs/format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  local log4j="$here/log4j2.properties" heap="${KAFKA_HEAP_OPTS:-}"
  [ -n "${KAFKA_HOME:-}" ] && [ -f "$KAFKA_HOME/config/log4j2.yaml" ] && log4j="$KAFKA_HOME/config/log4j2.yaml"
  if [ -z "$heap" ]; then
    if [ "$KAFKA_BROKERS" = 1 ]; then heap="-Xms256m -Xmx1g"; else heap="-Xms128m -Xmx512m"; fi
  fi
  # shellcheck disable=SC2086
  setsid nohup java $heap -XX:+UseG1GC -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir/logs" -Dlog4j2.configurationFile="$log4j" \
    -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/logs/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/kafka.pid"
}

# wait until Kafka answers metadata with every broker registered (asked through the
# whole bootstrap list), or until node $1 answers on its own listener
wait_for_kafka() {
  local address k dir brokers="$KAFKA_BROKERS"
  if [ -n "${1:-}" ]; then
    # a node serves requests only once the controllers unfenced it: that it answers is
    # enough (the others may be down on purpose)
    address="127.0.0.1:$(client_port "$1")"; dir="$(node_dir "$1")"; brokers=1
  else
    address="$(bootstrap)"; dir="$(node_dir 1)"
  fi
  k="$("$PYTHON" "$here/probe.py" kafka "$address" 120 "$brokers")" \
    || { tail -n 30 "$dir/logs/stdout.log" "$dir/logs/server.log" >&2 2>/dev/null; die "kafka did not become ready"; }
  say "kafka $KAFKA_VERSION ready on $address ($k); logs: $dir/logs/server.log"
}

# ---------------------------------------------------------------- Redis with Sentinel
#
# REDIS_REPLICAS > 0: nodes redis-1 (REDIS_PORT, the first primary), redis-2.. (replicas)
# and sentinel-1..3, each with a config file of its own written on its first start only:
# Sentinel rewrites them on a failover (who is primary, who replicates whom), so a node
# restarted later keeps its place instead of claiming to be the primary again.
redis_node_port() {  # node I (1-based) of the replicated set
  if [ "$1" = 1 ]; then echo "$REDIS_PORT"; return; fi
  if [ -n "${REDIS_REPLICA_PORTS:-}" ]; then echo "$REDIS_REPLICA_PORTS" | cut -d, -f"$(($1 - 1))"
  else echo $((REDIS_PORT + $1 - 1)); fi
}
sentinel_port() { echo "$REDIS_SENTINEL_PORTS" | cut -d, -f"$1"; }

# the Sentinels' addresses: what REDIS_SENTINELS should be (empty for a single Redis)
sentinels() {
  local i list=""
  [ "$REDIS_REPLICAS" -gt 0 ] || return 0
  for i in $(seq 1 "$SENTINELS"); do list="$list${list:+,}127.0.0.1:$(sentinel_port "$i")"; done
  echo "$list"
}

start_redis_node() {
  local id="$1" dir="$SERVICES_DIR/redis-$1" port
  port="$(redis_node_port "$id")"
  [ -n "$port" ] || die "no port for redis node $id in REDIS_REPLICA_PORTS"
  if pid_alive "$dir/redis.pid"; then say "redis-$id already running (pid $(cat "$dir/redis.pid"))"; return 0; fi
  port_busy "$port" && die "port $port is taken: stop what listens there or set REDIS_PORT / REDIS_REPLICA_PORTS"
  mkdir -p "$dir"
  if [ ! -f "$dir/redis.conf" ]; then
    # Every write fsynced (as a single Redis), and the processor WAITs for a replica
    # before each commit. A primary that hears from no replica for 10 s refuses writes:
    # cut off from them, it would take writes a failover then throws away (split brain).
    # A replica that lost its primary answers no reads rather than stale ones.
    {
      echo "bind 127.0.0.1"
      echo "port $port"
      echo "dir $dir"
      echo "pidfile $dir/redis.pid"
      echo "logfile $dir/redis.log"
      echo "daemonize yes"
      echo "appendonly yes"
      echo "appendfsync always"
      echo 'save ""'
      echo "min-replicas-to-write 1"
      echo "min-replicas-max-lag 10"
      echo "replica-serve-stale-data no"
      [ "$id" = 1 ] || echo "replicaof 127.0.0.1 $REDIS_PORT"
    } >"$dir/redis.conf"
  fi
  redis-server "$dir/redis.conf" >/dev/null || die "redis-$id failed to start (log: $dir/redis.log)"
  local i
  for i in $(seq 1 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done
}

start_sentinel() {
  local id="$1" dir="$SERVICES_DIR/sentinel-$1" port
  port="$(sentinel_port "$id")"
  [ -n "$port" ] || die "no port for sentinel $id in REDIS_SENTINEL_PORTS"
  if pid_alive "$dir/sentinel.pid"; then say "sentinel-$id already running (pid $(cat "$dir/sentinel.pid"))"; return 0; fi
  port_busy "$port" && die "port $port is taken: stop what listens there or set REDIS_SENTINEL_PORTS"
  mkdir -p "$dir"
  if [ ! -f "$dir/sentinel.conf" ]; then
    # quorum 2 of 3: one Sentinel alone never fails the primary over
    {
      echo "bind 127.0.0.1"
      echo "port $port"
      echo "dir $dir"
      echo "pidfile $dir/sentinel.pid"
      echo "logfile $dir/sentinel.log"
      echo "daemonize yes"
      echo "sentinel monitor $REDIS_SENTINEL_MASTER 127.0.0.1 $REDIS_PORT 2"
      echo "sentinel down-after-milliseconds $REDIS_SENTINEL_MASTER $REDIS_DOWN_AFTER_MS"
      echo "sentinel failover-timeout $REDIS_SENTINEL_MASTER 20000"
      echo "sentinel parallel-syncs $REDIS_SENTINEL_MASTER 1"
    } >"$dir/sentinel.conf"
  fi
  redis-server "$dir/sentinel.conf" --sentinel >/dev/null || die "sentinel-$id failed to start (log: $dir/sentinel.log)"
  local i
  for i in $(seq 1 50); do [ -s "$dir/sentinel.pid" ] && break; sleep 0.1; done
}

start_redis_ha() {
  local i
  for i in $(seq 1 $((REDIS_REPLICAS + 1))); do start_redis_node "$i"; done
  for i in $(seq 1 "$SENTINELS"); do start_sentinel "$i"; done
}

wait_for_redis_ha() {
  local r
  r="$("$PYTHON" "$here/probe.py" sentinel "$(sentinels)" 60 "$REDIS_SENTINEL_MASTER" "$REDIS_REPLICAS")" \
    || { tail -n 20 "$SERVICES_DIR"/sentinel-1/sentinel.log >&2 2>/dev/null; die "redis with sentinel did not become ready"; }
  say "redis ready: $r; Sentinels $(sentinels) (REDIS_SENTINELS); logs: $SERVICES_DIR/redis-*/redis.log"
}

start_redis() {
  if [ "$REDIS_REPLICAS" -gt 0 ]; then start_redis_ha; return; fi
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
  local which="${1:-all}" r node=""
  case "$KAFKA_BROKERS" in ''|*[!0-9]*|0) die "--brokers needs a number of at least 1, got '$KAFKA_BROKERS'" ;; esac
  case "$REDIS_REPLICAS" in ''|*[!0-9]*) die "REDIS_REPLICAS needs a number, got '$REDIS_REPLICAS'" ;; esac
  case "$which" in
    all|kafka|redis) ;;
    kafka-[0-9]*)
      node="${which#kafka-}"
      [ "$KAFKA_BROKERS" != 1 ] && [ "$node" -ge 1 ] && [ "$node" -le "$KAFKA_BROKERS" ] \
        || die "$which: no such node in a cluster of $KAFKA_BROKERS (give --brokers N)" ;;
    redis-[0-9]*|sentinel-[0-9]*)
      [ "$REDIS_REPLICAS" -gt 0 ] || die "$which: Redis runs alone (set REDIS_REPLICAS)"
      deps
      mkdir -p "$SERVICES_DIR"
      if [ "${which%%-*}" = redis ]; then start_redis_node "${which#redis-}"; else start_sentinel "${which#sentinel-}"; fi
      say "$which started"
      return ;;
    *) die "up: unknown service $which" ;;
  esac
  deps
  mkdir -p "$SERVICES_DIR"
  if [ -n "$node" ]; then
    start_node "$node"
    wait_for_kafka "$node"
  elif [ "$which" != redis ]; then
    start_kafka
    wait_for_kafka
  fi
  if [ "$which" = all ] || [ "$which" = redis ]; then
    start_redis
    if [ "$REDIS_REPLICAS" -gt 0 ]; then wait_for_redis_ha; return; fi
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

# the pid files of every Kafka node `up` started here: a single broker's, a cluster's
kafka_pidfiles() {
  local f
  for f in "$SERVICES_DIR/kafka/kafka.pid" "$SERVICES_DIR"/kafka-[0-9]*/kafka.pid; do
    [ -f "$f" ] && echo "$f"
  done
  return 0
}

# the pid files of every Redis process `up` started here: a single Redis, or the
# replicated set's Sentinels and nodes (Sentinels first: no failover while stopping)
redis_pidfiles() {
  local f
  for f in "$SERVICES_DIR"/sentinel-[0-9]*/sentinel.pid "$SERVICES_DIR/redis/redis.pid" \
           "$SERVICES_DIR"/redis-[0-9]*/redis.pid; do
    [ -f "$f" ] && echo "$f"
  done
  return 0
}

down() {
  local which="${1:-all}" f
  case "$which" in
    kafka-[0-9]*) stop_pid "kafka node ${which#kafka-}" "$SERVICES_DIR/$which/kafka.pid"; return ;;
    redis-[0-9]*) stop_pid "$which" "$SERVICES_DIR/$which/redis.pid"; return ;;
    sentinel-[0-9]*) stop_pid "$which" "$SERVICES_DIR/$which/sentinel.pid"; return ;;
    all|kafka|redis) ;;
    *) die "down: unknown service $which" ;;
  esac
  if [ "$which" != kafka ]; then
    for f in $(redis_pidfiles); do stop_pid "$(basename "$(dirname "$f")")" "$f"; done
  fi
  if [ "$which" != redis ]; then
    # a cluster's nodes are asked to stop together: one by one, the last would wait in
    # vain for a controller quorum to hand its partitions to
    for f in $(kafka_pidfiles); do if pid_alive "$f"; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi; done
    for f in $(kafka_pidfiles); do stop_pid "kafka ($(basename "$(dirname "$f")"))" "$f"; done
  fi
}

status() {
  local f node found=""
  for f in $(kafka_pidfiles); do
    found=1
    node="$(basename "$(dirname "$f")")"
    if pid_alive "$f"; then
      say "$node running (pid $(cat "$f")): $(sed -n 's/^listeners=//p' "$(dirname "$f")/server.properties")"
    else
      say "$node not running"
    fi
  done
  [ -n "$found" ] || say "kafka not running"
  if [ -f "$SERVICES_DIR/redis/redis.pid" ] || [ -z "$(redis_pidfiles)" ]; then
    pid_alive "$SERVICES_DIR/redis/redis.pid" && say "redis running on 127.0.0.1:$REDIS_PORT (pid $(cat "$SERVICES_DIR/redis/redis.pid"))" || say "redis not running"
  fi
  for f in "$SERVICES_DIR"/redis-[0-9]*/redis.pid "$SERVICES_DIR"/sentinel-[0-9]*/sentinel.pid; do
    [ -f "$f" ] || continue
    node="$(basename "$(dirname "$f")")"
    if pid_alive "$f"; then say "$node running (pid $(cat "$f")): $(describe_node "$(dirname "$f")")"; else say "$node not running"; fi
  done
}

# where a node of the replicated set listens, and what it is now
describe_node() {
  local port role=""
  port="$(sed -n 's/^port //p' "$1"/*.conf 2>/dev/null | head -n1)"
  if [ -f "$1/redis.conf" ] && command -v redis-cli >/dev/null 2>&1; then
    role="$(redis-cli -p "$port" role 2>/dev/null | head -n1)"
    case "$role" in master) role=", primary" ;; slave) role=", replica" ;; *) role="" ;; esac
  fi
  echo "127.0.0.1:$port$role"
}

# --brokers N anywhere among the arguments; the other one names the service
parse_options() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --brokers) [ $# -ge 2 ] || die "--brokers needs a number"; KAFKA_BROKERS="$2"; shift 2 ;;
      --brokers=*) KAFKA_BROKERS="${1#--brokers=}"; shift ;;
      --redis-replicas) [ $# -ge 2 ] || die "--redis-replicas needs a number"; REDIS_REPLICAS="$2"; shift 2 ;;
      --redis-replicas=*) REDIS_REPLICAS="${1#--redis-replicas=}"; shift ;;
      *) ARG="$1"; shift ;;
    esac
  done
}

command="${1:-}"
[ $# -gt 0 ] && shift
ARG=all
parse_options "$@"
case "$command" in
  deps) deps ;;
  up) up "$ARG" ;;
  down) down "$ARG" ;;
  status) status ;;
  bootstrap) bootstrap ;;
  sentinels) sentinels ;;
  clean) down; rm -rf "$SERVICES_DIR"; say "removed $SERVICES_DIR" ;;
  *) echo "usage: $0 deps|up [--brokers N] [--redis-replicas N] [kafka|redis|kafka-I|redis-I|sentinel-I]|down [the same]|status|bootstrap|sentinels|clean" >&2; exit 2 ;;
esac
