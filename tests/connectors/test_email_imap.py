"""The email connector's IMAP poller against a real Dovecot on loopback: mail appended to the
mailbox reaches the sink exactly once, behind a cursor that survives restarts, outages, sink
failures and a recreated mailbox."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from unittest.mock import ANY
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from hub.connectors.base import PermanentError, RetryableError, WebhookOutcome
from hub.connectors.email import imap as imap_module
from hub.connectors.email.imap import ImapMailbox, ImapPoller
from hub.connectors.settings import EmailSettings
from tests.peers.dovecot import Dovecot


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    # One server per test: several tests stop it, and each starts from empty mailboxes.
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.close()


class DictState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def set(self, key: str, value: str) -> None:
        self.values[key] = value


class Sink:
    """Records what it is handed; ``fail`` makes the next calls raise."""

    def __init__(self) -> None:
        self.outcomes: list[WebhookOutcome] = []
        self.fail = 0
        self.after: Any = None

    async def __call__(self, outcome: WebhookOutcome) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("event store unavailable")
        self.outcomes.append(outcome)
        if self.after is not None:
            self.after()

    @property
    def ids(self) -> list[str]:
        return [i.provider_message_id for o in self.outcomes for i in o.interactions]


def message(n: int, *, text: str | None = None) -> bytes:
    return (
        "From: Ada Lovelace <ada@example.com>\r\n"
        "To: Support <support@example.com>\r\n"
        f"Subject: Question {n}\r\n"
        f"Date: {format_datetime(datetime(2025, 11, 3, 9, n % 60, tzinfo=UTC))}\r\n"
        f"Message-ID: <msg-{n}@mail.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        f"{text or f'Hello, this is message {n}.'}\r\n"
    ).encode()


def mid(n: int) -> str:
    return f"<msg-{n}@mail.example.com>"


def settings(server: Dovecot, mailbox: str = "INBOX", **extra: Any) -> EmailSettings:
    return EmailSettings(
        from_address="support@example.com",
        imap_url=SecretStr(f"{server.url}/{quote(mailbox)}"),
        imap_poll_seconds=0.05,
        **extra,
    )


def poller(server: Dovecot, state: DictState | None, mailbox: str = "INBOX") -> ImapPoller:
    return ImapPoller(settings(server, mailbox), state)


KEY = "imap:hub@127.0.0.1/INBOX"


# -- handing over -------------------------------------------------------------------------


async def test_new_mail_is_handed_over_once_and_the_cursor_persists(dovecot: Dovecot) -> None:
    for n in (1, 2, 3):
        dovecot.append(message(n))
    state, sink = DictState(), Sink()

    assert await poller(dovecot, state).poll_once(sink) == 3
    assert len(sink.outcomes) == 1  # one batch, one sink call
    assert sink.ids == [mid(1), mid(2), mid(3)]
    (first, *_) = sink.outcomes[0].interactions
    assert first.channel == "email"
    assert first.address == "email:ada@example.com"
    assert "message 1" in first.text
    assert state.values[f"{KEY}:uid"] == "3"
    assert state.values[f"{KEY}:uidvalidity"] == str(dovecot.uidvalidity())

    # The same poller again, and a new one on the same state (a restart): nothing new.
    again = poller(dovecot, state)
    assert await again.poll_once(sink) == 0
    assert await poller(dovecot, state).poll_once(sink) == 0
    assert sink.ids == [mid(1), mid(2), mid(3)]


async def test_mail_is_read_without_marking_it_seen(dovecot: Dovecot) -> None:
    dovecot.append(message(1))
    await poller(dovecot, DictState()).poll_once(Sink())
    with dovecot.client() as conn:
        conn.select("INBOX", readonly=True)
        typ, data = conn.fetch("1", "(FLAGS)")
        conn.logout()
    assert typ == "OK"
    assert b"\\Seen" not in data[0]


async def test_mail_appended_later_is_picked_up_by_the_next_poll(dovecot: Dovecot) -> None:
    dovecot.append(message(1))
    state, sink = DictState(), Sink()
    p = poller(dovecot, state)
    assert await p.poll_once(sink) == 1
    # Nothing new: "UID SEARCH UID 2:*" still matches message 1; it must not come again.
    assert await p.poll_once(sink) == 0
    dovecot.append(message(2))
    dovecot.append(message(3))
    assert await p.poll_once(sink) == 2
    assert sink.ids == [mid(1), mid(2), mid(3)]
    assert state.values[f"{KEY}:uid"] == "3"


async def test_batches_are_one_sink_call_each_in_uid_order(dovecot: Dovecot) -> None:
    for n in range(1, 6):
        dovecot.append(message(n))
    state, sink = DictState(), Sink()
    p = poller(dovecot, state)
    p.batch = 2
    assert await p.poll_once(sink) == 5
    assert [[i.provider_message_id for i in o.interactions] for o in sink.outcomes] == [
        [mid(1), mid(2)],
        [mid(3), mid(4)],
        [mid(5)],
    ]


async def test_without_a_state_store_the_cursor_lives_in_memory(dovecot: Dovecot) -> None:
    dovecot.append(message(1))
    p, sink = poller(dovecot, None), Sink()
    assert await p.poll_once(sink) == 1
    assert await p.poll_once(sink) == 0


# -- failures never lose mail nor re-import it --------------------------------------------


async def test_a_failing_sink_leaves_the_cursor_and_the_mail_comes_again(
    dovecot: Dovecot,
) -> None:
    dovecot.append(message(1))
    dovecot.append(message(2))
    state, sink = DictState(), Sink()
    p = poller(dovecot, state)
    sink.fail = 1
    with pytest.raises(RuntimeError, match="event store unavailable"):
        await p.poll_once(sink)
    assert sink.outcomes == []
    assert state.values[f"{KEY}:uid"] == "0"

    assert await p.poll_once(sink) == 2
    assert sink.ids == [mid(1), mid(2)]
    assert state.values[f"{KEY}:uid"] == "2"


async def test_a_stopped_server_is_retryable_and_loses_nothing(dovecot: Dovecot) -> None:
    state, sink = DictState(), Sink()
    dovecot.append(message(1))
    assert await poller(dovecot, state).poll_once(sink) == 1
    dovecot.append(message(2))
    dovecot.stop()

    with pytest.raises(RetryableError) as failure:
        await poller(dovecot, state).poll_once(sink)
    assert "unreachable" in failure.value.reason
    assert dovecot.password not in failure.value.reason
    assert state.values[f"{KEY}:uid"] == "1"

    dovecot.start()
    dovecot.append(message(3))
    assert await poller(dovecot, state).poll_once(sink) == 2
    assert sink.ids == [mid(1), mid(2), mid(3)]


async def test_a_connection_lost_mid_fetch_resumes_after_the_last_handed_batch(
    dovecot: Dovecot,
) -> None:
    for n in range(1, 6):
        dovecot.append(message(n))
    state, sink = DictState(), Sink()
    p = poller(dovecot, state)
    p.batch = 2
    # The server goes away while the poller holds its connection, between two batches.
    sink.after = dovecot.stop
    with pytest.raises(RetryableError) as failure:
        await p.poll_once(sink)
    assert "lost" in failure.value.reason
    assert dovecot.password not in str(failure.value)
    assert sink.ids == [mid(1), mid(2)]
    assert state.values[f"{KEY}:uid"] == "2"

    sink.after = None
    dovecot.start()
    assert await poller(dovecot, state).poll_once(sink) == 3
    assert sink.ids == [mid(n) for n in range(1, 6)]


async def test_a_recreated_mailbox_is_read_from_the_start(dovecot: Dovecot) -> None:
    box = "Support Queue"  # a name that needs quoting, and INBOX cannot be deleted
    dovecot.append(message(1), box)
    dovecot.append(message(2), box)
    state, sink = DictState(), Sink()
    key = f"imap:hub@127.0.0.1/{box}"
    assert await poller(dovecot, state, box).poll_once(sink) == 2
    old_validity = state.values[f"{key}:uidvalidity"]

    dovecot.recreate(box)
    # New mail with UIDs 1 and 2 again: at or below the old cursor, so only a cursor reset
    # brings it in.
    dovecot.append(message(3), box)
    dovecot.append(message(4), box)
    assert await poller(dovecot, state, box).poll_once(sink) == 2
    assert sink.ids == [mid(1), mid(2), mid(3), mid(4)]
    assert state.values[f"{key}:uidvalidity"] != old_validity
    assert state.values[f"{key}:uidvalidity"] == str(dovecot.uidvalidity(box))
    assert state.values[f"{key}:uid"] == "2"


async def test_a_message_that_does_not_parse_is_set_aside_and_the_rest_flows(
    dovecot: Dovecot,
) -> None:
    dovecot.append(message(1))
    dovecot.append(b"Subject: no sender at all\r\nMessage-ID: <bad-1@example.com>\r\n\r\nhi\r\n")
    dovecot.append(message(3))
    state, sink = DictState(), Sink()
    assert await poller(dovecot, state).poll_once(sink) == 3
    assert sink.ids == [mid(1), mid(3)]
    (aside,) = sink.outcomes[0].set_aside
    assert aside.reason == "no From address"
    assert aside.original is not None  # the whole message, for the dead letter
    assert aside.original.startswith(b"Subject: no sender at all")
    assert aside.original.rstrip().endswith(b"hi")
    assert isinstance(aside.payload, dict)
    assert aside.payload["imap"] == {
        "mailbox": f"hub@127.0.0.1:{dovecot.port}/INBOX",
        "uidvalidity": dovecot.uidvalidity(),
        "uid": 2,
    }
    assert state.values[f"{KEY}:uid"] == "3"


async def test_a_parser_crash_or_an_oversized_message_is_set_aside(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = imap_module.parse_message

    def parse(raw: bytes, *, received_at: datetime) -> WebhookOutcome:
        if b"CRASH" in raw:
            raise ValueError("parser bug")
        return real(raw, received_at=received_at)

    monkeypatch.setattr(imap_module, "parse_message", parse)
    dovecot.append(message(1, text="CRASH"))
    dovecot.append(message(2, text="x" * 5000))
    dovecot.append(message(3))
    sink = Sink()
    p = ImapPoller(settings(dovecot, max_message_bytes=4096), DictState())
    assert await p.poll_once(sink) == 3
    assert sink.ids == [mid(3)]
    crashed, oversized = sink.outcomes[0].set_aside
    assert crashed.reason == "parse failed: ValueError: parser bug"
    assert isinstance(crashed.payload, dict)
    assert crashed.payload["imap"] == {"mailbox": ANY, "uidvalidity": ANY, "uid": 1}
    assert crashed.original is not None
    assert b"CRASH" in crashed.original
    assert "exceeds max_message_bytes" in oversized.reason
    assert oversized.original is None  # not fetched: it stays in the mailbox
    assert isinstance(oversized.payload, dict)
    assert oversized.payload["size"] > 4096
    assert oversized.payload["imap"] == {"mailbox": ANY, "uidvalidity": ANY, "uid": 2}


# -- imaps -------------------------------------------------------------------------------


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    server = Dovecot(tls=True)
    server.start()
    try:
        yield server
    finally:
        server.close()


async def test_imaps_with_the_servers_certificate_trusted(dovecot_tls: Dovecot) -> None:
    dovecot_tls.append(message(1))
    p = ImapPoller(settings(dovecot_tls, imap_ca_file=str(dovecot_tls.ca_file)), DictState())
    sink = Sink()
    assert await p.poll_once(sink) == 1
    assert sink.ids == [mid(1)]


async def test_imaps_refuses_an_untrusted_certificate(dovecot_tls: Dovecot) -> None:
    dovecot_tls.append(message(1))
    sink = Sink()
    with pytest.raises(PermanentError, match="certificate not trusted") as failure:
        await poller(dovecot_tls, DictState()).poll_once(sink)
    assert dovecot_tls.password not in str(failure.value)
    assert sink.outcomes == []


# -- credentials --------------------------------------------------------------------------


async def test_a_wrong_password_is_a_clear_error_without_the_password(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    dovecot.append(message(1))
    wrong = "Wr0ng-s3cret-pw"
    bad = EmailSettings(
        from_address="support@example.com",
        imap_url=SecretStr(f"imap://hub:{wrong}@127.0.0.1:{dovecot.port}/INBOX"),
        imap_poll_seconds=0.05,
    )
    state, sink = DictState(), Sink()
    with pytest.raises(PermanentError) as failure:
        await ImapPoller(bad, state).poll_once(sink)
    assert "login to hub@127.0.0.1" in failure.value.reason
    assert "AUTHENTICATIONFAILED" in failure.value.reason
    assert failure.value.provider_code == "AUTHENTICATIONFAILED"
    assert wrong not in str(failure.value)

    # run() outlives it: logs (no password), backs off, tries again.
    caplog.set_level(logging.DEBUG, logger="hub.connectors.email.imap")
    task = asyncio.create_task(ImapPoller(bad, state).run(sink))

    def refusals() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "AUTHENTICATIONFAILED" in r.getMessage()]

    try:
        await _until(lambda: len(refusals()) >= 2)  # it tried again
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert refusals()[0].levelno == logging.ERROR
    assert all(wrong not in r.getMessage() for r in caplog.records)
    assert sink.outcomes == []
    assert state.values == {}


async def test_run_polls_until_cancelled_and_survives_an_outage(
    dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.connectors.email.imap")
    state, sink = DictState(), Sink()
    task = asyncio.create_task(poller(dovecot, state).run(sink))
    try:
        dovecot.append(message(1))
        await _until(lambda: sink.ids == [mid(1)])
        await asyncio.to_thread(dovecot.stop)
        await _until(lambda: any("unreachable" in r.getMessage() for r in caplog.records))
        await asyncio.to_thread(dovecot.start)
        dovecot.append(message(2))
        await _until(lambda: sink.ids == [mid(1), mid(2)])
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert all(dovecot.password not in r.getMessage() for r in caplog.records)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings
    assert "hub@127.0.0.1" in warnings[0].getMessage()


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


# -- the URL ------------------------------------------------------------------------------


def test_the_url_is_percent_decoded_with_inbox_by_default() -> None:
    box = ImapMailbox.from_url("imaps://support%40example.com:p%40ss%2Fw%3Ard@imap.example.com")
    assert (box.tls, box.host, box.port) == (True, "imap.example.com", 993)
    assert (box.user, box.password, box.mailbox) == ("support@example.com", "p@ss/w:rd", "INBOX")
    assert box.where == "support@example.com@imap.example.com:993/INBOX"
    plain = ImapMailbox.from_url("imap://hub:pw@127.0.0.1:1143/Support%20Queue")
    assert (plain.tls, plain.port, plain.mailbox) == (False, 1143, "Support Queue")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("imap://hub:s3cret@mail.example.com/INBOX", "unencrypted"),
        ("pop3://hub:s3cret@127.0.0.1/INBOX", "imaps://"),
        ("imaps://hub@127.0.0.1/INBOX", "needs user, password and host"),
        ("imaps://hub:s3cret@127.0.0.1:99999/INBOX", "not a valid URL"),
    ],
)
def test_a_bad_url_is_refused_without_repeating_it(url: str, why: str) -> None:
    with pytest.raises(PermanentError, match=why) as failure:
        ImapMailbox.from_url(url)
    assert "s3cret" not in str(failure.value)
