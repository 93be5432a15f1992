"""The console's export button: admins see it on a customer's page and download the JSON
document (recorded in the access log as ``console:export``); agents neither see it nor may
use its URL; an unknown customer is 404, an erased one 410."""

from __future__ import annotations

import json
import re
from uuid import uuid4

import jsonschema_rs

from hub.events.export import document_schema
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.console import sign_in


def _customer(api: Api) -> str:
    recorded = api.record(
        address="phone:+37060073401", contact_name="Eksporto Jonas", text="Sveiki"
    )
    api.wait_caught_up()
    return str(recorded["customer_id"])


def test_an_admin_downloads_the_export_from_the_customer_page(sqlite_api: Api) -> None:
    api = sqlite_api
    customer = _customer(api)
    sign_in(api.client, ADMIN_TOKEN)
    page = api.client.get(f"/customers/{customer}")
    assert page.status_code == 200
    form = re.search(
        r'<form method="get" action="([^"]+)">.*?<button[^>]*>([^<]+)<', page.text, re.S
    )
    assert form is not None, page.text
    assert form.groups() == (f"/customers/{customer}/export", "Download export (JSON)")

    download = api.client.get(form.group(1))

    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="customer-{customer}.json"'
    )
    document = json.loads(download.content)
    jsonschema_rs.validator_for(document_schema()).validate(document)
    assert document["profile"]["display_name"] == "Eksporto Jonas"
    assert [i["text"] for c in document["conversations"] for i in c["items"]] == ["Sveiki"]
    log = api.get(f"/v1/customers/{customer}/access-log").json()["items"]
    assert [e["action"] for e in log if e["action"] == "console:export"] == ["console:export"]


def test_an_agent_neither_sees_nor_may_use_the_export(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.runtime is not None
    customer = _customer(api)
    _, agent = api.runtime.tokens.create("agent", "console-agent")
    sign_in(api.client, agent)
    page = api.client.get(f"/customers/{customer}")
    assert page.status_code == 200
    assert "/export" not in page.text

    refused = api.client.get(f"/customers/{customer}/export")

    assert refused.status_code == 403
    assert "Sveiki" not in refused.text


def test_an_unknown_customer_is_404_and_an_erased_one_410(sqlite_api: Api) -> None:
    api = sqlite_api
    customer = _customer(api)
    sign_in(api.client, ADMIN_TOKEN)
    assert api.client.get(f"/customers/{uuid4()}/export").status_code == 404
    erased = api.post(f"/v1/customers/{customer}/erase", json={"reason": "test_data"})
    assert erased.status_code == 200, erased.text
    gone = api.client.get(f"/customers/{customer}/export")
    assert gone.status_code == 410
    assert "Sveiki" not in gone.text
