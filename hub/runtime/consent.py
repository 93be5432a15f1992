"""Consent as the API and the console use it, on a running hub: a customer's state and ledger
(the whole merge group), a change recorded on the members whose addresses the channel reaches,
and double opt-in: the signed confirmation link, sent to the customer by email when the hub
can, and its confirmation.

The rules and the ledger are the domain's (``hub.domain.consent``, ``OutboundCommands``); this
module adds what a runtime knows: the configured rules, the merge groups and conversations of
the views, the channels a reply can take, and the hub's public URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain.consent import (
    CHANNELS,
    ConsentCell,
    ConsentEntry,
    ConsentRequest,
    ConsentRules,
    consent_history,
    consent_state,
)
from hub.domain.errors import CustomerErased, DomainError, InvalidCommand, NotFound
from hub.domain.links import LinkSigner
from hub.domain.model import Customer
from hub.domain.unit_of_work import UnitOfWork
from hub.events import CHANNEL_ADDRESS_KINDS
from hub.runtime.core import Runtime

__all__ = [
    "CONFIRM_KIND",
    "CONFIRM_PATH",
    "Confirmation",
    "ConsentChanged",
    "ConsentView",
    "change_consent",
    "confirm",
    "confirmation_request",
    "confirmation_url",
    "consent_view",
    "rules_of",
]

#: The kind of the signed links of double opt-in (``hub.domain.links``).
CONFIRM_KIND = "double_opt_in"
#: Where a confirmation link points, under the hub's public URL.
CONFIRM_PATH = "/consent/confirm/"


@dataclass(frozen=True)
class ConsentView:
    """A customer's consent as one person: ``customer_id`` is the merge group's root,
    ``state`` one cell per channel and purpose, ``history`` every member's ledger."""

    customer_id: UUID
    customer_ids: tuple[UUID, ...]
    purposes: tuple[str, ...]
    state: list[ConsentCell]
    history: list[ConsentEntry]


@dataclass(frozen=True)
class Confirmation:
    """A double opt-in request and its link: sent to the customer by email, or not (``note``
    says why, and that the link must be passed on)."""

    request: ConsentRequest
    url: str
    sent: bool
    message_id: UUID | None
    note: str


@dataclass(frozen=True)
class ConsentChanged:
    """What a change did: the members it is recorded on, the confirmations it asks for,
    and the state afterwards."""

    view: ConsentView
    recorded_on: tuple[UUID, ...]
    confirmations: tuple[Confirmation, ...]


def rules_of(runtime: Runtime) -> ConsentRules:
    """The consent rules this hub is configured with (``HUB_CONSENT__*``)."""
    return ConsentRules.configured(runtime.settings.consent)


def _group(runtime: Runtime, customer_id: UUID) -> list[UUID]:
    """The merge group of ``customer_id``, root first, after checking the store knows it
    (the views may lag a just-created customer: then it stands alone)."""
    runtime.commands.read(lambda uow: uow.require(Customer, customer_id, "customer"))
    with runtime.read() as conn:
        group = runtime.views.directory.group(conn, customer_id)
    if customer_id not in group:
        group = [customer_id]
    cipher = runtime.commands.cipher
    if any(cipher.is_erased(member) for member in group):
        raise CustomerErased(
            f"customer {customer_id}'s personal data was erased", customer_id=str(customer_id)
        )
    return group


def _view(runtime: Runtime, group: Sequence[UUID], rules: ConsentRules) -> ConsentView:
    history = consent_history(runtime.commands, group)
    return ConsentView(
        customer_id=group[0],
        customer_ids=tuple(group),
        purposes=rules.purposes,
        state=consent_state(history, rules, CHANNELS),
        history=history,
    )


def consent_view(runtime: Runtime, customer_id: UUID) -> ConsentView:
    """The consent of the customer's merge group: the state per channel and purpose and the
    whole ledger. :class:`NotFound` for an unknown customer, :class:`CustomerErased` (410)
    for an erased one."""
    return _view(runtime, _group(runtime, customer_id), rules_of(runtime))


def _reaching(runtime: Runtime, group: Sequence[UUID], channel: str) -> list[UUID]:
    """The members of ``group`` with an address ``channel`` reaches (the customers a send on
    it would go to); the root when none has one (yet)."""
    kinds = CHANNEL_ADDRESS_KINDS.get(channel, frozenset())
    with runtime.read() as conn:
        records = runtime.views.directory.get_many(conn, list(group))
    found = [r.customer_id for r in records if any(i.kind in kinds for i in r.identities)]
    return [m for m in group if m in found] or [group[0]]


def change_consent(
    runtime: Runtime,
    customer_id: UUID,
    *,
    channel: str,
    granted: bool,
    purposes: Sequence[str],
    source: str,
    evidence: str | None,
    actor: str | None,
    base_url: str | None = None,
) -> ConsentChanged:
    """Record a change of consent for the customer (as one person: on every member of the
    merge group whose address ``channel`` reaches), and for each double opt-in request it
    makes, a signed link: sent to the customer on their email conversation when the hub has
    a public URL and one, else returned to be passed on (``base_url``: where the caller sees
    the hub, for a link shown rather than sent)."""
    rules = rules_of(runtime)
    rules.check(channel, purposes, source)
    if source == "import" and not (evidence or "").strip():
        raise InvalidCommand("an import needs evidence: where the consent was recorded")
    group = _group(runtime, customer_id)
    targets = _reaching(runtime, group, channel)
    change = runtime.commands.outbound.change_consent(
        group[0],
        channel,
        granted,
        purposes=purposes,
        source=source,
        evidence=evidence,
        actor=actor,
        members=targets,
        rules=rules,
    )
    confirmations = tuple(
        _confirmation(runtime, request, actor, base_url) for request in change.requests
    )
    return ConsentChanged(_view(runtime, group, rules), change.recorded_on, confirmations)


def _confirmation(
    runtime: Runtime, request: ConsentRequest, actor: str | None, base_url: str | None
) -> Confirmation:
    public = runtime.settings.public_url
    url = confirmation_url(
        runtime, request.customer_id, request.request_id, request.expires_at, base_url
    )
    if not public:
        return Confirmation(
            request,
            url,
            False,
            None,
            "not sent: HUB_PUBLIC_URL is not set, so the hub has no "
            "link a customer could open; pass the URL on to the customer yourself",
        )
    with runtime.read() as conn:
        conversations = runtime.views.conversations.for_customer(
            conn, [request.customer_id], statuses=("open", "pending", "resolved"), limit=100
        )
    email = next((c for c in conversations if c.channel == "email"), None)
    if email is None:
        return Confirmation(
            request,
            url,
            False,
            None,
            "not sent: the customer has no email conversation; "
            "pass the URL on to the customer yourself",
        )
    what = " and ".join(request.purposes)
    text = (
        f"Please confirm that you agree to receive {what} messages from us by "
        f"{request.channel}: open {url} and press the button. The link is valid until "
        f"{_day(request.expires_at)}. If you did not ask for this, ignore this message: "
        "nothing changes without your confirmation."
    )
    try:
        recorded = runtime.reply(
            email.conversation_id,
            text,
            author=actor,
            channel="email",
            subject="Please confirm your subscription",
            idempotency_key=f"consent-confirmation:{request.request_id}",
        )
    except DomainError as exc:
        return Confirmation(
            request,
            url,
            False,
            None,
            f"not sent ({exc.message}); pass the URL on to the customer yourself",
        )
    return Confirmation(
        request,
        url,
        True,
        recorded.message_id,
        f"sent to the customer on their email conversation {email.conversation_id}",
    )


def confirmation_url(
    runtime: Runtime,
    customer_id: UUID,
    request_id: UUID,
    expires_at: datetime,
    base_url: str | None = None,
) -> str:
    """The signed link that confirms a double opt-in request (valid until ``expires_at``):
    under the hub's public URL, else under ``base_url`` (where the caller sees the hub; ""
    for a path). The same request always gives the same link."""
    token = LinkSigner(runtime.store.links_key).sign(
        CONFIRM_KIND, {"c": str(customer_id), "r": str(request_id)}, expires_at=expires_at
    )
    base = runtime.settings.public_url or base_url or ""
    return f"{base.rstrip('/')}{CONFIRM_PATH}{token}"


def _day(at: datetime) -> str:
    return at.strftime("%d %B %Y, %H:%M UTC")


def confirmation_request(runtime: Runtime, token: str) -> ConsentRequest:
    """The double opt-in request a confirmation link names, as it stands (state pending,
    confirmed or cancelled). ``InvalidLink`` for a token the hub did not sign for this or
    one past its expiry; :class:`NotFound` for an unknown request."""
    customer_id, request_id = _ids_of(runtime, token)

    def query(uow: UnitOfWork) -> dict[str, Any] | None:
        customer = uow.require(Customer, customer_id, "customer")
        found = customer.consent_requests.get(request_id)
        return dict(found) if found is not None else None  # a copy: read outside the lock

    found = runtime.commands.read(query)
    if found is None:
        raise NotFound("no such consent request", request_id=str(request_id))
    return ConsentRequest(
        customer_id=customer_id,
        request_id=request_id,
        channel=found["channel"],
        purposes=tuple(found["purposes"]),
        expires_at=found["expires_at"],
        state=found["state"],
    )


def confirm(runtime: Runtime, token: str) -> ConsentRequest:
    """The customer confirmed through the link: record the grant (source ``double_opt_in``);
    again changes nothing. Refusals as :meth:`OutboundCommands.confirm_consent`."""
    customer_id, request_id = _ids_of(runtime, token)
    return runtime.commands.outbound.confirm_consent(customer_id, request_id)


def _ids_of(runtime: Runtime, token: str) -> tuple[UUID, UUID]:
    fields = LinkSigner(runtime.store.links_key).verify(CONFIRM_KIND, token)
    try:
        return UUID(str(fields["c"])), UUID(str(fields["r"]))
    except (KeyError, ValueError):  # signed by this hub, so never; but do not trust shape
        raise InvalidCommand("this link names no consent request") from None
