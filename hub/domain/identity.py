"""Who is who: linking addresses to customers, merging duplicates and undoing merges.

A merge records that two customers are one person; it moves nothing. Each customer keeps its
addresses, conversations, messages and consent ledger, and points at the customer it was
merged into; the views show a whole group as one customer. An unmerge clears the pointer, so
the timeline goes back exactly as it was, including whatever arrived while merged.

Every merge and unmerge is an event with provenance: who (``actor``), why (``reason``) and, when
a customer's own action caused it (a verified email in the chat), which event (``caused_by``).
Rules, decided on the aggregates:
- a customer merges into the root of the other's group, so groups are trees one level deep in
  practice and never cycles (the survivor's ``Absorbed`` event makes racing merges conflict);
- a customer already merged elsewhere must be unmerged first;
- merging what is already one group changes nothing (a retry is not an error);
- a merge that would make a group larger than ``max_group_size`` customers is refused
  (``merge_group_too_large``), so one bad merge cannot swallow thousands of customers.

Nothing is linked or merged automatically through an address on the identity blocklist
(``hub.domain.blocklist``), nor past the group size: the chat visitor is told nothing
different, and the hub logs why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from hub.domain.blocklist import BlocklistCommands
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import Conflict, CustomerErased, InvalidCommand
from hub.domain.ids import uuid7
from hub.domain.model import AddressClaim, Customer
from hub.domain.unit_of_work import CommandRunner, UnitOfWork

log = logging.getLogger(__name__)

#: A chain of merges deeper than this is a bug, not data.
_MAX_DEPTH = 64
#: Default of ``HUB_IDENTITY__MAX_GROUP_SIZE`` (:meth:`IdentityCommands.configure`).
MAX_GROUP_SIZE = 20

#: ``refused``: the address is on the blocklist, or the merge its proof calls for would make
#: a group too large; nothing was linked (the reason is logged).
LinkOutcome = Literal["linked", "verified", "unchanged", "merged", "needs_verification", "refused"]


@dataclass(frozen=True, slots=True)
class MergeResult:
    customer_id: UUID  # the group's root after the command
    merged_customer_id: UUID
    changed: bool


@dataclass(frozen=True, slots=True)
class LinkResult:
    outcome: LinkOutcome
    customer_id: UUID  # who owns the address now (the owner's customer, or the one merged into)


class IdentityCommands:
    """Identity commands of the hub (``HubApplication.identity``)."""

    def __init__(
        self,
        runner: CommandRunner,
        cipher: PersonalDataCipher,
        address_id: Callable[[str], UUID],
    ) -> None:
        self._runner = runner
        self._cipher = cipher
        self._address_id = address_id
        self.blocklist = BlocklistCommands(runner)
        self.max_group_size = MAX_GROUP_SIZE

    def configure(
        self,
        *,
        blocklist: Sequence[str] = (),
        max_group_size: int = MAX_GROUP_SIZE,
        default_region: str | None = None,
    ) -> None:
        """The hub's settings: ``HUB_IDENTITY__BLOCKLIST``, ``HUB_IDENTITY__MAX_GROUP_SIZE``
        and ``HUB_DEFAULT_REGION`` (to read blocklisted numbers without a country code)."""
        self.blocklist.configure(blocklist, default_region)
        self.max_group_size = max_group_size

    # -- merge and unmerge -----------------------------------------------------------------

    def merge(
        self,
        survivor_id: UUID,
        merged_id: UUID,
        *,
        actor: str | None,
        reason: str,
        caused_by: UUID | None = None,
    ) -> MergeResult:
        """Record that ``merged_id`` is the same person as ``survivor_id``."""
        if survivor_id == merged_id:
            raise InvalidCommand("a customer cannot be merged into itself", id=str(merged_id))

        def command(uow: UnitOfWork) -> MergeResult:
            return self._merge(uow, survivor_id, merged_id, actor, reason, caused_by)

        return self._runner.run(command)

    def _merge(
        self,
        uow: UnitOfWork,
        survivor_id: UUID,
        merged_id: UUID,
        actor: str | None,
        reason: str,
        caused_by: UUID | None,
    ) -> MergeResult:
        survivor = self._customer(uow, survivor_id)
        merged = self._customer(uow, merged_id)
        root = self.root(uow, survivor)
        if root.id == merged.id or self.root(uow, merged).id == root.id:
            return MergeResult(root.id, merged.id, changed=False)  # already one group
        if merged.merged_into is not None:
            raise Conflict(
                "already_merged",
                "this customer is merged into another one; unmerge it first",
                customer_id=str(merged.id),
                merged_into=str(merged.merged_into),
            )
        sizes = self.group_size(uow, root), self.group_size(uow, merged)
        if sum(sizes) > self.max_group_size:
            raise Conflict(
                "merge_group_too_large",
                f"merging would make a group of {sum(sizes)} customers ({sizes[0]} + "
                f"{sizes[1]}); the limit is {self.max_group_size}",
                size=sum(sizes),
                survivor_group=sizes[0],
                merged_group=sizes[1],
                limit=self.max_group_size,
            )
        correlation_id = uuid7()
        merged.merge_into(
            into_customer_id=root.id,
            actor=actor,
            reason=self._sealed(merged.id, reason),
            caused_by=caused_by,
            correlation_id=correlation_id,
        )
        root.absorb(customer_id=merged.id, correlation_id=correlation_id)
        uow.collect(merged, root)
        return MergeResult(root.id, merged.id, changed=True)

    def unmerge(self, customer_id: UUID, *, actor: str | None, reason: str) -> MergeResult:
        """Undo the merge of ``customer_id``; one not merged is left as it is."""

        def command(uow: UnitOfWork) -> MergeResult:
            customer = self._customer(uow, customer_id, allow_erased=True)
            if customer.merged_into is None:
                return MergeResult(customer.id, customer.id, changed=False)
            survivor = uow.require(Customer, customer.merged_into, "customer")
            correlation_id = uuid7()
            customer.unmerge(
                from_customer_id=survivor.id,
                actor=actor,
                reason=self._sealed(customer.id, reason),
                correlation_id=correlation_id,
            )
            survivor.release(customer_id=customer.id, correlation_id=correlation_id)
            uow.collect(customer, survivor)
            return MergeResult(survivor.id, customer.id, changed=True)

        return self._runner.run(command)

    # -- linking addresses -----------------------------------------------------------------

    def link_address(
        self,
        owner_address: str,
        address: str,
        *,
        verified: bool,
        reason: str,
        actor: str | None = None,
        display_name: str | None = None,
    ) -> LinkResult:
        """Link ``address`` (normalised) to the customer who owns ``owner_address``.

        - a new address is linked, verified or not;
        - an address the same group already has: marked verified when it now is;
        - an address another customer owns: with proof (``verified``), the owner's customer
          merges into that customer (it came first and owns the address); without proof
          nothing is recorded and the caller is told verification is needed.
        The owner's customer is created if this is its first contact (a chat visitor who
        gives an email before writing anything).
        """

        def command(uow: UnitOfWork) -> LinkResult:
            found = self._link(uow, owner_address, address, verified, reason, actor, display_name)
            self._cipher.save_keys(uow.new_keys)
            return found

        return self._runner.run(command)

    def _link(
        self,
        uow: UnitOfWork,
        owner_address: str,
        address: str,
        verified: bool,
        reason: str,
        actor: str | None,
        display_name: str | None,
    ) -> LinkResult:
        owner_aid, aid = self._address_id(owner_address), self._address_id(address)
        uow.load([owner_aid, aid])
        owner = self._owner(uow, owner_aid, owner_address, display_name)
        if self.blocklist.effective_in(uow).blocks(address):
            log.info("not linking a blocklisted %s address (%s)", address.partition(":")[0], reason)
            return LinkResult("refused", owner.id)
        claim = uow.get(AddressClaim, aid)
        if claim is None or self._cipher.is_erased(claim.customer_id):
            if claim is None:
                uow.add(
                    AddressClaim(
                        address_id=aid,
                        customer_id=owner.id,
                        conversations={},
                        correlation_id=uuid7(),
                    )
                )
            else:
                claim.reassign(customer_id=owner.id, conversations={}, correlation_id=uuid7())
            self._note_link(owner, aid, address, verified, reason, actor)
            uow.collect(owner, uow.peek(AddressClaim, aid))
            return LinkResult("linked", owner.id)
        holder = self._customer(uow, claim.customer_id)
        if self.root(uow, holder).id == self.root(uow, owner).id:
            if not verified or aid in holder.verified_address_ids:
                return LinkResult("unchanged", holder.id)
            self._note_link(holder, aid, address, True, reason, actor)
            uow.collect(holder)
            return LinkResult("verified", holder.id)
        if not verified:
            return LinkResult("needs_verification", owner.id)
        # The proven owner of the address came first: the visitor's whole group joins theirs.
        visitors = self.root(uow, owner)
        size = self.group_size(uow, self.root(uow, holder)) + self.group_size(uow, visitors)
        if size > self.max_group_size:
            log.warning(
                "not merging by verification: the group would hold %d customers (limit %d)",
                size,
                self.max_group_size,
            )
            return LinkResult("refused", owner.id)
        if aid not in holder.verified_address_ids:
            self._note_link(holder, aid, address, True, reason, actor)
            uow.collect(holder)
        self._merge(uow, holder.id, visitors.id, actor, reason, caused_by=None)
        return LinkResult("merged", holder.id)

    # -- helpers ---------------------------------------------------------------------------

    def _sealed(self, customer_id: UUID, reason: str) -> str:
        """A merge's free-text reason, encrypted under the customer's key like every personal
        field ("" once the customer is erased: an unmerge stays possible)."""
        if self._cipher.is_erased(customer_id):
            return ""
        return self._cipher.encrypt(customer_id, reason) or ""

    def _note_link(
        self,
        customer: Customer,
        aid: UUID,
        address: str,
        verified: bool,
        reason: str,
        actor: str | None,
    ) -> None:
        customer.link_identity(
            address_id=aid,
            address=self._cipher.encrypt(customer.id, address),
            address_kind=address.partition(":")[0],
            verified=verified,
            reason=self._sealed(customer.id, reason),
            correlation_id=uuid7(),
            actor=actor,
        )

    def _customer(self, uow: UnitOfWork, customer_id: UUID, allow_erased: bool = False) -> Customer:
        customer = uow.require(Customer, customer_id, "customer")
        if not allow_erased and self._cipher.is_erased(customer_id):
            raise CustomerErased("this customer was erased", customer_id=str(customer_id))
        return customer

    def root(self, uow: UnitOfWork, customer: Customer) -> Customer:
        """The customer at the top of ``customer``'s group."""
        for _ in range(_MAX_DEPTH):
            if customer.merged_into is None:
                return customer
            customer = uow.require(Customer, customer.merged_into, "customer")
        raise AssertionError(f"merge chain deeper than {_MAX_DEPTH} at {customer.id}")

    def group_size(self, uow: UnitOfWork, root: Customer) -> int:
        """How many customers the group of ``root`` holds (``root`` included), following
        whom each absorbed (a level of the tree per bulk read)."""
        size, level = 1, list(root.absorbed)
        for _ in range(_MAX_DEPTH):
            if not level:
                return size
            size += len(level)
            uow.load(level)
            level = [c for m in level for c in uow.require(Customer, m, "customer").absorbed]
        raise AssertionError(f"merge tree deeper than {_MAX_DEPTH} under {root.id}")

    def _owner(
        self, uow: UnitOfWork, aid: UUID, address: str, display_name: str | None
    ) -> Customer:
        """The customer of ``address``, registered now if the address is new."""
        claim = uow.get(AddressClaim, aid)
        if claim is not None and not self._cipher.is_erased(claim.customer_id):
            return self._customer(uow, claim.customer_id)
        customer_id = uuid7()
        uow.new_keys[customer_id] = self._cipher.new_key(customer_id)
        customer = Customer(
            customer_id=customer_id,
            display_name=self._cipher.encrypt(customer_id, display_name),
            address_id=aid,
            address=self._cipher.encrypt(customer_id, address),
            address_kind=address.partition(":")[0],
            first_seen_at=datetime.now(UTC),
            correlation_id=customer_id,
        )
        uow.add(customer)
        if claim is None:
            new_claim = AddressClaim(
                address_id=aid, customer_id=customer_id, conversations={}, correlation_id=uuid7()
            )
            uow.add(new_claim)
        else:
            claim.reassign(customer_id=customer_id, conversations={}, correlation_id=uuid7())
        uow.collect(customer, uow.peek(AddressClaim, aid))
        return customer
