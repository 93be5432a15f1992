"""Business activity: what a customer did in the company's other systems (an order placed, a
payment that failed, a subscription, an appointment), recorded by those systems on the
customer's timeline and published as ``activity.recorded.v1`` (docs/activities.md).

- :class:`Activity`: one per (source, source id), its id derived from them, so a retry or a
  replay of the source's feed records nothing twice (the store's uniqueness decides a race).
- :class:`ExternalRef`: a customer's id in another system (``{"system": "shop", "id":
  "C-1042"}``) mapped to the hub's customer, its id a keyed hash of both (like an address
  claim, the id reveals nothing). Set the first time an activity names it together with a
  customer id or an address; from then on it finds the customer alone.

The customer is the one of ``customer_id``, else of ``address`` (an address no one has yet
registers a customer, as a first contact does), else of ``external_id``. Amount, currency,
type, name and source stay in clear (reports of revenue and retention read them, also after
an erasure); the reference, title, description, URL, metadata and the source's own id are
personal data, encrypted with the customer's key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import Conflict, CustomerErased, DomainError, InvalidCommand, NotFound
from hub.domain.ids import uuid7
from hub.domain.model import AddressClaim, Customer
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.activities import ActivityType
from hub.events.addresses import AddressError, normalise_address
from hub.events.common import EARLIEST_OCCURRED_AT, check_json, check_text

__all__ = [
    "ACTIVITY_TYPES",
    "AMOUNT_PATTERN",
    "CURRENCY_PATTERN",
    "NAME_PATTERN",
    "Activity",
    "ActivityCommands",
    "ActivityRecorded",
    "ActivitySpec",
    "ExternalRef",
    "activity_id",
    "check_activity",
]

_NAMESPACE = UUID("8c0b7a51-2f4e-4d6a-9b1e-5a7c3e9d1f20")
#: What a system can say the customer did; ``custom`` carries its own ``name``.
ACTIVITY_TYPES: tuple[str, ...] = ActivityType.__args__  # type: ignore[attr-defined]
#: A source system's name, a custom activity's name, an external id's system.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: An amount: a non-negative decimal with at most 4 places, as text (no float rounding).
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,4})?$"
#: An ISO 4217 alphabetic currency code.
CURRENCY_PATTERN = r"^[A-Z]{3}$"
_NAME = re.compile(NAME_PATTERN)
_AMOUNT = re.compile(AMOUNT_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)
#: Longest text of each personal field, in characters.
LIMITS = {"source_id": 200, "reference": 200, "title": 200, "description": 2000, "url": 2048}
#: Largest metadata object, as compact JSON.
MAX_METADATA_BYTES = 8192


def activity_id(source: str, source_id: str) -> UUID:
    """The id of the activity ``source`` calls ``source_id``: the same pair, the same id."""
    return uuid5(_NAMESPACE, f"activity/{source}/{source_id}")


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    """One activity as a system reported it, checked (:func:`check_activity`)."""

    type: str
    source: str
    source_id: str
    occurred_at: datetime
    customer_id: UUID | None = None
    address: str | None = None
    external_system: str | None = None
    external_id: str | None = None
    name: str | None = None
    amount: str | None = None
    currency: str | None = None
    reference: str | None = None
    title: str | None = None
    description: str | None = None
    url: str | None = None
    metadata: Mapping[str, Any] | None = None

    @property
    def id(self) -> UUID:
        return activity_id(self.source, self.source_id)


@dataclass(frozen=True, slots=True)
class ActivityRecorded:
    """The outcome of recording one activity."""

    activity_id: UUID
    customer_id: UUID
    duplicate: bool


def check_activity(
    raw: Mapping[str, Any],
    *,
    default_region: str | None = None,
    latest: datetime | None = None,
) -> ActivitySpec:
    """An :class:`ActivitySpec` of an untrusted mapping (the API body's fields), or
    :class:`InvalidCommand` whose ``details.field`` names the field (``external_id.system``
    for a nested one). The address comes back normalised; ``occurred_at`` may not be after
    ``latest`` (the caller's now plus the clock skew it allows)."""
    kind = raw.get("type")
    if kind not in ACTIVITY_TYPES:
        raise InvalidCommand(f"type is one of {', '.join(ACTIVITY_TYPES)}", field="type")
    name = raw.get("name")
    if kind == "custom":
        if name is None:
            raise InvalidCommand("a custom activity needs a name", field="name")
        _name(name, "name")
    elif name is not None:
        raise InvalidCommand(f"only a custom activity has a name ({kind} is not)", field="name")
    source = _name(raw.get("source"), "source")
    source_id = _text(raw.get("source_id"), "source_id", required=True)
    occurred_at = raw.get("occurred_at")
    if not isinstance(occurred_at, datetime) or occurred_at.utcoffset() is None:
        raise InvalidCommand("occurred_at is a time with its offset", field="occurred_at")
    try:
        at = occurred_at.astimezone(UTC)
    except OverflowError:
        raise InvalidCommand("occurred_at is out of range", field="occurred_at") from None
    if at < EARLIEST_OCCURRED_AT:
        raise InvalidCommand("occurred_at is before 1970", field="occurred_at")
    if latest is not None and at > latest:
        raise InvalidCommand(
            "occurred_at is in the future (the source's clock is wrong?)", field="occurred_at"
        )
    amount, currency = raw.get("amount"), raw.get("currency")
    if amount is not None and (not isinstance(amount, str) or not _AMOUNT.fullmatch(amount)):
        raise InvalidCommand(
            "amount is a decimal number as text, 0 or more, at most 4 decimal places "
            '(e.g. "129.00")',
            field="amount",
        )
    if currency is not None and (
        not isinstance(currency, str) or not _CURRENCY.fullmatch(currency)
    ):
        raise InvalidCommand("currency is an ISO 4217 code, e.g. EUR", field="currency")
    if amount is not None and currency is None:
        raise InvalidCommand("an amount needs its currency", field="currency")
    if currency is not None and amount is None:
        raise InvalidCommand("a currency goes with an amount", field="amount")
    customer_id, address, system, external = _who(raw, default_region)
    url = _text(raw.get("url"), "url")
    if url is not None:
        scheme, _, rest = url.partition(":")
        if scheme.lower() not in ("http", "https") or not rest.startswith("//"):
            raise InvalidCommand("url: only http:// and https:// URLs", field="url")
    metadata = raw.get("metadata") or None
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise InvalidCommand("metadata is a JSON object", field="metadata")
        try:
            check_json(dict(metadata))
        except ValueError as exc:
            raise InvalidCommand(f"metadata: {exc}", field="metadata") from None
        size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_METADATA_BYTES:
            raise InvalidCommand(
                f"metadata: at most {MAX_METADATA_BYTES} bytes as JSON", field="metadata"
            )
    return ActivitySpec(
        type=kind,
        source=source,
        source_id=source_id or "",
        occurred_at=occurred_at,
        customer_id=customer_id,
        address=address,
        external_system=system,
        external_id=external,
        name=name,
        amount=amount,
        currency=currency,
        reference=_text(raw.get("reference"), "reference"),
        title=_text(raw.get("title"), "title"),
        description=_text(raw.get("description"), "description"),
        url=url,
        metadata=dict(metadata) if metadata else None,
    )


def _who(
    raw: Mapping[str, Any], default_region: str | None
) -> tuple[UUID | None, str | None, str | None, str | None]:
    customer_id, address, ref = raw.get("customer_id"), raw.get("address"), raw.get("external_id")
    if customer_id is not None and not isinstance(customer_id, UUID):
        raise InvalidCommand("customer_id is a customer's id", field="customer_id")
    if customer_id is not None and address is not None:
        raise InvalidCommand(
            "give the customer by customer_id or by address, not both", field="address"
        )
    normalised = None
    if address is not None:
        if not isinstance(address, str):
            raise InvalidCommand("address is kind:value", field="address")
        try:
            normalised = str(normalise_address(address, default_region=default_region))
        except AddressError as exc:
            raise InvalidCommand(str(exc), field="address") from None
    system = external = None
    if ref is not None:
        if not isinstance(ref, Mapping):
            raise InvalidCommand("external_id is {system, id}", field="external_id")
        system = _name(ref.get("system"), "external_id.system")
        external = _text(ref.get("id"), "external_id.id", limit=200, required=True)
    if customer_id is None and normalised is None and external is None:
        raise InvalidCommand(
            "name the customer: customer_id, address or external_id", field="customer_id"
        )
    return customer_id, normalised, system, external


def _name(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidCommand(
            f"{field} is 1-64 letters, digits, '_', '.' or '-', starting with a letter or a digit",
            field=field,
        )
    return value


def _text(value: Any, field: str, *, limit: int | None = None, required: bool = False) -> Any:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidCommand(f"{field} is text" + (", not empty" if required else ""), field=field)
    try:
        check_text(value)
    except ValueError as exc:
        raise InvalidCommand(f"{field}: {exc}", field=field) from None
    most = limit or LIMITS[field]
    if len(value) > most:
        raise InvalidCommand(f"{field}: at most {most} characters", field=field)
    return value


# -- aggregates ----------------------------------------------------------------------------


class Activity(Aggregate):
    """Something the customer did, as another system reported it (published as
    ``activity.recorded.v1``)."""

    @staticmethod
    def create_id(activity_id: UUID, **_: Any) -> UUID:
        return activity_id

    @event("Recorded")
    def __init__(
        self,
        activity_id: UUID,
        source: str,
        customer_id: UUID,
        type: str,
        name: str | None,
        occurred_at: datetime,
        amount: str | None,
        currency: str | None,
        personal: str | None,
        correlation_id: UUID,
    ) -> None:
        """``activity_id``: :func:`activity_id` of the source and its own id (which is
        personal data: the event holds it only in ``personal``, the source's id, reference,
        title, description, URL and metadata as encrypted JSON)."""
        self.customer_id = customer_id
        self.type = type
        self.occurred_at = occurred_at


class ExternalRef(Aggregate):
    """A customer's id in another system, mapped to the hub's customer (internal)."""

    @staticmethod
    def create_id(ref_id: UUID, **_: Any) -> UUID:
        return ref_id

    @event("Mapped")
    def __init__(self, ref_id: UUID, customer_id: UUID, correlation_id: UUID) -> None:
        self.customer_id = customer_id

    @event("Remapped")
    def remap(self, customer_id: UUID, correlation_id: UUID) -> None:
        """The customer it named was erased: the id now names another one."""
        self.customer_id = customer_id


# -- commands ------------------------------------------------------------------------------


class ActivityCommands:
    """Record activities (``HubApplication.activities``)."""

    def __init__(
        self,
        runner: CommandRunner,
        cipher: PersonalDataCipher,
        address_id: Callable[[str], UUID],
    ) -> None:
        self._runner = runner
        self._cipher = cipher
        self._address_id = address_id

    def record(self, spec: ActivitySpec) -> ActivityRecorded:
        """Record one activity; the same (source, source_id) again comes back as a duplicate
        with its first ids, recording nothing. :class:`NotFound`: no such customer, or an
        external id the hub does not know given alone; :class:`CustomerErased`;
        :class:`Conflict` (``external_id_taken``): the external id names another customer."""
        [outcome] = self.record_many([spec])
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    def record_many(self, specs: Sequence[ActivitySpec]) -> list[ActivityRecorded | DomainError]:
        """Record a batch in one store transaction; an item the domain refuses comes back as
        its error, recording nothing of it, and the others are recorded."""
        if not specs:
            return []

        def command(uow: UnitOfWork) -> list[ActivityRecorded | DomainError]:
            self._prefetch(uow, specs)
            results: list[ActivityRecorded | DomainError] = []
            for spec in specs:
                try:
                    results.append(self._record_one(uow, spec))
                except DomainError as exc:
                    results.append(exc)
            self._cipher.save_keys(uow.new_keys)
            return results

        return self._runner.run(command)

    def _ref_id(self, system: str, external_id: str) -> UUID:
        # Keyed like an address: the aggregate id does not reveal the customer's id there.
        return self._address_id(f"external:{system}:{external_id}")

    def _prefetch(self, uow: UnitOfWork, specs: Sequence[ActivitySpec]) -> None:
        wanted: list[UUID | None] = []
        for spec in specs:
            wanted += [spec.id, spec.customer_id]
            if spec.address is not None:
                wanted.append(self._address_id(spec.address))
            if spec.external_system is not None and spec.external_id is not None:
                wanted.append(self._ref_id(spec.external_system, spec.external_id))
        uow.load(wanted)
        owners = [uow.peek(AddressClaim, i) or uow.peek(ExternalRef, i) for i in wanted if i]
        uow.load(o.customer_id for o in owners if o is not None)

    def _record_one(self, uow: UnitOfWork, spec: ActivitySpec) -> ActivityRecorded:
        aid = spec.id
        earlier = uow.get(Activity, aid)
        if earlier is not None:
            return ActivityRecorded(aid, earlier.customer_id, duplicate=True)
        ref_id = None
        ref: ExternalRef | None = None
        if spec.external_system is not None and spec.external_id is not None:
            ref_id = self._ref_id(spec.external_system, spec.external_id)
            ref = uow.get(ExternalRef, ref_id)
        # Every check first, so a refused item changes nothing.
        customer: Customer | None = None
        if spec.customer_id is not None:
            customer = self._live(uow, spec.customer_id)
        elif spec.address is not None:
            claim = uow.get(AddressClaim, self._address_id(spec.address))
            if claim is not None and not self._cipher.is_erased(claim.customer_id):
                customer = self._live(uow, claim.customer_id)
        elif ref is not None:
            customer = self._live(uow, ref.customer_id)
        else:
            raise NotFound(
                f"no customer has the external id {spec.external_id!r} of "
                f"{spec.external_system!r} yet: send it once with a customer_id or an address",
                field="external_id",
            )
        if (
            ref is not None
            and customer is not None
            and ref.customer_id != customer.id
            and not self._cipher.is_erased(ref.customer_id)
            and _root(uow, ref.customer_id) != _root(uow, customer.id)
        ):
            raise Conflict(
                "external_id_taken",
                f"the external id {spec.external_id!r} of {spec.external_system!r} belongs "
                "to another customer",
                customer_id=str(ref.customer_id),
            )
        # Then the changes.
        correlation_id = uuid7()
        if customer is None:  # an address no one has (or whose owner was erased)
            assert spec.address is not None
            customer = self._register(uow, spec.address, spec.occurred_at, correlation_id)
        cid = customer.id
        if ref_id is not None:
            if ref is None:
                ref = ExternalRef(ref_id=ref_id, customer_id=cid, correlation_id=correlation_id)
                uow.add(ref)
            elif self._cipher.is_erased(ref.customer_id):
                ref.remap(customer_id=cid, correlation_id=correlation_id)
        personal = {
            "source_id": spec.source_id,
            "reference": spec.reference,
            "title": spec.title,
            "description": spec.description,
            "url": spec.url,
            "metadata": dict(spec.metadata) if spec.metadata else None,
        }
        activity = Activity(
            activity_id=aid,
            source=spec.source,
            customer_id=cid,
            type=spec.type,
            name=spec.name,
            occurred_at=spec.occurred_at,
            amount=spec.amount,
            currency=spec.currency,
            personal=self._cipher.encrypt_json(cid, personal),
            correlation_id=correlation_id,
        )
        uow.add(activity)
        claim = uow.peek(AddressClaim, self._address_id(spec.address)) if spec.address else None
        uow.collect(customer, claim, ref, activity)
        return ActivityRecorded(activity.id, cid, duplicate=False)

    def _live(self, uow: UnitOfWork, customer_id: UUID) -> Customer:
        customer = uow.require(Customer, customer_id, "customer")
        if self._cipher.is_erased(customer_id):
            raise CustomerErased("this customer was erased", customer_id=str(customer_id))
        return customer

    def _register(
        self, uow: UnitOfWork, address: str, at: datetime, correlation_id: UUID
    ) -> Customer:
        """A customer for an address no one has, as a first contact registers one."""
        aid = self._address_id(address)
        customer_id = uuid7()
        uow.new_keys[customer_id] = self._cipher.new_key(customer_id)
        customer = Customer(
            customer_id=customer_id,
            display_name=None,
            address_id=aid,
            address=self._cipher.encrypt(customer_id, address),
            address_kind=address.partition(":")[0],
            first_seen_at=at,
            correlation_id=correlation_id,
        )
        uow.add(customer)
        claim = uow.get(AddressClaim, aid)
        if claim is None:
            uow.add(
                AddressClaim(
                    address_id=aid,
                    customer_id=customer_id,
                    conversations={},
                    correlation_id=correlation_id,
                )
            )
        else:
            claim.reassign(customer_id=customer_id, conversations={}, correlation_id=correlation_id)
        return customer


def _root(uow: UnitOfWork, customer_id: UUID) -> UUID:
    """The top of the customer's merge group."""
    for _ in range(64):
        customer = uow.require(Customer, customer_id, "customer")
        if customer.merged_into is None:
            return customer_id
        customer_id = customer.merged_into
    raise AssertionError(f"merge chain deeper than 64 at {customer_id}")
