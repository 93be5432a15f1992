"""The gateway (hub.runtime.gateway) on a real store, with a fake connector and a fake submit:
what a provider delivered is made durable before it is answered; an item the store refuses,
and what a connector set aside, become dead letters keeping the original whole; a retry hands
each kind of letter to the path it came in by; retention purges old letters. The same through
HTTP and the CLI: tests/api/test_dead_letters.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy.exc

from hub.config import Settings
from hub.connectors.base import DeliveryReport, SetAside, WebhookOutcome, WebhookRequest
from hub.domain.errors import NotFound, StoreUnavailable
from hub.domain.inbound import Recorded
from hub.domain.model import Message
from hub.events import InboundInteraction
from hub.runtime import gateway as gateway_module
from hub.runtime.gateway import Gateway
from hub.store import Store
from hub.store.dead_letters import DeadLetter, NewDeadLetter, Original
from tests.support.fakes import FakeConnector, FakeSettings, FakeSubmit, eventually
from tests.support.store import inbound

ADDRESS = "phone:+15550142001"
CONFIGURED = [(FakeConnector, FakeSettings())]


class Gateways:
    """Gateways on the test's store, as ``Runtime`` builds its own; stopped at the end."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.built: list[Gateway] = []
        Gateway.create_tables(store.state_engine)

    def __call__(
        self,
        submit: FakeSubmit | None = None,
        record_now: Callable[[Sequence[InboundInteraction]], list[Recorded]] | None = None,
        **settings: Any,
    ) -> Gateway:
        gateway = Gateway(
            self.settings.model_copy(update=settings),
            self.store.app,
            self.store.state_engine,
            submit or FakeSubmit(self.store.app.record_interactions),
            record_now or self.store.app.record_interactions,
            self.store.dead_letters,
        )
        self.built.append(gateway)
        return gateway

    def letters(self) -> list[DeadLetter]:
        """Every letter kept, with its original."""
        return [self.store.dead_letters.get(x.id) for x in self.store.dead_letters.list()]

    def letter_ids(self) -> list[UUID]:
        return [x.id for x in self.store.dead_letters.list()]

    def recorded(self, *items: InboundInteraction) -> list[bool]:
        return [r is not None for r in self.store.app.recorded_before(items)]


@pytest.fixture
async def gateways(store: Store, settings: Settings) -> AsyncIterator[Gateways]:
    made = Gateways(store, settings)
    yield made
    for gateway in made.built:
        await gateway.stop()


def _item(pmid: str, **extra: Any) -> InboundInteraction:
    return inbound(pmid, address=ADDRESS, occurred_at=datetime.now(UTC), **extra)


def _mail(message_id: str, text: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Father Time <father.time@example.org>"
    message["To"] = "help@support.example.com"
    message["Subject"] = "The clock in the hall"
    message["Message-ID"] = message_id
    message.set_content(text)
    return message.as_bytes(policy=policy.SMTP)


def _kept(request: WebhookRequest) -> Original:
    return Original.webhook(
        method=request.method,
        hook=request.hook,
        url=request.url,
        headers=request.headers,
        query=request.query,
        body=request.body,
    )


# -- receiving ---------------------------------------------------------------------------------


async def test_interactions_go_to_submit_and_are_durable_when_it_returns(
    gateways: Gateways,
) -> None:
    submit = FakeSubmit(gateways.store.app.record_interactions)
    gateway = gateways(submit)
    a, b = _item("SM-a"), _item("SM-b")

    await gateway.receive("fake", WebhookOutcome(interactions=(a, b)))

    assert submit.batches == [[a, b]]  # one hand-off, in order
    assert gateways.recorded(a, b) == [True, True]
    assert gateways.letters() == []


async def test_interactions_handed_on_without_results_keep_no_letters(gateways: Gateways) -> None:
    submit = FakeSubmit(record=None)  # the distributed ingest: the broker has them
    gateway = gateways(submit)

    await gateway.receive("fake", WebhookOutcome(interactions=(_item("SM-a"),)))

    assert len(submit.batches) == 1
    assert gateways.letters() == []


async def test_an_item_the_store_refuses_becomes_a_letter_keeping_the_interaction(
    gateways: Gateways,
) -> None:
    submit = FakeSubmit(gateways.store.app.record_interactions)
    submit.refuse["SM-b"] = RuntimeError("the store refused this one")
    gateway = gateways(submit)
    a, b, c = _item("SM-a"), _item("SM-b", text="kept whole"), _item("SM-c")

    await gateway.receive("fake", WebhookOutcome(interactions=(a, b, c)))

    assert gateways.recorded(a, b, c) == [True, False, True]
    (letter,) = gateways.letters()
    assert (letter.kind, letter.source) == ("interaction", "fake")
    assert letter.reason == "not recorded: RuntimeError: the store refused this one"
    assert letter.original is not None
    assert InboundInteraction.model_validate_json(letter.original.body) == b


async def test_delivery_reports_are_applied(gateways: Gateways) -> None:
    (sent,) = gateways.store.app.record_interactions([_item("SM-out", direction="outbound")])
    report = DeliveryReport(
        channel="sms",
        provider_message_id="SM-out",
        status="delivered",
        occurred_at=datetime.now(UTC),
    )

    await gateways().receive("fake", WebhookOutcome(reports=(report,)))

    message: Message = gateways.store.app.repository.get(sent.message_id)
    assert message.delivery_status == "delivered"


async def test_a_webhook_request_is_kept_once_whole_for_all_its_items_set_aside(
    gateways: Gateways,
) -> None:
    good = _item("SM-good")
    request = FakeConnector.request(
        interactions=[good],
        set_aside=[("'ACME' is not a phone number", {"From": "ACME"}), ("no body", None)],
    )
    outcome = FakeConnector(FakeSettings()).handle_webhook(request)

    await gateways().receive("fake", outcome, request)

    assert gateways.recorded(good) == [True]
    (letter,) = gateways.letters()
    assert (letter.kind, letter.source) == ("webhook", "fake")
    assert letter.reason == "'ACME' is not a phone number; no body"
    assert letter.original == _kept(request)


async def test_a_listeners_items_set_aside_are_kept_each_with_its_mail(
    gateways: Gateways,
) -> None:
    gateway = gateways()
    await gateway.start(CONFIGURED, listen=True)
    connector = gateway.by_name["fake"]
    assert isinstance(connector, FakeConnector)
    assert connector.started
    item = _item("SM-listened")
    outcome = WebhookOutcome(
        interactions=(item,),
        set_aside=(
            SetAside("no From address", {"via": "smtp"}, original=b"raw mail one"),
            SetAside("too large to fetch", "INBOX/42"),
        ),
    )

    connector.inbox.put_nowait(outcome)
    await eventually(lambda: connector.handed_on)  # acknowledged once durable

    assert gateways.recorded(item) == [True]
    letters = sorted(gateways.letters(), key=lambda x: x.reason)
    assert [(x.kind, x.source, x.reason) for x in letters] == [
        ("email", "fake", "no From address"),
        ("email", "fake", "too large to fetch"),
    ]
    assert [x.original for x in letters] == [
        Original.email(b"raw mail one", via="smtp"),
        Original.email(b"", payload="INBOX/42"),
    ]
    assert gateway.problems() == []
    await gateway.stop()
    assert connector.stopped


# -- retrying ----------------------------------------------------------------------------------


async def test_an_interaction_letter_is_recorded_by_its_retry(gateways: Gateways) -> None:
    submit = FakeSubmit(gateways.store.app.record_interactions)
    submit.refuse["SM-b"] = RuntimeError("the store refused this one")
    gateway = gateways(submit)
    item = _item("SM-b")
    await gateway.receive("fake", WebhookOutcome(interactions=(item,)))
    (letter,) = gateways.letters()

    retried = await gateway.retry(letter.id)

    assert (retried.succeeded, retried.recorded, retried.duplicates) == (True, 1, 0)
    assert gateways.recorded(item) == [True]
    assert gateways.letters() == []
    with pytest.raises(NotFound):
        await gateway.retry(letter.id)


async def test_a_retry_of_what_is_recorded_already_counts_a_duplicate(
    gateways: Gateways,
) -> None:
    item = _item("SM-twice")
    gateways.store.app.record_interactions([item])
    original = Original.interaction(item.model_dump_json().encode())
    (letter_id,) = gateways.store.dead_letters.add(
        [NewDeadLetter("fake", "a bug since fixed", original)]
    )

    retried = await gateways().retry(letter_id)

    assert (retried.succeeded, retried.recorded, retried.duplicates) == (True, 0, 1)


async def test_a_letter_that_fails_again_is_kept_with_its_attempts(gateways: Gateways) -> None:
    (letter_id,) = gateways.store.dead_letters.add(
        [NewDeadLetter("hub.inbound", "bad", Original.interaction(b"{not json"))]
    )
    gateway = gateways()

    first = await gateway.retry(letter_id)
    second = await gateway.retry(letter_id)

    assert not first.succeeded
    assert first.error is not None
    assert first.error.startswith("invalid inbound interaction: ")
    assert (first.letter.attempts, second.letter.attempts) == (1, 2)
    assert second.letter.last_error == first.error


async def test_a_mail_letter_is_parsed_again_by_its_retry(gateways: Gateways) -> None:
    raw = _mail("<clock-1@example.org>", "It has stopped again.")
    mail, empty = gateways.store.dead_letters.add(
        [
            NewDeadLetter("email", "a parser bug since fixed", Original.email(raw)),
            NewDeadLetter("email", "too large", Original.email(b"", mailbox="INBOX", uid=7)),
        ]
    )
    gateway = gateways()

    retried = await gateway.retry(mail)
    assert (retried.succeeded, retried.recorded) == (True, 1)
    never = await gateway.retry(empty)
    assert not never.succeeded
    assert never.error is not None
    assert "never received whole" in never.error


async def test_a_webhook_letter_goes_through_its_connector_again(gateways: Gateways) -> None:
    gateway = gateways()
    await gateway.start(CONFIGURED, listen=False)
    item = _item("SM-hooked")
    (sent,) = gateways.store.app.record_interactions([_item("SM-out", direction="outbound")])
    report = DeliveryReport(
        channel="sms", provider_message_id="SM-out", status="read", occurred_at=datetime.now(UTC)
    )
    good = FakeConnector.request(interactions=[item], reports=[report])
    forged = FakeConnector.request(interactions=[item], secret="not-the-secret")
    unusable = FakeConnector.request(set_aside=[("'ACME' is not a phone number", "ACME")])
    gone = FakeConnector.request(interactions=[_item("SM-retired")], hook="retired")
    ids = gateways.store.dead_letters.add(
        [
            NewDeadLetter("fake", "a bug since fixed", _kept(good)),
            NewDeadLetter("fake", "forged", _kept(forged)),
            NewDeadLetter("fake", "unusable", _kept(unusable)),
            NewDeadLetter("fake", "retired", _kept(gone)),
            NewDeadLetter("fax", "elsewhere", _kept(good)),
        ]
    )

    outcomes = [await gateway.retry(letter_id) for letter_id in ids]

    assert (outcomes[0].succeeded, outcomes[0].recorded, outcomes[0].reports) == (True, 1, 1)
    assert gateways.recorded(item) == [True]
    message: Message = gateways.store.app.repository.get(sent.message_id)
    assert message.delivery_status == "read"
    assert [o.error for o in outcomes[1:]] == [
        "InvalidSignature: x-fake-signature does not match",
        "'ACME' is not a phone number",
        "fake has no webhook 'retired' now",
        "connector 'fax' is not configured here",
    ]
    assert [x.letter.attempts for x in outcomes[1:]] == [1, 1, 1, 1]


async def test_a_retry_during_a_store_outage_raises_and_leaves_the_letter(
    gateways: Gateways,
) -> None:
    def unavailable(items: Sequence[InboundInteraction]) -> list[Recorded]:
        raise StoreUnavailable("the event store is unavailable")

    item = _item("SM-later")
    (letter_id,) = gateways.store.dead_letters.add(
        [NewDeadLetter("fake", "r", Original.interaction(item.model_dump_json().encode()))]
    )

    with pytest.raises(StoreUnavailable):
        await gateways(record_now=unavailable).retry(letter_id)

    (letter,) = gateways.letters()
    assert (letter.id, letter.attempts, letter.last_error) == (letter_id, 0, None)


# -- retention ---------------------------------------------------------------------------------


async def test_letters_past_their_retention_are_purged_at_start_and_every_round(
    gateways: Gateways, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_module, "PURGE_EVERY_SECONDS", 0.01)
    dead_letters = gateways.store.dead_letters
    today = [datetime.now(UTC)]
    monkeypatch.setattr(dead_letters, "clock", lambda: today[0])
    _, recent = dead_letters.add(
        [
            NewDeadLetter("email", "old", Original.email(b"old"), today[0] - timedelta(days=8)),
            NewDeadLetter("email", "new", Original.email(b"new"), today[0] - timedelta(days=6)),
        ]
    )
    purge = dead_letters.purge_expired
    away: list[Exception] = []

    def purge_unless_away(retention: timedelta) -> int:
        if away:
            raise away.pop()
        return purge(retention)

    monkeypatch.setattr(dead_letters, "purge_expired", purge_unless_away)
    gateway = gateways(dead_letter_retention=timedelta(days=7))
    await gateway.start([], listen=False)
    await eventually(lambda: gateways.letter_ids() == [recent])  # at start

    away.append(sqlalchemy.exc.OperationalError("DELETE", {}, Exception("database is locked")))
    today[0] += timedelta(days=2)  # the recent one's retention ends, the store is away a round
    await eventually(lambda: not away)
    await eventually(lambda: gateways.letter_ids() == [])  # the next round purges it
