#!/usr/bin/env bash
# `make run` / `make run-replay`: the producer, the processor and the dashboard against the local
# services (`make services` has started them). Ctrl-C stops them gracefully.
#
# REPLAY=1 feeds the bundled recording through the local replay server instead of the
# live Wikimedia stream (for machines without internet). Every service setting can be
# overridden from the environment (see the README), e.g. WINDOW_SECONDS=10 make run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-$root/.venv/bin/python}"

# KAFKA_BROKERS=3 (as for `make services`): every broker in the bootstrap list; the
# topics take the cluster's replication (3, min.insync.replicas 2) and the processor
# its session timeout from the broker count, with nothing else said
export KAFKA_BROKER_ADDRESS="${KAFKA_BROKER_ADDRESS:-$(services/local.sh bootstrap)}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}"
# REDIS_REPLICAS=2 (as for `make services`): the primary is the one the Sentinels name
sentinels="$(services/local.sh sentinels)"
[ -z "$sentinels" ] || export REDIS_SENTINELS="${REDIS_SENTINELS:-$sentinels}"
export STATE_DIR="${STATE_DIR:-$root/.cache/state}"
prefix="${REDIS_KEY_PREFIX:-wikipulse:}"

pids=()
stop() {
  trap - INT TERM EXIT
  echo "run: stopping ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

start() {  # name, command...: run it with its output prefixed by its name
  local name="$1"; shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

if [ "${REPLAY:-0}" = 1 ]; then
  port="${REPLAY_PORT:-8081}"
  start replay "$PY" -m devtools.replay --file devtools/data/recentchange-2026-06-20.sse \
    --port "$port" --rate "${REPLAY_RATE:-50}" --restamp --loop --history 1h --history-rate 20
  export SSE_URL="http://127.0.0.1:$port/v2/stream/recentchange"
fi

start processor "$PY" -m processor
start producer "$PY" -m producer
start dashboard "$PY" -m dashboard
cat <<MSG
run: producer, processor and dashboard started (Ctrl-C stops them). Once the first window closes:
  http://127.0.0.1:${DASHBOARD_PORT:-8000}                                  # the live dashboard
  .venv/bin/wikipulse top                                                   # leaderboard in the terminal
  redis-cli -p ${REDIS_PORT:-6379} ZRANGE ${prefix}windows -5 -1              # newest complete windows
  redis-cli -p ${REDIS_PORT:-6379} ZRANGE ${prefix}window:<start> 0 -1 REV WITHSCORES
MSG
wait -n "${pids[@]}"
echo "run: a service exited; stopping the others" >&2
exit 1
