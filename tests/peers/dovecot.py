"""A private Dovecot IMAP server on a free loopback port, for the email connector's IMAP tests.

Each :class:`Dovecot` has its own configuration, base_dir, state, log and Maildir homes in a
temporary directory; nothing of the system instance (``/etc/dovecot``) is used. Mail is put into
a mailbox the way an MTA's delivery looks to an IMAP client: ``APPEND``.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.peers.email_peers import self_signed
from tests.peers.http import free_port

USER = "hub"
PASSWORD = 'p@ss/w rd#"quoted"%'  # URL-special characters, no colon (passwd-file)


def _imap_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Dovecot:
    """One Dovecot instance: :meth:`start`, :meth:`stop`, and helpers to fill its mailboxes."""

    def __init__(self, *, tls: bool = False) -> None:
        self.dovecot = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin")
        if not self.dovecot:
            pytest.fail(
                "dovecot is not installed: the IMAP tests need a real IMAP server. "
                "Run scripts/ensure-dovecot.sh (apt-get install dovecot-imapd).",
                pytrace=False,
            )
        # Not pytest's tmp_path: that is 0700 and, when the tests run as root, Dovecot's
        # unprivileged processes (mail user, dovenull) must traverse it. Short, too: unix
        # socket paths in base_dir are limited to ~100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="hub-dovecot-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = USER
        self.password = PASSWORD
        self.tls = tls
        #: The self-signed certificate of an imaps server (its own CA), for clients to trust.
        self.ca_file = self.root / "cert.pem"
        self.conf = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        me = pwd.getpwuid(os.getuid())
        if os.getuid() == 0:
            # Dovecot will not access mail as root (nor as any uid below first_valid_uid), so
            # mail belongs to the package's unprivileged "dovecot" user; its own processes keep
            # the package defaults.
            mail = pwd.getpwnam("dovecot")
            internal_user, login_user = "dovecot", "dovenull"
        else:
            # Unprivileged Dovecot cannot switch users: everything runs as us.
            mail = me
            internal_user = login_user = me.pw_name
        home = self.root / "home"
        (self.root / "base").mkdir()
        (self.root / "state").mkdir()
        home.mkdir()
        os.chown(home, mail.pw_uid, mail.pw_gid)
        users = self.root / "users"
        users.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        users.chmod(0o644)
        if self.tls:
            self_signed(self.root)  # cert.pem (self.ca_file) and key.pem, for 127.0.0.1
        tls = (
            f"ssl = required\nssl_cert = <{self.ca_file}\nssl_key = <{self.root / 'key.pem'}\n"
            if self.tls
            else "ssl = no\n"
        )
        imap_port, imaps_port = (0, self.port) if self.tls else (self.port, 0)
        self.conf.write_text(
            f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/base
state_dir = {self.root}/state
instance_name = hub-test-{self.port}
log_path = {self.log}
info_log_path = {self.log}
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
# A refused login is answered after 2s by default: realistic, but slow for a test suite.
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {mail.pw_uid}
last_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={home}/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
  }}
  # A chroot needs root; without one the test runs the same as root and as a user.
  chroot =
}}
# No growing delays for repeated login failures from one address (Dovecot's brute-force
# penalty): the wrong-password test fails several times in a row.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``imap://user:password@host:port``, percent-encoded, without a mailbox."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        scheme = "imaps" if self.tls else "imap"
        return f"{scheme}://{user}:{password}@{self.host}:{self.port}"

    def start(self) -> None:
        assert self.process is None, "already running"
        assert self.dovecot is not None
        self.process = subprocess.Popen(
            [self.dovecot, "-F", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own process group: stop() ends the sessions too (see there).
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                self.process = None
                pytest.fail(
                    f"dovecot exited at start-up: {err.decode(errors='replace')}\n{self._log()}",
                    pytrace=False,
                )
            try:
                with self._connect(timeout=2) as probe:
                    probe.noop()
                return
            except (OSError, imaplib.IMAP4.error):
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"dovecot did not answer on {self.host}:{self.port}\n{self._log()}")

    def stop(self, *, graceful: bool = True) -> None:
        if self.process is None:
            return
        if graceful:
            self.process.terminate()
        else:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            # Dovecot's master leaves running imap sessions (and its log process) behind;
            # an outage must drop them, as a crashed or restarted server would.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None
        # The port closes with the master, but wait until nothing accepts, so a test that
        # stopped the server really sees an outage.
        for _ in range(100):
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)

    def close(self) -> None:
        self.stop(graceful=False)  # all it had is thrown away
        shutil.rmtree(self.root, ignore_errors=True)

    def _log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    # -- mailboxes -------------------------------------------------------------------------

    def _connect(self, *, timeout: float) -> imaplib.IMAP4:
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            return imaplib.IMAP4_SSL(self.host, self.port, ssl_context=context, timeout=timeout)
        return imaplib.IMAP4(self.host, self.port, timeout=timeout)

    def client(self) -> imaplib.IMAP4:
        conn = self._connect(timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes, mailbox: str = "INBOX") -> None:
        """Deliver one message into ``mailbox`` (created if missing)."""
        with self.client() as conn:
            typ, data = conn.append(_imap_quote(mailbox), None, None, raw)
            if typ != "OK" and mailbox != "INBOX":
                conn.create(_imap_quote(mailbox))
                typ, data = conn.append(_imap_quote(mailbox), None, None, raw)
            assert typ == "OK", data
            conn.logout()

    def recreate(self, mailbox: str) -> None:
        """Delete ``mailbox`` and create it again, empty: a new UIDVALIDITY."""
        with self.client() as conn:
            typ, data = conn.delete(_imap_quote(mailbox))
            assert typ == "OK", data
            typ, data = conn.create(_imap_quote(mailbox))
            assert typ == "OK", data
            conn.logout()

    def uidvalidity(self, mailbox: str = "INBOX") -> int:
        with self.client() as conn:
            typ, data = conn.status(_imap_quote(mailbox), "(UIDVALIDITY)")
            assert typ == "OK", data
            conn.logout()
        text = data[0].decode() if isinstance(data[0], bytes) else str(data[0])
        return int(text.rsplit("UIDVALIDITY", 1)[1].strip(" )"))
