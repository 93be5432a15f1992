"""The identity blocklist: addresses many people share or that are fake (a front desk's
mailbox, a shop's own number, ``test@example.com``), never evidence of a duplicate and never
linked to a customer automatically (docs/duplicates.md).

The hub's list is an internal event-sourced aggregate with one deterministic id per hub, so
every change is recorded with who made it. The effective blocklist adds it to the built-in
entries (``hub.events.duplicate_keys.BUILTIN_BLOCKLIST``) and the configured ones
(``HUB_IDENTITY__BLOCKLIST``, given to :meth:`BlocklistCommands.configure`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.errors import InvalidCommand
from hub.domain.ids import uuid7
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.duplicate_keys import (
    BUILTIN_BLOCKLIST,
    MAX_BLOCKLIST_ENTRIES,
    Blocklist,
    check_blocklist_entry,
)

#: The one blocklist of a hub.
BLOCKLIST_ID = uuid5(UUID("8a3c1f0e-5b7d-4c2a-9e61-0d4f2b8c7a15"), "identity-blocklist")


class IdentityBlocklist(Aggregate):
    """The addresses the hub's admins put on the blocklist (internal: not published)."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return BLOCKLIST_ID

    @event("Started")
    def __init__(self, correlation_id: UUID) -> None:
        self.entries: list[str] = []
        self.changed_by: str | None = None

    @event("Replaced")
    def replace(self, entries: list[str], actor: str | None, correlation_id: UUID) -> None:
        """The list is now ``entries`` (normalised, sorted), set by ``actor``."""
        self.entries = list(entries)
        self.changed_by = actor


def stored_in(uow: UnitOfWork) -> list[str]:
    """The stored entries, as ``uow`` reads them."""
    found = uow.get(IdentityBlocklist, BLOCKLIST_ID)
    return list(found.entries) if found is not None else []


class BlocklistCommands:
    """Reading and replacing the hub's blocklist (``HubApplication.identity.blocklist``)."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner
        self.configured: tuple[str, ...] = ()
        self.default_region: str | None = None

    def configure(self, entries: Sequence[str], default_region: str | None = None) -> None:
        """The entries of the settings (``HUB_IDENTITY__BLOCKLIST``), normalised like the
        stored ones where they can be (kept as written where not)."""
        self.default_region = default_region
        configured = []
        for raw in entries:
            try:
                configured.append(check_blocklist_entry(raw, default_region))
            except ValueError:
                configured.append(raw.strip().lower())
        self.configured = tuple(dict.fromkeys(e for e in configured if e))

    def stored(self) -> list[str]:
        """The entries set through the API (``PUT /v1/identity-blocklist``)."""
        return self._runner.read(stored_in)

    def effective_in(self, uow: UnitOfWork) -> Blocklist:
        """:meth:`effective`, read in a command's unit of work."""
        return self.effective(stored_in(uow))

    def effective(self, stored: Sequence[str] | None = None) -> Blocklist:
        """Built-in, configured and stored entries together."""
        entries = self.stored() if stored is None else stored
        return Blocklist([*BUILTIN_BLOCKLIST, *self.configured, *entries])

    def replace(self, entries: Sequence[str], actor: str | None) -> list[str]:
        """Make the stored list exactly ``entries`` (each normalised: ``InvalidCommand``
        naming the first that is not an email or phone address or pattern); the same list
        again records nothing. Returns the list as stored."""
        if len(entries) > MAX_BLOCKLIST_ENTRIES:
            raise InvalidCommand(
                f"at most {MAX_BLOCKLIST_ENTRIES} entries", limit=MAX_BLOCKLIST_ENTRIES
            )
        wanted: list[str] = []
        for index, raw in enumerate(entries):
            try:
                wanted.append(check_blocklist_entry(raw, self.default_region))
            except ValueError as exc:
                raise InvalidCommand(str(exc), index=index) from None
        wanted = sorted(set(wanted))

        def command(uow: UnitOfWork) -> list[str]:
            found = uow.get(IdentityBlocklist, BLOCKLIST_ID)
            if found is None:
                found = IdentityBlocklist(correlation_id=uuid7())
                uow.add(found)
            if found.entries != wanted:
                found.replace(entries=wanted, actor=actor, correlation_id=uuid7())
            uow.collect(found)
            return list(found.entries)

        return self._runner.run(command)
