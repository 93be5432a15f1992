"""Channel identities: ``kind:value`` strings normalised so one person has one spelling.

``email:alice@example.com``, ``phone:+4915112345678`` (E.164; SMS, WhatsApp and voice share it),
``chat:<visitor id>``, ``messenger:<psid>``, ``instagram:<igsid>``, ``telegram:<user id>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from hub import memory
from hub.events.common import AddressKind

__all__ = [
    "SPECIAL_USE_DOMAINS",
    "Address",
    "AddressError",
    "AddressKind",
    "check_deliverable_email",
    "normalise_address",
]

#: The IANA special-use domains email-validator refuses (``local``, ``localhost``, ``test``,
#: ``invalid``, ``onion``, ``arpa``), kept here for :func:`check_deliverable_email`.
SPECIAL_USE_DOMAINS: tuple[str, ...] = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)
# email-validator refuses those domains whatever the options (``globally_deliverable=False``
# only lets single-label and numeric-TLD domains through); its documented way to accept them
# is to remove them from its module-level list, which it reads at each call. An identity needs
# valid syntax only (``.local`` and single-label intranet domains are common in B2B mail), so
# the hub takes them all out; sending refuses them itself (check_deliverable_email).
email_validator.SPECIAL_USE_DOMAIN_NAMES.clear()

_OPAQUE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_TELEGRAM_ID = re.compile(r"^-?[0-9]{1,20}$")
_KINDS: frozenset[str] = frozenset({"email", "phone", "chat", "messenger", "instagram", "telegram"})


class AddressError(ValueError):
    """An address that cannot be normalised; ``reason`` says why in words."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"cannot normalise address {raw!r}: {reason}")
        self.raw = raw
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Address:
    """A normalised channel identity."""

    kind: AddressKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def search_digits(self) -> str:
        """Digits of a phone number, for fragment search; empty for other kinds."""
        return self.value.lstrip("+") if self.kind == "phone" else ""


#: Parsed addresses (the raw text, its parse).
ADDRESSES = memory.Part("addresses", share=0.04, entry_bytes=280)


@memory.lru(ADDRESSES)
def normalise_address(raw: str, *, default_region: str | None = None) -> Address:
    """Parse ``kind:value`` (or a bare email / ``+``-prefixed phone) into its canonical form.

    Cached: parsing phone numbers is costly and the same addresses come back all the time."""
    text = raw.strip()
    if not text:
        raise AddressError(raw, "it is empty")
    kind, sep, value = text.partition(":")
    kind = kind.lower()
    if not sep or kind not in _KINDS:
        if "@" in text:
            kind, value = "email", text
        elif text.startswith("+"):
            kind, value = "phone", text
        else:
            raise AddressError(
                raw, "expected kind:value with kind one of " + ", ".join(sorted(_KINDS))
            )
    value = value.strip()
    if kind == "email":
        return Address("email", _normalise_email(raw, value))
    if kind == "phone":
        return Address("phone", _normalise_phone(raw, value, default_region))
    if kind == "telegram":
        if not _TELEGRAM_ID.match(value):
            raise AddressError(raw, "a Telegram address is a numeric user id")
        return Address("telegram", value)
    if not _OPAQUE_ID.match(value):
        raise AddressError(raw, f"a {kind} id is 1-128 letters, digits, '.', '_' or '-'")
    return Address(kind, value)  # type: ignore[arg-type]


def _normalise_email(raw: str, value: str) -> str:
    """Any syntactically valid address: whoever wrote from it exists, whatever its domain."""
    try:
        checked = validate_email(
            value,
            check_deliverability=False,  # no DNS: an identity, not a destination
            allow_smtputf8=True,
            globally_deliverable=False,  # single-label (``@intranet``) and numeric TLDs
            test_environment=True,  # ``.test`` too
            allow_domain_literal=True,  # ``user@[192.0.2.1]``
            allow_quoted_local=True,  # ``"john doe"@example.com``
        )
    except EmailNotValidError as exc:
        raise AddressError(raw, str(exc)) from None
    # Mailboxes are case-insensitive in practice; one spelling per person matters more here.
    return checked.normalized.lower()


def check_deliverable_email(value: str) -> str:
    """``value`` (an address without ``email:``) if mail to it can travel the internet, else
    :class:`AddressError`: a dotted domain with a letter TLD, neither special-use (``.local``,
    ``.test``...) nor an IP literal, and an unquoted mailbox. Syntax only, no DNS.

    The check before *sending*, stricter than the identity (:func:`normalise_address`), which
    takes every syntactically valid address a customer writes from."""
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise AddressError(value, str(exc)) from None
    domain = checked.ascii_domain
    if any(domain == name or domain.endswith(f".{name}") for name in SPECIAL_USE_DOMAINS):
        raise AddressError(value, f"{domain} is a special-use domain, not reachable from outside")
    return value


def _normalise_phone(raw: str, value: str, default_region: str | None) -> str:
    try:
        number = phonenumbers.parse(value, default_region.upper() if default_region else None)
    except phonenumbers.NumberParseException as exc:
        hint = "" if value.startswith("+") or default_region else " (no +country prefix)"
        raise AddressError(raw, f"not a phone number{hint}: {exc}") from None
    if not phonenumbers.is_possible_number(number):
        raise AddressError(raw, "not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
