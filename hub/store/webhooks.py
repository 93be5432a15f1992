"""Outbound webhooks in the state database: the tables (endpoints, queue, attempt log, intake
cursors), the endpoints with their secrets sealed under a master-key derivative, and the
attempt log read back and purged. Queueing, claiming, settling: ``hub.store.webhook_queue``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    RowMapping,
    String,
    Table,
    Uuid,
    func,
    select,
)

from hub.domain.ids import uuid7
from hub.sql import lock_keys, write_transaction
from hub.store.dead_letters import as_utc

__all__ = [
    "FAILED",
    "FAN_OUT_LOCK",
    "PENDING",
    "Attempt",
    "EndpointRow",
    "WebhookStore",
    "attempt_of",
    "clear_excerpts",
    "matches",
    "time_of",
]

_NONCE = 12
PENDING, FAILED = "pending", "failed"
#: Endpoint creation and the intake's fan-out take this lock (PostgreSQL; SQLite's write lock
#: does it there): an endpoint's start position and the events queued for it never race.
FAN_OUT_LOCK = ("webhooks-fan-out", [1])

metadata = MetaData()
endpoints = Table(
    "hub_webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("description", String(500), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(16)),
    Column("disabled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("start_position", BigInteger, nullable=False),
    # nonce + AES-GCM ciphertext, bound to the endpoint's id and the column
    Column("sealed_secret", LargeBinary, nullable=False),
    Column("sealed_previous_secret", LargeBinary),
    Column("previous_expires_at", DateTime(timezone=True)),
    Column("last_success_at", DateTime(timezone=True)),
    Column("failing_since", DateTime(timezone=True)),
)
queue = Table(
    "hub_webhook_queue",
    metadata,
    Column("endpoint_id", Uuid, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("customer_id", Uuid, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("state", String(8), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("first_attempt_at", DateTime(timezone=True)),
    Column("lease_owner", String(64)),
    Column("lease_until", DateTime(timezone=True)),
    Column("last_error", String(300)),
    # the claim: rows of an endpoint in order, and "is there an earlier one of this customer"
    Index("hub_webhook_queue_order", "endpoint_id", "state", "position"),
    Index("hub_webhook_queue_customer", "endpoint_id", "customer_id", "state", "position"),
)
attempts = Table(
    "hub_webhook_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("endpoint_id", Uuid, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("position", BigInteger),
    Column("customer_id", Uuid),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Float),
    Column("outcome", String(16), nullable=False),
    Column("error", String(300)),
    Column("response_excerpt", String(256)),
    Index("hub_webhook_attempts_endpoint", "endpoint_id", "id"),
    Index("hub_webhook_attempts_customer", "customer_id"),
    Index("hub_webhook_attempts_at", "at"),
)
intake = Table(
    "hub_webhook_intake",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


def matches(patterns: Sequence[str], event_type: str) -> bool:
    """Whether an endpoint's patterns (``interaction.*``, ``*``...) take this event type."""
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def clear_excerpts(engine: Engine, customer_ids: Sequence[UUID]) -> int:
    """Erasure: forget the response excerpts of these customers' attempts (an endpoint may
    echo what it was sent). Returns how many rows were changed."""
    with write_transaction(engine) as conn:
        result = conn.execute(
            attempts.update()
            .where(attempts.c.customer_id.in_(list(customer_ids)))
            .where(attempts.c.response_excerpt.is_not(None))
            .values(response_excerpt=None)
        )
    return int(result.rowcount or 0)


@dataclass(frozen=True)
class EndpointRow:
    """An endpoint as stored, its secrets opened (the service shows none of them)."""

    id: UUID
    url: str
    event_types: tuple[str, ...]
    description: str
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    created_at: datetime
    start_position: int
    secret: str
    previous_secret: str | None
    previous_expires_at: datetime | None
    last_success_at: datetime | None
    failing_since: datetime | None

    def secrets(self, now: datetime) -> list[str]:
        """The secrets to sign with: the current one, and the previous during its grace."""
        grace = self.previous_expires_at
        if self.previous_secret and grace is not None and grace > now:
            return [self.secret, self.previous_secret]
        return [self.secret]


@dataclass(frozen=True)
class Attempt:
    """One attempt of the log (``id`` is the paging cursor, newest first)."""

    id: int
    endpoint_id: UUID
    event_id: UUID
    event_type: str
    position: int | None  # None for a ping
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: float | None
    outcome: str  # delivered | retrying | failed | disabled | ping
    error: str | None
    response_excerpt: str | None


class WebhookStore:
    """The webhook tables of the state database. ``clock`` gives every time it records."""

    def __init__(
        self,
        engine: Engine,
        seal_key: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``seal_key``: the master-key derivative the secrets are sealed with
        (``Store.webhooks_key``)."""
        self.engine = engine
        self._seal = AESGCM(seal_key)
        self.clock = clock

    @staticmethod
    def create_tables(engine: Engine) -> None:
        """Create the tables (under the schema lock, with the runtime's others)."""
        metadata.create_all(engine)

    def _now(self) -> datetime:
        return self.clock().astimezone(UTC)

    # -- endpoints ---------------------------------------------------------------------

    def add_endpoint(
        self,
        url: str,
        event_types: Sequence[str],
        description: str,
        secret: str,
        head: Callable[[], int],
    ) -> EndpointRow:
        """A new endpoint, enabled, taking the events after ``head()`` (the log's head, read
        under the fan-out lock)."""
        endpoint_id = uuid7()
        with write_transaction(self.engine) as conn:
            lock_keys(conn, *FAN_OUT_LOCK)
            conn.execute(
                endpoints.insert().values(
                    id=endpoint_id,
                    url=url,
                    event_types=list(event_types),
                    description=description,
                    enabled=True,
                    created_at=self._now(),
                    start_position=head(),
                    sealed_secret=self._sealed(endpoint_id, b"secret", secret),
                )
            )
        found = self.endpoint(endpoint_id)
        assert found is not None
        return found

    def endpoints(self, *, enabled_only: bool = False) -> list[EndpointRow]:
        query = select(endpoints).order_by(endpoints.c.created_at, endpoints.c.id)
        if enabled_only:
            query = query.where(endpoints.c.enabled)
        with self.engine.connect() as conn:
            return [self._endpoint(row) for row in conn.execute(query).mappings()]

    def endpoint(self, endpoint_id: UUID) -> EndpointRow | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(endpoints).where(endpoints.c.id == endpoint_id)).mappings()
            found = row.first()
        return None if found is None else self._endpoint(found)

    def change_endpoint(self, endpoint_id: UUID, **values: Any) -> bool:
        """Set ``url``, ``event_types``, ``description``; False if there is no such endpoint."""
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                endpoints.update().where(endpoints.c.id == endpoint_id).values(**values)
            )
        return bool(result.rowcount)

    def set_enabled(self, endpoint_id: UUID, enabled: bool, reason: str = "admin") -> bool:
        """Disable (with ``reason``) or enable; enabling starts the retries of what is pending
        afresh (due now, a new retry period). False if there is no such endpoint."""
        now = self._now()
        with write_transaction(self.engine) as conn:
            if enabled:
                values: dict[str, Any] = {"enabled": True, "disabled_reason": None}
                values |= {"disabled_at": None, "failing_since": None}
                conn.execute(
                    queue.update()
                    .where(queue.c.endpoint_id == endpoint_id, queue.c.state == PENDING)
                    .values(attempts=0, first_attempt_at=None, next_attempt_at=now)
                )
            else:
                values = {"enabled": False, "disabled_reason": reason, "disabled_at": now}
            result = conn.execute(
                endpoints.update().where(endpoints.c.id == endpoint_id).values(**values)
            )
        return bool(result.rowcount)

    def delete_endpoint(self, endpoint_id: UUID) -> bool:
        """Forget an endpoint, its queue and its attempt log."""
        with write_transaction(self.engine) as conn:
            conn.execute(queue.delete().where(queue.c.endpoint_id == endpoint_id))
            conn.execute(attempts.delete().where(attempts.c.endpoint_id == endpoint_id))
            result = conn.execute(endpoints.delete().where(endpoints.c.id == endpoint_id))
        return bool(result.rowcount)

    def rotate_secret(self, endpoint_id: UUID, secret: str, previous_until: datetime) -> bool:
        """Make ``secret`` current; the current one stays valid until ``previous_until``."""
        with write_transaction(self.engine) as conn:
            sealed = conn.scalar(
                select(endpoints.c.sealed_secret).where(endpoints.c.id == endpoint_id)
            )
            if sealed is None:
                return False
            current = self._opened(endpoint_id, b"secret", sealed)
            conn.execute(
                endpoints.update()
                .where(endpoints.c.id == endpoint_id)
                .values(
                    sealed_secret=self._sealed(endpoint_id, b"secret", secret),
                    sealed_previous_secret=self._sealed(endpoint_id, b"previous", current),
                    previous_expires_at=previous_until.astimezone(UTC),
                )
            )
        return True

    def queue_counts(self) -> dict[UUID, dict[str, int]]:
        """Rows per endpoint and state (``pending``, ``failed``)."""
        query = select(queue.c.endpoint_id, queue.c.state, func.count()).group_by(
            queue.c.endpoint_id, queue.c.state
        )
        counts: dict[UUID, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for endpoint_id, state, count in conn.execute(query):
                counts.setdefault(endpoint_id, {})[state] = int(count)
        return counts

    # -- reading, redelivering, purging ----------------------------------------------------

    def attempts(
        self, endpoint_id: UUID, *, before: int | None, limit: int, outcome: str | None
    ) -> list[Attempt]:
        query = select(attempts).where(attempts.c.endpoint_id == endpoint_id)
        if before is not None:
            query = query.where(attempts.c.id < before)
        if outcome is not None:
            query = query.where(attempts.c.outcome == outcome)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(attempts.c.id.desc()).limit(limit)).mappings()
            return [attempt_of(row) for row in rows]

    def purge_attempts(self, older_than: datetime) -> int:
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                attempts.delete().where(attempts.c.at < older_than.astimezone(UTC))
            )
        return int(result.rowcount or 0)

    # -- sealing -----------------------------------------------------------------------

    def _sealed(self, endpoint_id: UUID, column: bytes, secret: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._seal.encrypt(nonce, secret.encode(), endpoint_id.bytes + column)

    def _opened(self, endpoint_id: UUID, column: bytes, sealed: bytes) -> str:
        plain = self._seal.decrypt(sealed[:_NONCE], sealed[_NONCE:], endpoint_id.bytes + column)
        return plain.decode()

    def _endpoint(self, row: RowMapping) -> EndpointRow:
        endpoint_id: UUID = row["id"]
        previous = row["sealed_previous_secret"]
        return EndpointRow(
            id=endpoint_id,
            url=row["url"],
            event_types=tuple(row["event_types"]),
            description=row["description"],
            enabled=bool(row["enabled"]),
            disabled_reason=row["disabled_reason"],
            disabled_at=time_of(row["disabled_at"]),
            created_at=as_utc(row["created_at"]),
            start_position=int(row["start_position"]),
            secret=self._opened(endpoint_id, b"secret", row["sealed_secret"]),
            previous_secret=(
                self._opened(endpoint_id, b"previous", previous) if previous is not None else None
            ),
            previous_expires_at=time_of(row["previous_expires_at"]),
            last_success_at=time_of(row["last_success_at"]),
            failing_since=time_of(row["failing_since"]),
        )


def attempt_of(row: RowMapping | dict[str, Any]) -> Attempt:
    position = row["position"]
    return Attempt(
        id=int(row["id"]),
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        position=int(position) if position is not None else None,
        attempt=row["attempt"],
        at=as_utc(row["at"]),
        status_code=row["status_code"],
        latency_ms=row["latency_ms"],
        outcome=row["outcome"],
        error=row["error"],
        response_excerpt=row["response_excerpt"],
    )


def time_of(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None
