"""Agents edit a customer's profile, admins define custom attributes (docs/profile.md).

- :meth:`ProfileCommands.update` takes a JSON merge patch of the profile (a field absent: left
  as it is; null: cleared): name, birthday, time zone, language, company and custom
  attributes. Values follow ``hub.domain.profile_values``; what changed is one
  ``ProfileUpdated`` event on the customer, every value encrypted with its key, and nothing
  changed records nothing.
- A merged group is shown as one customer, its root's value winning where set, else the first
  member's that has one (``hub.projections.directory``). So an edit on any member goes to the
  root, and a value cleared is cleared on every member holding one (each its own event):
  the agent sees what they asked for.
- :class:`AttributeCatalogue` (one per hub, internal events) holds the definitions; a key's
  type never changes (``attribute_type_change``), the same definition again records nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import Conflict, CustomerErased
from hub.domain.ids import uuid7
from hub.domain.model import Customer
from hub.domain.profile_values import (
    PROFILE_FIELDS,
    AttributeDefinition,
    ProfileRejected,
    attribute_text,
    check_attributes,
    check_definition,
    check_profile_field,
)
from hub.domain.unit_of_work import CommandRunner, UnitOfWork

__all__ = [
    "CATALOGUE_ID",
    "AttributeCatalogue",
    "ProfileCommands",
    "ProfileRejected",
    "ProfileState",
    "set_time_zone",
]

#: The one attribute catalogue of a hub.
CATALOGUE_ID = uuid5(UUID("9b3b4f5e-0d7a-4c61-9d0e-6f1f2a3b4c5d"), "attribute-catalogue")
#: A merge group deeper or larger than this is a bug, not data.
_MAX_GROUP = 10_000


class AttributeCatalogue(Aggregate):
    """The custom attributes an admin defined (internal: its events are not published)."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return CATALOGUE_ID

    @event("Started")
    def __init__(self) -> None:
        self.definitions: dict[str, dict[str, Any]] = {}

    @event("AttributeDefined")
    def define(self, key: str, kind: str, label: str, values: list[str], actor: str | None) -> None:
        """``key`` is now of type ``kind``, shown as ``label``; an enum allows ``values``."""
        self.definitions = self.definitions | {
            key: {"kind": kind, "label": label, "values": list(values)}
        }

    def catalogue(self) -> dict[str, AttributeDefinition]:
        return {
            key: AttributeDefinition(key, d["kind"], d["label"], tuple(d["values"]))
            for key, d in sorted(self.definitions.items())
        }


@dataclass(frozen=True, slots=True)
class ProfileState:
    """A customer's editable profile as it stands (a merged group folded, root first)."""

    customer_id: UUID  # the group's root
    display_name: str | None = None
    birthday: str | None = None
    time_zone: str | None = None
    language: str | None = None
    company: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: What the command changed (profile fields, ``attributes.<key>``): empty when nothing.
    changed: tuple[str, ...] = ()


@dataclass(slots=True)
class _Values:
    """One customer's own profile values, decrypted."""

    fields: dict[str, str | None]
    attributes: dict[str, Any]


class ProfileCommands:
    """Profile and attribute commands of the hub (``HubApplication.profile``)."""

    def __init__(self, runner: CommandRunner, cipher: PersonalDataCipher) -> None:
        self._runner = runner
        self._cipher = cipher

    # -- attribute definitions -----------------------------------------------------------

    def attributes(self) -> list[AttributeDefinition]:
        """Every attribute defined, by key."""
        return list(self._runner.read(_catalogue).values())

    def define_attribute(
        self,
        key: str,
        kind: str,
        label: str,
        values: Sequence[str] = (),
        *,
        actor: str | None,
    ) -> tuple[AttributeDefinition, bool]:
        """Define ``key`` (or replace its label and enum values); whether anything was
        recorded. A key keeps its type: another one is :class:`Conflict`
        ``attribute_type_change``."""
        wanted = check_definition(key, kind, label, list(values))

        def command(uow: UnitOfWork) -> tuple[AttributeDefinition, bool]:
            catalogue = uow.get(AttributeCatalogue, CATALOGUE_ID)
            if catalogue is None:
                catalogue = AttributeCatalogue()
                uow.add(catalogue)
            current = catalogue.catalogue().get(wanted.key)
            if current is not None and current.kind != wanted.kind:
                raise Conflict(
                    "attribute_type_change",
                    f"attribute {wanted.key!r} is of type {current.kind}; a key keeps its "
                    "type (define a new key instead)",
                    key=wanted.key,
                    type=current.kind,
                )
            if current == wanted:
                return wanted, False
            catalogue.define(
                key=wanted.key,
                kind=wanted.kind,
                label=wanted.label,
                values=list(wanted.values),
                actor=actor,
            )
            uow.collect(catalogue)
            return wanted, True

        return self._runner.run(command)

    # -- the profile -----------------------------------------------------------------------

    def update(
        self, customer_id: UUID, changes: Mapping[str, Any], *, actor: str | None
    ) -> ProfileState:
        """Apply a merge patch of the profile (see the module docstring); the group's
        profile afterwards, with what changed. :class:`ProfileRejected` (nothing recorded)
        for a value the rules refuse, :class:`CustomerErased` once erased."""
        unknown = sorted(set(changes) - {*PROFILE_FIELDS, "attributes"})
        if unknown:
            raise ProfileRejected("invalid_profile", unknown[0], "not a profile field")
        fields = {n: check_profile_field(n, changes[n]) for n in PROFILE_FIELDS if n in changes}
        given = changes.get("attributes") or {}
        clear_all = "attributes" in changes and changes["attributes"] is None

        def command(uow: UnitOfWork) -> ProfileState:
            customer = uow.require(Customer, customer_id, "customer")
            if self._cipher.is_erased(customer_id):
                raise CustomerErased("this customer was erased", customer_id=str(customer_id))
            catalogue = _catalogue(uow)
            attributes = (
                dict.fromkeys(catalogue) if clear_all else check_attributes(catalogue, given)
            )
            kinds = {key: catalogue[key].kind for key in attributes}
            group = _group(uow, _root(uow, customer))
            changed: list[str] = []
            for index, member in enumerate(group):
                own = self._values(member)
                if index == 0:  # the root takes every change
                    new_fields = {n: v for n, v in fields.items() if own.fields.get(n) != v}
                    new_attributes = {
                        k: v for k, v in attributes.items() if _differs(own.attributes, k, v)
                    }
                else:  # the others lose what was cleared, so it shows cleared
                    new_fields = {
                        n: None for n, v in fields.items() if v is None and own.fields.get(n)
                    }
                    new_attributes = {
                        k: None for k, v in attributes.items() if v is None and k in own.attributes
                    }
                names = self._record(member, new_fields, new_attributes, kinds, actor)
                changed += [n for n in names if n not in changed]
            uow.collect(*group)
            return self._state(group, tuple(changed))

        return self._runner.run(command)

    def profile(self, customer_id: UUID) -> ProfileState:
        """The group's profile as it stands (what :meth:`update` answers)."""

        def query(uow: UnitOfWork) -> ProfileState:
            customer = uow.require(Customer, customer_id, "customer")
            return self._state(_group(uow, _root(uow, customer)), ())

        return self._runner.read(query)

    # -- helpers ---------------------------------------------------------------------------

    def _record(
        self,
        customer: Customer,
        fields: dict[str, str | None],
        attributes: dict[str, Any],
        kinds: dict[str, str],
        actor: str | None,
    ) -> list[str]:
        """One ``ProfileUpdated`` with these new values (none: nothing); what it names."""
        changed = [*fields, *(f"attributes.{k}" for k in attributes)]
        if not changed:
            return []
        cid = customer.id
        enc = self._cipher.encrypt
        name = customer.display_name
        if "display_name" in fields:
            name = enc(cid, fields["display_name"])
        customer.update_profile(
            display_name=name,
            correlation_id=uuid7(),
            changed=changed,
            fields={n: enc(cid, v) for n, v in fields.items() if n != "display_name"},
            attributes={
                k: None if v is None else enc(cid, attribute_text(v)) for k, v in attributes.items()
            },
            kinds={k: kinds[k] for k in attributes},
            actor=actor,
        )
        return changed

    def _values(self, customer: Customer) -> _Values:
        cid, dec = customer.id, self._cipher.decrypt
        fields: dict[str, str | None] = {n: dec(cid, v) for n, v in customer.profile.items()}
        fields["display_name"] = dec(cid, customer.display_name)
        attributes = {}
        for key, token in customer.attributes.items():
            text = dec(cid, token)
            if text is not None:
                attributes[key] = json.loads(text)
        return _Values(fields, attributes)

    def _state(self, group: list[Customer], changed: tuple[str, ...]) -> ProfileState:
        """The group folded: the root's value where set, else the first member's."""
        values = [self._values(c) for c in group]
        folded: dict[str, Any] = {}
        for name in PROFILE_FIELDS:
            folded[name] = next((v.fields[name] for v in values if v.fields.get(name)), None)
        attributes: dict[str, Any] = {}
        for v in values:
            for key, value in v.attributes.items():
                attributes.setdefault(key, value)
        return ProfileState(
            customer_id=group[0].id, **folded, attributes=attributes, changed=changed
        )


def _differs(current: Mapping[str, Any], key: str, value: Any) -> bool:
    """Whether setting attribute ``key`` to ``value`` changes it (``1`` and ``1.0`` and
    ``true`` are different values here, as they are in JSON)."""
    if value is None:
        return key in current
    return key not in current or attribute_text(current[key]) != attribute_text(value)


def _catalogue(uow: UnitOfWork) -> dict[str, AttributeDefinition]:
    found = uow.get(AttributeCatalogue, CATALOGUE_ID)
    return found.catalogue() if found is not None else {}


def _root(uow: UnitOfWork, customer: Customer) -> Customer:
    """The customer at the top of ``customer``'s merge group."""
    for _ in range(64):
        if customer.merged_into is None:
            return customer
        customer = uow.require(Customer, customer.merged_into, "customer")
    raise AssertionError(f"merge chain deeper than 64 at {customer.id}")


def _group(uow: UnitOfWork, root: Customer) -> list[Customer]:
    """``root`` and every customer merged into it (directly or not), in merge order."""
    group, seen, index = [root], {root.id}, 0
    while index < len(group) and len(group) < _MAX_GROUP:
        uow.load(group[index].absorbed)  # one read for a customer's direct members
        for member_id in group[index].absorbed:
            member = uow.get(Customer, member_id)
            if member is not None and member.id not in seen:
                seen.add(member.id)
                group.append(member)
        index += 1
    return group


def set_time_zone(uow: UnitOfWork, cipher: PersonalDataCipher, customer: Customer) -> str | None:
    """The time zone an agent set for ``customer``: its group root's, else its own (None:
    none set). Quiet hours and scheduled sends use it before any guess."""
    for holder in (_root(uow, customer), customer):
        token = holder.profile.get("time_zone")
        zone = cipher.decrypt(holder.id, token) if token else None
        if zone:
            return zone
    return None
