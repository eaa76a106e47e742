#!/usr/bin/env bash
# Build offline stand-ins for the images WikiPulse pulls, on a machine that cannot pull.
#
#   tests/docker/offline/build.sh         build what is missing, print the variables to use
#
# Images (all local, none pushed anywhere):
#   wikipulse-offline/debian:bookworm        debootstrap --variant=minbase, imported
#   wikipulse-offline/python:3.11-bookworm   stand-in for python:3.11-slim-bookworm
#   wikipulse-offline/kafka:4.1.1            stand-in for apache/kafka:4.1.1 (same contract)
#   wikipulse-offline/redis:7                stand-in for redis:7.4-alpine (same contract)
#
# The last lines it prints are KEY=VALUE pairs for docker-compose.yml and the test
# fixtures (PYTHON_IMAGE, KAFKA_IMAGE, REDIS_IMAGE). Only the stand-ins trust this
# machine's extra CA certificates (/usr/local/share/ca-certificates); the project's own
# Dockerfile stays as users build it. The debootstrap tarball is cached in
# .cache/docker/ (ignored by git), so a second run takes seconds.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cache="$root/.cache/docker"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/services/pom.xml")"
BASE=wikipulse-offline/debian:bookworm
PYTHON_IMAGE=wikipulse-offline/python:3.11-bookworm
KAFKA_IMAGE="wikipulse-offline/kafka:$KAFKA_VERSION"
REDIS_IMAGE=wikipulse-offline/redis:7
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

say() { echo "offline-images: $*" >&2; }
die() { say "$*"; exit 1; }
have() { docker image inspect "$1" >/dev/null 2>&1; }

build() {  # build IMAGE CONTEXT
  say "building $1"
  docker build -q --build-arg "BASE_IMAGE=$BASE" -t "$1" "$2" >/dev/null \
    || die "building $1 failed (context $2)"
}

base() {
  have "$BASE" && return 0
  local tarball="$cache/debian-bookworm-minbase.tar"
  if [ ! -s "$tarball" ]; then
    [ "$(id -u)" = 0 ] || die "debootstrap needs root to make $BASE"
    command -v debootstrap >/dev/null || {
      say "installing debootstrap with apt-get"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap) \
        >"$cache/apt.log" 2>&1 || die "apt-get could not install debootstrap (log: $cache/apt.log)"
    }
    local dir="$cache/rootfs"
    rm -rf "$dir"; mkdir -p "$dir"
    say "debootstrap --variant=minbase bookworm (about a minute)"
    debootstrap --variant=minbase bookworm "$dir" "$DEBIAN_MIRROR" >"$cache/debootstrap.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed"; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    tar -C "$dir" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$dir"
  fi
  say "importing $BASE"
  docker import "$tarball" "$BASE" >/dev/null || die "docker import of $tarball failed"
}

python_image() {
  have "$PYTHON_IMAGE" && return 0
  local ctx="$cache/context/python"
  rm -rf "$ctx"; mkdir -p "$ctx/ca-certificates"
  cp "$here/python/Dockerfile" "$ctx/"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/ca-certificates/" 2>/dev/null || true
  build "$PYTHON_IMAGE" "$ctx"
}

kafka_image() {
  have "$KAFKA_IMAGE" && return 0
  PYTHON="${PYTHON:-python3}" "$root/services/local.sh" deps >&2
  local ctx="$cache/context/kafka" libs="${KAFKA_HOME:+$KAFKA_HOME/libs}"
  libs="${libs:-$root/.cache/kafka-$KAFKA_VERSION/libs}"
  rm -rf "$ctx"; mkdir -p "$ctx"
  cp -r "$here/kafka/." "$ctx/"
  cp -r "$libs" "$ctx/libs"
  build "$KAFKA_IMAGE" "$ctx"
}

docker info >/dev/null 2>&1 || die "no Docker engine answers (tests/docker/engine.sh start)"
mkdir -p "$cache"
base
python_image
kafka_image
have "$REDIS_IMAGE" || build "$REDIS_IMAGE" "$here/redis"
echo "PYTHON_IMAGE=$PYTHON_IMAGE"
echo "KAFKA_IMAGE=$KAFKA_IMAGE"
echo "REDIS_IMAGE=$REDIS_IMAGE"
