#!/bin/sh
# As the official image: bare options run redis-server; redis-server runs as redis with
# protected mode off (the container network is the boundary) and binds every interface.
# A configuration file stays redis-server's first argument, as redis-server requires
# (Sentinel: `redis-server /data/sentinel.conf --sentinel`).
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  shift
  conf=""
  case "${1:-}" in *.conf) conf="$1"; shift ;; esac
  set -- redis-server ${conf:+"$conf"} --protected-mode no --bind '* -::*' --dir /data "$@"
  [ "$(id -u)" = 0 ] && exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
