"""The email connector: the shared contract over real SMTP on loopback (outbound to an aiosmtpd
sink, inbound through the connector's own listener), TLS and AUTH, the listener's answers, and
the MIME parser on mail as real clients and MTAs write it."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
import weakref
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from hub.connectors.base import (
    ConnectorContext,
    OutboundMessage,
    PermanentError,
    RetryableError,
    WebhookOutcome,
)
from hub.connectors.email import EmailConnector, EmailSettings, parse_message
from hub.connectors.email import connector as email_connector
from hub.connectors.email.parse import MAX_TEXT
from hub.events.common import check_text
from tests.connectors.contract import ConnectorContract
from tests.peers import email_samples as samples
from tests.peers.email_peers import Certificate, SmtpSink, free_port, self_signed

RECEIVED_AT = datetime(2024, 5, 14, 12, 0, tzinfo=UTC)
DOMAIN = "support.example.com"

# What each listening connector's sink received, per connector.
_received: weakref.WeakKeyDictionary[EmailConnector, list[WebhookOutcome]] = (
    weakref.WeakKeyDictionary()
)


def outbound(**changes: Any) -> OutboundMessage:
    fields: dict[str, Any] = {
        "message_id": uuid.uuid4(),
        "channel": "email",
        "address": "email:customer@example.org",
        "text": "Your parcel is on its way. Grüße!",
        "subject": "Your order #1234",
    }
    fields.update(changes)
    return OutboundMessage(**fields)


def settings(**changes: Any) -> EmailSettings:
    fields: dict[str, Any] = {
        "from_address": "help@example.com",
        "from_name": "Example Support",
        "smtp_host": "127.0.0.1",
        "smtp_security": "none",
        "smtp_timeout": 5.0,
    }
    fields.update(changes)
    return EmailSettings(**fields)


class Listening:
    """A connector whose run() (the SMTP listener) is a background task of the test's loop."""

    def __init__(self, connector: EmailConnector, sink: Any = None) -> None:
        self.connector = connector
        self.outcomes: list[WebhookOutcome] = []
        self.sink = sink or self._record
        self.task: asyncio.Task[None] | None = None

    async def _record(self, outcome: WebhookOutcome) -> None:
        self.outcomes.append(outcome)

    async def __aenter__(self) -> tuple[str, int]:
        self.task = asyncio.create_task(self.connector.run(self.sink))
        for _ in range(500):
            if self.connector.listening_on is not None:
                return self.connector.listening_on
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise AssertionError("the SMTP listener did not start")

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def mail(
    text: str = "Hello", *, message_id: str | None = None, to: str = f"help@{DOMAIN}"
) -> bytes:
    message = EmailMessage()
    message["From"] = "Customer Name <Customer@Example.org>"
    message["To"] = to
    message["Subject"] = "Question"
    message["Date"] = "Tue, 14 May 2024 11:00:00 +0000"
    message["Message-ID"] = message_id or f"<{uuid.uuid4()}@example.org>"
    message.set_content(text)
    return message.as_bytes(policy=policy.SMTP)  # CRLF, as on the wire


def smtp_session(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=5)
    client.ehlo("client.example.org")
    return client


# -- the contract --------------------------------------------------------------------------


class TestEmailContract(ConnectorContract):
    name = "email"

    @pytest.fixture
    def peer(self) -> Iterator[SmtpSink]:
        sink = SmtpSink().start()
        try:
            yield sink
        finally:
            sink.stop()

    @pytest.fixture
    async def connector(self, peer: SmtpSink) -> AsyncIterator[EmailConnector]:
        connector = EmailConnector(
            settings(smtp_port=peer.port, listen="127.0.0.1:0", domains=[DOMAIN])
        )
        await connector.start()
        listening = Listening(connector)
        async with listening:
            _received[connector] = listening.outcomes
            yield connector
        await connector.stop()

    async def deliver_inbound(
        self, connector: Any, *, text: str, provider_message_id: str
    ) -> WebhookOutcome:
        host, port = connector.listening_on
        raw = mail(text, message_id=f"<{provider_message_id}@example.org>")
        before = len(_received[connector])
        await aiosmtplib.send(
            raw,
            sender="customer@example.org",
            recipients=[f"help@{DOMAIN}"],
            hostname=host,
            port=port,
            start_tls=False,
            timeout=5,
        )
        # The 250 came only after the sink returned, so the outcome is already there.
        (outcome,) = _received[connector][before:]
        return outcome

    def outbound(self) -> OutboundMessage:
        return outbound()

    async def unreachable_connector(self) -> EmailConnector:
        connector = EmailConnector(settings(smtp_port=free_port()))
        await connector.start()
        return connector


# -- outbound over real SMTP ---------------------------------------------------------------


def starttls_connector(sink: SmtpSink, certificate: Certificate, password: str) -> EmailConnector:
    """A connector sending through ``sink`` with STARTTLS (trusting ``certificate``) and AUTH."""
    return EmailConnector(
        settings(
            smtp_port=sink.port,
            smtp_security="starttls",
            smtp_username="hub",
            smtp_password=password,
            smtp_ca_file=str(certificate.cert_file),
        )
    )


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_starttls_and_auth(certificate: Certificate, mechanism: str) -> None:
    excluded = [m for m in ("PLAIN", "LOGIN") if m != mechanism]
    sink = SmtpSink(
        tls_context=certificate.server_context(),
        credentials=("hub", "s3cret"),
        auth_exclude_mechanism=excluded,
    ).start()
    try:
        connector = starttls_connector(sink, certificate, password="s3cret")
        message = outbound(
            in_reply_to="<CAFx9Zb3@mail.gmail.com>",
            references=("<root-1@example.com>",),
            unsubscribe_url="https://hub.example.com/unsubscribe/abc",
        )
        result = await connector.send(message)
    finally:
        sink.stop()
    assert result.status == "sent"
    assert result.provider_message_id == f"<{message.message_id}@example.com>"
    assert sink.logins == [f"{mechanism}:hub"]
    (received,) = sink.requests
    assert received.tls
    assert received.authenticated
    assert received.login == "hub"
    assert received.mail_from == "help@example.com"
    assert received.rcpt_tos == ["customer@example.org"]
    headers = received.message
    assert headers["Message-ID"] == f"<{message.message_id}@example.com>"
    assert headers["In-Reply-To"] == "<CAFx9Zb3@mail.gmail.com>"
    assert headers["References"] == "<root-1@example.com> <CAFx9Zb3@mail.gmail.com>"
    assert headers["List-Unsubscribe"] == "<https://hub.example.com/unsubscribe/abc>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["Subject"] == "Your order #1234"
    assert headers["From"].addresses[0].display_name == "Example Support"
    assert headers["From"].addresses[0].addr_spec == "help@example.com"
    assert headers["To"] == "customer@example.org"
    assert headers["Date"].datetime is not None
    assert "Auto-Submitted" not in headers
    body = headers.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content_charset() == "utf-8"
    assert body.get_content().strip() == "Your parcel is on its way. Grüße!"


async def test_wrong_password_is_permanent(certificate: Certificate) -> None:
    sink = SmtpSink(tls_context=certificate.server_context(), credentials=("hub", "s3cret"))
    sink.start()
    try:
        connector = starttls_connector(sink, certificate, password="wrong")
        with pytest.raises(PermanentError) as caught:
            await connector.send(outbound())
    finally:
        sink.stop()
    assert caught.value.provider_code is not None
    assert caught.value.provider_code.startswith("535")
    assert "wrong" not in caught.value.reason
    assert sink.requests == []


async def test_untrusted_certificate_is_not_used(certificate: Certificate) -> None:
    """Without the CA the server's self-signed certificate does not verify: nothing is sent."""
    sink = SmtpSink(tls_context=certificate.server_context()).start()
    try:
        connector = EmailConnector(settings(smtp_port=sink.port, smtp_security="starttls"))
        with pytest.raises(RetryableError):
            await connector.send(outbound())
    finally:
        sink.stop()
    assert sink.requests == []


async def test_implicit_tls(certificate: Certificate) -> None:
    sink = SmtpSink(tls_context=certificate.server_context(), implicit_tls=True).start()
    try:
        connector = EmailConnector(
            settings(
                smtp_port=sink.port,
                smtp_security="tls",
                smtp_ca_file=str(certificate.cert_file),
            )
        )
        await connector.send(outbound())
    finally:
        sink.stop()
    (received,) = sink.requests
    assert received.tls


async def test_plain_smtp_and_the_message_it_sends() -> None:
    sink = SmtpSink().start()
    try:
        connector = EmailConnector(settings(smtp_port=sink.port))
        message = outbound(subject=None, in_reply_to="CAFx9Zb3@mail.gmail.com")
        first = await connector.send(message)
        again = await connector.send(message)  # a resend after a crash
    finally:
        sink.stop()
    assert first == again
    one, two = sink.requests
    assert not one.tls
    assert not one.authenticated
    assert one.message["Message-ID"] == two.message["Message-ID"] == first.provider_message_id
    assert one.message["In-Reply-To"] == "<CAFx9Zb3@mail.gmail.com>"
    assert one.message["References"] == "<CAFx9Zb3@mail.gmail.com>"
    assert one.message["Subject"] == ""
    assert "List-Unsubscribe" not in one.message
    assert "List-Unsubscribe-Post" not in one.message


async def test_refusals_carry_the_smtp_code() -> None:
    sink = SmtpSink().start()
    try:
        connector = EmailConnector(settings(smtp_port=sink.port))
        sink.fail_next(400)
        with pytest.raises(PermanentError) as refused:
            await connector.send(outbound())
        sink.fail_next(503)
        with pytest.raises(RetryableError) as deferred:
            await connector.send(outbound())
    finally:
        sink.stop()
    assert refused.value.provider_code == "550 5.1.1"
    assert deferred.value.provider_code == "451 4.3.0"


async def test_a_non_email_address_is_refused_before_connecting() -> None:
    connector = EmailConnector(settings(smtp_port=free_port()))
    with pytest.raises(PermanentError):
        await connector.send(outbound(address="phone:+15551234567", channel="sms"))


@pytest.mark.parametrize(
    "address",
    [
        "email:father.time@xcar.wooster.local",  # an identity, not a destination
        "email:root@intranet",
        "email:x@[192.0.2.1]",
    ],
)
async def test_an_address_the_internet_cannot_deliver_is_refused_before_connecting(
    address: str,
) -> None:
    connector = EmailConnector(settings(smtp_port=free_port()))
    with pytest.raises(PermanentError, match="cannot send to"):
        await connector.send(outbound(address=address))


def test_send_rate() -> None:
    assert EmailConnector(settings()).send_rate == 5.0
    assert EmailConnector(settings(rate_per_second=0.5)).send_rate == 0.5
    assert EmailConnector.idempotent_sends is False


# -- the SMTP listener ---------------------------------------------------------------------


def listener(**changes: Any) -> EmailConnector:
    return EmailConnector(
        settings(
            **{"listen": "127.0.0.1:0", "domains": [DOMAIN], "max_message_bytes": 4096, **changes}
        )
    )


async def test_listener_records_then_accepts() -> None:
    connector = listener()
    listening = Listening(connector)
    async with listening as (_, port):

        def deliver() -> dict[str, tuple[int, bytes]]:
            with smtp_session(port) as client:
                return client.sendmail("customer@example.org", [f"help@{DOMAIN}"], mail("Hi"))

        refused = await asyncio.to_thread(deliver)
    assert refused == {}
    (outcome,) = listening.outcomes
    (item,) = outcome.interactions
    assert item.address == "email:customer@example.org"
    assert item.contact_name == "Customer Name"
    assert item.text == "Hi"


async def test_recipient_outside_the_domains_is_refused() -> None:
    connector = listener()
    listening = Listening(connector)
    async with listening as (_, port):

        def deliver() -> tuple[int, bytes]:
            with smtp_session(port) as client:
                client.mail("spammer@example.net")
                return client.rcpt("victim@elsewhere.example")

        code, reply = await asyncio.to_thread(deliver)
    assert (code, reply[:5]) == (550, b"5.7.1")
    assert listening.outcomes == []


async def test_no_domains_accepts_nothing() -> None:
    connector = listener(domains=[])
    assert connector.problems()
    listening = Listening(connector)
    async with listening as (_, port):

        def deliver() -> int:
            with smtp_session(port) as client:
                client.mail("someone@example.net")
                return client.rcpt(f"help@{DOMAIN}")[0]

        assert await asyncio.to_thread(deliver) == 550


async def test_oversized_message_gets_552() -> None:
    connector = listener()
    listening = Listening(connector)
    big = mail("x" * 70 + ("\n" + "y" * 70) * 100)
    assert len(big) > 4096
    async with listening as (_, port):

        def deliver() -> tuple[int, bytes]:
            with smtp_session(port) as client:
                client.mail("customer@example.org")  # no SIZE=: the limit is met in DATA
                client.rcpt(f"help@{DOMAIN}")
                return client.data(big)

        code, _ = await asyncio.to_thread(deliver)
    assert code == 552
    assert listening.outcomes == []


async def test_sink_failure_gives_451_and_the_retry_is_recorded() -> None:
    recorded: list[WebhookOutcome] = []
    failures = [RuntimeError("event store is down")]

    async def flaky(outcome: WebhookOutcome) -> None:
        if failures:
            raise failures.pop()
        recorded.append(outcome)

    raw = mail("Please call me", message_id="<retry-1@example.org>")
    connector = listener()
    async with Listening(connector, flaky) as (_, port):

        def deliver() -> tuple[int, bytes]:
            with smtp_session(port) as client:
                client.mail("customer@example.org")
                client.rcpt(f"help@{DOMAIN}")
                return client.data(raw)

        first = await asyncio.to_thread(deliver)
        assert recorded == []
        second = await asyncio.to_thread(deliver)
    assert first[0] == 451
    assert first[1].startswith(b"4.3.0")
    assert second[0] == 250
    (outcome,) = recorded
    assert outcome.interactions[0].provider_message_id == "<retry-1@example.org>"


async def test_acknowledged_only_after_the_sink_returned() -> None:
    release = asyncio.Event()
    recorded: list[WebhookOutcome] = []

    async def slow(outcome: WebhookOutcome) -> None:
        await release.wait()
        recorded.append(outcome)

    connector = listener()
    async with Listening(connector, slow) as (_, port):

        def deliver() -> int:
            with smtp_session(port) as client:
                client.mail("customer@example.org")
                client.rcpt(f"help@{DOMAIN}")
                return client.data(mail("wait"))[0]

        sending = asyncio.ensure_future(asyncio.to_thread(deliver))
        await asyncio.sleep(0.3)
        assert not sending.done()
        release.set()
        assert await sending == 250
    assert len(recorded) == 1


async def test_a_message_without_sender_is_accepted_and_set_aside() -> None:
    connector = listener()
    listening = Listening(connector)
    raw = b"Subject: no from\r\nMessage-ID: <nofrom@x>\r\n\r\nbody\r\n"
    async with listening as (_, port):

        def deliver() -> dict[str, tuple[int, bytes]]:
            with smtp_session(port) as client:
                return client.sendmail("", [f"help@{DOMAIN}"], raw)

        assert await asyncio.to_thread(deliver) == {}
    (outcome,) = listening.outcomes
    assert outcome.interactions == ()
    (aside,) = outcome.set_aside
    assert "From" in aside.reason
    assert aside.original == raw  # kept whole for the dead letter, not a head and a hash


async def test_listener_stops_on_cancellation() -> None:
    connector = listener()
    async with Listening(connector) as (_, port):
        pass
    with pytest.raises(OSError):
        await asyncio.to_thread(smtp_session, port)


# -- parsing -------------------------------------------------------------------------------


def parsed(raw: bytes, received_at: datetime = RECEIVED_AT) -> Any:
    outcome = parse_message(raw, received_at=received_at)
    assert outcome.set_aside == ()
    assert outcome.reports == ()
    (item,) = outcome.interactions
    return item


def test_gmail_reply_multipart_alternative() -> None:
    item = parsed(samples.GMAIL_REPLY)
    assert item.channel == "email"
    assert item.direction == "inbound"
    assert item.address == "email:joerg.mueller@gmail.com"
    assert item.contact_name == "Jörg Müller"
    assert item.subject == "Re: Your order #1234"
    assert item.text == "Danke, das Paket ist angekommen. Grüße!"
    assert "Your parcel is on its way." in item.metadata["full_text"]
    assert item.provider_message_id == "<CAFx9Zb3-qR+8aB@mail.gmail.com>"
    assert item.thread_ref == samples.ORIGINAL_ID
    assert item.references == ("<root-1@example.com>", samples.ORIGINAL_ID)
    assert item.occurred_at == datetime(2024, 5, 14, 10, 1, 9, tzinfo=UTC)
    assert item.metadata["to"] == ["email:support@example.com"]
    assert item.metadata["cc"] == ["email:anna@example.net"]
    assert "auto_reply" not in item.metadata
    assert item.attachments == ()


def test_html_only_becomes_text() -> None:
    item = parsed(samples.HTML_ONLY)
    assert (
        item.text == "Hello & welcome,\n\nI need help with\nmy invoice.\n\n- item one\n- item two"
    )
    assert "alert" not in item.text
    assert "color" not in item.text


def test_latin_1() -> None:
    item = parsed(samples.LATIN_1)
    assert item.text == "J'ai un problème avec ma commande. Merci d'avance, à bientôt."
    assert item.subject == "Problème"
    assert item.contact_name == "François"


def test_base64_utf8_body() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Message-ID"] = "<b64@example.org>"
    message.set_content("Ünïcödé ✓ text", cte="base64")
    assert b"Content-Transfer-Encoding: base64" in bytes(message)
    assert parsed(bytes(message)).text == "Ünïcödé ✓ text"


def test_attachments_are_metadata_only() -> None:
    item = parsed(samples.WITH_ATTACHMENT)
    assert item.text == "Please find the invoice attached."
    assert [(a.name, a.content_type, a.size) for a in item.attachments] == [
        ("invoice 42.pdf", "application/pdf", 78),
        ("photo.png", "image/png", 8),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (samples.OUTLOOK_REPLY, "Yes, please go ahead.\n\nJohn"),
        (samples.ORIGINAL_MESSAGE_REPLY, "Thanks, that works."),
    ],
)
def test_quoted_history_is_stripped(raw: bytes, expected: str) -> None:
    item = parsed(raw)
    assert item.text == expected
    assert item.metadata["full_text"] != expected


def test_interleaved_quote_lines_are_dropped() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Message-ID"] = "<q@example.org>"
    message.set_content("> Can you ship on Monday?\nYes.\n> And the invoice?\nAttached.\n")
    assert parsed(bytes(message)).text == "Yes.\nAttached."


def test_auto_reply_is_flagged() -> None:
    assert parsed(samples.OUT_OF_OFFICE).metadata["auto_reply"] is True
    for header, value in [("Precedence", "bulk"), ("X-Autorespond", "1")]:
        message = EmailMessage()
        message["From"] = "a@example.org"
        message[header] = value
        message.set_content("x")
        assert parsed(bytes(message)).metadata["auto_reply"] is True
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Auto-Submitted"] = "no"
    message.set_content("x")
    assert "auto_reply" not in parsed(bytes(message)).metadata


def test_content_language_is_kept() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message.set_content("Hallo")
    message["Content-Language"] = "de-DE, en"  # after set_content, which drops Content-*
    assert parsed(bytes(message)).metadata["language"] == "de-DE"
    assert "language" not in parsed(samples.OUT_OF_OFFICE).metadata


def test_postfix_bounce_is_a_delivery_report() -> None:
    outcome = parse_message(samples.POSTFIX_BOUNCE, received_at=RECEIVED_AT)
    assert outcome.interactions == ()
    assert outcome.set_aside == ()
    (report,) = outcome.reports
    assert report.channel == "email"
    assert report.provider_message_id == samples.ORIGINAL_ID
    assert report.message_id == uuid.UUID("1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    assert report.status == "failed"
    assert report.error_code == "5.1.1"
    assert report.error_message == (
        "smtp; 550 5.1.1 <nobody@example.org>: Recipient address rejected: "
        "User unknown in virtual mailbox table"
    )
    assert report.revoke_consent is True


def test_headers_only_bounce_and_mailbox_full() -> None:
    (report,) = parse_message(samples.headers_only_bounce(), received_at=RECEIVED_AT).reports
    assert report.provider_message_id == "<headers-only-1@example.com>"
    assert report.message_id is None
    assert (report.status, report.error_code) == ("failed", "5.2.2")
    assert report.revoke_consent is False  # a full mailbox is the message's problem


def test_delayed_delivery_reports_nothing() -> None:
    outcome = parse_message(
        samples.headers_only_bounce("delayed", "4.4.7"), received_at=RECEIVED_AT
    )
    assert outcome == WebhookOutcome()


def test_missing_message_id_is_derived_from_the_bytes() -> None:
    raw = b"From: a@example.org\r\nSubject: x\r\n\r\nhello\r\n"
    first, second = parsed(raw), parsed(raw)
    assert first.provider_message_id == second.provider_message_id
    assert first.provider_message_id.startswith("<")
    assert first.provider_message_id.endswith(">")
    assert parsed(raw + b"more\r\n").provider_message_id != first.provider_message_id


@pytest.mark.parametrize(
    "date",
    [None, "not a date", "Mon, 1 Jan 1960 00:00:00 +0000", "Thu, 1 Jan 2099 00:00:00 +0000"],
)
def test_implausible_dates_fall_back_to_receipt(date: str | None) -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    if date is not None:
        message["Date"] = date
    message.set_content("x")
    assert parsed(bytes(message)).occurred_at == RECEIVED_AT


def test_nul_removed_and_long_text_truncated() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Subject"] = "nul"
    message.set_content("a\x00b " + "z" * (MAX_TEXT + 100), cte="base64")
    item = parsed(bytes(message))
    assert item.text.startswith("ab ")
    assert len(item.text) == MAX_TEXT
    assert item.metadata["truncated"] is True


def test_recent_references_kept() -> None:
    ids = [f"<r{n}@example.org>" for n in range(150)]
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["References"] = " ".join(ids)
    message.set_content("x")
    refs = parsed(bytes(message)).references
    assert len(refs) == 100
    assert refs[0] == ids[0]
    assert refs[-1] == ids[-1]


def test_received_in_the_near_future_is_kept() -> None:
    message = EmailMessage()
    message["From"] = "a@example.org"
    message["Date"] = "Tue, 14 May 2024 12:30:00 +0000"  # the sender's clock is ahead a bit
    message.set_content("x")
    assert parsed(bytes(message)).occurred_at == RECEIVED_AT + timedelta(minutes=30)


async def test_run_polls_imap_beside_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[Any, Any, Any]] = []

    class FakePoller:
        def __init__(self, settings: EmailSettings, state: Any) -> None:
            self.args = (settings, state)

        async def run(self, sink: Any) -> None:
            started.append((*self.args, sink))
            await asyncio.Event().wait()

    monkeypatch.setattr(email_connector, "ImapPoller", FakePoller)
    state = object()
    connector = EmailConnector(
        settings(listen="127.0.0.1:0", domains=[DOMAIN], imap_url="imap://u:p@127.0.0.1:1/INBOX"),
        ConnectorContext(state=state),  # type: ignore[arg-type]
    )
    listening = Listening(connector)
    async with listening:
        await asyncio.sleep(0.05)
        ((seen_settings, seen_state, seen_sink),) = started
    assert seen_settings is connector.settings
    assert seen_state is state
    assert seen_sink == listening.sink


# -- what used to be lost or half-kept (issue 13) -------------------------------------------

LOCAL_SENDER = "father.time@xcar.wooster.local"


def _from_a_local_domain() -> bytes:
    message = EmailMessage()
    message["From"] = f"Father Time <{LOCAL_SENDER}>"
    message["To"] = f"help@{DOMAIN}"
    message["Subject"] = "The clock in the hall"
    message["Message-ID"] = "<clock-1@xcar.wooster.local>"
    message.set_content("It has stopped again.")
    return message.as_bytes(policy=policy.SMTP)


async def test_a_sender_on_a_local_domain_is_an_interaction_through_the_listener() -> None:
    listening = Listening(listener())
    async with listening as (_, port):

        def deliver() -> dict[str, tuple[int, bytes]]:
            with smtp_session(port) as client:
                return client.sendmail(LOCAL_SENDER, [f"help@{DOMAIN}"], _from_a_local_domain())

        assert await asyncio.to_thread(deliver) == {}
    (outcome,) = listening.outcomes
    assert outcome.set_aside == ()
    (item,) = outcome.interactions
    assert item.address == f"email:{LOCAL_SENDER}"
    assert item.text == "It has stopped again."


def _typed(content_type: bytes, body: bytes = b"Caf\xc3\xa9 is closed.") -> bytes:
    return (
        b"From: Ann <ann@example.org>\r\nTo: help@support.example.com\r\nSubject: t\r\n"
        b"Message-ID: <typed@example.org>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        b"Content-Type: "
        + content_type
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body
        + b"\r\n--XX\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF\r\n--XX--\r\n"
    )


@pytest.mark.parametrize(
    "content_type",
    [
        b"text",  # RFC 2045: a type without a subtype is text/plain (the stdlib's reading)
        b"text/",
        b"text/;charset=utf-8",
        b"text/ ; charset=utf-8",
        b"TEXT/",
        b"/plain",
        b"text/markdown; charset=utf-8",  # RFC 2046: an unknown text subtype reads as plain
    ],
)
def test_a_text_part_without_a_usable_subtype_is_the_body(content_type: bytes) -> None:
    item = parsed(_typed(content_type, b"The shop is closed."))
    assert item.text == "The shop is closed."
    assert [a.name for a in item.attachments] == ["a.pdf"]


async def test_a_text_part_without_a_subtype_is_the_body_through_the_listener() -> None:
    listening = Listening(listener())
    async with listening as (_, port):

        def deliver() -> dict[str, tuple[int, bytes]]:
            with smtp_session(port) as client:
                return client.sendmail("ann@example.org", [f"help@{DOMAIN}"], _typed(b"text/"))

        assert await asyncio.to_thread(deliver) == {}
    (outcome,) = listening.outcomes
    (item,) = outcome.interactions
    assert item.text == "Café is closed."


def test_8bit_text_without_a_charset_is_not_replacement_characters() -> None:
    latin = _typed(b"text/plain", "Caf\u00e9 ferm\u00e9".encode("latin-1"))
    assert parsed(_typed(b"text/plain")).text == "Café is closed."  # undeclared UTF-8
    assert parsed(latin).text == "Café fermé"  # undeclared, and not UTF-8


RAW_8BIT = (
    b'From: "Ren\xe9 <rene@example.org>\r\n'  # an unbalanced quote: the registry chokes
    b'To: "\r\n'
    b"Subject: caf\xe9 \xff\r\n"
    b"Message-ID: <caf\xe9@\r\n"  # the registry chokes (IndexError): its raw text is used
    b"In-Reply-To: <r\xe9@example.org>\r\n"
    b"References: <a\xe9@example.org>\r\n"
    b"Content-Language: d\xe9\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
    b"--XX\r\nContent-Type: application/pdf\r\n"
    b'Content-Disposition: attachment; filename="r\xe9.pdf"\r\n\r\n%PDF\r\n--XX--\r\n'
)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in (*_texts(k), *_texts(v))]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v)]
    return []


def test_raw_8bit_header_bytes_are_recorded_with_replacement_characters() -> None:
    # The stdlib decodes undecodable header bytes with surrogateescape: each would be a lone
    # surrogate, which the contract refuses (and no store can encrypt).
    item = parsed(RAW_8BIT)
    assert item.address == "email:rene@example.org"
    assert item.contact_name == "Ren\ufffd"
    assert item.subject == "caf\ufffd \ufffd"
    assert item.provider_message_id == "<caf\ufffd@"
    assert item.thread_ref == "<r\ufffd@example.org>"
    assert item.references == ("<a\ufffd@example.org>",)
    assert item.metadata["language"] == "d\ufffd"
    assert [a.name for a in item.attachments] == ["r\ufffd.pdf"]
    for text in _texts(item.model_dump(mode="json")):
        check_text(text)


_HEADERS = ("From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Date")
_HEADER_PIECES = st.lists(
    st.sampled_from(
        [
            *(b"<", b">", b"@", b'"', b"(", b")", b",", b";", b":", b"\\", b"[", b"]", b" ", b"a"),
            *(b"=?utf-8?q?", b"=?x-bogus?b?", b"?=", b"\xe9", b"\xc3", b"\xff", b"\x00"),
        ]
    ),
    max_size=12,
).map(b"".join)


@examples(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_HEADERS), _HEADER_PIECES, min_size=1), st.binary())
def test_whatever_the_header_bytes_the_parser_never_raises_nor_emits_bad_text(
    headers: dict[str, bytes], body: bytes
) -> None:
    raw = b"".join(f"{k}: ".encode() + v + b"\r\n" for k, v in headers.items())
    if "From" not in headers:
        raw += b"From: a@example.org\r\n"
    outcome = parse_message(raw + b"\r\n" + body, received_at=RECEIVED_AT)
    for aside in outcome.set_aside:
        assert "contract" not in aside.reason, aside.reason  # never for its text
        assert aside.original == raw + b"\r\n" + body
    for item in (*outcome.interactions, *outcome.reports):
        for text in _texts(item.model_dump(mode="json")):
            check_text(text)
