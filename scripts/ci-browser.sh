#!/usr/bin/env bash
# Makes sure Debian's Chromium is at /usr/bin/chromium for the browser tests
# (packages/crypto/src/browser.int.spec.ts drives it with playwright-core).
# Installs it from Debian's packages when missing; never downloads a
# Playwright browser. Idempotent and quiet when it is already there.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then exit 0; fi
echo "ci-browser: installing chromium from Debian's packages"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
if [ ! -x "$CHROMIUM" ]; then
  echo "ci-browser: chromium is still missing at $CHROMIUM" >&2
  exit 1
fi
"$CHROMIUM" --version 2>/dev/null | head -n1 || true
