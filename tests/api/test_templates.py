"""Templates through the API, on SQLite and PostgreSQL: save versions (201 then 200, the same
again recording nothing), read any version, list, delete; admins only for writes; what a
template may not say (422 with a code); previews for a customer per channel with SMS segments
and email size, missing variables named, merged groups and erased customers, the access log."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import Api, assert_error

WELCOME: dict[str, Any] = {
    "default_language": "en",
    "description": "The first message",
    "defaults": {"first_name": "there"},
    "variants": [
        {
            "language": "en",
            "text": "Hi {{ first_name }}! Your plan: {{ attributes.plan }}",
            "email": {
                "subject": "Welcome, {{ first_name }}",
                "text": "Dear {{ first_name }},\nwelcome.",
                "html": "<p>Dear {{ first_name }},</p><p>welcome.</p>",
            },
            "whatsapp": {
                "name": "welcome_v1",
                "language": "en_US",
                "parameters": ["{{ first_name }}"],
            },
        },
        {"language": "lt", "text": "Labas, {{ first_name }}! Ačiū, kad esate su mumis."},
        {"language": "lt", "channel": "email", "email": {"subject": "Sveiki", "text": "Ačiū"}},
    ],
}


def _plan(api: Api) -> None:
    response = api.put("/v1/attributes/plan", json={"type": "string", "label": "Plan"})
    assert response.status_code in (200, 201), response.text


def _save(api: Api, name: str, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
    response = api.put(f"/v1/templates/{name}", json=body)
    assert response.status_code == expect, response.text
    saved: dict[str, Any] = response.json()
    return saved


def _preview(api: Api, name: str, expect: int = 200, **body: Any) -> dict[str, Any]:
    response = api.post(f"/v1/templates/{name}/preview", json=body)
    assert response.status_code == expect, response.text
    found: dict[str, Any] = response.json()
    return found


def test_save_versions_read_list_and_delete(api: Api) -> None:
    _plan(api)
    first = _save(api, "Welcome", WELCOME)
    assert (first["name"], first["version"], first["versions"]) == ("Welcome", 1, [1])
    assert first["saved_by"] == "admin (HUB_ADMIN_TOKEN)"
    assert first["variants"][2] == {
        "language": "lt",
        "channel": "email",
        "text": None,
        "email": {"subject": "Sveiki", "text": "Ačiū", "html": None},
        "whatsapp": None,
    }

    api.wait_caught_up()
    position = api.store_position()
    assert _save(api, "welcome", WELCOME, expect=200)["version"] == 1  # the same: nothing
    assert api.store_position() == position

    second = _save(api, "welcome", WELCOME | {"description": "v2"}, expect=200)
    assert (second["version"], second["versions"], second["latest_version"]) == (2, [1, 2], 2)
    assert api.get("/v1/templates/WELCOME").json()["description"] == "v2"
    old = api.get("/v1/templates/welcome", params={"version": 1}).json()
    assert (old["version"], old["description"], old["latest_version"]) == (
        1,
        "The first message",
        2,
    )
    assert_error(api.get("/v1/templates/welcome", params={"version": 3}), 404, "not_found")
    assert_error(api.get("/v1/templates/welcome", params={"version": 0}), 422, "validation_error")

    _save(api, "a-reminder", WELCOME)
    assert [t["name"] for t in api.get("/v1/templates").json()["items"]] == [
        "a-reminder",
        "welcome",
    ]

    assert api.request("DELETE", "/v1/templates/a-reminder").status_code == 204
    assert api.request("DELETE", "/v1/templates/a-reminder").status_code == 204
    assert_error(api.request("DELETE", "/v1/templates/never"), 404, "not_found")
    assert_error(api.get("/v1/templates/a-reminder"), 404, "not_found")
    assert [t["name"] for t in api.get("/v1/templates").json()["items"]] == ["welcome"]
    back = _save(api, "a-reminder", WELCOME)  # back, numbering going on
    assert back["version"] == 2


def test_writes_are_for_admins_reads_for_readers(api: Api) -> None:
    assert api.runtime is not None
    _, agent = api.runtime.tokens.create("agent", "desk 1")
    _, service = api.runtime.tokens.create("service", "crm")
    body = WELCOME | {"variants": [{"language": "en", "text": "Hi"}]}
    assert_error(api.put("/v1/templates/x", json=body, token=agent), 403, "forbidden")
    assert_error(api.put("/v1/templates/x", json=body, token=service), 403, "forbidden")
    _save(api, "x", body)
    assert_error(api.request("DELETE", "/v1/templates/x", token=agent), 403, "forbidden")
    assert api.get("/v1/templates/x", token=agent).status_code == 200
    assert api.get("/v1/templates", token=service).status_code == 200
    assert_error(api.get("/v1/templates", token=None), 401, "unauthorized")


def _en(**variant: Any) -> dict[str, Any]:
    return {"default_language": "en", "variants": [{"language": "en", **variant}]}


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("ok", _en(text="{{ first_name"), "template_invalid"),
        ("ok", _en(text="{{ ''.__class__.__mro__ }}"), "template_invalid"),
        ("ok", _en(text="{{ nickname }}"), "template_variable_unknown"),
        ("ok", _en(text="{{ attributes.tier }}"), "template_variable_unknown"),  # not defined
        ("ok", _en(channel="email", text="no email part"), "template_invalid"),
        ("ok", _en(text="x" * 10_001), "validation_error"),
        ("ok", _en(channel="fax", text="x"), "validation_error"),
        ("ok", _en(text="x", extra=1), "validation_error"),
        ("ok", _en(text="x") | {"default_language": "lt"}, "template_invalid"),
        ("ok", _en(text="x") | {"default_language": "nope!"}, "template_invalid"),
        ("-bad", _en(text="x"), "template_invalid"),
        ("a" * 65, _en(text="x"), "template_invalid"),
        ("with space", _en(text="x"), "template_invalid"),
    ],
)  # fmt: skip
def test_what_a_template_may_not_say(api: Api, name: str, body: dict[str, Any], code: str) -> None:
    error = assert_error(api.put(f"/v1/templates/{name}", json=body), 422, code)
    if code == "template_variable_unknown":
        assert error["details"]["variable"] in ("nickname", "attributes.tier")
    assert_error(api.get(f"/v1/templates/{name}"), 404, "not_found")


def _people(api: Api) -> dict[str, str]:
    """Ona (SMS, lt-LT, plan gold), Jonas (email, no name) merged into Ona's group, Eve
    (email, erased)."""
    ona = api.record(address="phone:+37060020001", contact_name="Ona Petraitė")["customer_id"]
    jonas = api.record(channel="email", address="email:jonas@example.org")["customer_id"]
    patched = api.request(
        "PATCH", f"/v1/customers/{ona}", json={"language": "lt-LT", "attributes": {"plan": "gold"}}
    )
    assert patched.status_code == 200, patched.text
    merged = api.post(f"/v1/customers/{ona}/merge", json={"customer_id": jonas})
    assert merged.status_code == 200, merged.text
    eve = api.record(channel="email", address="email:eve@example.org")["customer_id"]
    return {"ona": ona, "jonas": jonas, "eve": eve}


def test_preview_per_channel_with_segments_and_size(api: Api) -> None:
    _plan(api)
    _save(api, "welcome", WELCOME)
    people = _people(api)
    found = _preview(api, "welcome", customer_id=people["jonas"])  # the group's profile
    assert (found["customer_id"], found["version"], found["language"]) == (
        people["ona"],
        1,
        "lt-LT",
    )
    by_channel = {c["channel"]: c for c in found["channels"]}
    assert list(by_channel) == ["sms", "email", "whatsapp"]
    sms = by_channel["sms"]
    assert sms["text"] == "Labas, Ona! Ačiū, kad esate su mumis."
    assert sms["sms"] == {"encoding": "UCS-2", "segments": 1, "characters": 37}
    assert (sms["language"], sms["email_bytes"]) == ("lt", None)
    email = by_channel["email"]
    assert (email["language"], email["subject"], email["text"]) == ("lt", "Sveiki", "Ačiū")
    assert email["email_bytes"] > 100
    whatsapp = by_channel["whatsapp"]  # Lithuanian has no approved template: English's
    assert whatsapp["whatsapp"] == {
        "name": "welcome_v1",
        "language": "en_US",
        "parameters": ["Ona"],
    }

    english = _preview(api, "welcome", customer_id=people["ona"], channel="sms", language="en")
    [sms] = english["channels"]
    assert sms["text"] == "Hi Ona! Your plan: gold"
    assert sms["sms"] == {"encoding": "GSM-7", "segments": 1, "characters": 23}
    email = _preview(api, "welcome", customer_id=people["ona"], channel="email", language="en-GB")
    [mail] = email["channels"]
    assert mail["html"] == "<p>Dear Ona,</p><p>welcome.</p>"
    assert mail["subject"] == "Welcome, Ona"


def test_a_missing_variable_is_named_and_the_erased_are_gone(api: Api) -> None:
    _plan(api)
    _save(api, "welcome", WELCOME)
    people = _people(api)
    error = assert_error(
        api.post(
            "/v1/templates/welcome/preview",
            json={"customer_id": people["eve"], "channel": "sms"},
        ),
        422,
        "template_variable_missing",
    )
    assert error["details"]["variable"] == "attributes.plan"
    event = {"type": "payment.due.v1", "data": {"amount": "12.50 €"}}
    body = _en(text="Due: {{ event.data.amount }} for {{ customer_id }}")
    _save(api, "due", body)
    found = _preview(api, "due", customer_id=people["eve"], event=event)
    assert [c["channel"] for c in found["channels"]] == ["sms", "whatsapp"]  # text serves both
    sms = found["channels"][0]
    assert sms["text"] == f"Due: 12.50 € for {people['eve']}"
    assert sms["sms"]["encoding"] == "GSM-7"  # € is in the extension table
    assert_error(
        api.post("/v1/templates/due/preview", json={"customer_id": people["eve"]}),
        422,
        "template_variable_missing",
    )
    assert_error(
        api.post(
            "/v1/templates/due/preview",
            json={"customer_id": people["eve"], "channel": "email"},
        ),
        422,
        "template_no_variant",
    )
    erased = api.post(f"/v1/customers/{people['eve']}/erase", json={"reason": "test_data"})
    assert erased.status_code in (200, 202), erased.text
    assert_error(
        api.post("/v1/templates/due/preview", json={"customer_id": people["eve"], "event": event}),
        410,
        "customer_erased",
    )
    missing = "01890000-0000-7000-8000-000000000000"
    assert_error(
        api.post("/v1/templates/due/preview", json={"customer_id": missing}), 404, "not_found"
    )
    assert_error(
        api.post("/v1/templates/nope/preview", json={"customer_id": people["ona"]}),
        404,
        "not_found",
    )


def test_a_preview_is_in_the_access_log(api: Api) -> None:
    _plan(api)
    _save(api, "welcome", WELCOME)
    people = _people(api)
    _preview(api, "welcome", customer_id=people["ona"], channel="sms")
    api.wait_caught_up()

    def actions(who: str) -> list[str]:
        response = api.get(f"/v1/customers/{people[who]}/access-log")
        assert response.status_code == 200, response.text
        return [e["action"] for e in response.json()["items"]]

    for who in ("ona", "jonas"):  # the group whose profile was read
        assert "POST /v1/templates/{name}/preview" in actions(who)
    assert "POST /v1/templates/{name}/preview" not in actions("eve")
