"""IMAP polling: new mail in the hub's mailbox, handed to the sink in UID order behind a durable
cursor (UIDVALIDITY + last UID in the connector's :class:`StateStore`).

Each poll connects, logs in, ``EXAMINE``\\s the mailbox (read-only: the poller never changes
flags, so ``\\Seen`` stays for people working in the mailbox and a read-only account is
enough), lists the UIDs past the cursor and fetches them in batches with ``BODY.PEEK[]``. A batch
goes to the sink as one :class:`WebhookOutcome`; the cursor moves only after the sink returned,
so an outage anywhere re-reads (the hub dedupes by Message-ID) and never skips. The standard
library's blocking ``imaplib`` runs in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import ipaddress
import logging
import re
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import JsonValue

from hub.connectors.base import (
    ConnectorError,
    DeliveryReport,
    InboundSink,
    PermanentError,
    RetryableError,
    SetAside,
    StateStore,
    WebhookOutcome,
)
from hub.connectors.email.parse import parse_message
from hub.connectors.settings import EmailSettings
from hub.events import InboundInteraction

__all__ = ["ImapMailbox", "ImapPoller"]

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: Back-off after failures grows to this (or the poll interval, if that is longer).
MAX_BACKOFF = 300.0

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


@dataclass(frozen=True)
class _Fetched:
    uid: int
    raw: bytes
    received_at: datetime


class ImapPoller:
    """Polls one IMAP mailbox until cancelled (:meth:`run`); :meth:`poll_once` is one round."""

    def __init__(self, settings: EmailSettings, state: StateStore | None) -> None:
        if settings.imap_url is None:
            raise PermanentError("imap_url is not set")
        self.mailbox = ImapMailbox.from_url(settings.imap_url.get_secret_value())
        self.poll_seconds = settings.imap_poll_seconds
        self.batch = settings.imap_batch
        self.timeout = settings.imap_timeout
        self.max_message_bytes = settings.max_message_bytes
        self.verify = settings.imap_verify
        self.ca_file = settings.imap_ca_file
        # Without a store the cursor lives as long as the process: a restart re-reads the
        # mailbox, which the hub's dedupe by Message-ID absorbs.
        self.state: StateStore = state if state is not None else _MemoryState()

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, sink: InboundSink) -> None:
        """Poll every ``imap_poll_seconds``; after a failure, back off and try again."""
        failures = 0
        while True:
            try:
                count = await self.poll_once(sink)
            except ConnectorError as exc:
                failures += 1
                delay = self._backoff(failures, exc)
                # A refused login or a missing mailbox will not fix itself, but the task
                # must outlive it: an operator fixes the account, the hub carries on.
                log = logger.error if isinstance(exc, PermanentError) else logger.warning
                log(
                    "IMAP poll of %s failed: %s; next try in %.0fs",
                    self.mailbox.where,
                    exc.reason,
                    delay,
                )
            except Exception as exc:  # the sink failed: the cursor stayed, retry later
                failures += 1
                delay = self._backoff(failures, None)
                logger.warning(
                    "IMAP poll of %s: handing mail to the hub failed (%s: %s); next try in %.0fs",
                    self.mailbox.where,
                    type(exc).__name__,
                    self._redact(str(exc)),
                    delay,
                )
            else:
                if failures:
                    logger.info("IMAP poll of %s works again", self.mailbox.where)
                failures = 0
                delay = self.poll_seconds
                if count:
                    logger.info("IMAP poll of %s: %d new message(s)", self.mailbox.where, count)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int, exc: ConnectorError | None) -> float:
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            return exc.retry_after
        ceiling = max(self.poll_seconds, MAX_BACKOFF)
        return float(min(self.poll_seconds * 2 ** min(failures - 1, 16), ceiling))

    # -- one round ---------------------------------------------------------------------------

    async def poll_once(self, sink: InboundSink) -> int:
        """Hand every message past the cursor to ``sink``; returns how many were handed over.

        Raises :class:`RetryableError` (server unreachable, connection lost) or
        :class:`PermanentError` (login refused, no such mailbox); what the sink raises passes
        through. The cursor only ever moves past mail the sink accepted.
        """
        conn = await self._call(self._connect)
        try:
            uidvalidity = await self._call(self._select, conn)
            cursor = self._cursor(uidvalidity)
            uids = await self._call(self._search, conn, cursor)
            handed = 0
            for start in range(0, len(uids), self.batch):
                chunk = uids[start : start + self.batch]
                fetched, oversized = await self._call(self._fetch, conn, chunk)
                outcome = self._outcome(fetched, oversized, uidvalidity)
                if outcome.interactions or outcome.reports or outcome.set_aside:
                    await sink(outcome)
                self.state.set(f"{self.mailbox.state_key}:uid", str(chunk[-1]))
                handed += len(chunk)
            await self._call(self._logout, conn)
            return handed
        except BaseException:
            # Closing the socket (not LOGOUT) also unblocks a worker thread still reading
            # when the poll was cancelled.
            _close(conn)
            raise

    def _cursor(self, uidvalidity: int) -> int:
        """The last UID handed over, or 0 when the mailbox is new or was recreated."""
        key = self.mailbox.state_key
        known = self.state.get(f"{key}:uidvalidity")
        if known == str(uidvalidity):
            return int(self.state.get(f"{key}:uid") or 0)
        if known is not None:
            logger.warning(
                "IMAP mailbox %s has a new UIDVALIDITY (%s, was %s): reading it from the start",
                self.mailbox.where,
                uidvalidity,
                known,
            )
        # The UID first: a crash between the two writes then re-reads (harmless duplicates)
        # rather than applying an old UID to the new mailbox (skipped mail).
        self.state.set(f"{key}:uid", "0")
        self.state.set(f"{key}:uidvalidity", str(uidvalidity))
        return 0

    def _outcome(
        self, fetched: Sequence[_Fetched], oversized: Sequence[tuple[int, int]], uidvalidity: int
    ) -> WebhookOutcome:
        """One batch's messages, parsed and merged into one outcome for one sink call."""
        interactions: list[InboundInteraction] = []
        reports: list[DeliveryReport] = []
        set_aside: list[SetAside] = []
        for item in fetched:
            where = self._where_payload(item.uid, uidvalidity)
            try:
                outcome = parse_message(item.raw, received_at=item.received_at)
            except Exception as exc:
                # parse_message sets aside what a message contains; this is a bug in it,
                # and one bad message must not hold up the mailbox behind it.
                set_aside.append(
                    SetAside(
                        reason=f"parse failed: {type(exc).__name__}: {exc}",
                        payload={**_describe(item.raw), "imap": where},
                        original=item.raw,
                    )
                )
                continue
            interactions.extend(outcome.interactions)
            reports.extend(outcome.reports)
            for aside in outcome.set_aside:
                payload: JsonValue = (
                    {**aside.payload, "imap": where}
                    if isinstance(aside.payload, dict)
                    else {"item": aside.payload, "imap": where}
                )
                set_aside.append(
                    SetAside(reason=aside.reason, payload=payload, original=aside.original)
                )
        for uid, size in oversized:
            set_aside.append(
                SetAside(
                    reason=f"message of {size} bytes exceeds max_message_bytes "
                    f"({self.max_message_bytes})",
                    payload={"size": size, "imap": self._where_payload(uid, uidvalidity)},
                )
            )
        return WebhookOutcome(
            interactions=tuple(interactions), reports=tuple(reports), set_aside=tuple(set_aside)
        )

    def _where_payload(self, uid: int, uidvalidity: int) -> JsonValue:
        return {"mailbox": self.mailbox.where, "uidvalidity": uidvalidity, "uid": uid}

    # -- blocking IMAP, run in worker threads --------------------------------------------------

    async def _call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one blocking step in a thread, with imaplib's and the socket's failures typed."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ConnectorError:
            raise
        except imaplib.IMAP4.abort as exc:
            raise RetryableError(
                f"IMAP connection to {self.mailbox.where} lost: {self._redact(str(exc))}"
            ) from None
        except imaplib.IMAP4.error as exc:
            raise RetryableError(
                f"IMAP server {self.mailbox.where} refused: {self._redact(str(exc))}"
            ) from None
        except (OSError, EOFError) as exc:  # reset, timeout
            raise RetryableError(
                f"IMAP connection to {self.mailbox.where} lost: {type(exc).__name__}: "
                f"{self._redact(str(exc))}"
            ) from None

    def _connect(self) -> imaplib.IMAP4:
        box = self.mailbox
        conn: imaplib.IMAP4
        try:
            if box.tls:
                conn = imaplib.IMAP4_SSL(
                    box.host, box.port, ssl_context=self._tls_context(), timeout=self.timeout
                )
            else:
                conn = imaplib.IMAP4(box.host, box.port, timeout=self.timeout)
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
            text = self._redact(_text(exc))
            code = _response_code(text)
            error = RetryableError if code in _TRANSIENT_CODES else PermanentError
            raise error(f"IMAP login to {box.where} refused: {text}", provider_code=code) from None
        except BaseException:
            _close(conn)
            raise
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _select(self, conn: imaplib.IMAP4) -> int:
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

    def _search(self, conn: imaplib.IMAP4, cursor: int) -> list[int]:
        typ, data = conn.uid("SEARCH", f"UID {cursor + 1}:*")
        if typ != "OK":
            raise RetryableError(f"IMAP UID SEARCH on {self.mailbox.where} failed: {_text(data)}")
        uids = {int(token) for line in data if line for token in bytes(line).split()}
        # "n:*" always matches the newest message, even when its UID is below n.
        return sorted(uid for uid in uids if uid > cursor)

    def _fetch(
        self, conn: imaplib.IMAP4, uids: Sequence[int]
    ) -> tuple[list[_Fetched], list[tuple[int, int]]]:
        """Bodies of ``uids``; those over ``max_message_bytes`` only as (uid, size)."""
        wanted = set(uids)
        meta = self._fetch_items(conn, uids, "(UID RFC822.SIZE INTERNALDATE)")
        sizes: dict[int, int] = {}
        dates: dict[int, datetime] = {}
        for head, _ in meta:
            uid, size = _number(_UID, head), _number(_SIZE, head)
            if uid in wanted and size is not None:
                sizes[uid] = size
                dates[uid] = _internaldate(head)
        small = [uid for uid in uids if uid in sizes and sizes[uid] <= self.max_message_bytes]
        oversized = [
            (uid, sizes[uid]) for uid in uids if sizes.get(uid, 0) > self.max_message_bytes
        ]
        fetched: dict[int, _Fetched] = {}
        if small:
            for head, body in self._fetch_items(conn, small, "(UID BODY.PEEK[])"):
                uid = _number(_UID, head)
                if uid in wanted and body is not None:
                    fetched[uid] = _Fetched(uid, body, dates.get(uid) or datetime.now(UTC))
        # A UID the server listed but no longer returns was expunged meanwhile: nothing to
        # hand over, and the cursor may pass it.
        return [fetched[uid] for uid in uids if uid in fetched], oversized

    def _fetch_items(
        self, conn: imaplib.IMAP4, uids: Sequence[int], items: str
    ) -> list[tuple[bytes, bytes | None]]:
        """``UID FETCH`` as (response text, literal) per message, in whatever order the
        server sent them; text after a literal (``UID`` may come last) is appended."""
        typ, data = conn.uid("FETCH", ",".join(map(str, uids)), items)
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

    def _logout(self, conn: imaplib.IMAP4) -> None:
        try:
            conn.logout()
        except (imaplib.IMAP4.error, OSError):
            # Everything was handed over and the cursor saved; a BYE that got lost is moot.
            _close(conn)

    def _redact(self, text: str) -> str:
        password = self.mailbox.password
        return text.replace(password, "***") if password else text


class _MemoryState:
    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        self._values[key] = value


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


def _describe(raw: bytes) -> dict[str, JsonValue]:
    # The message itself goes with the set-aside item (``original``), sealed in the dead letter.
    return {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
