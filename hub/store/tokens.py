"""API bearer tokens: stored as SHA-256 hashes, never in clear; revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Uuid, select

from hub.domain.ids import uuid7

Role = Literal["admin", "agent", "service"]
ROLES: tuple[Role, ...] = ("admin", "agent", "service")

metadata = MetaData()
api_tokens = Table(
    "hub_api_tokens",
    metadata,
    Column("token_id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a token's id, name and role."""

    token_id: UUID | None
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: UUID
    name: str
    role: str
    created_at: datetime
    revoked_at: datetime | None


_ADMIN = Principal(token_id=None, name="admin (HUB_ADMIN_TOKEN)", role="admin")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Tokens in the state database; verified tokens are remembered for ``cache_seconds``
    (so a revocation takes effect within that time in every process, at once in this one)."""

    def __init__(
        self, engine: Engine, admin_token: str | None = None, cache_seconds: float = 5.0
    ) -> None:
        self._engine = engine
        self._admin_hash = _hash(admin_token) if admin_token else None
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()
        self._revocations = 0
        metadata.create_all(engine)

    @property
    def revocations(self) -> int:
        """How many revocations this process made: a long-lived stream that sees it change
        checks its token again at once instead of at its next interval."""
        return self._revocations

    def create(self, role: Role, name: str) -> tuple[UUID, str]:
        """A new token; the clear text is returned once and never stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        token = f"hub_{role}_{secrets.token_urlsafe(32)}"
        token_id = uuid7()
        with self._engine.begin() as conn:
            conn.execute(
                api_tokens.insert().values(
                    token_id=token_id,
                    name=name,
                    role=role,
                    token_hash=_hash(token),
                    created_at=datetime.now(UTC),
                )
            )
        return token_id, token

    def revoke(self, token_id: UUID) -> bool:
        with self._engine.begin() as conn:
            result = conn.execute(
                api_tokens.update()
                .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        with self._lock:
            self._cache.clear()
            self._revocations += 1
        return result.rowcount > 0

    def list(self) -> list[TokenInfo]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at)).mappings()
            return [
                TokenInfo(r["token_id"], r["name"], r["role"], r["created_at"], r["revoked_at"])
                for r in rows
            ]

    def cached(self, token: str) -> tuple[bool, Principal | None]:
        """(True, principal or None) when the answer is known without the database."""
        digest = _hash(token)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return True, _ADMIN
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic():
            return True, cached[0]
        return False, None

    def verify(self, token: str) -> Principal | None:
        return self.by_hash(_hash(token))

    def by_hash(self, digest: str, *, fresh: bool = False) -> Principal | None:
        """The principal of a token known by its hash (a console session keeps only that);
        ``fresh`` asks the database even when the answer is cached."""
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return _ADMIN
        if not fresh:
            with self._lock:
                cached = self._cache.get(digest)
            if cached is not None and cached[1] > time.monotonic():
                return cached[0]
        now, revocations = time.monotonic(), self._revocations
        with self._engine.connect() as conn:
            row = (
                conn.execute(
                    select(api_tokens.c.token_id, api_tokens.c.name, api_tokens.c.role).where(
                        api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None)
                    )
                )
                .mappings()
                .first()
            )
        principal = Principal(row["token_id"], row["name"], row["role"]) if row else None
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            if revocations == self._revocations:  # else the answer may predate a revocation
                self._cache[digest] = (principal, now + self._cache_seconds)
        return principal

    def is_active(self, principal: Principal) -> bool:
        """Whether the token ``principal`` came with is still valid, from the database (one
        lookup by primary key, no cache): what a long-lived stream asks while it runs."""
        if principal.token_id is None:  # HUB_ADMIN_TOKEN: valid for the life of the process
            return principal == _ADMIN and self._admin_hash is not None
        with self._engine.connect() as conn:
            found = conn.scalar(
                select(api_tokens.c.token_id).where(
                    api_tokens.c.token_id == principal.token_id,
                    api_tokens.c.revoked_at.is_(None),
                )
            )
        return found is not None
