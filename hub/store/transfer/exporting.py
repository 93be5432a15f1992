"""``hub store export``: a store's events, data keys, API tokens and day secrets to an export
file.

Export from a stopped (or at least quiescent) hub: events are read up to the position the export
started at, then the keys and tokens, so every exported event's data key is in the file.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import ApplicationRecorder, Notification
from sqlalchemy import Engine, RowMapping, Table, inspect, select

from hub.config import Settings
from hub.store.database import store_file
from hub.store.store import open_store
from hub.store.transfer.checks import configured_secrets, fingerprint
from hub.store.transfer.format import (
    KIND_RANK,
    PAGE_SIZE,
    ROW_TABLES,
    ExportHeader,
    TransferError,
    event_line,
    row_line,
    write_file,
)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    path: Path
    header: ExportHeader
    key_files: Path | None  # the data directory holding master.key and pepper.key, if used

    def lines(self) -> list[str]:
        h = self.header
        found = [
            f"exported {h.events} events, {h.data_keys} data keys and {h.api_tokens} API tokens "
            f"from the {h.source_backend} store to {self.path}",
            f"master key fingerprint {h.master_key_fingerprint}, address pepper fingerprint "
            f"{h.address_pepper_fingerprint}: the target needs the same HUB_MASTER_KEY and "
            "HUB_ADDRESS_PEPPER",
        ]
        if self.key_files is not None:
            found.append(
                f"(here the base64 contents of {self.key_files / 'master.key'} and "
                f"{self.key_files / 'pepper.key'})"
            )
        return found


def notifications(
    recorder: ApplicationRecorder, stop: int | None, page_size: int
) -> Iterator[Notification]:
    """Every stored event in notification order (up to ``stop``), read in pages."""
    position = 0
    while True:
        page = recorder.select_notifications(position, page_size, stop, inclusive_of_start=False)
        if not page:
            return
        yield from page
        position = page[-1].id


def _table_rows(engine: Engine, table: Table) -> Iterator[RowMapping]:
    if not inspect(engine).has_table(table.name):
        return  # a store no process ever created a token in
    query = select(table).order_by(*table.primary_key.columns).execution_options(yield_per=1000)
    with engine.connect() as conn:
        yield from conn.execute(query).mappings()


def export_store(settings: Settings, path: Path, *, page_size: int = PAGE_SIZE) -> ExportSummary:
    """Write the store these settings describe to ``path`` (see :mod:`.format`)."""
    database = store_file(settings)
    if database is not None and not database.exists():
        raise TransferError(f"no event store at {database} (check --data-dir or HUB_DATA_DIR)")
    master_key, pepper = configured_secrets(settings)
    if master_key is None or pepper is None:
        raise TransferError(
            "the source store's master key or address pepper is missing: set HUB_MASTER_KEY "
            "and HUB_ADDRESS_PEPPER (or export from the data directory holding master.key "
            "and pepper.key)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(settings)
    try:
        with tempfile.TemporaryFile(dir=path.parent) as body:
            digest = hashlib.sha256()
            counts = dict.fromkeys(KIND_RANK, 0)

            def put(kind: str, line: dict[str, Any]) -> None:
                data = orjson.dumps(line) + b"\n"
                digest.update(data)
                body.write(data)
                counts[kind] += 1

            exported_at = datetime.now(UTC)
            recorder = store.app.recorder
            top = recorder.max_notification_id() or 0
            for notification in notifications(recorder, top, page_size):
                put("event", event_line(notification))
            for kind, table in ROW_TABLES.items():
                for row in _table_rows(store.state_engine, table):
                    put(kind, row_line(kind, table, row))
            header = ExportHeader(
                source_backend=store.backend,
                exported_at=exported_at,
                source_position=top,
                events=counts["event"],
                data_keys=counts["data_key"],
                api_tokens=counts["api_token"],
                period_secrets=counts["period_secret"],
                master_key_fingerprint=fingerprint(master_key),
                address_pepper_fingerprint=fingerprint(pepper),
                body_sha256=digest.hexdigest(),
            )
            body.seek(0)
            write_file(path, orjson.dumps(header.to_json()) + b"\n", body)
    finally:
        store.close()
    from_files = not (settings.master_key and settings.address_pepper)
    key_files = settings.data_dir if database is not None and from_files else None
    return ExportSummary(path=path, header=header, key_files=key_files)
