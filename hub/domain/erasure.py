"""Erasure of a customer's personal data (GDPR art. 17), as the domain decides it.

A merge group is one person, so erasing any member erases every member. For each member the
command records ``Customer.Erased`` (ids, who, a reason code: nothing personal) and destroys its
data keys: every personal field of every stored event, past and replayed, is unreadable from
then on (crypto-shredding). The keys go first, so the erasure holds at once even if recording
the events fails; running the command again records what is missing and changes nothing else.

What the domain cannot reach (views, dead letters, caches, database files) is purged by the
runtime (``hub.runtime.erasure``), with the plaintext addresses this command reads before the
keys are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args
from uuid import UUID

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import InvalidCommand
from hub.domain.ids import uuid7
from hub.domain.model import Customer
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events import ErasureReason

__all__ = ["ERASURE_REASONS", "Erasure", "ErasureCommands", "ErasureReason"]

ERASURE_REASONS: tuple[str, ...] = get_args(ErasureReason)

#: A chain of merges deeper than this is a bug, not data (as in ``hub.domain.identity``).
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure covered: every member of the group, the addresses they had (in clear,
    for the purges; never stored or logged), and when."""

    customer_ids: tuple[UUID, ...]
    addresses: tuple[str, ...]
    erased_at: datetime
    newly_erased: tuple[UUID, ...]  # members that had not been erased before this command


class ErasureCommands:
    """``HubApplication.erasure``: erase a customer and its merge group."""

    def __init__(self, runner: CommandRunner, cipher: PersonalDataCipher) -> None:
        self._runner = runner
        self._cipher = cipher

    def erase(
        self,
        customer_id: UUID,
        *,
        actor: str | None,
        reason: str,
        forget: Callable[[list[UUID]], None] = lambda ids: None,
    ) -> Erasure:
        """Erase ``customer_id`` and every customer merged with it (idempotent).

        ``forget`` is called with the group's ids once the keys are destroyed, before the
        events are recorded (the runtime drops its caches there)."""
        if reason not in ERASURE_REASONS:
            raise InvalidCommand(
                f"reason must be one of {', '.join(ERASURE_REASONS)}", reason=reason
            )
        members, addresses = self._runner.read(lambda uow: self._group(uow, customer_id))
        for member in members:
            self._cipher.erase(member)
        forget(members)
        erased_at = datetime.now(UTC)
        correlation_id = uuid7()

        def record(uow: UnitOfWork) -> tuple[UUID, ...]:
            uow.load(members)
            newly = []
            for member_id in members:
                member = uow.require(Customer, member_id, "customer")
                if member.erased_at is None:
                    member.erase(
                        group=list(members),
                        actor=actor,
                        reason=reason,
                        erased_at=erased_at,
                        correlation_id=correlation_id,
                    )
                    uow.collect(member)
                    newly.append(member_id)
            return tuple(newly)

        newly = self._runner.run(record)
        return Erasure(tuple(members), addresses, erased_at, newly)

    def _group(self, uow: UnitOfWork, customer_id: UUID) -> tuple[list[UUID], tuple[str, ...]]:
        """The ids of ``customer_id``'s merge group (root first) and their addresses in clear
        (none for members whose keys are gone already)."""
        customer = uow.require(Customer, customer_id, "customer")
        for _ in range(_MAX_DEPTH):
            if customer.merged_into is None:
                break
            customer = uow.require(Customer, customer.merged_into, "customer")
        members: list[UUID] = []
        addresses: list[str] = []
        pending = [customer]
        while pending:
            member = pending.pop()
            if member.id in members:
                continue
            members.append(member.id)
            for token in member.addresses:
                clear = self._cipher.decrypt(member.id, token)
                if clear:
                    addresses.append(clear)
            uow.load(member.absorbed)
            pending.extend(uow.require(Customer, a, "customer") for a in member.absorbed)
        return members, tuple(dict.fromkeys(addresses))
