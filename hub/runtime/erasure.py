"""Erasure across a runtime: the domain's erasure, then every other copy, within seconds.

The domain (``hub.domain.erasure``) destroys the data keys of the whole merge group and
records ``customer.erased.v1``: from then on no stored event of theirs decrypts. This module
removes what the keys do not cover, at once rather than at the next rebuild:

- the caches of this process (keys, aggregates, the address cache);
- the views: timeline, directory and search, conversations (``Views.erase``; the views also
  remember the ids, so a lagging event can never write plaintext back);
- dead letters that mention one of the customer's addresses;
- what connectors keep of the addresses (chat mailboxes), and what this process's running
  connectors hold in memory (the sandbox's simulated phones and mailboxes);
- the response excerpts in the webhook attempt log of the customers' events (an endpoint's
  answer may echo what it was sent; the queue itself holds ids only, and what is still to be
  sent is rendered from the store, erased);
- the bytes SQLite still holds of deleted rows: pages are zeroed on delete (secure_delete) and
  the write-ahead logs are checkpointed and truncated, so no file of the data directory keeps
  a copy.

Every other process learns of the erasure from the log: followers and projection workers
apply ``customer.erased.v1`` (the views purge again) and drop their own caches.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote
from uuid import UUID

from sqlalchemy import Engine

from hub.connectors import registry
from hub.connectors.base import Connector
from hub.projections import Views
from hub.store import Store
from hub.store.webhooks import clear_excerpts

__all__ = ["ErasureReport", "compact_sqlite", "erase_customer"]

log = logging.getLogger(__name__)

#: How long an erasure waits for SQLite readers to let the write-ahead log be truncated.
COMPACT_SECONDS = 10.0


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did (the API's and the CLI's answer)."""

    customer_ids: tuple[UUID, ...]
    erased_at: datetime
    already_erased: bool  # nothing was left to erase: a repeated request
    removed: dict[str, int] = field(default_factory=dict)  # rows removed beyond the views
    files_compacted: bool = True  # no SQLite file keeps bytes of what was deleted
    kafka_copies_expire_by: datetime | None = None  # the distributed runtime's topics


def erase_customer(
    store: Store,
    views: Views,
    customer_id: UUID,
    *,
    actor: str | None,
    reason: str,
    kafka_copies_expire_by: Callable[[datetime], datetime | None],
    running: Sequence[Connector] = (),
) -> ErasureReport:
    """Erase ``customer_id`` and its merge group everywhere the runtime of ``store`` and
    ``views`` reaches (idempotent: a repeated erasure purges again and reports
    ``already_erased``)."""
    app = store.app
    erasure = app.erasure.erase(
        customer_id, actor=actor, reason=reason, forget=app.forget_customers
    )
    views.erase(erasure.customer_ids, erasure.erased_at)
    removed = {
        "dead_letters": store.dead_letters.purge_mentioning(address_needles(erasure.addresses)),
        "connector_rows": _forget_in_connectors(store.state_engine, erasure.addresses),
        "connector_memory": sum(c.forget_in_memory(erasure.addresses) for c in running),
        "webhook_excerpts": clear_excerpts(store.state_engine, erasure.customer_ids),
    }
    compacted = all(compact_sqlite(engine) for engine in {store.state_engine, store.views_engine})
    log.info(
        "erased %d customer(s) (reason %s); removed %s",
        len(erasure.customer_ids),
        reason,
        removed,
    )
    return ErasureReport(
        customer_ids=erasure.customer_ids,
        erased_at=erasure.erased_at,
        already_erased=not erasure.newly_erased,
        removed=removed,
        files_compacted=compacted,
        kafka_copies_expire_by=kafka_copies_expire_by(erasure.erased_at),
    )


def address_needles(addresses: tuple[str, ...]) -> list[bytes]:
    """What an address looks like inside a raw request or mail: its value, a phone number
    without its ``+``, and URL-encoded (form posts). Values shorter than 5 characters are
    left out: they would match unrelated letters."""
    needles: set[str] = set()
    for address in addresses:
        value = address.partition(":")[2] or address
        forms = {value, quote(value, safe="")}
        if value.startswith("+"):
            forms.add(value[1:])
        needles.update(f for f in forms if len(f) >= 5)
    return sorted(n.encode() for n in needles)


def _forget_in_connectors(engine: Engine, addresses: tuple[str, ...]) -> int:
    """Rows the connectors' own tables keep of these addresses, deleted (a connector that
    cannot be loaded is logged and skipped: its tables were never created here)."""
    removed = 0
    for name in registry.available():
        try:
            cls = registry.load(name)
        except Exception as exc:  # a third-party package that fails to import
            log.warning("erasure: connector %s could not be loaded: %s", name, exc)
            continue
        if cls.tables is not None:
            removed += cls.forget(engine, addresses)
    return removed


def compact_sqlite(engine: Engine, within: float = COMPACT_SECONDS) -> bool:
    """Checkpoint a SQLite database's write-ahead log into the file and truncate it to zero
    bytes, so old page images (rows since deleted) are gone from the WAL too; retried while
    readers hold old snapshots. True when done (or not SQLite); False if readers kept it
    from finishing within ``within`` seconds (the next erasure or checkpoint finishes it)."""
    if engine.dialect.name != "sqlite":
        return True
    deadline = time.monotonic() + within
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert isinstance(dbapi, sqlite3.Connection)
        while True:
            busy, _, _ = dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            if time.monotonic() >= deadline:
                log.warning("erasure: SQLite readers kept the WAL from being truncated")
                return False
            time.sleep(0.05)
    finally:
        raw.close()


def kafka_expiry(now: datetime, retention_hours: float) -> datetime:
    """When copies on Kafka written up to ``now`` are gone at the latest."""
    return now + timedelta(hours=retention_hours)
