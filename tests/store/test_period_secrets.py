"""hub.store.keys' secrets per day (retention by age) on SQLite and PostgreSQL: made once even
when processes race, wrapped by the master key, destroyed for good (never made again), moved by
``hub store export/import`` with the destroyed days still destroyed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from hub.config import Settings
from hub.events import InteractionReceived
from hub.store import Store
from hub.store.database import create_db_engine
from hub.store.keys import SqlPeriodSecrets, destroyed_periods, period_secrets
from hub.store.transfer import export_store, import_store
from tests.store.test_transfer import settings_pair
from tests.support.store import SettingsFactory, inbound, opened

MASTER = bytes(range(32))


def test_a_days_secret_is_made_once_and_kept_wrapped(settings: Settings) -> None:
    with opened(settings) as store:
        secrets = SqlPeriodSecrets(store.state_engine, MASTER)
        assert secrets.secret("20240601", create=False) is None

        made = secrets.secret("20240601", create=True)

        assert made is not None
        assert len(made) == 32
        assert secrets.secret("20240601", create=True) == made
        assert secrets.secret("20240601", create=False) == made
        assert secrets.secret("20240602", create=True) != made
        with store.state_engine.connect() as conn:
            stored = conn.scalar(
                select(period_secrets.c.wrapped_secret).where(period_secrets.c.period == "20240601")
            )
        assert stored is not None
        assert made not in bytes(stored)
        with pytest.raises(InvalidTag):  # another master key cannot unwrap it
            SqlPeriodSecrets(store.state_engine, bytes(32)).secret("20240601", create=False)


def test_racing_processes_agree_on_one_secret(settings: Settings) -> None:
    with opened(settings):
        pass  # the tables exist, as once a hub started
    engines = [create_db_engine(settings.resolved_store_url()) for _ in range(6)]
    try:
        stores = [SqlPeriodSecrets(e, MASTER) for e in engines]
        start = threading.Barrier(len(stores))
        found: list[bytes | None] = [None] * len(stores)

        def make(i: int) -> None:
            start.wait()
            found[i] = stores[i].secret("20240601", create=True)

        threads = [threading.Thread(target=make, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        for e in engines:
            e.dispose()
    assert found[0] is not None
    assert found == [found[0]] * len(stores)


def test_destroyed_days_stay_destroyed(settings: Settings) -> None:
    with opened(settings) as store:
        secrets = SqlPeriodSecrets(store.state_engine, MASTER)
        for day in ("20240530", "20240531", "20240601", "20240602"):
            secrets.secret(day, create=True)

        assert secrets.destroy_before("20240601") == ["20240530", "20240531"]

        assert secrets.secret("20240531", create=False) is None
        assert secrets.secret("20240531", create=True) is None  # never made again
        assert secrets.secret("20240601", create=False) is not None
        assert destroyed_periods(store.state_engine) == ["20240530", "20240531"]
        assert secrets.destroy_before("20240601") == []
        assert secrets.destroy_before("20240603") == ["20240601", "20240602"]
        with store.state_engine.connect() as conn:
            rows = conn.execute(select(period_secrets)).mappings().all()
        assert all(r["wrapped_secret"] is None for r in rows)
        assert all(r["destroyed_at"] is not None for r in rows)


@pytest.mark.parametrize(("source", "target"), [("sqlite", "postgres"), ("postgres", "sqlite")])
def test_export_and_import_move_the_day_secrets(
    make_settings: SettingsFactory, tmp_path: Path, source: str, target: str
) -> None:
    src, tgt = settings_pair(make_settings, tmp_path, source, target)
    now = datetime.now(UTC)
    old_day, today = now - timedelta(days=40), now - timedelta(minutes=1)
    with opened(src) as store:
        [old, new] = store.app.record_interactions(
            [
                inbound("SM-old", text="body of the old day", occurred_at=old_day),
                inbound("SM-new", text="body of today", occurred_at=today),
            ]
        )
        store.cipher.destroy_periods_before(now - timedelta(days=30))
    path = tmp_path / "export.jsonl"

    header = export_store(src, path).header
    import_store(tgt, path)

    assert header.period_secrets == 2
    with opened(tgt) as store:
        assert texts_of(store) == {old.message_id: None, new.message_id: "body of today"}
        assert destroyed_periods(store.state_engine) == [old_day.strftime("%Y%m%d")]
        [again] = store.app.record_interactions(
            [inbound("SM-old-2", text="late, of the old day", occurred_at=old_day)]
        )
        assert texts_of(store)[again.message_id] is None  # its day is gone: no body kept


def texts_of(store: Store) -> dict[UUID, str | None]:
    """Each inbound message's published text."""
    return {
        e.data.message_id: e.data.text
        for e in store.read_envelopes(0, 1000)[0]
        if isinstance(e, InteractionReceived)
    }
