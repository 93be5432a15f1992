"""The console's templates pages (admins): the list, a template's edit form with a fieldset per
variant (saving makes a version, a refused form comes back as sent with the reason), older
versions, the preview for a customer with SMS segments and encoding and the email's size (in
the access log), deleting; agents are refused. Plain forms, no inline script or style."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import ADMIN_TOKEN, Api, running_app
from tests.support.console import csrf_of, sign_in
from tests.support.store import SettingsFactory


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        yield api


def _text(markup: str) -> str:
    """The page's text as a reader gets it (tags gone, spaces collapsed)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def _save(app: Api, name: str, **fields: str) -> httpx.Response:
    csrf = csrf_of(app.client, f"/templates/{name}")
    return app.client.post(
        f"/templates/{name}", data={"csrf": csrf} | fields, follow_redirects=False
    )


GREETING = {
    "default_language": "en",
    "description": "Hello",
    "defaults": "first_name = there\nattributes.plan = basic",
    "v0_language": "en",
    "v0_channel": "",
    "v0_text": "Hi {{ first_name }}, {{ attributes.plan }} € plan",
    "v0_subject": "Hello {{ first_name }}",
    "v0_email_text": "Dear {{ first_name }}",
    "v0_html": "<p>Dear {{ first_name }}</p>",
    "v0_wa_name": "",
    "v0_wa_language": "",
    "v0_wa_parameters": "",
    "v1_language": "lt",
    "v1_channel": "sms",
    "v1_text": "Labas, {{ first_name }}! Ąžuolas",
    "v1_subject": "",
    "v1_email_text": "",
    "v1_html": "",
    "v1_wa_name": "",
    "v1_wa_language": "",
    "v1_wa_parameters": "",
    "v2_language": "",  # the blank fieldset
    "v2_text": "",
}


def test_define_edit_preview_and_delete(app: Api) -> None:
    home = app.client.get("/")
    assert '<a href="/templates"' in home.text
    page = app.client.get("/templates")
    assert page.status_code == 200
    assert "No templates yet." in _text(page.text)
    assert 'href="/templates" aria-current="page"' in page.text
    assert "style=" not in page.text
    assert not re.search(r"\son[a-z]+\s*=", page.text)
    opened = app.client.get("/templates", params={"name": "greeting"}, follow_redirects=False)
    assert opened.headers["location"] == "/templates/greeting"
    new = app.client.get("/templates/greeting")
    assert "A new template" in _text(new.text)

    saved = _save(app, "greeting", **GREETING)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/templates/greeting?saved=1"
    shown = app.client.get(saved.headers["location"])
    assert "Saved as version 1." in _text(shown.text)
    assert "Labas, {{ first_name }}! Ąžuolas" in html.unescape(shown.text)
    assert 'name="v2_language"' in shown.text  # a blank fieldset after the two
    record = app.get("/v1/templates/greeting").json()
    assert record["defaults"] == {"attributes.plan": "basic", "first_name": "there"}
    assert [(v["language"], v["channel"]) for v in record["variants"]] == [
        ("en", None),
        ("lt", "sms"),
    ]
    assert record["variants"][0]["whatsapp"] is None

    second = _save(app, "greeting", **(GREETING | {"description": "Hello again"}))
    assert second.headers["location"] == "/templates/greeting?saved=2"
    old = app.client.get("/templates/greeting", params={"version": 1})
    assert re.search(r"Version 1 \(the latest is 2 ?\)", _text(old.text))
    listed = _text(app.client.get("/templates").text)
    assert "greeting" in listed
    assert "Hello again" in listed

    customer = app.record(address="phone:+37060030001", contact_name="Ona Petraitė")
    patched = app.request(
        "PATCH", f"/v1/customers/{customer['customer_id']}", json={"language": "lt"}
    )
    assert patched.status_code == 200, patched.text
    preview = app.client.get("/templates/greeting", params={"customer_id": customer["customer_id"]})
    text = _text(preview.text)
    assert "Labas, Ona! Ąžuolas" in text
    assert "1 SMS segment, UCS-2, 19 characters" in text
    assert "Hi Ona, basic € plan" in text  # chat and the others: English, the default
    assert re.search(r"Email size: \d+ bytes", text)
    log = app.get(f"/v1/customers/{customer['customer_id']}/access-log").json()["items"]
    assert "console:template_preview" in [e["action"] for e in log]
    english = app.client.get(
        "/templates/greeting",
        params={"customer_id": customer["customer_id"], "channel": "sms", "language": "en"},
    )
    assert "1 SMS segment, GSM-7, 21 characters" in _text(english.text)  # € counts 2
    wrong = app.client.get("/templates/greeting", params={"customer_id": "nobody"})
    assert "'nobody' is no customer id" in _text(wrong.text)

    csrf = csrf_of(app.client, "/templates/greeting")
    deleted = app.client.post(
        "/templates/greeting/delete", data={"csrf": csrf}, follow_redirects=False
    )
    assert deleted.headers["location"] == "/templates?deleted=greeting"
    assert "was deleted" in _text(app.client.get(deleted.headers["location"]).text)
    assert app.get("/v1/templates/greeting").status_code == 404


def test_a_refused_form_comes_back_as_sent_with_the_reason(app: Api) -> None:
    refused = _save(app, "broken", **(GREETING | {"v0_text": "Hi {{ nickname }} <b>"}))
    assert refused.status_code == 422
    text = _text(refused.text)
    assert "{{ nickname }} is no profile variable" in text
    assert "not declared in defaults" in text
    assert "Hi {{ nickname }} &lt;b&gt;" in refused.text  # as sent, escaped
    assert app.get("/v1/templates/broken").status_code == 404
    syntax = _save(app, "broken", **(GREETING | {"v1_text": "{% if %}"}))
    assert syntax.status_code == 422
    assert "variants[1].text: line 1" in _text(syntax.text)
    escape = _save(app, "broken", **(GREETING | {"v0_text": "{{ ''.__class__ }}"}))
    assert escape.status_code == 422
    assert "names starting with _ are not allowed" in _text(escape.text)


def test_agents_are_refused(app: Api) -> None:
    assert app.runtime is not None
    _save(app, "greeting", **GREETING)
    agent = app.runtime.tokens.create("agent", "ann")[1]
    with httpx.Client(transport=app.client._transport, base_url=str(app.client.base_url)) as other:
        assert sign_in(other, agent).status_code == 303
        assert '<a href="/templates"' not in other.get("/").text
        csrf = csrf_of(other, "/")
        for path in ("/templates", "/templates/greeting"):
            assert other.get(path).status_code == 403
        for path in ("/templates/greeting", "/templates/greeting/delete"):
            refused = other.post(path, data={"csrf": csrf} | GREETING, follow_redirects=False)
            assert refused.status_code == 403
    assert app.get("/v1/templates/greeting").json()["version"] == 1
