#!/bin/sh
# As the official image: bare options run redis-server; redis-server runs as redis with
# protected mode off (the container network is the boundary) and binds every interface.
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ]; then
  shift
  set -- redis-server --protected-mode no --bind '* -::*' --dir /data "$@"
  [ "$(id -u)" = 0 ] && exec setpriv --reuid=redis --regid=redis --init-groups "$@"
fi
exec "$@"
