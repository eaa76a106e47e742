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
mkdir -p "$BIN"

# the toolchain's usual place, for a shell whose PATH lacks it
GO=$(command -v go || echo /usr/local/go/bin/go)
if [ ! -x "$BIN/helm" ] || [ "$(cat "$BIN/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  [ -x "$GO" ] || { echo "deploy: go is required to build helm" >&2; exit 1; }
  echo "deploy: building helm $HELM_VERSION from the Go module proxy (about 2-3 min on 2 cores, once)"
  log="$BIN/helm-build.log"
  started=$SECONDS
  GOBIN="$BIN" GOFLAGS=-mod=mod "$GO" install "$HELM_MODULE/cmd/helm@$HELM_VERSION" >"$log" 2>&1 \
    || { echo "deploy: go install helm failed (log: $log)" >&2; tail -5 "$log" >&2; exit 1; }
  # the version the binary was built from, as Go recorded it (helm's own says v4.3)
  "$GO" version -m "$BIN/helm" | grep -q "mod[[:space:]]*$HELM_MODULE[[:space:]]*$HELM_VERSION" \
    || { echo "deploy: $BIN/helm is not $HELM_MODULE $HELM_VERSION" >&2; exit 1; }
  echo "$HELM_VERSION" > "$BIN/helm.version"
  echo "deploy: helm built in $((SECONDS - started)) s"
fi

if ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deploy: installing promtool (Debian's prometheus package) with apt-get"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
      >"$BIN/promtool-install.log" 2>&1 \
      || { echo "deploy: apt-get could not install prometheus (log: $BIN/promtool-install.log)" >&2; exit 1; }
  else
    echo "deploy: promtool is missing (sudo apt-get install prometheus)" >&2
    exit 1
  fi
fi
