"""Consent on the console's customer page: the state per channel and purpose with defaults
marked, an agent's grant or withdrawal with evidence (CSRF-checked), the ledger shown, and an
email marketing grant waiting for the customer's confirmation with its link."""

from __future__ import annotations

import html
import re

from tests.support.api import Api, assert_error
from tests.support.console import csrf_of, page_text, signed_in_agent


def test_an_agent_sees_and_changes_consent_with_evidence(sqlite_api: Api) -> None:
    api = sqlite_api
    cid = api.record(address="phone:+15550108001")["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    shown = page_text(client.get(path))
    assert "SMS allowed (default) not given (default)" in shown
    assert "No change recorded: the default rules apply." in shown

    csrf = csrf_of(client, path)
    changed = client.post(
        f"{path}/consent",
        data={
            "csrf": csrf,
            "channel": "sms",
            "purpose": "service",
            "granted": "no",
            "evidence": "Customer called: <no more texts>",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    assert changed.headers["location"] == path
    page = client.get(path)
    assert "&lt;no more texts&gt;" in page.text  # escaped, never markup
    shown = page_text(page)
    assert "SMS withdrawn not given (default)" in shown
    assert "withdrawn agent by ann" in shown
    assert "Customer called: <no more texts>" in shown

    [line] = api.get(f"/v1/customers/{cid}/consent").json()["history"]
    assert (line["source"], line["actor"], line["granted"]) == ("agent", "ann", False)


def test_refusals_come_back_to_the_page(sqlite_api: Api) -> None:
    api = sqlite_api
    cid = api.record(address="phone:+15550108002")["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    stale = client.post(
        f"{path}/consent",
        data={"csrf": "0" * 32, "channel": "sms", "purpose": "service", "granted": "no"},
        follow_redirects=False,
    )
    assert_error(stale, 403, "stale_form")
    csrf = csrf_of(client, path)
    for data in (
        {"channel": "sms", "purpose": "newsletter", "granted": "no"},
        {"channel": "fax", "purpose": "service", "granted": "no"},
        {"channel": "sms", "purpose": "service", "granted": "maybe"},
        {"channel": "sms", "purpose": "service", "granted": "no", "evidence": "a\x00b"},
    ):
        refused = client.post(f"{path}/consent", data={"csrf": csrf, **data})
        assert refused.status_code == 200, (data, refused.text)  # the page again, with why
        assert 'class="error" role="alert"' in refused.text
        fetched = client.post(
            f"{path}/consent",
            data={"csrf": csrf, **data},
            headers={"X-Requested-With": "fetch"},
        )
        assert fetched.status_code == 422
        assert fetched.json()["code"] == "invalid_command"
    assert api.get(f"/v1/customers/{cid}/consent").json()["history"] == []


def test_an_email_marketing_grant_waits_for_the_customers_confirmation(sqlite_api: Api) -> None:
    api = sqlite_api
    cid = api.record(channel="email", address="email:kim@example.com")["customer_id"]
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/customers/{cid}"
    done = client.post(
        f"{path}/consent",
        data={
            "csrf": csrf_of(client, path),
            "channel": "email",
            "purpose": "marketing",
            "granted": "yes",
            "evidence": "signed the paper form",
        },
        headers={"X-Requested-With": "fetch"},
    )
    assert done.status_code == 204, done.text
    page = client.get(path)
    shown = page_text(page)
    assert "not given (default) awaiting the customer's confirmation until" in shown
    assert "confirmation requested (pending) agent by ann" in shown
    [link] = re.findall(r'value="(/consent/confirm/[^"]+)"', page.text)
    assert client.post(html.unescape(link)).status_code == 200  # the customer confirms
    shown = page_text(client.get(path))
    assert "Email allowed (default) given" in shown
    assert "granted double_opt_in" in shown
