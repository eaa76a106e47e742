#!/usr/bin/env bash
# The dashboard's browser test drives Debian's Chromium through Playwright (Playwright's
# own browser download cannot work offline). Install it when missing and possible.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium with apt-get (for the dashboard's browser test)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/tmp/wikipulse-chromium.log 2>&1 \
    || { echo "test: apt-get could not install chromium (log: /tmp/wikipulse-chromium.log)" >&2; exit 1; }
else
  echo "test: chromium is missing (sudo apt-get install chromium); the browser test will be skipped" >&2
fi
