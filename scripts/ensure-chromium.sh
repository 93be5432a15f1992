#!/usr/bin/env bash
# Make sure Debian's Chromium is installed: the browser tests (tests/browser) drive it with
# Playwright for Python (executable_path /usr/bin/chromium), so no browser is downloaded.
set -euo pipefail

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "chromium is not installed; installing Debian's chromium" >&2
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

# (Debian's wrapper script prints a harmless shell warning on some machines: quiet it.)
/usr/bin/chromium --version >/dev/null 2>&1
