"""Unit tests of hub.domain.ids: UUIDv7 and the deterministic message and address ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hub.domain.ids import address_id, message_id, uuid7

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
PEPPER = bytes(range(32))


def _millis(value: UUID) -> int:
    return value.int >> 80


def test_uuid7_has_version_7_and_rfc_variant() -> None:
    for value in [uuid7(), uuid7(T0), uuid7(T0, seed=b"x")]:
        assert value.version == 7
        assert value.variant == "specified in RFC 4122"
        assert (value.int >> 62) & 0b11 == 0b10


def test_uuid7_carries_unix_milliseconds() -> None:
    assert _millis(uuid7(T0)) == 1714564800000
    now = datetime.now(UTC)
    assert abs(_millis(uuid7()) - int(now.timestamp() * 1000)) < 5_000


def test_uuid7_is_deterministic_with_a_seed() -> None:
    assert uuid7(T0, seed=b"event-1") == uuid7(T0, seed=b"event-1")
    assert uuid7(T0, seed=b"event-1") != uuid7(T0, seed=b"event-2")
    assert uuid7(T0 + timedelta(milliseconds=1), seed=b"event-1") != uuid7(T0, seed=b"event-1")


def test_uuid7_without_seed_is_random() -> None:
    assert len({uuid7(T0) for _ in range(100)}) == 100


def test_uuid7_is_ordered_by_time() -> None:
    times = [T0 + timedelta(milliseconds=n * 7) for n in range(200)]
    ids = [uuid7(t) for t in times]
    assert sorted(ids) == ids
    seeded = [uuid7(t, seed=b"same") for t in times]
    assert sorted(seeded) == seeded
    # the string form sorts the same way (what a database index on text sees)
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]


def test_message_id_is_stable_per_channel_and_provider_id() -> None:
    first = message_id("sms", "SM0123456789")
    assert first == message_id("sms", "SM0123456789")
    assert first.version == 8
    assert first.variant == "specified in RFC 4122"


def test_message_id_derivation_does_not_change_between_releases() -> None:
    # Ids already in a store must be derived the same way after an upgrade, or a provider
    # replay of an old message would be recorded a second time.
    assert message_id("sms", "SM0123456789") == UUID("424a87fd-7131-8adc-8c5d-0f956d661246")
    assert message_id("sms", "SM1") == UUID("ee92bd5c-2d35-8049-ae7f-80cb2e5a5419")


def test_message_id_differs_across_channels_and_provider_ids() -> None:
    ids = {
        message_id("sms", "42"),
        message_id("whatsapp", "42"),
        message_id("email", "42"),
        message_id("sms", "43"),
        message_id("sms", "4"),
    }
    assert len(ids) == 5


def test_message_id_separates_channel_from_provider_id() -> None:
    # "sm" + "s1" must not collide with "sms" + "1"
    assert message_id("sm", "s1") != message_id("sms", "1")


def test_address_id_depends_on_the_pepper() -> None:
    address = "phone:+4915112345678"
    assert address_id(address, PEPPER) == address_id(address, PEPPER)
    assert address_id(address, PEPPER) != address_id(address, bytes(32))
    assert address_id(address, PEPPER) != address_id("phone:+4915112345679", PEPPER)
    assert address_id(address, PEPPER).version == 8


def test_address_id_does_not_reveal_the_number() -> None:
    value = address_id("phone:+4915112345678", PEPPER)
    assert "4915112345678" not in value.hex
    assert value != message_id("phone", "+4915112345678")
