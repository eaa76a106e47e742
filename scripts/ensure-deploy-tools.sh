#!/usr/bin/env bash
# The deploy tier's tools, installed when missing (tests/deploy, make test-deploy):
#   helm      built from the Go module proxy at a pinned version into .cache/bin (no
#             download site is reachable offline; the proxy is)
#   promtool  from Debian's prometheus package (the server is not started)
# kubernetes-validate is a Python package, pinned in requirements-dev.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
HELM_MODULE=helm.sh/helm/v4
HELM_VERSION=v4.3.2
BIN="$PWD/.cache/bin"

if [ ! -x "$BIN/helm" ] || [ "$(cat "$BIN/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  command -v go >/dev/null 2>&1 || { echo "deploy: go is required to build helm" >&2; exit 1; }
  echo "deploy: building helm $HELM_VERSION from the Go module proxy (a few minutes, once)"
  mkdir -p "$BIN"
  started=$SECONDS
  GOBIN="$BIN" GOFLAGS=-mod=mod go install "$HELM_MODULE/cmd/helm@$HELM_VERSION" \
    >/tmp/wikipulse-helm-build.log 2>&1 \
    || { echo "deploy: go install helm failed (log: /tmp/wikipulse-helm-build.log)" >&2; exit 1; }
  echo "$HELM_VERSION" > "$BIN/helm.version"
  echo "deploy: helm built in $((SECONDS - started)) s"
fi

if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deploy: installing promtool (Debian's prometheus package) with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
      >/tmp/wikipulse-promtool.log 2>&1 \
      || { echo "deploy: apt-get could not install prometheus (log: /tmp/wikipulse-promtool.log)" >&2; exit 1; }
  else
    echo "deploy: promtool is missing (sudo apt-get install prometheus)" >&2
    exit 1
  fi
fi
