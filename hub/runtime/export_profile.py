"""The profile part of a person's export (``hub.runtime.export``): what agents set on each
customer record (birthday, time zone, language, company, custom attributes) and where it came
from, folded from its events, and the group's profile (the first record's value where set,
else the first one known, as the directory shows it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from hub.domain.crypto import PersonalDataCipher
from hub.events.export import ExportMember

#: The profile fields an agent sets besides the name (``hub.domain.profile_values``).
_FIELDS = ("birthday", "time_zone", "language", "company")


class ProfileFold:
    """One customer record's profile, from its ``Registered`` and ``ProfileUpdated`` events."""

    def __init__(self, cipher: PersonalDataCipher, customer_id: UUID) -> None:
        self._cipher = cipher
        self._customer_id = customer_id
        self.fields: dict[str, str | None] = dict.fromkeys(_FIELDS)
        self.attributes: dict[str, Any] = {}
        self.source: dict[str, Any] | None = None

    def registered(self, event: Any) -> None:
        # Events stored before acquisition sources carry none.
        self.source = self._cipher.decrypt_json(self._customer_id, getattr(event, "source", None))

    def updated(self, event: Any) -> None:
        """An edit (events stored before agents edited profiles carry only the name)."""
        cid, decrypt = self._customer_id, self._cipher.decrypt
        for name, token in (getattr(event, "fields", None) or {}).items():
            if name in self.fields:
                self.fields[name] = decrypt(cid, token) if token is not None else None
        for key, token in (getattr(event, "attributes", None) or {}).items():
            value = self._cipher.decrypt_json(cid, token) if token is not None else None
            if value is None:
                self.attributes.pop(key, None)
            else:
                self.attributes[key] = value

    def member_fields(self) -> dict[str, Any]:
        """The fields of ``ExportMember`` this fold fills."""
        return {**self.fields, "attributes": dict(self.attributes), "source": self.source}


def group_fields(members: Sequence[ExportMember]) -> dict[str, Any]:
    """The profile fields of ``ExportProfile`` besides the language, for a group (root first)."""
    attributes: dict[str, Any] = {}
    for member in members:
        for key, value in member.attributes.items():
            attributes.setdefault(key, value)
    first_source = next((m.source for m in members if m.source is not None), None)
    return {
        "birthday": next((m.birthday for m in members if m.birthday), None),
        "time_zone": next((m.time_zone for m in members if m.time_zone), None),
        "company": next((m.company for m in members if m.company), None),
        "attributes": attributes,
        "source": first_source.model_dump() if first_source is not None else None,
    }
