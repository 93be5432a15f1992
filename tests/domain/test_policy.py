"""The outbound rules of hub.domain.policy as plain functions: quiet hours in the customer's zone,
the zone a phone number gives, and why a channel refuses a message now."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from hub.domain.model import Conversation, Customer
from hub.domain.policy import QuietHours, refusal_of, time_zone_of
from tests.domain.fakes import FakeChannels

BERLIN = ZoneInfo("Europe/Berlin")
NIGHTS = QuietHours(time(21), time(8), "Europe/Berlin", awake_window=timedelta(minutes=30))
T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # 11:00 in Berlin


def test_quiet_hours_overnight_end_in_the_morning_in_the_customers_zone() -> None:
    late = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)  # 23:30 in Berlin
    early = datetime(2024, 5, 2, 4, 0, tzinfo=UTC)  # 06:00 in Berlin
    morning = datetime(2024, 5, 2, 6, 0, tzinfo=UTC)  # 08:00 in Berlin
    assert NIGHTS.until(late, BERLIN) == morning
    assert NIGHTS.until(early, BERLIN) == morning
    assert NIGHTS.until(morning, BERLIN) is None
    assert NIGHTS.until(T0, BERLIN) is None


def test_no_quiet_hours_without_a_start_or_a_zone() -> None:
    late = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)
    assert NIGHTS.until(late, None) is None
    never = QuietHours(None, time(8), "Europe/Berlin", timedelta(minutes=30))
    assert never.until(late, BERLIN) is None


def test_a_customer_who_just_wrote_is_awake() -> None:
    late = datetime(2024, 5, 1, 21, 30, tzinfo=UTC)
    phone = "phone:+4915112345678"
    assert NIGHTS.hold_until(late, late - timedelta(minutes=10), phone) is None
    assert NIGHTS.hold_until(late, late - timedelta(hours=2), phone) == datetime(
        2024, 5, 2, 6, 0, tzinfo=UTC
    )
    assert NIGHTS.hold_until(late, None, phone) is not None


@pytest.mark.parametrize(
    ("address", "default", "zone"),
    [
        ("phone:+4915112345678", None, "Europe/Berlin"),  # Germany: one zone
        ("phone:+15550100001", "Europe/Berlin", "Europe/Berlin"),  # the US: many zones
        ("email:alice@example.com", "Europe/Lisbon", "Europe/Lisbon"),
        ("email:alice@example.com", None, None),
        (None, "Nowhere/Unknown", None),
    ],
)
def test_the_zone_is_the_phone_numbers_when_it_has_one(
    address: str | None, default: str | None, zone: str | None
) -> None:
    found = time_zone_of(address, default)
    assert (found.key if found else None) == zone


def _customer() -> Customer:
    return Customer(
        customer_id=uuid4(),
        display_name=None,
        address_id=uuid4(),
        address=None,
        address_kind="phone",
        first_seen_at=T0,
        correlation_id=uuid4(),
    )


def _conversation(customer: Customer, last_inbound_at: datetime) -> Conversation:
    return Conversation(
        customer_id=customer.id,
        channel="sms",
        address_id=UUID(int=1),
        address=None,
        subject=None,
        first_message_id=uuid4(),
        opened_at=last_inbound_at,
        correlation_id=uuid4(),
    )


def test_a_refusal_names_the_first_rule_that_stops_the_message() -> None:
    customer = _customer()
    conversation = _conversation(customer, T0)
    window = FakeChannels(windows={"whatsapp": timedelta(hours=24)})
    later = T0 + timedelta(hours=25)

    assert refusal_of(window, customer, conversation, "sms", later, False) is None
    assert refusal_of(window, customer, conversation, "whatsapp", T0, False) is None
    code, reason = refusal_of(window, customer, conversation, "whatsapp", later, False) or ("", "")
    assert code == "outside_service_window"
    assert "24 hours" in reason
    assert refusal_of(window, customer, conversation, "whatsapp", later, True) is None

    customer.change_consent(
        channel="sms",
        purposes=["service"],
        granted=False,
        reason="sms_keyword:STOP",
        actor=None,
        message_id=None,
        occurred_at=T0,
        correlation_id=uuid4(),
    )
    assert refusal_of(window, customer, conversation, "sms", T0, False) == (
        "consent_revoked",
        "the customer withdrew consent for sms messages",
    )
    off = FakeChannels(off={"sms": "no SMS connector is configured"})
    assert refusal_of(off, customer, conversation, "sms", T0, False) == (
        "channel_unavailable",
        "no SMS connector is configured",
    )
