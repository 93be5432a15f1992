"""Linking an email address or a phone number to a known customer on an agent's word, as the
console does: the address normalised as the API normalises addresses, and refused when
another customer owns it (merging them is a decision of its own, with its preview).

The rules of linking are the identity commands' (``IdentityCommands.link_address``); this
module finds the customer's own address to link from and says why a link was not made.
"""

from __future__ import annotations

from uuid import UUID

from hub.domain.errors import Conflict, InvalidCommand, NotFound
from hub.domain.identity import LinkResult
from hub.events.addresses import AddressError, normalise_address
from hub.events.common import check_text
from hub.runtime.core import Runtime

__all__ = ["LINKABLE_KINDS", "link_to_customer"]

#: What an agent may link: the addresses a person tells them.
LINKABLE_KINDS = ("email", "phone")


def link_to_customer(
    runtime: Runtime,
    customer_id: UUID,
    raw_address: str,
    *,
    verified: bool,
    reason: str,
    actor: str | None,
) -> LinkResult:
    """Link ``raw_address`` (an email address or a phone number) to the group of
    ``customer_id``, verified or not, recorded with ``actor`` and ``reason``. An address the
    group already has is marked verified when it now is (else nothing changes); one another
    customer owns is refused (``address_taken``), as is one on the identity blocklist
    (``address_refused``)."""
    reason = reason.strip()
    if not reason:
        raise InvalidCommand("give a reason for linking the address")
    try:
        check_text(reason)
        address = str(
            normalise_address(raw_address, default_region=runtime.settings.default_region)
        )
    except AddressError as exc:
        raise InvalidCommand(f"not a valid address: {exc.reason}", reason=exc.reason) from None
    except ValueError:
        raise InvalidCommand("the reason holds characters that are not text") from None
    kind = address.partition(":")[0]
    if kind not in LINKABLE_KINDS:
        raise InvalidCommand("link an email address or a phone number")
    directory = runtime.views.directory
    with runtime.read() as conn:
        group = directory.group(conn, customer_id)
        own = directory.get(conn, group[0]) if group else None
        holder = directory.by_address(conn, address)
    if own is None:
        raise NotFound("this customer is not known (or was erased)", id=str(customer_id))
    if holder is not None and holder.customer_id not in group:
        raise Conflict(
            "address_taken",
            f"{address.partition(':')[2]} belongs to another customer; merge them instead",
            customer_id=str(holder.customer_id),
        )
    if not own.identities:
        raise InvalidCommand("this customer has no address to link another one to")
    found = runtime.commands.identity.link_address(
        own.identities[0].address, address, verified=verified, reason=reason, actor=actor
    )
    if found.outcome == "refused":
        raise Conflict(
            "address_refused", "this address is on the identity blocklist: it is never linked"
        )
    if found.outcome == "needs_verification":  # taken since the views were read
        raise Conflict("address_taken", "this address belongs to another customer")
    return found
