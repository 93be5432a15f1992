"""Duplicate suggestions on a running hub: the reads the API and the console share (a
customer's suggestions, the review queue, a merge preview), each with the effective blocklist
(built-in, configured and stored entries) applied at the moment of reading.
"""

from __future__ import annotations

from uuid import UUID

from hub.events.duplicate_keys import BUILTIN_BLOCKLIST, Blocklist, check_blocklist_entry
from hub.projections.duplicate_evidence import Band
from hub.projections.duplicate_queries import (
    MergePreview,
    Suggestion,
    merge_preview,
    review_queue,
    suggestions_for,
)
from hub.runtime.core import Runtime


def effective_blocklist(runtime: Runtime) -> Blocklist:
    """Built-in, configured (``HUB_IDENTITY__BLOCKLIST``) and stored entries, as they are
    now."""
    stored = runtime.commands.duplicates.blocklist.stored()
    return Blocklist([*BUILTIN_BLOCKLIST, *configured_entries(runtime), *stored])


def configured_entries(runtime: Runtime) -> list[str]:
    """The entries of ``HUB_IDENTITY__BLOCKLIST`` as the blocklist reads them (normalised
    where they are addresses)."""
    found = []
    for raw in runtime.settings.identity.blocklist:
        try:
            found.append(check_blocklist_entry(raw, runtime.settings.default_region))
        except ValueError:
            found.append(raw.strip().lower())
    return found


def suggestions(runtime: Runtime, customer_id: UUID) -> list[Suggestion]:
    """The possible duplicates of ``customer_id``'s merge group, highest score first."""
    blocked = effective_blocklist(runtime).blocks
    with runtime.read() as conn:
        return suggestions_for(conn, runtime.views.directory, customer_id, blocked)


def queue(
    runtime: Runtime, limit: int, cursor: str | None = None, band: Band | None = None
) -> tuple[list[Suggestion], str | None]:
    """A page of the review queue (``ValueError``: a cursor it did not make)."""
    blocked = effective_blocklist(runtime).blocks
    with runtime.read() as conn:
        return review_queue(conn, runtime.views.directory, limit, cursor, band, blocked)


def preview(runtime: Runtime, survivor_id: UUID, merged_id: UUID) -> MergePreview | None:
    """What merging ``merged_id`` into ``survivor_id`` would show (None: either unknown)."""
    with runtime.read() as conn:
        return merge_preview(conn, runtime.views.directory, survivor_id, merged_id)
