"""The export file of ``hub store export``: its header, its lines, read and written.

JSON Lines, gzip-compressed when the file name ends in ``.gz`` (the import recognises gzip by
its magic bytes). Every line is an object with a ``kind``; the lines come in this order:

- one ``header``: ``format`` (``interaction-hub-store-export``), ``version`` (1),
  ``source_backend``, ``exported_at``, ``source_position`` (the last notification id exported),
  ``counts`` (``events``, ``data_keys``, ``api_tokens``, ``period_secrets``), ``fingerprints``
  of the master key and of the address pepper (the first 16 hex digits of the SHA-256 of the
  raw 32 bytes, so ``base64 -d master.key | sha256sum`` shows it; never the keys themselves)
  and ``body_sha256``, the SHA-256 of every line after the header;
- every stored event in notification order (``event``: ``originator_id``,
  ``originator_version``, ``topic``, ``state`` as base64 of the stored bytes). Nothing is
  decrypted: personal fields stay encrypted with their customer's data key;
- every row of ``hub_period_secrets`` (``period_secret``: the secrets of the days message bodies
  are sealed under, wrapped by the master key, as stored; a destroyed day has no secret).
  A file from before them has none and no such count;
- every row of ``hub_data_keys`` (``data_key``: still wrapped by the master key, as stored);
- every row of ``hub_api_tokens`` (``api_token``: SHA-256 hashes only, as stored).

Binary columns are base64, datetimes ISO 8601 with their offset (UTC), UUIDs canonical text.
The file is written to a temporary file beside the target and renamed into place, so a failed
export never leaves a file that looks complete; the file is readable by its owner only.
"""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from sqlalchemy import DateTime, LargeBinary, Table, Uuid

from hub.store.keys import data_keys, period_secrets
from hub.store.tokens import api_tokens

FORMAT = "interaction-hub-store-export"
VERSION = 1
#: Events or rows per page read from a store and per batch written to one.
PAGE_SIZE = 1000
_GZIP_MAGIC = b"\x1f\x8b"
Lines = IO[bytes] | gzip.GzipFile
#: Line kinds after the header, in the order they appear, with the table of each row kind.
ROW_TABLES: dict[str, Table] = {
    "period_secret": period_secrets,
    "data_key": data_keys,
    "api_token": api_tokens,
}
KIND_RANK = {"event": 0, "period_secret": 1, "data_key": 2, "api_token": 3}
COUNT_NAMES = {
    "event": "events",
    "data_key": "data_keys",
    "api_token": "api_tokens",
    "period_secret": "period_secrets",
}


class TransferError(Exception):
    """An export or import that cannot be done; the message says why and what to do."""


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
    period_secrets: int = 0

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
                "period_secrets": self.period_secrets,
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
            period_secrets=_integer(counts.get("period_secrets", 0)),
        )

    def count(self, kind: str) -> int:
        counts = {
            "event": self.events,
            "data_key": self.data_keys,
            "api_token": self.api_tokens,
            "period_secret": self.period_secrets,
        }
        return counts[kind]


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _utc_iso(value: datetime) -> str:
    # SQLite gives back the naive UTC the hub stored; PostgreSQL an aware datetime.
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


# -- lines -----------------------------------------------------------------------------------


def event_line(event: StoredEvent) -> dict[str, Any]:
    return {
        "kind": "event",
        "originator_id": str(event.originator_id),
        "originator_version": event.originator_version,
        "topic": event.topic,
        "state": base64.b64encode(event.state).decode(),
    }


def event_from(record: Mapping[str, Any]) -> StoredEvent:
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


def row_line(kind: str, table: Table, row: Mapping[Any, Any]) -> dict[str, Any]:
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


def row_from(table: Table, record: Mapping[str, Any]) -> dict[str, Any]:
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


# -- reading ---------------------------------------------------------------------------------


@contextmanager
def reading(path: Path) -> Iterator[Lines]:
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


def read_header(stream: Lines, path: Path) -> ExportHeader:
    try:
        data = orjson.loads(stream.readline())
    except orjson.JSONDecodeError:
        raise TransferError(f"{path} is not a hub store export (no JSON header)") from None
    try:
        return ExportHeader.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise TransferError(f"{path}: {exc}") from None


def parse_line(line: bytes, number: int, path: Path) -> tuple[str, dict[str, Any]]:
    """One line after the header as (kind, object)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise TransferError(f"{path}, line {number}: not JSON ({exc})") from None
    kind = record.get("kind") if isinstance(record, dict) else None
    if kind not in KIND_RANK:
        raise TransferError(f"{path}, line {number}: unknown kind {kind!r}")
    return kind, record


def _records(stream: Lines, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The lines after the header as (kind, object)."""
    for number, line in enumerate(stream, start=2):
        yield parse_line(line, number, path)


def file_events(path: Path) -> Generator[StoredEvent, None, None]:
    """The file's events in order (for a file :func:`~hub.store.transfer.checks.check_export`
    accepted)."""
    with reading(path) as stream:
        read_header(stream, path)
        for kind, record in _records(stream, path):
            if kind != "event":
                return
            yield event_from(record)


def file_rows(path: Path) -> Iterator[tuple[Table, dict[str, Any]]]:
    """The file's key and token rows (for a file
    :func:`~hub.store.transfer.checks.check_export` accepted)."""
    with reading(path) as stream:
        read_header(stream, path)
        for kind, record in _records(stream, path):
            if kind in ROW_TABLES:
                table = ROW_TABLES[kind]
                yield table, row_from(table, record)


# -- writing ---------------------------------------------------------------------------------


def write_file(path: Path, header: bytes, body: IO[bytes]) -> None:
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
