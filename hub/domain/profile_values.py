"""The rules a customer's profile values follow (docs/profile.md): what an agent may write
into a name, a birthday, a time zone, a language, a company, and into a custom attribute of
each type. Pure functions: each returns the value as the hub keeps it, or raises
:class:`ProfileRejected` naming the field and why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import available_timezones

from hub.domain.errors import DomainError
from hub.events.common import check_text

#: The fields an agent edits besides custom attributes, in the order forms show them.
PROFILE_FIELDS = ("display_name", "birthday", "time_zone", "language", "company")
#: The types a custom attribute can have.
AttributeKind = Literal["string", "number", "boolean", "date", "enum"]
ATTRIBUTE_KINDS: tuple[str, ...] = ("string", "number", "boolean", "date", "enum")

ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_NAME = 200
MAX_COMPANY = 200
MAX_STRING_ATTRIBUTE = 1000
MAX_LABEL = 100
MAX_ENUM_VALUES = 100
MAX_ENUM_VALUE = 100
#: The largest magnitude a number attribute may have: what every JSON reader keeps exact.
MAX_NUMBER = 2.0**53

_FULL_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_YEARLESS = re.compile(r"^--(\d{2})-(\d{2})$")
# RFC 5646 "langtag" (well-formed, not validated against the registry), plus private use.
_LANGTAG = re.compile(
    r"^(?P<language>[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"
    r"(?:-(?P<script>[a-z]{4}))?"
    r"(?:-(?P<region>[a-z]{2}|\d{3}))?"
    r"(?P<variants>(?:-(?:[a-z\d]{5,8}|\d[a-z\d]{3}))*)"
    r"(?P<extensions>(?:-[\da-wyz](?:-[a-z\d]{2,8})+)*)"
    r"(?P<private>-x(?:-[a-z\d]{1,8})+)?$"
)
_PRIVATE_ONLY = re.compile(r"^x(?:-[a-z\d]{1,8})+$")
MAX_LANGUAGE = 35


class ProfileRejected(DomainError):
    """A profile change the rules refuse; nothing was recorded. ``code``: ``invalid_profile``
    (a profile field), ``unknown_attribute`` (no such attribute is defined),
    ``invalid_attribute`` (a value of the wrong type, an enum value not allowed) or
    ``invalid_attribute_definition``; ``details.field`` names the field."""

    status = 422

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.code = code


@dataclass(frozen=True, slots=True)
class AttributeDefinition:
    """A custom attribute an admin defined: its key, type, label and (enum) allowed values."""

    key: str
    kind: str
    label: str
    values: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "label": self.label, "values": self.values}


def _invalid(field: str, message: str) -> ProfileRejected:
    return ProfileRejected("invalid_profile", field, message)


def _text(field: str, value: object, limit: int, code: str = "invalid_profile") -> str | None:
    """A text value stripped of surrounding space (blank: None, i.e. cleared)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProfileRejected(code, field, "expected text or null")
    try:
        check_text(value)
    except ValueError as exc:
        raise ProfileRejected(code, field, str(exc)) from None
    text = value.strip()
    if len(text) > limit:
        raise ProfileRejected(code, field, f"at most {limit} characters")
    return text or None


def check_birthday(value: object, today: date | None = None) -> str | None:
    """``YYYY-MM-DD`` (a real date, from 1900, not after today) or ``--MM-DD`` when the year
    is not known (Feb 29 allowed)."""
    text = _text("birthday", value, 10)
    if text is None:
        return None
    if found := _YEARLESS.match(text):
        month, day = int(found.group(1)), int(found.group(2))
        try:
            date(2000, month, day)  # a leap year: --02-29 is a birthday
        except ValueError:
            raise _invalid("birthday", f"{text!r} is no day of the year") from None
        return text
    found = _FULL_DATE.match(text)
    if found is None:
        raise _invalid("birthday", "expected YYYY-MM-DD, or --MM-DD without the year")
    try:
        day_ = date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        raise _invalid("birthday", f"{text!r} is not a date") from None
    latest = today or (datetime.now(UTC) + timedelta(days=1)).date()  # UTC+14 is tomorrow
    if day_.year < 1900 or day_ > latest:
        raise _invalid("birthday", "a birthday lies between 1900 and today")
    return text


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    """Every IANA zone this system knows, by its lower-case name."""
    return {name.lower(): name for name in available_timezones()}


def check_time_zone(value: object) -> str | None:
    """An IANA time zone (``Europe/Vilnius``), in its canonical spelling whatever the case."""
    text = _text("time_zone", value, 64)
    if text is None:
        return None
    found = _zones().get(text.lower())
    if found is None:
        raise _invalid("time_zone", f"{text!r} is not an IANA time zone (e.g. Europe/Vilnius)")
    return found


def check_language(value: object) -> str | None:
    """A well-formed BCP 47 language tag (RFC 5646), in its conventional case: ``pt-br`` ->
    ``pt-BR``, ``zh-hant-tw`` -> ``zh-Hant-TW``."""
    text = _text("language", value, MAX_LANGUAGE)
    if text is None:
        return None
    lower = text.lower().replace("_", "-")
    if _PRIVATE_ONLY.match(lower):
        return lower
    found = _LANGTAG.match(lower)
    if found is None:
        raise _invalid("language", f"{text!r} is not a BCP 47 language tag (e.g. lt, pt-BR)")
    parts = [found.group("language")]
    if found.group("script"):
        parts.append(found.group("script").title())
    if found.group("region"):
        parts.append(found.group("region").upper())
    tail = (found.group("variants") or "") + (found.group("extensions") or "")
    tail += found.group("private") or ""
    return "-".join(parts) + tail


def check_profile_field(name: str, value: object) -> str | None:
    """The value of profile field ``name`` as kept (None: cleared)."""
    if name == "display_name":
        return _text(name, value, MAX_NAME)
    if name == "company":
        return _text(name, value, MAX_COMPANY)
    if name == "birthday":
        return check_birthday(value)
    if name == "time_zone":
        return check_time_zone(value)
    if name == "language":
        return check_language(value)
    raise _invalid(name, "not a profile field")


# -- custom attributes -----------------------------------------------------------------------


def check_key(key: object) -> str:
    if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
        raise ProfileRejected(
            "invalid_attribute_definition",
            "key",
            "a key is a lower-case letter, then up to 39 lower-case letters, digits or _",
        )
    return key


def check_definition(
    key: object, kind: object, label: object, values: object = ()
) -> AttributeDefinition:
    """An attribute definition as kept: a key, a type, a label (1-100 characters), and for an
    enum its allowed values (1-100 distinct texts of 1-100 characters, order kept)."""
    code = "invalid_attribute_definition"
    checked_key = check_key(key)
    if kind not in ATTRIBUTE_KINDS:
        raise ProfileRejected(code, "type", f"one of {', '.join(ATTRIBUTE_KINDS)}")
    checked_label = _text("label", label, MAX_LABEL, code)
    if checked_label is None:
        raise ProfileRejected(code, "label", "a label is required")
    listed = list(values) if isinstance(values, list | tuple) else None
    if listed is None:
        raise ProfileRejected(code, "values", "expected a list")
    if kind != "enum":
        if listed:
            raise ProfileRejected(code, "values", "only an enum has values")
        return AttributeDefinition(checked_key, str(kind), checked_label)
    if not 1 <= len(listed) <= MAX_ENUM_VALUES:
        raise ProfileRejected(code, "values", f"an enum has 1 to {MAX_ENUM_VALUES} values")
    allowed: list[str] = []
    for item in listed:
        text = _text("values", item, MAX_ENUM_VALUE, code)
        if text is None:
            raise ProfileRejected(code, "values", "a value is not blank")
        if text in allowed:
            raise ProfileRejected(code, "values", f"{text!r} is listed twice")
        allowed.append(text)
    return AttributeDefinition(checked_key, "enum", checked_label, tuple(allowed))


def check_attribute(definition: AttributeDefinition, value: object) -> Any:
    """``value`` of a custom attribute as kept (None: removed), checked against its type:
    string (1-1000 characters), number (finite, not a boolean), boolean, date (YYYY-MM-DD),
    enum (one of its values)."""
    field = f"attributes.{definition.key}"
    if value is None:
        return None
    kind = definition.kind
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ProfileRejected("invalid_attribute", field, "expected true or false")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfileRejected("invalid_attribute", field, "expected a number")
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise ProfileRejected("invalid_attribute", field, "a finite number within ±2^53")
        return value
    text = _text(field, value, MAX_STRING_ATTRIBUTE, "invalid_attribute")
    if text is None:
        return None
    if kind == "date":
        found = _FULL_DATE.match(text)
        try:
            if found is None:
                raise ValueError(text)
            date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
        except ValueError:
            raise ProfileRejected("invalid_attribute", field, "expected YYYY-MM-DD") from None
    if kind == "enum" and text not in definition.values:
        raise ProfileRejected(
            "invalid_attribute", field, f"one of {', '.join(map(repr, definition.values))}"
        )
    return text


def check_attributes(
    catalogue: Mapping[str, AttributeDefinition], values: object
) -> dict[str, Any]:
    """Custom attribute values ``{key: value or null}`` checked against their definitions."""
    if not isinstance(values, Mapping):
        raise _invalid("attributes", "expected an object of attribute keys")
    checked: dict[str, Any] = {}
    for key, value in values.items():
        definition = catalogue.get(key) if isinstance(key, str) else None
        if definition is None:
            # Only a well-formed key goes back as it is (any string may come in).
            named = isinstance(key, str) and ATTRIBUTE_KEY.match(key)
            raise ProfileRejected(
                "unknown_attribute",
                f"attributes.{key}" if named else "attributes",
                f"no attribute {key if named else ascii(key)[:60]} is defined "
                "(GET /v1/attributes lists them)",
            )
        checked[key] = check_attribute(definition, value)
    return checked


def attribute_text(value: Any) -> str:
    """An attribute value as the JSON text it is sealed as (any type, kept exactly)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
