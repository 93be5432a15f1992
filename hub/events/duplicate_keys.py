"""How addresses and names are compared when the hub looks for duplicate customers: canonical
emails, phone numbers by national significant number, folded names, the addresses a message
mentions, and the built-in identity blocklist (docs/duplicates.md).

Pure functions of their arguments, shared by the duplicates projection (which keys customers
by them), the domain (which never links a blocklisted address automatically) and the API (which
validates blocklist entries).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import translate

import phonenumbers

from hub import memory
from hub.events.addresses import AddressError, normalise_address

__all__ = [
    "BUILTIN_BLOCKLIST",
    "GMAIL_DOMAINS",
    "PLUS_TAG_DOMAINS",
    "Blocklist",
    "PhoneKey",
    "canonical_email",
    "check_blocklist_entry",
    "fold_name",
    "local_part_key",
    "mentioned_addresses",
    "phone_key",
]

#: Gmail ignores dots in the mailbox name and everything after a ``+``.
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
#: Providers that deliver ``name+tag@`` to ``name@`` (subaddressing) but keep dots: a small,
#: well-known list; on any other domain ``+`` is taken literally.
PLUS_TAG_DOMAINS = frozenset(
    {
        "outlook.com",
        "hotmail.com",
        "live.com",
        "icloud.com",
        "me.com",
        "proton.me",
        "protonmail.com",
        "fastmail.com",
    }
)
#: Addresses many people share or that are fake, never evidence of a duplicate and never
#: linked automatically, whatever the settings say (``*`` matches anything). The documentation
#: domains (example.com ...) are blocked only as ``test@``: hubs use them for demos and tests.
BUILTIN_BLOCKLIST: tuple[str, ...] = (
    "email:info@*",
    "email:noreply@*",
    "email:no-reply@*",
    "email:donotreply@*",
    "email:do-not-reply@*",
    "email:mailer-daemon@*",
    "email:postmaster@*",
    "email:test@example.com",
    "email:test@example.org",
    "email:test@example.net",
)
#: Mailbox names that say nothing about who writes (``local_part_key`` ignores them).
_GENERIC_LOCAL_PARTS = frozenset(
    {
        "admin",
        "billing",
        "biuras",
        "contact",
        "hello",
        "help",
        "info",
        "kontakt",
        "kontaktai",
        "mail",
        "marketing",
        "office",
        "orders",
        "pagalba",
        "sales",
        "service",
        "support",
        "team",
        "test",
        "user",
    }
)
#: A local part shorter than this (dots and dashes left out) is too common to compare.
_MIN_LOCAL_PART = 5
#: What a message may mention at most, and how much of its text is read.
MAX_MENTIONS = 20
MAX_SCANNED = 20_000
#: How many blocklist entries one hub may keep (``PUT /v1/identity-blocklist``).
MAX_BLOCKLIST_ENTRIES = 1000
MAX_ENTRY_LENGTH = 320

_EMAIL = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9\-]*\.)+[A-Za-z]{2,24}"
)
# A run of at least 7 digits with the separators people write numbers with: a cheap test
# before the phone-number matcher, which is costly.
_DIGIT_RUN = re.compile(r"\d[\d\s().\-/]{5,}\d")
_INTERNATIONAL_00 = re.compile(r"(?<![\d+])00(?=[1-9])")
_NOT_A_LETTER = re.compile(r"[^\w]+|[\d_]+")
_ENTRY_KINDS = ("email", "phone")
_SPECIAL_LETTERS = str.maketrans(
    {"ł": "l", "Ł": "l", "ø": "o", "Ø": "o", "đ": "d", "Đ": "d", "æ": "ae", "Æ": "ae"}
)


# -- emails ----------------------------------------------------------------------------------


def canonical_email(address: str) -> str:
    """The mailbox an email address reaches: ``email:`` + the address lowercased, and on
    providers that ignore them (:data:`GMAIL_DOMAINS`, :data:`PLUS_TAG_DOMAINS`) without
    dots and ``+tag``. ``address`` is ``email:value`` or a bare value."""
    value = address.removeprefix("email:").lower()
    local, at, domain = value.rpartition("@")
    if not at:
        return f"email:{value}"
    if domain in GMAIL_DOMAINS:
        local = local.partition("+")[0].replace(".", "")
        domain = "gmail.com"
    elif domain in PLUS_TAG_DOMAINS:
        local = local.partition("+")[0]
    return f"email:{local}@{domain}"


def local_part_key(address: str) -> str | None:
    """The mailbox name of an email address for comparison across providers (``+tag``,
    dots, dashes and underscores left out), or None when it is too short or generic to
    say anything about who writes."""
    local = canonical_email(address).removeprefix("email:").rpartition("@")[0]
    local = local.partition("+")[0].strip('"')
    if local in _GENERIC_LOCAL_PARTS:
        return None
    squeezed = re.sub(r"[._\-]", "", local)
    if len(squeezed) < _MIN_LOCAL_PART or not any(c.isalpha() for c in squeezed):
        return None
    if squeezed in _GENERIC_LOCAL_PARTS:
        return None
    return squeezed


# -- phone numbers ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PhoneKey:
    """A phone number as compared: its national significant number (the same whichever
    country code or trunk prefix it was written with) and country code."""

    e164: str
    national: str
    country_code: int

    @property
    def tail(self) -> str | None:
        """The last seven digits (None for shorter numbers)."""
        return self.national[-7:] if len(self.national) >= 7 else None


#: Phone numbers parsed for comparison (the address, its key).
PHONE_KEYS = memory.Part("phone keys", share=0.02, entry_bytes=360)


@memory.lru(PHONE_KEYS)
def phone_key(address: str) -> PhoneKey | None:
    """The :class:`PhoneKey` of ``phone:+E164`` (or a bare ``+E164``); None if unparsable."""
    value = address.removeprefix("phone:")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    national = phonenumbers.national_significant_number(number)
    if not national or number.country_code is None:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneKey(e164, national, number.country_code)


#: The country of a phone address.
REGIONS = memory.Part("regions", share=0.01, entry_bytes=160)


@memory.lru(REGIONS)
def region_of(address: str) -> str | None:
    """The country (ISO code) of a ``phone:`` address, to read numbers its owner writes
    without a country code; None for other addresses."""
    if not address.startswith("phone:"):
        return None
    try:
        number = phonenumbers.parse(address.removeprefix("phone:"), None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "ZZ" else None


# -- names -----------------------------------------------------------------------------------


#: Names as compared.
NAMES = memory.Part("names", share=0.02, entry_bytes=290)


@memory.lru(NAMES)
def fold_name(name: str | None) -> str | None:
    """A name as compared: accents folded, lowercase, words sorted (``"Jūratė
    Kazlauskienė"`` and ``"kazlauskiene jurate"`` are one). None when it holds no letters
    or looks like an address (a name some channels fill with the email or number)."""
    if not name or "@" in name:
        return None
    decomposed = unicodedata.normalize("NFKD", name.translate(_SPECIAL_LETTERS))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    words = [w for w in _NOT_A_LETTER.split(plain) if w]
    return " ".join(sorted(words)) if words else None


# -- what a message mentions -----------------------------------------------------------------


def mentioned_addresses(
    text: str | None, regions: Sequence[str | None] = (), writer: str | None = None
) -> list[str]:
    """The email addresses and phone numbers written in ``text`` ("my email is ..."),
    normalised (``email:...``, ``phone:+E164``), in order, each once, at most
    :data:`MAX_MENTIONS`. Numbers without a country code are read in each of ``regions``,
    then in the country of the ``writer``'s own number (when its address is one); with
    none, only international numbers (``+`` or ``00``) count. Never raises."""
    if not text:
        return []
    text = text[:MAX_SCANNED]
    found: dict[str, None] = {}
    if "@" in text:
        for match in _EMAIL.finditer(text):
            try:
                address = normalise_address(f"email:{match.group(0).rstrip('.')}")
            except AddressError:
                continue
            found.setdefault(str(address))
            if len(found) >= MAX_MENTIONS:
                return list(found)
    if _DIGIT_RUN.search(text):
        for number in _numbers(text, [*regions, region_of(writer) if writer else None]):
            found.setdefault(f"phone:{number}")
            if len(found) >= MAX_MENTIONS:
                break
    return list(found)


def _numbers(text: str, regions: Sequence[str | None]) -> Iterable[str]:
    """The valid phone numbers in ``text`` as E.164."""
    tried: list[str | None] = [r for r in dict.fromkeys(regions) if r]
    candidates = tried or [None]
    seen: set[str] = set()
    for region in candidates:
        scanned = text if region else _INTERNATIONAL_00.sub("+", text)
        for match in phonenumbers.PhoneNumberMatcher(scanned, region or "ZZ"):
            e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            if e164 not in seen:
                seen.add(e164)
                yield e164


# -- the blocklist ---------------------------------------------------------------------------


class Blocklist:
    """Entries (``kind:value``, ``*`` matching anything) an address is checked against;
    an email matches by its address as written or its :func:`canonical_email`."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.entries = tuple(dict.fromkeys(e.strip().lower() for e in entries if e.strip()))
        patterns = [translate(e) for e in self.entries]
        self._regex = re.compile("|".join(f"(?:{p})" for p in patterns)) if patterns else None

    def blocks(self, address: str) -> bool:
        if self._regex is None:
            return False
        value = address.lower()
        if self._regex.match(value):
            return True
        return value.startswith("email:") and bool(self._regex.match(canonical_email(value)))

    def any_blocked(self, addresses: Iterable[str]) -> bool:
        return any(self.blocks(a) for a in addresses)


BUILTIN = Blocklist(BUILTIN_BLOCKLIST)


def check_blocklist_entry(raw: str, default_region: str | None = None) -> str:
    """A blocklist entry as stored: an email or phone address normalised (``kind:value``;
    a phone number in E.164), or a pattern with ``*`` (``email:*@example.net``) lowercased.
    Raises ``ValueError`` with the reason for anything else."""
    text = raw.strip()
    if not text:
        raise ValueError("an entry is empty")
    if len(text) > MAX_ENTRY_LENGTH:
        raise ValueError(f"an entry is longer than {MAX_ENTRY_LENGTH} characters")
    kind, sep, value = text.partition(":")
    kind = kind.lower()
    if not sep or kind not in _ENTRY_KINDS:
        raise ValueError(f"{text!r}: write email:... or phone:... (a kind, then the address)")
    value = value.strip()
    if "*" in value:
        if any(c.isspace() or c in "\x00[]?" for c in value):
            raise ValueError(f"{text!r}: a pattern has no spaces, '?', '[' or ']'")
        if value.replace("*", "") in ("", "@", "+"):
            raise ValueError(f"{text!r} would block every {kind} address")
        return f"{kind}:{value.lower()}"
    try:
        return str(normalise_address(f"{kind}:{value}", default_region=default_region))
    except AddressError as exc:
        raise ValueError(f"{text!r}: {exc.reason}") from None
