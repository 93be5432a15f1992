"""Console sessions: an agent signs in once with a token and gets a session cookie.

The cookie holds a random session id; the state database holds only its SHA-256 hash, with the
hash of the token that opened it. A session is worth exactly what its token is: revoking the
token ends every session opened with it (within the token cache's few seconds), and a session
also ends at its expiry or when the agent signs out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, select

from hub.store.tokens import Principal, TokenStore

metadata = MetaData()
console_sessions = Table(
    "hub_console_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class SessionStore:
    """Sessions over a :class:`TokenStore` (its tokens decide who a session is)."""

    def __init__(
        self,
        engine: Engine,
        tokens: TokenStore,
        forms_key: bytes,
        lifetime: timedelta = timedelta(hours=12),
        cache_seconds: float = 5.0,
    ) -> None:
        self._engine = engine
        self._forms_key = forms_key
        self._tokens = tokens
        self._lifetime = lifetime
        self._cache_seconds = cache_seconds
        # session hash -> (principal, valid until, the token store's revocations then)
        self._cache: dict[str, tuple[Principal | None, float, int]] = {}
        self._lock = threading.Lock()
        self._closed = 0
        metadata.create_all(engine)

    @property
    def revocations(self) -> int:
        """Sign-outs and token revocations made by this process: a live feed that sees it
        change checks its session again at once."""
        return self._closed + self._tokens.revocations

    def open(self, token: str) -> tuple[str, Principal] | None:
        """A new session for a valid token: ``(session id, principal)``; None otherwise."""
        principal = self._tokens.verify(token)
        if principal is None:
            return None
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._engine.begin() as conn:
            conn.execute(
                console_sessions.delete().where(console_sessions.c.expires_at < now)
            )  # tidy up as we go
            conn.execute(
                console_sessions.insert().values(
                    session_hash=_hash(session_id),
                    token_hash=_hash(token),
                    created_at=now,
                    expires_at=now + self._lifetime,
                )
            )
        return session_id, principal

    def principal(self, session_id: str) -> Principal | None:
        """Who a session is, or None when it is unknown, expired or its token revoked."""
        digest = _hash(session_id)
        revocations = self._tokens.revocations
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > time.monotonic() and cached[2] == revocations:
            return cached[0]
        principal = self._lookup(digest, fresh=False)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, time.monotonic() + self._cache_seconds, revocations)
        return principal

    def current(self, session_id: str) -> Principal | None:
        """:meth:`principal` from the database, bypassing every cache (two keyed lookups):
        what a live feed asks while it runs."""
        return self._lookup(_hash(session_id), fresh=True)

    def _lookup(self, digest: str, *, fresh: bool) -> Principal | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(console_sessions.c.token_hash).where(
                    console_sessions.c.session_hash == digest,
                    console_sessions.c.expires_at > datetime.now(UTC),
                )
            ).first()
        return self._tokens.by_hash(row.token_hash, fresh=fresh) if row is not None else None

    def close(self, session_id: str) -> None:
        digest = _hash(session_id)
        with self._engine.begin() as conn:
            conn.execute(console_sessions.delete().where(console_sessions.c.session_hash == digest))
        with self._lock:
            self._cache.pop(digest, None)
            self._closed += 1

    def csrf_token(self, session_id: str) -> str:
        """The value forms of this session (or pre-session) must send back. A cross-site form
        cannot know it: it is keyed by the hub's own key and the cookie's value, so even
        someone who can plant a cookie on the hub's origin cannot compute it."""
        mac = hmac.new(self._forms_key, session_id.encode(), hashlib.sha256)
        return mac.hexdigest()[:32]
