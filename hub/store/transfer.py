"""Moving a hub's stored state between stores: ``hub store export`` and ``hub store import``.

The usual move is from the embedded runtime (SQLite files in a data directory) to the
distributed one (PostgreSQL), but any store the settings can describe works on either side.
What moves is what cannot be rebuilt: the events, the per-customer data keys and the API
tokens. The views are rebuilt from the events afterwards (``hub projections rebuild``, or the
relay and projector of the distributed runtime).

The export file
---------------
JSON Lines, gzip-compressed when the file name ends in ``.gz`` (the import recognises gzip by
its magic bytes). Every line is an object with a ``kind``; the lines come in this order:

- one ``header``: ``format`` (``interaction-hub-store-export``), ``version`` (1),
  ``source_backend``, ``exported_at``, ``source_position`` (the last notification id exported),
  ``counts`` (``events``, ``data_keys``, ``api_tokens``), ``fingerprints`` of the master key
  and of the address pepper (the first 16 hex digits of the SHA-256 of the raw 32 bytes, so
  ``base64 -d master.key | sha256sum`` shows it; never the keys themselves) and ``body_sha256``,
  the SHA-256 of every line after the header;
- every stored event in notification order (``event``: ``originator_id``,
  ``originator_version``, ``topic``, ``state`` as base64 of the stored bytes). Nothing is
  decrypted: personal fields stay encrypted with their customer's data key;
- every row of ``hub_data_keys`` (``data_key``: still wrapped by the master key, as stored);
- every row of ``hub_api_tokens`` (``api_token``: SHA-256 hashes only, as stored).

Binary columns are base64, datetimes ISO 8601 with their offset (UTC), UUIDs canonical text.
The export is written to a temporary file beside the target and renamed into place, so a failed
export never leaves a file that looks complete; the file is readable by its owner only.
Export from a stopped (or at least quiescent) hub: events are read up to the position the export
started at, then the keys and tokens, so every exported event's data key is in the file.

Import: resumable, not atomic
-----------------------------
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

import base64
import binascii
import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import ApplicationRecorder, Notification, StoredEvent
from sqlalchemy import DateTime, Engine, LargeBinary, RowMapping, Table, Uuid, inspect, select
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.sql import insert_ignoring_duplicates
from hub.store.keys import data_keys
from hub.store.store import _secret_bytes, eventsourcing_env, open_store
from hub.store.tokens import api_tokens

FORMAT = "interaction-hub-store-export"
VERSION = 1
PAGE_SIZE = 1000
_GZIP_MAGIC = b"\x1f\x8b"
_Lines = IO[bytes] | gzip.GzipFile
#: Line kinds after the header, in the order they appear, with the table of each row kind.
_ROW_TABLES: dict[str, Table] = {"data_key": data_keys, "api_token": api_tokens}
_KIND_RANK = {"event": 0, "data_key": 1, "api_token": 2}
_COUNT_NAMES = {"event": "events", "data_key": "data_keys", "api_token": "api_tokens"}


class TransferError(Exception):
    """An export or import that cannot be done; the message says why and what to do."""


# -- keys ------------------------------------------------------------------------------------


def fingerprint(secret: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of a key: identifies it without revealing it."""
    return hashlib.sha256(secret).hexdigest()[:16]


def configured_secrets(settings: Settings) -> tuple[bytes | None, bytes | None]:
    """The master key and address pepper these settings give ``open_store``, or None for one
    that is not configured (an embedded store generates it at first open; nothing is
    generated here)."""
    embedded = eventsourcing_env(settings)["PERSISTENCE_MODULE"].startswith("hub.store.sqlite")
    found: list[bytes | None] = []
    for name, secret, file_name in (
        ("master_key", settings.master_key, "master.key"),
        ("address_pepper", settings.address_pepper, "pepper.key"),
    ):
        value = secret.get_secret_value() if secret else None
        file = settings.data_dir / file_name if embedded else None
        if value or (file is not None and file.exists()):
            found.append(_secret_bytes(value, name, file))
        else:
            found.append(None)
    return found[0], found[1]


def _embedded_path(settings: Settings) -> Path | None:
    """The SQLite file of an embedded store, None for a PostgreSQL one."""
    url = make_url(settings.resolved_store_url())
    return Path(url.database) if url.drivername.startswith("sqlite") and url.database else None


# -- the file --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportHeader:
    """The first line of an export file."""

    source_backend: str
    exported_at: datetime
    source_position: int
    events: int
    data_keys: int
    api_tokens: int
    master_key_fingerprint: str
    address_pepper_fingerprint: str
    body_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "header",
            "format": FORMAT,
            "version": VERSION,
            "source_backend": self.source_backend,
            "exported_at": self.exported_at.isoformat(),
            "source_position": self.source_position,
            "counts": {
                "events": self.events,
                "data_keys": self.data_keys,
                "api_tokens": self.api_tokens,
            },
            "fingerprints": {
                "master_key": self.master_key_fingerprint,
                "address_pepper": self.address_pepper_fingerprint,
            },
            "body_sha256": self.body_sha256,
        }

    @classmethod
    def from_json(cls, data: Any) -> ExportHeader:
        if not isinstance(data, dict) or data.get("kind") != "header":
            raise ValueError("the first line is not an export header")
        if data.get("format") != FORMAT:
            raise ValueError(f"not a hub store export (format {data.get('format')!r})")
        if data.get("version") != VERSION:
            raise ValueError(
                f"export format version {data.get('version')!r}: this hub reads version {VERSION}"
            )
        counts, prints = data["counts"], data["fingerprints"]
        return cls(
            source_backend=str(data["source_backend"]),
            exported_at=datetime.fromisoformat(data["exported_at"]),
            source_position=_integer(data["source_position"]),
            events=_integer(counts["events"]),
            data_keys=_integer(counts["data_keys"]),
            api_tokens=_integer(counts["api_tokens"]),
            master_key_fingerprint=str(prints["master_key"]),
            address_pepper_fingerprint=str(prints["address_pepper"]),
            body_sha256=str(data["body_sha256"]),
        )

    def count(self, kind: str) -> int:
        counts = {"event": self.events, "data_key": self.data_keys, "api_token": self.api_tokens}
        return counts[kind]


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _utc_iso(value: datetime) -> str:
    # SQLite gives back the naive UTC the hub stored; PostgreSQL an aware datetime.
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


def _event_line(event: StoredEvent) -> dict[str, Any]:
    return {
        "kind": "event",
        "originator_id": str(event.originator_id),
        "originator_version": event.originator_version,
        "topic": event.topic,
        "state": base64.b64encode(event.state).decode(),
    }


def _event_from(record: Mapping[str, Any]) -> StoredEvent:
    version = record["originator_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"bad originator_version {version!r}")
    topic = record["topic"]
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"bad topic {topic!r}")
    return StoredEvent(
        originator_id=UUID(record["originator_id"]),
        originator_version=version,
        topic=topic,
        state=base64.b64decode(record["state"], validate=True),
    )


def _row_line(kind: str, table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {"kind": kind}
    for column in table.columns:
        name = str(column.name)  # a str subclass, which orjson refuses as a key
        value = row[name]
        if value is None:
            line[name] = None
        elif isinstance(column.type, LargeBinary):
            line[name] = base64.b64encode(value).decode()
        elif isinstance(column.type, DateTime):
            line[name] = _utc_iso(value)
        elif isinstance(column.type, Uuid):
            line[name] = str(value)
        else:
            line[name] = value
    return line


def _row_from(table: Table, record: Mapping[str, Any]) -> dict[str, Any]:
    names = set(table.columns.keys())
    if set(record) - {"kind"} != names:
        raise ValueError(f"a {table.name} row needs exactly the columns {sorted(names)}")
    row: dict[str, Any] = {}
    for column in table.columns:
        value = record[column.name]
        if value is None:
            if not column.nullable:
                raise ValueError(f"{table.name}.{column.name} may not be null")
            row[column.name] = None
        elif isinstance(column.type, LargeBinary):
            row[column.name] = base64.b64decode(value, validate=True)
        elif isinstance(column.type, DateTime):
            row[column.name] = datetime.fromisoformat(value)
        elif isinstance(column.type, Uuid):
            row[column.name] = UUID(value)
        elif isinstance(value, str):
            row[column.name] = value
        else:
            raise ValueError(f"{table.name}.{column.name}: expected text, got {value!r}")
    return row


@contextmanager
def _reading(path: Path) -> Iterator[_Lines]:
    """The file's lines as bytes, decompressed when it is gzip; read errors as TransferError."""
    try:
        with path.open("rb") as raw:
            gzipped = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            if gzipped:
                with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                    yield unzipped
            else:
                yield raw
    except FileNotFoundError:
        raise TransferError(f"{path}: no such file") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise TransferError(f"{path} is damaged or incomplete: {exc}") from None


def _read_header(stream: _Lines, path: Path) -> ExportHeader:
    try:
        data = orjson.loads(stream.readline())
    except orjson.JSONDecodeError:
        raise TransferError(f"{path} is not a hub store export (no JSON header)") from None
    try:
        return ExportHeader.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise TransferError(f"{path}: {exc}") from None


def _parse(line: bytes, number: int, path: Path) -> tuple[str, dict[str, Any]]:
    """One line after the header as (kind, object)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise TransferError(f"{path}, line {number}: not JSON ({exc})") from None
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in _KIND_RANK:
        raise TransferError(f"{path}, line {number}: unknown kind {kind!r}")
    return kind, record


def _records(stream: _Lines, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The lines after the header as (kind, object)."""
    for number, line in enumerate(stream, start=2):
        yield _parse(line, number, path)


def check_export(path: Path) -> ExportHeader:
    """Read the whole file and check every line, the counts and the checksum; its header."""
    with _reading(path) as stream:
        header = _read_header(stream, path)
        digest = hashlib.sha256()
        counts = dict.fromkeys(_KIND_RANK, 0)
        rank = 0
        for number, line in enumerate(stream, start=2):
            digest.update(line)
            if not line.endswith(b"\n"):
                raise TransferError(f"{path} is incomplete: line {number} is cut off")
            kind, record = _parse(line, number, path)
            if _KIND_RANK[kind] < rank:
                raise TransferError(f"{path}, line {number}: a {kind} line out of order")
            rank = _KIND_RANK[kind]
            try:
                if kind == "event":
                    _event_from(record)
                else:
                    _row_from(_ROW_TABLES[kind], record)
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise TransferError(f"{path}, line {number}: bad {kind}: {exc!r}") from None
            counts[kind] += 1
    for kind, found in counts.items():
        if found != header.count(kind):
            raise TransferError(
                f"{path} is incomplete or damaged: {found} {_COUNT_NAMES[kind]} "
                f"where its header announces {header.count(kind)}"
            )
    if digest.hexdigest() != header.body_sha256:
        raise TransferError(f"{path} is damaged: its checksum does not match its header")
    return header


def _file_events(path: Path) -> Generator[StoredEvent, None, None]:
    """The file's events in order (for a file :func:`check_export` accepted)."""
    with _reading(path) as stream:
        _read_header(stream, path)
        for kind, record in _records(stream, path):
            if kind != "event":
                return
            yield _event_from(record)


def _file_rows(path: Path) -> Iterator[tuple[Table, dict[str, Any]]]:
    """The file's key and token rows (for a file :func:`check_export` accepted)."""
    with _reading(path) as stream:
        _read_header(stream, path)
        for kind, record in _records(stream, path):
            if kind in _ROW_TABLES:
                table = _ROW_TABLES[kind]
                yield table, _row_from(table, record)


# -- export ----------------------------------------------------------------------------------


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


def _notifications(
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
    """Write the store these settings describe to ``path`` (see the module docstring)."""
    database = _embedded_path(settings)
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
            counts = dict.fromkeys(_KIND_RANK, 0)

            def put(kind: str, line: dict[str, Any]) -> None:
                data = orjson.dumps(line) + b"\n"
                digest.update(data)
                body.write(data)
                counts[kind] += 1

            exported_at = datetime.now(UTC)
            recorder = store.app.recorder
            top = recorder.max_notification_id() or 0
            for notification in _notifications(recorder, top, page_size):
                put("event", _event_line(notification))
            for kind, table in _ROW_TABLES.items():
                for row in _table_rows(store.state_engine, table):
                    put(kind, _row_line(kind, table, row))
            header = ExportHeader(
                source_backend=store.backend,
                exported_at=exported_at,
                source_position=top,
                events=counts["event"],
                data_keys=counts["data_key"],
                api_tokens=counts["api_token"],
                master_key_fingerprint=fingerprint(master_key),
                address_pepper_fingerprint=fingerprint(pepper),
                body_sha256=digest.hexdigest(),
            )
            body.seek(0)
            _write_file(path, orjson.dumps(header.to_json()) + b"\n", body)
    finally:
        store.close()
    from_files = not (settings.master_key and settings.address_pepper)
    key_files = settings.data_dir if database is not None and from_files else None
    return ExportSummary(path=path, header=header, key_files=key_files)


def _write_file(path: Path, header: bytes, body: IO[bytes]) -> None:
    """Header and body to ``path``, through a temporary file renamed into place."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out:
                    out.write(header)
                    shutil.copyfileobj(body, out)
            else:
                raw.write(header)
                shutil.copyfileobj(body, raw)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- import ----------------------------------------------------------------------------------


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
    expected = _file_events(path)
    count = 0
    try:
        for found in _notifications(recorder, None, page_size):
            wanted = next(expected, None)
            if wanted is None or not _same(wanted, found):
                raise TransferError(_NOT_EMPTY)
            count += 1
    finally:
        expected.close()
    return count


def _key_problem(header: ExportHeader, settings: Settings) -> str | None:
    master_key, pepper = configured_secrets(settings)
    wrong = [
        f"{name} (export: {want}, target: {fingerprint(have) if have else 'not set'})"
        for name, have, want in (
            ("HUB_MASTER_KEY", master_key, header.master_key_fingerprint),
            ("HUB_ADDRESS_PEPPER", pepper, header.address_pepper_fingerprint),
        )
        if have is None or fingerprint(have) != want
    ]
    if not wrong:
        return None
    copy = (
        f" (or, this target being embedded, copy those two files into {settings.data_dir})"
        if _embedded_path(settings) is not None
        else ""
    )
    return (
        f"the target's keys do not match the export's: {'; '.join(wrong)}. "
        "Set HUB_MASTER_KEY and HUB_ADDRESS_PEPPER to the source hub's values (for an embedded "
        f"source: the base64 contents of master.key and pepper.key in its data directory){copy}. "
        "Without its master key no data key can be unwrapped; without its pepper known "
        "addresses would become new customers"
    )


def _insert_rows(engine: Engine, rows: Iterator[tuple[Table, dict[str, Any]]]) -> None:
    """Keys and tokens in one transaction; a row whose id (or token hash) exists is kept."""
    for table in _ROW_TABLES.values():
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
    problem = _key_problem(header, settings)
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
                _insert_rows(store.state_engine, _file_rows(path))
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

        events = _file_events(path)
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
