"""The store in tests: settings factories, interactions to record, the store opened directly,
its raw tables and views read back, and PostgreSQL made unreachable on demand."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.events import InboundInteraction
from hub.projections.views import default_projections, view_positions
from hub.store import Store, open_store

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)

#: ``make_settings(backend, **overrides)`` (the fixture in tests/conftest.py).
SettingsFactory = Callable[..., Settings]


def inbound(
    provider_message_id: str,
    *,
    channel: str = "sms",
    address: str = "phone:+4915112345678",
    occurred_at: datetime = T0,
    direction: str = "inbound",
    **extra: Any,
) -> InboundInteraction:
    return InboundInteraction(
        channel=channel,  # type: ignore[arg-type]
        direction=direction,  # type: ignore[arg-type]
        address=address,
        provider_message_id=provider_message_id,
        occurred_at=occurred_at,
        **{"text": f"text of {provider_message_id}"} | extra,
    )


@contextmanager
def opened(settings: Settings) -> Iterator[Store]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def raw_event_states(settings: Settings) -> list[bytes]:
    """The ``state`` column of every stored event, read with the database's own driver."""
    url = make_url(settings.resolved_store_url())
    if url.drivername.startswith("sqlite"):
        assert url.database
        conn = sqlite3.connect(url.database)
        try:
            rows = conn.execute("SELECT state FROM stored_events ORDER BY rowid").fetchall()
        finally:
            conn.close()
    else:
        with psycopg.connect(url.render_as_string(hide_password=False)) as pg:
            rows = pg.execute(
                "SELECT state FROM interactionhub_events ORDER BY notification_id"
            ).fetchall()
    return [bytes(row[0]) for row in rows]


def all_view_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table (and the positions), ordered by primary key."""
    tables = [view_positions]
    for projection in default_projections():
        tables += projection.tables
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in tables
        }


def view_row_counts(engine: Engine) -> dict[str, int]:
    return {name: len(rows) for name, rows in all_view_rows(engine).items()}


@contextlib.contextmanager
def database_unreachable(store_url: str) -> Iterator[None]:
    """Refuse new connections to the store's database and end the open ones."""
    url = make_url(store_url)
    name = url.database
    admin = url.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
