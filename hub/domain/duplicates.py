"""Agents' decisions on duplicate suggestions: "not the same person" (a dismissal, recorded on
both customers so the pair is never suggested again) and its undo (docs/duplicates.md).

The suggestions themselves are a projection (``hub.projections.duplicates``); merging a pair
is :meth:`hub.domain.identity.IdentityCommands.merge`.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from hub.domain.blocklist import BlocklistCommands
from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import Conflict, CustomerErased, InvalidCommand
from hub.domain.identity import IdentityCommands
from hub.domain.ids import uuid7
from hub.domain.model import Customer
from hub.domain.unit_of_work import CommandRunner, UnitOfWork


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a dismissal or its undo: whether it recorded anything."""

    customer_id: UUID
    other_customer_id: UUID
    dismissed: bool
    changed: bool


class DuplicateCommands:
    """Duplicate decisions of the hub (``HubApplication.duplicates``)."""

    def __init__(
        self, runner: CommandRunner, cipher: PersonalDataCipher, identity: IdentityCommands
    ) -> None:
        self._runner = runner
        self._cipher = cipher
        self._identity = identity

    @property
    def blocklist(self) -> BlocklistCommands:
        """The identity blocklist (kept with the identity rules that obey it)."""
        return self._identity.blocklist

    def dismiss(self, customer_id: UUID, other_id: UUID, *, actor: str | None) -> Decision:
        """Record that the two customers are different people, on both; recorded already:
        nothing new. Refused for one customer, an unknown or erased one, or two customers of
        one merge group (unmerge first)."""
        return self._decide(customer_id, other_id, actor, dismiss=True)

    def restore(self, customer_id: UUID, other_id: UUID, *, actor: str | None) -> Decision:
        """Undo a dismissal, so the pair may be suggested again; none recorded: nothing."""
        return self._decide(customer_id, other_id, actor, dismiss=False)

    def _decide(
        self, customer_id: UUID, other_id: UUID, actor: str | None, *, dismiss: bool
    ) -> Decision:
        if customer_id == other_id:
            raise InvalidCommand("a customer is always the same person as itself", id=str(other_id))

        def command(uow: UnitOfWork) -> Decision:
            uow.load([customer_id, other_id])
            one, two = self._customer(uow, customer_id), self._customer(uow, other_id)
            if dismiss and self._identity.root(uow, one).id == self._identity.root(uow, two).id:
                raise Conflict(
                    "same_group",
                    "these customers are merged into one; unmerge them first",
                    customer_id=str(customer_id),
                    other_customer_id=str(other_id),
                )
            correlation_id = uuid7()
            changed = False
            for this, that in ((one, two), (two, one)):
                if dismiss and that.id not in this.not_duplicates:
                    this.dismiss_duplicate(
                        other_customer_id=that.id, actor=actor, correlation_id=correlation_id
                    )
                    changed = True
                elif not dismiss and that.id in this.not_duplicates:
                    this.restore_duplicate(
                        other_customer_id=that.id, actor=actor, correlation_id=correlation_id
                    )
                    changed = True
            uow.collect(one, two)
            return Decision(customer_id, other_id, dismiss, changed)

        return self._runner.run(command)

    def dismissed(self, customer_id: UUID) -> list[UUID]:
        """The customers an agent said are not the same person as this one."""

        def query(uow: UnitOfWork) -> list[UUID]:
            return list(uow.require(Customer, customer_id, "customer").not_duplicates)

        return self._runner.read(query)

    def _customer(self, uow: UnitOfWork, customer_id: UUID) -> Customer:
        customer = uow.require(Customer, customer_id, "customer")
        if self._cipher.is_erased(customer_id):
            raise CustomerErased("this customer was erased", customer_id=str(customer_id))
        return customer
