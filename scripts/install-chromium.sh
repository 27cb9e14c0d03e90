#!/usr/bin/env bash
# The browser test (tests/test_browser.py) drives Debian's chromium through Playwright (never a downloaded
# browser). Install it when missing; if that fails, the test fails loudly (it never skips).
set -uo pipefail
if [ ! -x /usr/bin/chromium ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
    || echo "warning: could not install chromium; tests/test_browser.py will fail" >&2
fi
exit 0
