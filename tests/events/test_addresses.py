"""Unit tests of hub.events.addresses: normalising channel identities to one spelling."""

from __future__ import annotations

import pytest

from hub.events import Address, AddressError, normalise_address
from hub.events.addresses import check_deliverable_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("email:alice@example.com", "email:alice@example.com"),
        ("Email:Alice@Example.COM", "email:alice@example.com"),
        ("EMAIL:  Bob.Smith@EXAMPLE.org ", "email:bob.smith@example.org"),
        ("  carol+support@example.co.uk  ", "email:carol+support@example.co.uk"),
    ],
)
def test_email_is_case_folded_and_trimmed(raw: str, expected: str) -> None:
    assert str(normalise_address(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "email:not-an-email",
        "email:@example.com",
        "email:alice@",
        "email:",
        "email:a@b..c",
        "email:a@-b.example",
        "email:a b@example.com",
    ],
)
def test_invalid_email_is_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(AddressError) as caught:
        normalise_address(raw)
    assert caught.value.raw == raw
    assert caught.value.reason
    assert raw in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # special-use and intranet domains (issue 13: such a sender was dead-lettered)
        ("Father.Time@XCar.Wooster.LOCAL", "email:father.time@xcar.wooster.local"),
        ("email:it@host.internal", "email:it@host.internal"),
        ("email:ops@fileserver.corp", "email:ops@fileserver.corp"),
        ("email:a@b", "email:a@b"),  # single-label
        ("email:root@localhost", "email:root@localhost"),
        ("email:qa@shop.test", "email:qa@shop.test"),
        ("email:x@host.123", "email:x@host.123"),  # a numeric TLD
        ("email:x@[192.0.2.1]", "email:x@[192.0.2.1]"),  # a domain literal
        ('email:"John Doe"@example.com', 'email:"john doe"@example.com'),  # a quoted mailbox
        ("email:Jörg@Bücher.example", "email:jörg@bücher.example"),
        ("email:jorg@xn--bcher-kva.example", "email:jorg@bücher.example"),
    ],
)
def test_every_syntactically_valid_email_is_an_identity(raw: str, expected: str) -> None:
    address = normalise_address(raw)
    assert str(address) == expected
    assert normalise_address(str(address)) == address  # a fixed point


@pytest.mark.parametrize(
    ("value", "reason_part"),
    [
        ("father.time@xcar.wooster.local", "special-use"),
        ("qa@shop.test", "special-use"),
        ("root@localhost", "period"),
        ("x@in-addr.arpa", "special-use"),
        ("a@b", "period"),
        ("x@[192.0.2.1]", "bracketed IP"),
        ('"john doe"@example.com', "Quoting"),
        ("x@host.123", "top-level domain"),
    ],
)
def test_sending_refuses_what_the_internet_cannot_deliver(value: str, reason_part: str) -> None:
    normalise_address(f"email:{value}")  # valid as an identity
    with pytest.raises(AddressError) as caught:
        check_deliverable_email(value)
    assert reason_part in caught.value.reason


@pytest.mark.parametrize(
    "value", ["alice@example.com", "it@host.internal", "jörg@bücher.example", "a+b@mail.co.uk"]
)
def test_sending_takes_internet_addresses(value: str) -> None:
    assert check_deliverable_email(value) == value


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("phone:+4915112345678", None, "+4915112345678"),
        ("phone:+49 151 1234 5678", None, "+4915112345678"),
        ("phone:+49 (0)151-1234-5678", None, "+4915112345678"),
        ("phone:+49.151.12345678", None, "+4915112345678"),
        ("phone:0151 12345678", "DE", "+4915112345678"),
        ("phone:(415) 555-0101", "US", "+14155550101"),
        ("phone:+1 415 555 0101", "DE", "+14155550101"),  # an explicit country wins
        ("phone:+44 20 7946 0958", None, "+442079460958"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str | None, expected: str) -> None:
    address = normalise_address(raw, default_region=region)
    assert address == Address("phone", expected)
    assert address.search_digits == expected.lstrip("+")


def test_every_spelling_of_one_number_is_one_address() -> None:
    spellings = [
        "phone:+4915112345678",
        "phone:+49 151 12345678",
        "phone:+49-151-1234-5678",
        "+49 (151) 1234 5678",
    ]
    assert {str(normalise_address(s)) for s in spellings} == {"phone:+4915112345678"}
    assert str(normalise_address("phone:015112345678", default_region="DE")) == (
        "phone:+4915112345678"
    )


def test_national_number_without_region_names_the_missing_prefix() -> None:
    with pytest.raises(AddressError) as caught:
        normalise_address("phone:0151 12345678")
    assert "no +country prefix" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("phone:+1 23", "not a possible phone number"),
        ("phone:+4915112345678901234", "not a possible phone number"),
        ("phone:+49 1", "not a phone number"),
        ("phone:+999 1234567", "not a phone number"),
        ("phone:abc", "not a phone number"),
    ],
)
def test_impossible_phone_numbers_are_refused_with_a_reason(raw: str, reason_part: str) -> None:
    with pytest.raises(AddressError) as caught:
        normalise_address(raw)
    assert reason_part in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("chat:Visitor_42.x-y", Address("chat", "Visitor_42.x-y")),
        ("CHAT:abc", Address("chat", "abc")),
        ("messenger:1234567890123456", Address("messenger", "1234567890123456")),
        ("instagram:17841400000000000", Address("instagram", "17841400000000000")),
        ("telegram:123456789", Address("telegram", "123456789")),
        ("telegram:-1001234567890", Address("telegram", "-1001234567890")),
        ("chat:" + "a" * 128, Address("chat", "a" * 128)),
    ],
)
def test_opaque_channel_ids_keep_their_value(raw: str, expected: Address) -> None:
    assert normalise_address(raw) == expected


def test_opaque_ids_are_case_sensitive() -> None:
    assert normalise_address("chat:AbC") != normalise_address("chat:abc")


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("chat:bad id", "a chat id is 1-128"),
        ("chat:", "a chat id is 1-128"),
        ("chat:" + "a" * 129, "a chat id is 1-128"),
        ("messenger:psid/1", "a messenger id is 1-128"),
        ("instagram:ig id", "a instagram id is 1-128"),
        ("telegram:@alice", "numeric user id"),
        ("telegram:12ab", "numeric user id"),
    ],
)
def test_malformed_channel_ids_are_refused(raw: str, reason_part: str) -> None:
    with pytest.raises(AddressError) as caught:
        normalise_address(raw)
    assert reason_part in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("alice@example.com", "email:alice@example.com"),
        ("Alice@Example.com", "email:alice@example.com"),
        ("+4915112345678", "phone:+4915112345678"),
        ("+1 (415) 555-0101", "phone:+14155550101"),
    ],
)
def test_kind_is_inferred_for_bare_emails_and_international_numbers(
    raw: str, expected: str
) -> None:
    assert str(normalise_address(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("", "it is empty"),
        ("   ", "it is empty"),
        ("garbage", "expected kind:value"),
        ("fax:123456", "expected kind:value"),
        ("015112345678", "expected kind:value"),
        ("sms:+4915112345678", "expected kind:value"),
    ],
)
def test_garbage_is_refused(raw: str, reason_part: str) -> None:
    with pytest.raises(AddressError) as caught:
        normalise_address(raw)
    assert reason_part in caught.value.reason
    assert isinstance(caught.value, ValueError)


def test_normalised_form_is_a_fixed_point() -> None:
    for raw in ["Email:Alice@Example.COM", "phone:+49 151 1234 5678", "telegram:42", "chat:x"]:
        once = str(normalise_address(raw))
        assert str(normalise_address(once)) == once


def test_search_digits_is_empty_for_other_kinds() -> None:
    assert normalise_address("email:alice@example.com").search_digits == ""
    assert normalise_address("telegram:123").search_digits == ""
