"""``hub store import``: an export file into an empty store; resumable, not atomic.

eventsourcing's recorders commit each ``insert_events`` call by itself, and the data keys and
tokens live in tables of their own, so one transaction cannot span a whole import. The import is
therefore **resumable**, in steps that each leave a state a re-run recognises:

1. The whole file is read and checked first (every line, the counts and ``body_sha256``): a
   damaged or truncated file is refused before anything is written.
2. The target's master key and address pepper must have the header's fingerprints, or nothing
   is written (and no key file is generated in an embedded target's data directory).
3. The target's events are compared with the file's: none, a partial import of this very file
   (its events are exactly the file's first ones) or all of them (nothing left to do). Any
   other event in the target refuses the import: it only goes into an empty store.
4. An empty target gets the data keys and tokens in ONE transaction (rows already there are
   kept), then the events in batches, in the original order, one transaction per batch. As the
   keys commit before the first event, a target holding some of the file's events already has
   all its keys and tokens: a resumed import writes only the missing events, and never puts
   back a key that was destroyed (an erasure) in the target since.

A failed import leaves a prefix of the file's events (plus its keys and tokens); running the
same import again completes it. Keep the target hub stopped while importing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from sqlalchemy import Engine, Table

from hub.config import Settings
from hub.sql import insert_ignoring_duplicates
from hub.store.store import open_store
from hub.store.transfer.checks import check_export, key_problem
from hub.store.transfer.exporting import notifications
from hub.store.transfer.format import (
    PAGE_SIZE,
    ROW_TABLES,
    ExportHeader,
    TransferError,
    file_events,
    file_rows,
)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    header: ExportHeader
    target_backend: str
    events_written: int
    events_already_there: int

    def lines(self, rebuild_command: str = "hub projections rebuild") -> list[str]:
        h = self.header
        if self.events_written == 0 and self.events_already_there == h.events and h.events:
            return [
                f"nothing to do: the {self.target_backend} store already holds all "
                f"{h.events} events of this export"
            ]
        found = [
            f"imported {self.events_written} events, {h.data_keys} data keys and "
            f"{h.api_tokens} API tokens into the {self.target_backend} store"
        ]
        if self.events_already_there:
            found.append(
                f"(resumed: the first {self.events_already_there} events were already there)"
            )
        found += [
            "next: the views are rebuilt from the events -",
            f"  embedded or direct runtime: {rebuild_command}",
            "  distributed runtime: `hub run relay` publishes the imported history to Kafka "
            "and `hub run project` builds the views from it",
        ]
        return found


def _same(expected: StoredEvent, found: StoredEvent) -> bool:
    return (
        UUID(str(expected.originator_id)) == UUID(str(found.originator_id))
        and expected.originator_version == found.originator_version
        and expected.topic == found.topic
        and bytes(expected.state) == bytes(found.state)
    )


_NOT_EMPTY = (
    "the target store already holds events that are not from this export: import only into "
    "an empty store (a new PostgreSQL database, or a new data directory)"
)


def _events_already_there(recorder: ApplicationRecorder, path: Path, page_size: int) -> int:
    """How many of the file's first events the target holds (0: it is empty); refuses a target
    holding anything else."""
    if not recorder.max_notification_id():
        return 0
    expected = file_events(path)
    count = 0
    try:
        for found in notifications(recorder, None, page_size):
            wanted = next(expected, None)
            if wanted is None or not _same(wanted, found):
                raise TransferError(_NOT_EMPTY)
            count += 1
    finally:
        expected.close()
    return count


def _insert_rows(engine: Engine, rows: Iterator[tuple[Table, dict[str, Any]]]) -> None:
    """Keys and tokens in one transaction; a row whose id (or token hash) exists is kept."""
    for table in ROW_TABLES.values():
        table.create(engine, checkfirst=True)
    with engine.begin() as conn:
        pending: list[dict[str, Any]] = []
        current: Table | None = None

        def flush() -> None:
            if current is not None and pending:
                insert_ignoring_duplicates(conn, current, pending)
            pending.clear()

        for table, row in rows:
            if table is not current or len(pending) >= PAGE_SIZE:
                flush()
                current = table
            pending.append(row)
        flush()


def _insert_events(
    recorder: ApplicationRecorder,
    events: Iterator[StoredEvent],
    skip: int,
    batch_size: int,
    on_batch: Callable[[int], None],
) -> int:
    written = 0
    batch: list[StoredEvent] = []
    for index, event in enumerate(events):
        if index < skip:
            continue
        batch.append(event)
        if len(batch) >= batch_size:
            recorder.insert_events(batch)
            written += len(batch)
            on_batch(written)
            batch = []
    if batch:
        recorder.insert_events(batch)
        written += len(batch)
        on_batch(written)
    return written


def import_store(
    settings: Settings,
    path: Path,
    *,
    batch_size: int = PAGE_SIZE,
    on_batch: Callable[[int], None] = lambda _written: None,
) -> ImportSummary:
    """Import an export file into the (empty) store these settings describe; a re-run after
    a failure resumes (see the module docstring). ``on_batch(events written so far)``."""
    header = check_export(path)
    problem = key_problem(header, settings)
    if problem is not None:
        raise TransferError(problem)
    store = open_store(settings)
    try:
        recorder = store.app.recorder
        already = _events_already_there(recorder, path, batch_size)
        if already and already == header.events:
            return ImportSummary(header, store.backend, 0, already)
        if not already:
            try:
                _insert_rows(store.state_engine, file_rows(path))
            except TransferError:
                raise
            except Exception as exc:
                raise TransferError(
                    f"importing the data keys and tokens failed, nothing was written: {exc}"
                ) from exc
        written = 0

        def progress(count: int) -> None:
            nonlocal written
            written = count
            on_batch(count)

        events = file_events(path)
        try:
            _insert_events(recorder, events, already, batch_size, progress)
        except TransferError:
            raise
        except Exception as exc:
            raise TransferError(
                f"the import stopped after {already + written} of {header.events} events "
                f"({exc}); run the same import again to complete it"
            ) from exc
        finally:
            events.close()
        return ImportSummary(header, store.backend, written, already)
    finally:
        store.close()
