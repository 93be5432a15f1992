"""Unit tests of hub.events.inbound: the inbound interaction and the rules applied where it
enters the hub (which addresses a channel carries, how far ahead of the clock a time may be)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from hub.events import InboundInteraction
from hub.events.inbound import InvalidInteraction, check_channel_carries, check_occurred_at

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def inbound(**overrides: Any) -> InboundInteraction:
    values: dict[str, Any] = {
        "channel": "sms",
        "direction": "inbound",
        "address": "phone:+4915112345678",
        "provider_message_id": "SM123",
        "occurred_at": T0,
        "text": "Hello",
    }
    return InboundInteraction(**(values | overrides))


# -- the contract ----------------------------------------------------------------------


def test_inbound_interaction_accepts_a_normalised_address() -> None:
    item = inbound(contact_name="Alice", references=("a", "b"))
    assert item.type == "interaction.inbound.v1"
    assert item.address == "phone:+4915112345678"
    assert item.references == ("a", "b")


@pytest.mark.parametrize(
    "address",
    [
        "phone:+49 151 1234 5678",
        "phone:015112345678",
        "+4915112345678",  # kind prefix missing
        "PHONE:+4915112345678",
        "phone:not-a-number",
    ],
)
def test_inbound_interaction_refuses_unnormalised_address(address: str) -> None:
    with pytest.raises(ValidationError) as caught:
        inbound(address=address)
    assert caught.value.errors()[0]["loc"] == ("address",)


def test_unnormalised_address_error_names_the_normalised_form() -> None:
    with pytest.raises(ValidationError, match=r"phone:\+4915112345678"):
        inbound(address="phone:+49 151 1234 5678")


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("sms", "email:alice@example.com"),
        ("whatsapp", "telegram:123"),
        ("email", "phone:+4915112345678"),
        ("chat", "phone:+4915112345678"),
        ("messenger", "instagram:1784"),
        ("telegram", "chat:visitor-1"),
    ],
)
def test_inbound_interaction_refuses_channel_address_mismatch(channel: str, address: str) -> None:
    with pytest.raises(ValidationError, match="does not carry"):
        inbound(channel=channel, address=address)


@pytest.mark.parametrize(
    ("channel", "address"),
    [
        ("chat", "email:alice@example.com"),
        ("chat", "chat:visitor-1"),
        ("voice", "phone:+4915112345678"),
        ("api", "telegram:123"),
        ("api", "email:alice@example.com"),
    ],
)
def test_inbound_interaction_accepts_the_kinds_a_channel_carries(
    channel: str, address: str
) -> None:
    assert inbound(channel=channel, address=address).channel == channel


def test_inbound_interaction_refuses_naive_time_and_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        inbound(occurred_at=datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValidationError):
        inbound(surprise=True)
    with pytest.raises(ValidationError):
        inbound(provider_message_id="")


def test_inbound_interaction_is_frozen() -> None:
    item = inbound()
    with pytest.raises(ValidationError):
        item.text = "changed"  # type: ignore[misc]


# -- the rules where an interaction enters -------------------------------------------------


def test_a_channel_carries_only_its_address_kinds() -> None:
    check_channel_carries("whatsapp", "phone")
    check_channel_carries("chat", "email")
    with pytest.raises(InvalidInteraction) as refused:
        check_channel_carries("sms", "email")
    assert refused.value.code == "address_not_for_channel"
    assert refused.value.message == "channel 'sms' does not carry 'email' addresses"
    assert refused.value.details == {"channel": "sms", "address_kind": "email"}


def test_the_contract_refuses_a_mismatch_with_the_same_rule() -> None:
    with pytest.raises(ValidationError) as refused:
        inbound(channel="sms", address="email:alice@example.com")
    [error] = refused.value.errors()
    assert error["msg"] == "Value error, channel 'sms' does not carry 'email' addresses"


def test_a_time_may_be_ahead_of_the_clock_by_the_allowed_skew_only() -> None:
    skew = timedelta(minutes=5)
    check_occurred_at(T0 - timedelta(days=3650), T0, skew)
    check_occurred_at(T0 + skew, T0, skew)
    with pytest.raises(InvalidInteraction) as refused:
        check_occurred_at(T0 + skew + timedelta(microseconds=1), T0, skew)
    assert refused.value.code == "occurred_at_in_future"
    assert refused.value.message == "occurred_at is more than 0:05:00 in the future"
    assert refused.value.details == {
        "occurred_at": (T0 + skew + timedelta(microseconds=1)).isoformat()
    }


def test_a_time_before_1970_is_out_of_range_whatever_the_skew() -> None:
    before = datetime(1969, 12, 31, 23, 59, tzinfo=UTC)
    with pytest.raises(InvalidInteraction) as refused:
        check_occurred_at(before, T0, timedelta(days=365 * 100))
    assert refused.value.code == "occurred_at_out_of_range"
    assert refused.value.message == "occurred_at is before 1970-01-01T00:00:00+00:00"
    check_occurred_at(datetime(1970, 1, 1, tzinfo=UTC), T0, timedelta(0))
