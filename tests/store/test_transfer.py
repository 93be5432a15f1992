"""Moving a hub between stores (hub.store.transfer, ``hub store export|import``): SQLite to
PostgreSQL and back, with the events byte for byte, the data keys and the API tokens; refusals
(non-empty target, other keys, damaged file) and resuming an interrupted import."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import os
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import func, select

from hub.config import Settings
from hub.domain.application import Recorded
from hub.embedded.follower import LogFollower
from hub.projections import Views
from hub.projections.base import as_utc
from hub.store import Store
from hub.store.keys import data_keys
from hub.store.tokens import TokenStore
from hub.store.transfer import (
    TransferError,
    check_export,
    export_store,
    fingerprint,
    import_store,
)
from tests.support.hub_process import child_env, run_hub
from tests.support.store import T0, SettingsFactory, inbound, opened, raw_event_states

PHONE = "phone:+4915112345678"
NAME = "Marguerite Quillfeather"
TEXT = "parcel XQ-4711 never arrived at Lindenweg 12"
EMAIL = "email:kasimir.oddball@example.com"
ERASED_NAME = "Erwin Vanished"


def record_history(store: Store) -> dict[str, Recorded]:
    """Some of everything: two channels of one customer, an email thread, an outbound message
    with a delivery update, agent actions, and a customer whose key is destroyed (erased)."""
    app = store.app
    at = T0
    [first] = app.record_interactions([inbound("SM1", contact_name=NAME, text=TEXT)])
    [whatsapp] = app.record_interactions(
        [inbound("wamid.1", channel="whatsapp", occurred_at=at.replace(minute=5))]
    )
    [mail, erased] = app.record_interactions(
        [
            inbound(
                "<m1@example.com>",
                channel="email",
                address=EMAIL,
                subject="Invoice 2024-05",
                text="Please resend the invoice",
                contact_name="Kasimir Oddball",
                occurred_at=at.replace(minute=10),
            ),
            inbound(
                "SM9",
                address="phone:+4915199999999",
                contact_name=ERASED_NAME,
                occurred_at=at.replace(minute=11),
            ),
        ]
    )
    [sent] = app.record_interactions(
        [inbound("SM2", direction="outbound", text="We are on it", occurred_at=at.replace(hour=10))]
    )
    app.update_delivery(sent.message_id, "delivered", at.replace(hour=10, minute=1))
    app.add_note(first.conversation_id, "called back, parcel found", "ann")
    app.assign(first.conversation_id, "bob", "ann")
    app.change_status(whatsapp.conversation_id, "resolved", "ann")
    store.cipher.discard_keys([erased.customer_id])
    return {"first": first, "whatsapp": whatsapp, "mail": mail, "erased": erased, "sent": sent}


def secrets_of(settings: Settings) -> dict[str, str]:
    """The store's master key and pepper, base64 (as HUB_MASTER_KEY/HUB_ADDRESS_PEPPER)."""
    if settings.master_key and settings.address_pepper:
        return {
            "master_key": settings.master_key.get_secret_value(),
            "address_pepper": settings.address_pepper.get_secret_value(),
        }
    return {
        "master_key": (settings.data_dir / "master.key").read_text().strip(),
        "address_pepper": (settings.data_dir / "pepper.key").read_text().strip(),
    }


def other_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def settings_pair(
    make_settings: SettingsFactory, tmp_path: Path, source: str, target: str, **target_keys: str
) -> tuple[Settings, Settings]:
    """Source settings (its store opened once, so an embedded one has its key files) and target
    settings with the source's keys unless others are given."""
    src = make_settings(source, data_dir=tmp_path / "source")
    with opened(src):
        pass
    keys = secrets_of(src) | target_keys
    return src, make_settings(target, data_dir=tmp_path / "target", **keys)


def rebuild(store: Store) -> Views:
    views = Views(store.views_engine)
    views.create()
    LogFollower(store, views).catch_up()
    return views


def visible_state(store: Store, customer_ids: list[UUID]) -> dict[str, Any]:
    """What readers see, decrypted: published events and, after a rebuild, each customer's
    directory record and timeline (store positions left out: they may differ by backend)."""
    envelopes, _ = store.read_envelopes(0, 100_000)
    views = rebuild(store)
    with views.engine.connect() as conn:
        timelines = {
            cid: [
                dataclasses.replace(item, position=0)
                for item in views.timeline.page(conn, cid, 1000, None)[0]
            ]
            for cid in customer_ids
        }
        directory = views.directory.get_many(conn, customer_ids)
    return {
        "events": [e.model_dump(mode="json", exclude={"position"}) for e in envelopes],
        "timelines": timelines,
        "directory": directory,
    }


def token_rows(tokens: TokenStore) -> list[tuple[Any, ...]]:
    """Every token's fields, times in UTC (SQLite gives them back naive)."""
    return [
        (t.token_id, t.name, t.role, as_utc(t.created_at), t.revoked_at and as_utc(t.revoked_at))
        for t in tokens.list()
    ]


def postgres_tables(settings: Settings) -> list[str]:
    """The tables of a PostgreSQL store's database."""
    assert settings.store_url
    with psycopg.connect(settings.store_url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def key_count(store: Store) -> int:
    with store.state_engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(data_keys)) or 0)


# -- the move --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target"),
    [("sqlite", "postgres"), ("postgres", "sqlite"), ("sqlite", "sqlite")],
)
def test_everything_moves_and_reads_the_same(
    make_settings: SettingsFactory, tmp_path: Path, source: str, target: str
) -> None:
    src, tgt = settings_pair(make_settings, tmp_path, source, target)
    with opened(src) as store:
        recorded = record_history(store)
        tokens = TokenStore(store.state_engine)
        agent_id, agent_token = tokens.create("agent", "support bot")
        revoked_id, revoked_token = tokens.create("service", "old integration")
        tokens.revoke(revoked_id)
        customers = sorted({r.customer_id for r in recorded.values()})
        before = visible_state(store, customers)
        source_tokens = token_rows(tokens)
        source_keys = key_count(store)
    path = tmp_path / "hub-export.jsonl.gz"

    exported = export_store(src, path)
    imported = import_store(tgt, path)

    assert path.read_bytes()[:2] == b"\x1f\x8b"
    header = exported.header
    dialect = {"sqlite": "sqlite", "postgres": "postgresql"}[source]
    assert (header.source_backend, header.data_keys, header.api_tokens) == (dialect, 2, 2)
    assert header.events == len(raw_event_states(src)) > 20
    assert source_keys == len(customers) - 1 == 2  # the erased customer has none
    assert (imported.events_written, imported.events_already_there) == (header.events, 0)
    assert raw_event_states(tgt) == raw_event_states(src)  # same bytes, same order
    with opened(tgt) as store:
        after = visible_state(store, customers)
        tokens = TokenStore(store.state_engine)
        principal = tokens.verify(agent_token)
        assert principal is not None
        assert (principal.token_id, principal.name, principal.role) == (
            agent_id,
            "support bot",
            "agent",
        )
        assert tokens.verify(revoked_token) is None
        assert tokens.verify("hub_agent_not-a-token") is None
        assert token_rows(tokens) == source_tokens
        assert key_count(store) == source_keys
    assert after == before
    # the keys came along: personal data decrypts in the target, the erased customer stays erased
    texts = {i.text for i in after["timelines"][recorded["first"].customer_id]}
    assert TEXT in texts
    names = {c.customer_id: c.display_name for c in after["directory"]}
    assert names[recorded["first"].customer_id] == NAME
    assert names[recorded["mail"].customer_id] == "Kasimir Oddball"
    assert ERASED_NAME not in str(after)
    assert any(e["erased"] for e in after["events"])


def test_the_export_holds_no_personal_data_in_clear(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    settings = make_settings("sqlite", data_dir=tmp_path / "source")
    with opened(settings) as store:
        record_history(store)
        _, token = TokenStore(store.state_engine).create("admin", "ops")
    plain, packed = tmp_path / "export.jsonl", tmp_path / "export.jsonl.gz"

    export_store(settings, plain)
    export_store(settings, packed)

    content = plain.read_bytes()
    unpacked = gzip.decompress(packed.read_bytes())
    assert unpacked.split(b"\n", 1)[1] == content.split(b"\n", 1)[1]  # all but the header
    keys = secrets_of(settings)
    for secret in (
        NAME,
        TEXT,
        "Lindenweg",
        "Kasimir",
        "kasimir.oddball",
        "4915112345678",
        "Invoice 2024-05",
        "called back",  # notes are personal too
        token,
        keys["master_key"],
        keys["address_pepper"],
    ):
        assert secret.encode() not in content, secret
    header = check_export(plain)
    assert header.master_key_fingerprint == fingerprint(base64.b64decode(keys["master_key"]))
    assert len(header.master_key_fingerprint) == len(header.address_pepper_fingerprint) == 16
    assert plain.stat().st_mode & 0o077 == 0  # wrapped keys and token hashes: owner only


# -- refusals --------------------------------------------------------------------------------


def test_import_refuses_a_store_that_holds_other_events(
    make_settings: SettingsFactory, tmp_path: Path, backend: str
) -> None:
    src, tgt = settings_pair(make_settings, tmp_path, "sqlite", backend)
    with opened(src) as store:
        record_history(store)
    path = tmp_path / "export.jsonl"
    export_store(src, path)
    with opened(tgt) as store:
        store.app.record_interactions([inbound("other-1", address="phone:+4917012345678")])
        keys_before = key_count(store)
    states_before = raw_event_states(tgt)

    with pytest.raises(TransferError, match="already holds events that are not from this export"):
        import_store(tgt, path)

    assert raw_event_states(tgt) == states_before
    with opened(tgt) as store:
        assert key_count(store) == keys_before


@pytest.mark.parametrize("wrong", ["master_key", "address_pepper"])
def test_import_refuses_other_keys_and_writes_nothing(
    make_settings: SettingsFactory, tmp_path: Path, backend: str, wrong: str
) -> None:
    src, tgt = settings_pair(make_settings, tmp_path, "sqlite", backend, **{wrong: other_key()})
    with opened(src) as store:
        record_history(store)
    path = tmp_path / "export.jsonl"
    export_store(src, path)
    setting = f"HUB_{wrong.upper()}"

    with pytest.raises(TransferError) as refused:
        import_store(tgt, path)

    message = str(refused.value)
    assert f"{setting} (export: " in message
    assert "Set HUB_MASTER_KEY and HUB_ADDRESS_PEPPER to the source hub's values" in message
    assert "master.key and pepper.key" in message
    if backend == "postgres":
        assert postgres_tables(tgt) == []  # not even the tables were created
    else:
        assert not tgt.data_dir.exists()  # not even key files were generated


def test_import_into_an_embedded_store_without_keys_generates_none(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    src = make_settings("sqlite", data_dir=tmp_path / "source")
    with opened(src) as store:
        record_history(store)
    path = tmp_path / "export.jsonl"
    export_store(src, path)
    target = make_settings("sqlite", data_dir=tmp_path / "target")

    with pytest.raises(TransferError, match=r"HUB_MASTER_KEY \(export: \w{16}, target: not set\)"):
        import_store(target, path)
    assert not target.data_dir.exists()  # no key files generated with the wrong keys


def test_a_damaged_or_truncated_file_is_refused_before_anything_is_written(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    src, tgt = settings_pair(make_settings, tmp_path, "sqlite", "postgres")
    with opened(src) as store:
        record_history(store)
    path = tmp_path / "export.jsonl"
    export_store(src, path)
    lines = path.read_bytes().splitlines(keepends=True)
    truncated, tampered, cut = (tmp_path / n for n in ("truncated", "tampered", "cut.gz"))
    truncated.write_bytes(b"".join(lines[:-1]))
    tampered.write_bytes(
        b"".join([*lines[:3], lines[3].replace(b'"state":"', b'"state":"AAAA'), *lines[4:]])
    )
    cut.write_bytes(gzip.compress(path.read_bytes())[:-200])

    with pytest.raises(TransferError, match="incomplete or damaged: 1 data_keys"):
        import_store(tgt, truncated)
    with pytest.raises(TransferError, match="checksum does not match"):
        import_store(tgt, tampered)
    with pytest.raises(TransferError, match="damaged or incomplete"):
        import_store(tgt, cut)
    with pytest.raises(TransferError, match="not a hub store export"):
        import_store(tgt, tmp_path / "source" / "master.key")
    assert postgres_tables(tgt) == []


# -- resuming --------------------------------------------------------------------------------


class Crash(Exception):
    pass


def test_an_interrupted_import_is_completed_by_running_it_again(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    src, tgt = settings_pair(make_settings, tmp_path, "sqlite", "postgres")
    with opened(src) as store:
        recorded = record_history(store)
        TokenStore(store.state_engine).create("agent", "bot")
    path = tmp_path / "export.jsonl"
    header = export_store(src, path).header

    def crash_after_two_batches(written: int) -> None:
        if written >= 10:
            raise Crash("power cut")

    with pytest.raises(TransferError, match=r"stopped after 10 of .* run the same import again"):
        import_store(tgt, path, batch_size=5, on_batch=crash_after_two_batches)
    assert raw_event_states(tgt) == raw_event_states(src)[:10]

    resumed = import_store(tgt, path, batch_size=5)

    assert (resumed.events_already_there, resumed.events_written) == (10, header.events - 10)
    assert "resumed: the first 10 events were already there" in "\n".join(resumed.lines())
    assert raw_event_states(tgt) == raw_event_states(src)
    with opened(tgt) as store:
        assert key_count(store) == header.data_keys
        # an erasure in the target after the import is not undone by running it again
        store.cipher.discard_keys([recorded["first"].customer_id])

    again = import_store(tgt, path)

    assert (again.events_written, again.events_already_there) == (0, header.events)
    assert again.lines()[0].startswith("nothing to do")
    assert raw_event_states(tgt) == raw_event_states(src)
    with opened(tgt) as store:
        assert key_count(store) == header.data_keys - 1


# -- the commands ----------------------------------------------------------------------------


def test_hub_store_export_and_import_commands(
    make_settings: SettingsFactory, tmp_path: Path, fresh_postgres_url: str
) -> None:
    source_dir = tmp_path / "source"
    src = make_settings("sqlite", data_dir=source_dir)
    with opened(src) as store:
        recorded = record_history(store)
    path = tmp_path / "export.jsonl.gz"
    keys = secrets_of(src)
    target_env = {"HUB_STORE_URL": fresh_postgres_url, "HUB_DATA_DIR": str(tmp_path / "target")}

    exported = run_hub("store", "export", str(path), "--data-dir", str(source_dir))
    refused = run_hub(
        "store",
        "import",
        str(path),
        env=child_env(
            **target_env, HUB_MASTER_KEY=other_key(), HUB_ADDRESS_PEPPER=keys["address_pepper"]
        ),
    )
    env = child_env(
        **target_env, HUB_MASTER_KEY=keys["master_key"], HUB_ADDRESS_PEPPER=keys["address_pepper"]
    )
    imported = run_hub("store", "import", str(path), env=env)
    rebuilt = run_hub("projections", "rebuild", env=env)

    assert exported.returncode == 0, exported.stderr
    events = len(raw_event_states(src))
    assert f"exported {events} events, 2 data keys and 0 API tokens from the sqlite store" in (
        exported.stdout
    )
    assert f"{source_dir / 'master.key'}" in exported.stdout
    assert refused.returncode == 1
    assert "import failed: the target's keys do not match" in refused.stderr
    assert "HUB_MASTER_KEY (export: " in refused.stderr
    assert imported.returncode == 0, imported.stderr
    assert f"imported {events} events, 2 data keys and 0 API tokens into the postgresql" in (
        imported.stdout
    )
    assert "hub projections rebuild" in imported.stdout
    assert rebuilt.returncode == 0, rebuilt.stderr
    target = make_settings("postgres", store_url=fresh_postgres_url, **keys)
    with opened(target) as store:
        views = Views(store.views_engine)
        with views.engine.connect() as conn:
            record = views.directory.get(conn, recorded["first"].customer_id)
    assert record is not None
    assert record.display_name == NAME
    assert raw_event_states(target) == raw_event_states(src)
