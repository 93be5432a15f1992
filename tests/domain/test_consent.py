"""The consent ledger of hub.domain.consent and its commands (hub.domain.outbound): the default
rules, sources and evidence (encrypted), the state a history leaves across a merge group,
double opt-in (a request grants nothing until confirmed; confirmed once; cancelled by a later
withdrawal; expired), and events stored before sources existed still load."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from typing import get_args
from uuid import UUID

import orjson
import pytest
from sqlalchemy.engine import make_url

from hub.config import ConsentSettings, Settings
from hub.domain.consent import (
    SOURCES,
    ConfirmationExpired,
    ConsentRules,
    consent_history,
    consent_state,
    source_of,
)
from hub.domain.errors import Conflict, CustomerErased, InvalidCommand
from hub.domain.inbound import Recorded
from hub.domain.model import Customer
from hub.events import ConsentSignal
from hub.events.published import ConsentSource, CustomerConsentChanged
from hub.store import Store
from tests.domain.helpers import envelopes
from tests.support.store import T0, inbound, opened, raw_event_states

PHONE = "phone:+4915112345678"
EMAIL = "email:kim@example.com"


@pytest.fixture
def backend() -> str:
    """On SQLite: the rules are under test here (the API tests run both backends)."""
    return "sqlite"


@pytest.fixture
def kim(store: Store) -> Recorded:
    """A customer who wrote an email at T0."""
    [recorded] = store.app.record_interactions(
        [inbound("<m1@example.com>", channel="email", address=EMAIL)]
    )
    return recorded


def customer(store: Store, customer_id: UUID) -> Customer:
    return store.app.read(lambda uow: uow.require(Customer, customer_id, "customer"))


# -- the rules -------------------------------------------------------------------------------


def test_the_default_rules_grant_service_by_contact_and_marketing_only_by_opt_in() -> None:
    rules = ConsentRules()
    assert rules.purposes == ("service", "marketing")
    assert (rules.default("service"), rules.rule("service")) == (True, "first_contact")
    assert (rules.default("marketing"), rules.rule("marketing")) == (False, "opt_in_required")
    assert rules.needs_confirmation("email", "marketing", "agent")
    assert rules.needs_confirmation("email", "marketing", "api")
    assert not rules.needs_confirmation("email", "marketing", "import")
    assert not rules.needs_confirmation("email", "service", "agent")
    assert not rules.needs_confirmation("sms", "marketing", "agent")


def test_configured_rules_add_purposes_and_their_defaults() -> None:
    settings = ConsentSettings.model_validate(
        {
            "purposes": {"reminders": {"granted_by_contact": True}, "surveys": {}},
            "confirmation_days": 2,
        }
    )
    rules = ConsentRules.configured(settings)
    assert rules.purposes == ("service", "marketing", "reminders", "surveys")
    assert rules.default("service")
    assert rules.default("reminders")
    assert not rules.default("surveys")
    assert rules.needs_confirmation("email", "surveys", "agent")
    assert not rules.needs_confirmation("email", "reminders", "agent")
    assert rules.confirmation_ttl == timedelta(days=2)
    no_double = ConsentRules.configured(ConsentSettings(double_opt_in_email=False))
    assert not no_double.needs_confirmation("email", "marketing", "agent")


@pytest.mark.parametrize(
    "values",
    [
        {"purposes": {"Bad Name": {}}},
        {"purposes": {"marketing": {"granted_by_contact": True}}},  # built in: fixed rule
        {"purposes": {"service": {}}},
        {"confirmation_days": 0},
    ],
)
def test_settings_refuse_rules_that_make_no_sense(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ConsentSettings.model_validate(values)


def test_the_environment_configures_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CONSENT__PURPOSES", '{"reminders": {"granted_by_contact": true}}')
    monkeypatch.setenv("HUB_CONSENT__DOUBLE_OPT_IN_EMAIL", "false")
    monkeypatch.setenv("HUB_CONSENT__CONFIRMATION_DAYS", "3")
    consent = Settings().consent
    assert list(consent.purposes) == ["reminders"]
    assert consent.purposes["reminders"].granted_by_contact
    assert not consent.double_opt_in_email
    assert consent.confirmation_days == 3


def test_unknown_channels_purposes_and_sources_are_refused() -> None:
    rules = ConsentRules()
    for channel, purposes, source in [
        ("fax", ["service"], "agent"),
        ("voice", ["service"], "agent"),
        ("sms", ["newsletter"], "agent"),
        ("sms", ["service"], "gossip"),
    ]:
        with pytest.raises(InvalidCommand):
            rules.check(channel, purposes, source)
    rules.check("sms", ["service", "marketing"], "keyword")


def test_the_sources_are_a_closed_set_the_published_contract_names() -> None:
    assert set(SOURCES) == set(get_args(ConsentSource))


@pytest.mark.parametrize(
    ("reason", "channel", "expected"),
    [
        ("sms_keyword:STOP", "sms", "keyword"),
        ("list_unsubscribe", "email", "unsubscribe_link"),
        ("provider:550", "email", "bounce"),
        ("provider:21610", "sms", "provider_opt_out"),
        ("agent", "sms", "agent"),
        ("something else", "sms", "agent"),
    ],
)
def test_lines_stored_without_a_source_get_it_from_their_reason(
    reason: str, channel: str, expected: str
) -> None:
    assert source_of("", reason, channel) == expected
    assert source_of("import", reason, channel) == "import"


# -- the ledger ------------------------------------------------------------------------------


def test_a_line_carries_its_source_and_evidence_encrypted(
    store: Store, settings: Settings, kim: Recorded
) -> None:
    outbound = store.app.outbound
    outbound.change_consent(
        kim.customer_id,
        "email",
        False,
        purposes=["service"],
        source="agent",
        evidence="Kim phoned: no more emails please (ticket 4711)",
        actor="ann",
    )
    assert not any(b"ticket 4711" in state for state in raw_event_states(settings))
    [line] = consent_history(store.app, [kim.customer_id])
    assert (line.kind, line.channel, line.purposes, line.granted) == (
        "change",
        "email",
        ("service",),
        False,
    )
    assert (line.source, line.actor, line.customer_id) == ("agent", "ann", kim.customer_id)
    assert line.evidence == "Kim phoned: no more emails please (ticket 4711)"
    assert not customer(store, kim.customer_id).allows("email", "service")

    [published] = [e for e in envelopes(store) if isinstance(e, CustomerConsentChanged)]
    assert published.data.source == "agent"
    assert published.data.evidence == "Kim phoned: no more emails please (ticket 4711)"

    store.app.cipher.erase(kim.customer_id)  # crypto-shredding: the evidence goes with the key
    [line] = consent_history(store.app, [kim.customer_id])
    assert (line.evidence, line.source, line.granted) == (None, "agent", False)


def test_a_keyword_from_the_customer_is_a_line_with_its_message(store: Store) -> None:
    [stop] = store.app.record_interactions(
        [
            inbound(
                "SM-stop",
                text="STOP",
                consent=ConsentSignal(granted=False, reason="sms_keyword:STOP"),
            )
        ]
    )
    [line] = consent_history(store.app, [stop.customer_id])
    assert (line.source, line.message_id, line.granted) == ("keyword", stop.message_id, False)
    decision = customer(store, stop.customer_id).consent_decision("sms", "service")
    assert (decision.granted, decision.default) == (False, False)
    assert decision.version is not None
    assert decision.customer_id == stop.customer_id


def test_the_state_marks_what_the_default_rule_decides(store: Store, kim: Recorded) -> None:
    store.app.outbound.change_consent(
        kim.customer_id, "sms", True, purposes=["marketing"], source="agent"
    )
    cells = {
        (c.channel, c.purpose): c
        for c in consent_state(consent_history(store.app, [kim.customer_id]))
    }
    assert len(cells) == 7 * 2
    email_service = cells[("email", "service")]
    assert (email_service.granted, email_service.default, email_service.rule) == (
        True,
        True,
        "first_contact",
    )
    email_marketing = cells[("email", "marketing")]
    assert (email_marketing.granted, email_marketing.default) == (False, True)
    assert email_marketing.rule == "opt_in_required"
    sms_marketing = cells[("sms", "marketing")]
    assert (sms_marketing.granted, sms_marketing.default, sms_marketing.rule) == (
        True,
        False,
        "agent",
    )
    assert sms_marketing.decided_by is not None


def test_the_latest_line_of_any_group_member_decides_the_group_state(store: Store) -> None:
    [a, b] = store.app.record_interactions(
        [inbound("SM-a", address=PHONE), inbound("<b@x>", channel="email", address=EMAIL)]
    )
    outbound = store.app.outbound
    outbound.change_consent(a.customer_id, "sms", True, purposes=["marketing"], source="api")
    outbound.change_consent(b.customer_id, "sms", False, purposes=["marketing"], source="agent")
    history = consent_history(store.app, [a.customer_id, b.customer_id])
    assert [h.customer_id for h in history] == [a.customer_id, b.customer_id]
    cell = next(c for c in consent_state(history) if (c.channel, c.purpose) == ("sms", "marketing"))
    assert (cell.granted, cell.decided_by and cell.decided_by.customer_id) == (
        False,
        b.customer_id,
    )


def test_one_change_is_recorded_on_every_member_named(store: Store) -> None:
    [a, b] = store.app.record_interactions(
        [inbound("SM-a", address=PHONE), inbound("SM-b", address="phone:+4915112340000")]
    )
    change = store.app.outbound.change_consent(
        a.customer_id, "sms", False, members=[a.customer_id, b.customer_id], evidence="asked"
    )
    assert change.recorded_on == (a.customer_id, b.customer_id)
    for member in (a, b):
        assert not customer(store, member.customer_id).allows("sms", "marketing")
    assert [h.evidence for h in consent_history(store.app, [a.customer_id, b.customer_id])] == [
        "asked",
        "asked",
    ]


def test_an_erased_customer_takes_no_change(store: Store, kim: Recorded) -> None:
    store.app.cipher.erase(kim.customer_id)
    with pytest.raises(CustomerErased):
        store.app.outbound.change_consent(kim.customer_id, "email", False, source="agent")


def test_unknown_purposes_are_refused_by_the_command(store: Store, kim: Recorded) -> None:
    with pytest.raises(InvalidCommand):
        store.app.outbound.change_consent(
            kim.customer_id, "email", True, purposes=["reminders"], source="agent"
        )
    rules = ConsentRules(extra_purposes=("reminders",))
    store.app.outbound.change_consent(
        kim.customer_id, "email", True, purposes=["reminders"], source="import", rules=rules
    )
    assert customer(store, kim.customer_id).allows("email", "reminders", rules)


# -- double opt-in ---------------------------------------------------------------------------


def test_an_agents_email_marketing_grant_waits_for_the_customer(
    store: Store, kim: Recorded
) -> None:
    outbound = store.app.outbound
    change = outbound.change_consent(
        kim.customer_id,
        "email",
        True,
        purposes=["service", "marketing"],
        source="agent",
        evidence="ticked the box at the counter",
        actor="ann",
        now=T0,
    )
    [request] = change.requests
    assert (request.channel, request.purposes, request.state) == (
        "email",
        ("marketing",),
        "pending",
    )
    assert request.expires_at == T0 + timedelta(days=7)
    kim_now = customer(store, kim.customer_id)
    assert kim_now.allows("email", "service")  # granted at once: no confirmation needed
    assert not kim_now.allows("email", "marketing")  # pending is no grant

    history = consent_history(store.app, [kim.customer_id], now=T0)
    assert [(h.kind, h.purposes, h.status) for h in history] == [
        ("change", ("service",), None),
        ("request", ("marketing",), "pending"),
    ]
    cell = next(
        c for c in consent_state(history) if (c.channel, c.purpose) == ("email", "marketing")
    )
    assert (cell.granted, cell.default) == (False, True)
    assert cell.pending is not None
    assert cell.pending.request_id == request.request_id

    confirmed = outbound.confirm_consent(kim.customer_id, request.request_id, now=T0)
    assert confirmed.state == "confirmed"
    assert customer(store, kim.customer_id).allows("email", "marketing")
    again = outbound.confirm_consent(kim.customer_id, request.request_id, now=T0)
    assert again.state == "confirmed"
    history = consent_history(store.app, [kim.customer_id], now=T0)
    assert [(h.kind, h.source, h.status) for h in history] == [
        ("change", "agent", None),
        ("request", "agent", "confirmed"),
        ("change", "double_opt_in", None),  # once, however often the link is used
    ]
    assert history[-1].request_id == request.request_id
    cell = next(
        c for c in consent_state(history) if (c.channel, c.purpose) == ("email", "marketing")
    )
    assert (cell.granted, cell.rule, cell.pending) == (True, "double_opt_in", None)


def test_a_withdrawal_after_the_request_cancels_it(store: Store, kim: Recorded) -> None:
    outbound = store.app.outbound
    [request] = outbound.change_consent(
        kim.customer_id, "email", True, purposes=["marketing"], source="api", now=T0
    ).requests
    outbound.change_consent(
        kim.customer_id, "email", False, purposes=["marketing"], source="agent", now=T0
    )
    with pytest.raises(Conflict) as refused:
        outbound.confirm_consent(kim.customer_id, request.request_id, now=T0)
    assert refused.value.code == "confirmation_cancelled"
    assert not customer(store, kim.customer_id).allows("email", "marketing")
    statuses = [h.status for h in consent_history(store.app, [kim.customer_id], now=T0)]
    assert statuses == ["cancelled", None]


def test_an_expired_request_is_not_confirmed(store: Store, kim: Recorded) -> None:
    outbound = store.app.outbound
    [request] = outbound.change_consent(
        kim.customer_id, "email", True, purposes=["marketing"], source="agent", now=T0
    ).requests
    late = T0 + timedelta(days=7)
    with pytest.raises(ConfirmationExpired):
        outbound.confirm_consent(kim.customer_id, request.request_id, now=late)
    assert not customer(store, kim.customer_id).allows("email", "marketing")
    [line] = consent_history(store.app, [kim.customer_id], now=late)
    assert line.status == "expired"
    assert all(c.pending is None for c in consent_state([line]))


def test_grants_that_need_no_confirmation_are_granted_at_once(store: Store, kim: Recorded) -> None:
    outbound = store.app.outbound
    imported = outbound.change_consent(
        kim.customer_id, "email", True, purposes=["marketing"], source="import", evidence="CRM"
    )
    assert imported.requests == ()
    assert customer(store, kim.customer_id).allows("email", "marketing")
    # Already granted: an agent's grant asks for no confirmation either.
    again = outbound.change_consent(
        kim.customer_id, "email", True, purposes=["marketing"], source="agent"
    )
    assert again.requests == ()
    [sms] = store.app.record_interactions([inbound("SM-x", address=PHONE)])
    on_sms = outbound.change_consent(
        sms.customer_id, "sms", True, purposes=["marketing"], source="agent"
    )
    assert on_sms.requests == ()
    assert customer(store, sms.customer_id).allows("sms", "marketing")


# -- events stored before sources existed ----------------------------------------------------


def test_lines_stored_before_sources_and_evidence_existed_still_load(
    settings: Settings, kim: Recorded, store: Store
) -> None:
    store.app.outbound.change_consent(
        kim.customer_id, "email", False, purposes=["marketing"], reason="list_unsubscribe"
    )
    store.close()
    _strip_new_fields(settings)
    with opened(settings) as reopened:
        [line] = consent_history(reopened.app, [kim.customer_id])
        assert (line.source, line.evidence, line.request_id) == (
            "unsubscribe_link",
            None,
            None,
        )
        assert not customer(reopened, kim.customer_id).allows("email", "marketing")
        [published] = [e for e in envelopes(reopened) if isinstance(e, CustomerConsentChanged)]
        assert (published.data.source, published.data.evidence) == ("unsubscribe_link", None)


def _strip_new_fields(settings: Settings) -> None:
    """Rewrite the stored ConsentChanged events as they were before source, evidence and
    request_id existed."""
    database = make_url(settings.resolved_store_url()).database
    assert database
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE '%ConsentChanged'"
        ).fetchall()
        assert rows
        for rowid, state in rows:
            old = orjson.loads(state)
            for name in ("source", "evidence", "request_id"):
                del old[name]
            conn.execute(
                "UPDATE stored_events SET state = ? WHERE rowid = ?", (orjson.dumps(old), rowid)
            )
        conn.commit()
    finally:
        conn.close()
