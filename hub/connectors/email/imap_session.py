"""One IMAP session with the hub's mailbox: where it is (``imap_url``), logging in over TLS,
opening the mailbox read-only (``EXAMINE``), listing the UIDs past a cursor and fetching
messages with ``BODY.PEEK[]`` (so ``\\Seen`` stays as people in the mailbox left it). The
standard library's blocking ``imaplib`` runs in worker threads; its failures come out as
:class:`RetryableError` or :class:`PermanentError`, never with the password in them."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import ipaddress
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from hub.connectors.base import ConnectorError, PermanentError, RetryableError

P = ParamSpec("P")
T = TypeVar("T")

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_RESPONSE_CODE = re.compile(r"^\[([A-Z-]+)")
# Response codes (RFC 5530) that say the server, not the credentials, is the problem.
_TRANSIENT_CODES = frozenset({"UNAVAILABLE", "INUSE", "SERVERBUG", "LIMIT", "OVERQUOTA"})


@dataclass(frozen=True)
class ImapMailbox:
    """Where to poll, from ``imap_url``: ``imaps://user:password@host:993/INBOX``."""

    tls: bool
    host: str
    port: int
    user: str
    password: str
    mailbox: str

    @classmethod
    def from_url(cls, url: str) -> ImapMailbox:
        """Parse ``imap_url``. Errors never repeat the URL: it holds the password."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise PermanentError("imap_url is not a valid URL") from None
        if parts.scheme not in ("imap", "imaps"):
            raise PermanentError("imap_url must start with imaps:// (or imap:// on loopback)")
        if not parts.hostname or parts.username is None or parts.password is None:
            raise PermanentError("imap_url needs user, password and host: imaps://user:pw@host")
        tls = parts.scheme == "imaps"
        if not tls and not _is_loopback(parts.hostname):
            raise PermanentError(
                "imap:// would send the mailbox password unencrypted; use imaps:// "
                "(imap:// is accepted on loopback only)"
            )
        mailbox = unquote(parts.path.lstrip("/")) or "INBOX"
        if not mailbox.isascii():
            # Non-ASCII names need IMAP's modified UTF-7, which imaplib does not do.
            raise PermanentError("imap_url: non-ASCII mailbox names are not supported")
        return cls(
            tls=tls,
            host=parts.hostname,
            port=port or (993 if tls else 143),
            user=unquote(parts.username),
            password=unquote(parts.password),
            mailbox=mailbox,
        )

    @property
    def where(self) -> str:
        """The mailbox for logs and errors, without the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.mailbox}"

    @property
    def state_key(self) -> str:
        return f"imap:{self.user}@{self.host}/{self.mailbox}"

    def redact(self, text: str) -> str:
        """``text`` (a server's or a library's message) with the password masked."""
        return text.replace(self.password, "***") if self.password else text


@dataclass(frozen=True)
class Fetched:
    """One message as fetched: its UID, its bytes, when the server received it."""

    uid: int
    raw: bytes
    received_at: datetime


@dataclass(frozen=True)
class Tls:
    """How the server's certificate is checked: ``imap_verify``, ``imap_ca_file``."""

    verify: bool = True
    ca_file: str | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class ImapSession:
    """One logged-in connection (:meth:`open`); each step is a coroutine running one
    blocking exchange in a worker thread. :meth:`logout` ends it politely, :meth:`drop`
    at once (also unblocking a thread still reading)."""

    def __init__(self, mailbox: ImapMailbox, conn: imaplib.IMAP4) -> None:
        self.mailbox = mailbox
        self._conn = conn

    @classmethod
    async def open(cls, mailbox: ImapMailbox, *, timeout: float, tls: Tls) -> ImapSession:
        conn = await _call(mailbox, _connect, mailbox, timeout, tls)
        return cls(mailbox, conn)

    async def select(self) -> int:
        """Open the mailbox read-only; its UIDVALIDITY."""
        return await _call(self.mailbox, self._select)

    async def search(self, cursor: int) -> list[int]:
        """The UIDs past ``cursor``, ascending."""
        return await _call(self.mailbox, self._search, cursor)

    async def fetch(
        self, uids: Sequence[int], max_bytes: int
    ) -> tuple[list[Fetched], list[tuple[int, int]]]:
        """Messages ``uids``; those over ``max_bytes`` only as (uid, size)."""
        return await _call(self.mailbox, self._fetch, uids, max_bytes)

    async def logout(self) -> None:
        await _call(self.mailbox, self._logout)

    def drop(self) -> None:
        _close(self._conn)

    # -- the blocking exchanges ----------------------------------------------------------------

    def _select(self) -> int:
        conn = self._conn
        typ, data = conn.select(_quote(self.mailbox.mailbox), readonly=True)
        if typ != "OK":
            raise PermanentError(
                f"IMAP mailbox {self.mailbox.where} cannot be opened: {_text(data)}",
                provider_code=_response_code(_text(data)),
            )
        _, values = conn.response("UIDVALIDITY")
        if not values or values[0] is None:
            raise RetryableError(f"IMAP server {self.mailbox.where} sent no UIDVALIDITY")
        return int(values[0])

    def _search(self, cursor: int) -> list[int]:
        typ, data = self._conn.uid("SEARCH", f"UID {cursor + 1}:*")
        if typ != "OK":
            raise RetryableError(f"IMAP UID SEARCH on {self.mailbox.where} failed: {_text(data)}")
        uids = {int(token) for line in data if line for token in bytes(line).split()}
        # "n:*" always matches the newest message, even when its UID is below n.
        return sorted(uid for uid in uids if uid > cursor)

    def _fetch(
        self, uids: Sequence[int], max_bytes: int
    ) -> tuple[list[Fetched], list[tuple[int, int]]]:
        wanted = set(uids)
        meta = self._fetch_items(uids, "(UID RFC822.SIZE INTERNALDATE)")
        sizes: dict[int, int] = {}
        dates: dict[int, datetime] = {}
        for head, _ in meta:
            uid, size = _number(_UID, head), _number(_SIZE, head)
            if uid in wanted and size is not None:
                sizes[uid] = size
                dates[uid] = _internaldate(head)
        small = [uid for uid in uids if uid in sizes and sizes[uid] <= max_bytes]
        oversized = [(uid, sizes[uid]) for uid in uids if sizes.get(uid, 0) > max_bytes]
        fetched: dict[int, Fetched] = {}
        if small:
            for head, body in self._fetch_items(small, "(UID BODY.PEEK[])"):
                uid = _number(_UID, head)
                if uid in wanted and body is not None:
                    fetched[uid] = Fetched(uid, body, dates.get(uid) or datetime.now(UTC))
        # A UID the server listed but no longer returns was expunged meanwhile: nothing to
        # hand over, and the cursor may pass it.
        return [fetched[uid] for uid in uids if uid in fetched], oversized

    def _fetch_items(self, uids: Sequence[int], items: str) -> list[tuple[bytes, bytes | None]]:
        """``UID FETCH`` as (response text, literal) per message, in whatever order the
        server sent them; text after a literal (``UID`` may come last) is appended."""
        typ, data = self._conn.uid("FETCH", ",".join(map(str, uids)), items)
        if typ != "OK":
            raise RetryableError(f"IMAP UID FETCH on {self.mailbox.where} failed: {_text(data)}")
        # imaplib gives a message without literals as bytes, one with a literal as a
        # (text, literal) tuple followed by the rest of its line (b")" or b" UID 7)").
        records: list[tuple[bytes, bytes | None]] = []
        after_literal = False
        for part in data:
            if isinstance(part, tuple):
                records.append((bytes(part[0]), bytes(part[1])))
                after_literal = True
            elif isinstance(part, bytes):
                if after_literal:
                    head, body = records[-1]
                    records[-1] = (head + b" " + part, body)
                else:
                    records.append((part, None))
                after_literal = False
        return records

    def _logout(self) -> None:
        try:
            self._conn.logout()
        except (imaplib.IMAP4.error, OSError):
            # Everything was handed over and the cursor saved; a BYE that got lost is moot.
            _close(self._conn)


async def _call(mailbox: ImapMailbox, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run one blocking step in a thread, with imaplib's and the socket's failures typed."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except ConnectorError:
        raise
    except imaplib.IMAP4.abort as exc:
        raise RetryableError(
            f"IMAP connection to {mailbox.where} lost: {mailbox.redact(str(exc))}"
        ) from None
    except imaplib.IMAP4.error as exc:
        raise RetryableError(
            f"IMAP server {mailbox.where} refused: {mailbox.redact(str(exc))}"
        ) from None
    except (OSError, EOFError) as exc:  # reset, timeout
        raise RetryableError(
            f"IMAP connection to {mailbox.where} lost: {type(exc).__name__}: "
            f"{mailbox.redact(str(exc))}"
        ) from None


def _connect(box: ImapMailbox, timeout: float, tls: Tls) -> imaplib.IMAP4:
    conn: imaplib.IMAP4
    try:
        if box.tls:
            conn = imaplib.IMAP4_SSL(box.host, box.port, ssl_context=tls.context(), timeout=timeout)
        else:
            conn = imaplib.IMAP4(box.host, box.port, timeout=timeout)
    except ssl.SSLCertVerificationError as exc:
        # Retrying will not make the certificate trusted; imap_ca_file (or a fixed
        # server certificate) will.
        raise PermanentError(
            f"IMAP server {box.where}: certificate not trusted: {exc.verify_message}"
        ) from None
    except OSError as exc:  # refused, no route, timeout, TLS handshake
        raise RetryableError(
            f"IMAP server {box.where} unreachable: {type(exc).__name__}: {exc}"
        ) from None
    try:
        conn.login(_quote(box.user), box.password)
    except imaplib.IMAP4.abort:
        _close(conn)
        raise
    except imaplib.IMAP4.error as exc:
        _close(conn)
        text = box.redact(_text(exc))
        code = _response_code(text)
        error = RetryableError if code in _TRANSIENT_CODES else PermanentError
        raise error(f"IMAP login to {box.where} refused: {text}", provider_code=code) from None
    except BaseException:
        _close(conn)
        raise
    return conn


def _close(conn: imaplib.IMAP4) -> None:
    """Drop the connection without a word to the server (it may be gone already)."""
    with contextlib.suppress(OSError):
        conn.shutdown()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _quote(text: str) -> str:
    """An IMAP quoted string (imaplib sends most arguments as they are)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(value: object) -> str:
    """Readable text of an imaplib error or response data (bytes inside lists)."""
    if isinstance(value, imaplib.IMAP4.error) and value.args:
        value = value.args[0]
    if isinstance(value, list) and value:
        value = value[-1]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _response_code(text: str) -> str | None:
    match = _RESPONSE_CODE.match(text)
    return match.group(1) if match else None


def _number(pattern: re.Pattern[bytes], text: bytes) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None


def _internaldate(text: bytes) -> datetime:
    """The server's time of receipt: ``INTERNALDATE "17-Jul-1996 02:44:25 -0700"``."""
    match = _INTERNALDATE.search(text)
    if match:
        try:
            return datetime.strptime(match.group(1).decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z")
        except ValueError:
            pass
    return datetime.now(UTC)
