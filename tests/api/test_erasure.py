"""Erasure through the API: POST /v1/customers/{id}/erase (admin only), the merge group erased
as one person, 410 afterwards, a new customer for the same address, and the proof that no
plaintext copy is left in any file of the data directory, any PostgreSQL table or any answer."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, get_args

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from hub.connectors.chat.mailbox import Mailbox, metadata
from hub.store.dead_letters import NewDeadLetter, Original
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, wait_for
from tests.support.console import sign_in
from tests.support.hostile import HOSTILE_TEXT

#: Distinctive values: each must be found nowhere once the customer is erased.
NAME = "Žemyna Qvortrupaitė"
PHONE = "+37060071234"
EMAIL = "zemyna.qvortrup@pavyzdys.lt"
CHAT_VISITOR = "visitor-qvx7130"
SMS_TEXT = "Mano užsakymas Nr. QX-7781 nepristatytas"
WHATSAPP_TEXT = "Sveiki, kur mano siuntinys QX-7782?"
EMAIL_SUBJECT = "Reklamacija QX-7783"
EMAIL_TEXT = "Prašau grąžinti pinigus už QX-7784"
CHAT_TEXT = "Ar galite paskambinti? QX-7785"
NOTE = "Klientė skambino dėl QX-7786 (vidinė pastaba)"
TAG = "vip-qx7787"
MERGE_REASON = "ta pati asmenybė QX-7788"
COMPANY = "Qvortrupo gintarai QX-7789"
ATTRIBUTE = "slapyvardis QX-7790"
REFERRER = "https://qx7791.example/straipsnis"
SECRETS = (
    NAME,
    PHONE,
    PHONE[1:],
    EMAIL,
    CHAT_VISITOR,
    SMS_TEXT,
    WHATSAPP_TEXT,
    EMAIL_SUBJECT,
    EMAIL_TEXT,
    CHAT_TEXT,
    NOTE,
    TAG,
    MERGE_REASON,
    COMPANY,
    ATTRIBUTE,
    REFERRER,
)


def _record_person(api: Api) -> tuple[str, str]:
    """The person on four channels, as two customers merged into one: (survivor, merged)."""
    sms = api.record(address=f"phone:{PHONE}", contact_name=NAME, text=SMS_TEXT)
    api.record(channel="whatsapp", address=f"phone:{PHONE}", text=WHATSAPP_TEXT)
    mail = api.record(
        channel="email",
        address=f"email:{EMAIL}",
        contact_name=NAME,
        subject=EMAIL_SUBJECT,
        text=EMAIL_TEXT,
    )
    chat = api.record(
        channel="chat",
        address=f"chat:{CHAT_VISITOR}",
        text=CHAT_TEXT,
        source={"source": "blog", "referrer": REFERRER},
    )
    api.put("/v1/attributes/nickname", json={"type": "string", "label": "Nickname"})
    edited = api.request(
        "PATCH",
        f"/v1/customers/{chat['customer_id']}",
        json={"company": COMPANY, "attributes": {"nickname": ATTRIBUTE}},
    )
    assert edited.status_code == 200, edited.text
    survivor = sms["customer_id"]
    for other in (mail["customer_id"], chat["customer_id"]):
        merged = api.post(
            f"/v1/customers/{survivor}/merge", json={"customer_id": other, "reason": MERGE_REASON}
        )
        assert merged.status_code == 200, merged.text
    note = api.post(f"/v1/conversations/{sms['conversation_id']}/notes", json={"text": NOTE})
    assert note.status_code == 201, note.text
    tags = api.put(f"/v1/customers/{mail['customer_id']}/tags", json={"tags": [TAG]})
    assert tags.status_code == 200, tags.text
    return survivor, mail["customer_id"]


def _plant_copies(api: Api) -> None:
    """What reaches the hub outside the event log: a webhook that could not be recorded
    (a dead letter) and the chat visitor's mailbox."""
    assert api.runtime is not None
    body = f"From=%2B{PHONE[1:]}&Body=QX+dead+letter".encode()
    original = Original.webhook(
        method="POST", hook="twilio", url="/webhooks/twilio/sms", headers={}, query={}, body=body
    )
    letter = NewDeadLetter(source="twilio", reason="the store was down", original=original)
    api.runtime.store.dead_letters.add([letter])
    engine = api.runtime.store.state_engine
    metadata.create_all(engine)
    Mailbox(engine).post(CHAT_VISITOR, uuid.uuid4(), "outbound")


def _files_with_secrets(data_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(data_dir.rglob("*")):
        if path.is_file():
            content = path.read_bytes()
            hits = [s for s in SECRETS if s.encode() in content]
            if hits:
                found[path.name] = hits
    return found


def _tables_with_secrets(url: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        for (table,) in tables:
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {} AS t").format(sql.Identifier(table))
            ).fetchall()
            text = "\n".join(r[0] for r in rows)
            hits = [s for s in SECRETS if s in text]
            if hits:
                found[table] = hits
    return found


def _leaks(api: Api, backend: str) -> dict[str, Any]:
    assert api.runtime is not None
    settings = api.runtime.settings
    leaks: dict[str, Any] = {"files": _files_with_secrets(settings.data_dir)}
    if backend == "postgres":
        leaks["tables"] = _tables_with_secrets(settings.resolved_store_url())
    return {k: v for k, v in leaks.items() if v}


def test_an_erased_person_leaves_no_plaintext_anywhere(api: Api, backend: str) -> None:
    survivor, member = _record_person(api)
    _plant_copies(api)
    api.wait_caught_up()
    before = _leaks(api, backend)
    assert before, "the test must see the copies it then expects to be gone"

    response = api.post(f"/v1/customers/{member}/erase", json={"reason": "data_subject_request"})

    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["customer_ids"]) == 3
    assert survivor in answer["customer_ids"]
    assert answer["already_erased"] is False
    assert answer["removed"]["dead_letters"] == 1
    assert answer["removed"]["connector_rows"] == 1
    assert answer["kafka_copies_expire_by"] is None
    started = time.monotonic()
    wait_for(lambda: not _leaks(api, backend), timeout=5)
    assert time.monotonic() - started < 5
    # ... with the hub still running and reading: nothing comes back either
    api.wait_caught_up()
    assert _leaks(api, backend) == {}
    answers = [
        api.get(f"/v1/customers/{survivor}"),
        api.get(f"/v1/customers/{member}/timeline"),
        api.get("/v1/customers", params={"q": "Qvortrup"}),
        api.get("/v1/customers", params={"address": f"phone:{PHONE}"}),
        api.get("/v1/customers", params={"address": f"email:{EMAIL}"}),
        api.get("/v1/events", params={"limit": 1000}),
    ]
    for shown in answers:
        assert not [s for s in SECRETS if s in shown.text], shown.request.url
    assert_error(answers[0], 410, "customer_erased")
    assert_error(answers[1], 410, "customer_erased")
    assert answers[2].json()["items"] == []
    assert answers[3].json()["items"] == []
    sign_in(api.client, ADMIN_TOKEN)
    for page in ("/", f"/customers/{survivor}", "/customers?q=Qvortrup"):
        shown = api.client.get(page)
        assert not [s for s in SECRETS if s in shown.text], page


def test_erasure_is_published_with_no_personal_data(api: Api) -> None:
    customer = api.record(address="phone:+37060071299", contact_name="Vardas Pavardė")
    api.post(f"/v1/customers/{customer['customer_id']}/erase", json={"reason": "objection"})

    events = api.all_events()

    erased = [e for e in events if e["type"] == "customer.erased.v1"]
    assert len(erased) == 1
    assert erased[0]["customer_id"] == customer["customer_id"]
    assert erased[0]["data"] == {
        "customer_ids": [customer["customer_id"]],
        "actor": "admin (HUB_ADMIN_TOKEN)",
        "reason": "objection",
    }
    created = next(e for e in events if e["type"] == "customer.created.v1")
    assert created["erased"] is True
    assert created["data"]["display_name"] is None


def test_erasure_is_idempotent_and_the_address_starts_a_new_customer(api: Api) -> None:
    first = api.record(address="phone:+37060071300", text="pirmas")
    url = f"/v1/customers/{first['customer_id']}/erase"
    assert api.post(url, json={"reason": "test_data"}).json()["already_erased"] is False

    again = api.post(url, json={"reason": "test_data"})

    assert again.status_code == 200
    assert again.json()["already_erased"] is True
    assert again.json()["customer_ids"] == [first["customer_id"]]
    later = api.record(address="phone:+37060071300", text="antras")
    assert later["customer_id"] != first["customer_id"]
    assert [m["text"] for m in api.messages(later["customer_id"])] == ["antras"]
    events = [e for e in api.all_events() if e["type"] == "customer.erased.v1"]
    assert len(events) == 1  # the repeat recorded nothing


def test_erase_is_for_admins_only(api: Api) -> None:
    assert api.runtime is not None
    customer = api.record(address="phone:+37060071301")
    url = f"/v1/customers/{customer['customer_id']}/erase"
    for role in ("agent", "service"):
        _, token = api.runtime.tokens.create(role, f"{role}-erase")
        error = assert_error(
            api.post(url, token=token, json={"reason": "data_subject_request"}), 403, "forbidden"
        )
        assert error["details"] == {"scope": "admin"}
    api.wait_caught_up()
    assert api.get(f"/v1/customers/{customer['customer_id']}").status_code == 200


def test_erase_refuses_what_it_cannot_do(sqlite_api: Api) -> None:
    customer = sqlite_api.record(address="phone:+37060071302")
    url = f"/v1/customers/{customer['customer_id']}/erase"
    assert_error(
        sqlite_api.post(url, json={"reason": "because I said so"}), 422, "validation_error"
    )
    assert_error(sqlite_api.post(url, json={}), 422, "validation_error")
    unknown = "/v1/customers/0190d7a2-0000-7000-8000-000000000000/erase"
    assert_error(sqlite_api.post(unknown, json={"reason": "test_data"}), 404, "not_found")
    sqlite_api.wait_caught_up()
    assert sqlite_api.get(f"/v1/customers/{customer['customer_id']}").status_code == 200


@pytest.mark.parametrize("rebuild", ["projections", "restart"])
def test_an_erasure_survives_a_rebuild_and_a_restart(make_settings: Any, rebuild: str) -> None:
    settings = make_settings("sqlite", admin_token=ADMIN_TOKEN)
    with running_app(settings) as api:
        gone = api.record(address="phone:+37060071303", contact_name=NAME, text=SMS_TEXT)
        kept = api.record(address="phone:+37060071304", text="lieka")
        api.post(f"/v1/customers/{gone['customer_id']}/erase", json={"reason": "test_data"})
        assert api.runtime is not None
        if rebuild == "projections":
            for projection in api.runtime.views.projections:
                api.runtime.views.reset(projection.name)
    with running_app(settings) as api:
        api.wait_caught_up()
        assert_error(api.get(f"/v1/customers/{gone['customer_id']}"), 410, "customer_erased")
        assert [m["text"] for m in api.messages(kept["customer_id"])] == ["lieka"]
        assert not [s for s in SECRETS if s in api.get("/v1/events").text]


def test_an_erasure_survives_an_export_and_import(make_settings: Any, tmp_path: Path) -> None:
    from hub.store.transfer import export_store, import_store
    from tests.store.test_transfer import secrets_of

    source = make_settings("sqlite", admin_token=ADMIN_TOKEN, data_dir=tmp_path / "source")
    with running_app(source) as api:
        gone = api.record(address="phone:+37060071305", contact_name=NAME, text=SMS_TEXT)
        kept = api.record(address="phone:+37060071306", text="lieka")
        api.post(f"/v1/customers/{gone['customer_id']}/erase", json={"reason": "test_data"})
    path = tmp_path / "export.jsonl.gz"
    export_store(source, path)
    target = make_settings(
        "sqlite", admin_token=ADMIN_TOKEN, data_dir=tmp_path / "target", **secrets_of(source)
    )
    import_store(target, path)

    with running_app(target) as api:
        api.wait_caught_up()
        assert_error(api.get(f"/v1/customers/{gone['customer_id']}"), 410, "customer_erased")
        assert [m["text"] for m in api.messages(kept["customer_id"])] == ["lieka"]
        assert not [s for s in SECRETS if s in api.get("/v1/events").text]
    assert _files_with_secrets(tmp_path) == {}


@given(reason=HOSTILE_TEXT)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
def test_any_reason_text_is_a_clear_422_and_erases_nothing(sqlite_api: Api, reason: str) -> None:
    """The reason is a code: any other text is refused with the error model, never a 500, and
    the customer is untouched."""
    from hub.events.common import ErasureReason

    customer = sqlite_api.record(address="phone:+37060071399")
    response = sqlite_api.post(  # ASCII-escaped JSON: lone surrogates travel as \udXXX
        f"/v1/customers/{customer['customer_id']}/erase",
        content=json.dumps({"reason": reason}),
        headers={"Content-Type": "application/json"},
    )
    if reason in get_args(ErasureReason):
        assert response.status_code == 200
        return
    assert_error(response, 422, "validation_error")
    sqlite_api.wait_caught_up()
    assert sqlite_api.get(f"/v1/customers/{customer['customer_id']}").status_code == 200
