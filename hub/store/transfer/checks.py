"""What is checked before anything is written: a whole export file (every line, the counts,
the checksum), and the keys of a store against the fingerprints in an export's header.

A key is identified by its fingerprint, the first 16 hex digits of the SHA-256 of its raw 32
bytes: it tells two keys apart without revealing either.
"""

from __future__ import annotations

import binascii
import hashlib
from pathlib import Path

from hub.config import Settings
from hub.store.database import store_file
from hub.store.store import secret_bytes, secret_file
from hub.store.transfer.format import (
    COUNT_NAMES,
    KIND_RANK,
    ROW_TABLES,
    ExportHeader,
    TransferError,
    event_from,
    parse_line,
    read_header,
    reading,
    row_from,
)


def check_export(path: Path) -> ExportHeader:
    """Read the whole file and check every line, the counts and the checksum; its header."""
    with reading(path) as stream:
        header = read_header(stream, path)
        digest = hashlib.sha256()
        counts = dict.fromkeys(KIND_RANK, 0)
        rank = 0
        for number, line in enumerate(stream, start=2):
            digest.update(line)
            if not line.endswith(b"\n"):
                raise TransferError(f"{path} is incomplete: line {number} is cut off")
            kind, record = parse_line(line, number, path)
            if KIND_RANK[kind] < rank:
                raise TransferError(f"{path}, line {number}: a {kind} line out of order")
            rank = KIND_RANK[kind]
            try:
                if kind == "event":
                    event_from(record)
                else:
                    row_from(ROW_TABLES[kind], record)
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise TransferError(f"{path}, line {number}: bad {kind}: {exc!r}") from None
            counts[kind] += 1
    for kind, found in counts.items():
        if found != header.count(kind):
            raise TransferError(
                f"{path} is incomplete or damaged: {found} {COUNT_NAMES[kind]} "
                f"where its header announces {header.count(kind)}"
            )
    if digest.hexdigest() != header.body_sha256:
        raise TransferError(f"{path} is damaged: its checksum does not match its header")
    return header


# -- keys ------------------------------------------------------------------------------------


def fingerprint(secret: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of a key: identifies it without revealing it."""
    return hashlib.sha256(secret).hexdigest()[:16]


def configured_secrets(settings: Settings) -> tuple[bytes | None, bytes | None]:
    """The master key and address pepper these settings give ``open_store``, or None for one
    that is not configured (an embedded store generates it at first open; nothing is
    generated here)."""
    found: list[bytes | None] = []
    for name, secret, file_name in (
        ("master_key", settings.master_key, "master.key"),
        ("address_pepper", settings.address_pepper, "pepper.key"),
    ):
        value = secret.get_secret_value() if secret else None
        file = secret_file(settings, file_name)
        if value or (file is not None and file.exists()):
            found.append(secret_bytes(value, name, file))
        else:
            found.append(None)
    return found[0], found[1]


def key_problem(header: ExportHeader, settings: Settings) -> str | None:
    """Why the store these settings describe cannot take the export (its keys are not the
    source's), or None when they match."""
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
        if store_file(settings) is not None
        else ""
    )
    return (
        f"the target's keys do not match the export's: {'; '.join(wrong)}. "
        "Set HUB_MASTER_KEY and HUB_ADDRESS_PEPPER to the source hub's values (for an embedded "
        f"source: the base64 contents of master.key and pepper.key in its data directory){copy}. "
        "Without its master key no data key can be unwrapped; without its pepper known "
        "addresses would become new customers"
    )
