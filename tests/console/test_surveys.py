"""The console's survey page (admins): both policies with their forms, saving one (and the API
sees it), a refused form comes back with the reason and what was sent, agents are refused."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import ADMIN_TOKEN, Api, running_app
from tests.support.console import csrf_of, sign_in
from tests.support.store import SettingsFactory

CSAT = {
    "enabled": "on",
    "template": "csat",
    "delay_minutes": "30",
    "every_days": "14",
    "segment_id": "",
    "answer_hours": "48",
    "comment_minutes": "20",
}


@pytest.fixture
def app(make_settings: SettingsFactory) -> Iterator[Api]:
    with running_app(make_settings("sqlite", admin_token=ADMIN_TOKEN)) as api:
        assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
        template = {
            "default_language": "en",
            "variants": [{"language": "en", "text": "How did we do? Reply 1-5"}],
        }
        assert api.put("/v1/templates/csat", json=template).status_code == 201
        yield api


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", markup))).strip()


def _save(client: httpx.Client, kind: str, fields: dict[str, str]) -> httpx.Response:
    csrf = csrf_of(client, "/surveys")
    return client.post(f"/surveys/{kind}", data={"csrf": csrf} | fields, follow_redirects=False)


def test_an_admin_saves_a_policy_and_the_api_has_it(app: Api) -> None:
    page = app.client.get("/surveys")
    assert page.status_code == 200
    assert '<a href="/surveys"' in page.text
    assert '<option value="csat"' in page.text  # the templates to choose from

    saved = _save(app.client, "csat", CSAT | {"channels": "sms"})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/surveys?saved=csat#csat"
    policy = app.get("/v1/survey-policies/csat").json()
    assert policy["enabled"] is True
    assert (policy["template"], policy["channels"]) == ("csat", ["sms"])
    assert (policy["delay_minutes"], policy["every_days"]) == (30, 14)
    assert (policy["answer_hours"], policy["comment_minutes"]) == (48, 20)
    shown = app.client.get(saved.headers["location"])
    assert "The CSAT policy was saved." in _text(shown.text)
    assert app.get("/v1/survey-policies/nps").json()["enabled"] is False


def test_a_refused_form_comes_back_with_the_reason(app: Api) -> None:
    refused = _save(app.client, "nps", CSAT | {"template": "missing", "channels": "email"})
    assert refused.status_code == 422
    assert "Not saved: template: no template named 'missing'" in _text(refused.text)
    assert _save(app.client, "nps", CSAT | {"every_days": "often"}).status_code == 422
    # NPS needs its channels.
    assert "channels" in _text(_save(app.client, "nps", CSAT).text)
    assert app.get("/v1/survey-policies/nps").json()["changed_at"] is None


def test_agents_are_refused(app: Api) -> None:
    assert app.runtime is not None
    agent = app.runtime.tokens.create("agent", "ann")[1]
    with httpx.Client(transport=app.client._transport, base_url=str(app.client.base_url)) as other:
        assert sign_in(other, agent).status_code == 303
        assert '<a href="/surveys"' not in other.get("/").text
        csrf = csrf_of(other, "/")
        assert other.get("/surveys").status_code == 403
        refused = other.post("/surveys/csat", data={"csrf": csrf} | CSAT, follow_redirects=False)
        assert refused.status_code == 403
    assert app.get("/v1/survey-policies/csat").json()["enabled"] is False
