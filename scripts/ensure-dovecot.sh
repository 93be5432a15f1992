#!/usr/bin/env bash
# Make sure Dovecot (the IMAP server the email connector's IMAP tests start privately, see
# tests/connectors/dovecot.py) is installed, and that no system instance of it runs: the tests
# start their own on a free loopback port and must not depend on, or collide with, another.
set -euo pipefail

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  as_root=(sudo)
fi

if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  echo "dovecot is not installed; installing Debian's dovecot-imapd" >&2
  "${as_root[@]}" apt-get update -qq
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd
fi

# The package's post-install script starts the system instance (ports 143/993) unless
# policy-rc.d forbids it; stop it and keep it from starting at boot. Each tool may be missing
# (containers often have no systemd), so try what exists and ignore "not running".
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${as_root[@]}" systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
else
  if [ -x /etc/init.d/dovecot ]; then
    "${as_root[@]}" /etc/init.d/dovecot stop >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    "${as_root[@]}" update-rc.d dovecot disable >/dev/null 2>&1 || true
  fi
fi
# Whatever is left of the system instance (the one started with /etc/dovecot/dovecot.conf);
# the tests' private instances use their own configuration and are left alone.
if [ -f /run/dovecot/master.pid ]; then
  "${as_root[@]}" kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
fi

PATH="$PATH:/usr/sbin" dovecot --version >/dev/null
