"""IMAP polling: new mail in the hub's mailbox, handed to the sink in UID order behind a durable
cursor (UIDVALIDITY + last UID in the connector's :class:`StateStore`).

Each poll opens an :class:`ImapSession` (connect, log in, ``EXAMINE`` the mailbox read-only:
the poller never changes flags, so a read-only account is enough), lists the UIDs past the
cursor and fetches them in batches. A batch goes to the sink as one :class:`WebhookOutcome`;
the cursor moves only after the sink returned, so an outage anywhere re-reads (the hub dedupes
by Message-ID) and never skips.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence

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
from hub.connectors.email.imap_session import Fetched, ImapMailbox, ImapSession, Tls
from hub.connectors.email.parse import parse_message
from hub.connectors.settings import EmailSettings
from hub.events import InboundInteraction

__all__ = ["ImapMailbox", "ImapPoller"]

logger = logging.getLogger(__name__)

#: Back-off after failures grows to this (or the poll interval, if that is longer).
MAX_BACKOFF = 300.0


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
        self.tls = Tls(verify=settings.imap_verify, ca_file=settings.imap_ca_file)
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
                    self.mailbox.redact(str(exc)),
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
        session = await ImapSession.open(self.mailbox, timeout=self.timeout, tls=self.tls)
        try:
            uidvalidity = await session.select()
            cursor = self._cursor(uidvalidity)
            uids = await session.search(cursor)
            handed = 0
            for start in range(0, len(uids), self.batch):
                chunk = uids[start : start + self.batch]
                fetched, oversized = await session.fetch(chunk, self.max_message_bytes)
                outcome = self._outcome(fetched, oversized, uidvalidity)
                if outcome.interactions or outcome.reports or outcome.set_aside:
                    await sink(outcome)
                self.state.set(f"{self.mailbox.state_key}:uid", str(chunk[-1]))
                handed += len(chunk)
            await session.logout()
            return handed
        except BaseException:
            # Closing the socket (not LOGOUT) also unblocks a worker thread still reading
            # when the poll was cancelled.
            session.drop()
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
        self, fetched: Sequence[Fetched], oversized: Sequence[tuple[int, int]], uidvalidity: int
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


class _MemoryState:
    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        self._values[key] = value


def _describe(raw: bytes) -> dict[str, JsonValue]:
    # The message itself goes with the set-aside item (``original``), sealed in the dead letter.
    return {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
