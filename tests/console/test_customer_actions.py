"""Identity actions from a customer's page, without JavaScript: merging another customer in
(search, the preview, a reason), unmerging a member, linking an address and changing consent
with a note; each CSRF-checked, recorded with the agent, refused with the reason on the page,
and seen through the API too."""

from __future__ import annotations

from tests.support.api import Api
from tests.support.console import csrf_of, page_text, signed_in_agent

HOSTILE = '<script>alert(1)</script> & "quotes"'


def _two(api: Api) -> tuple[str, str]:
    first = api.record(address="phone:+15550107001", contact_name="Maria Lopez")["customer_id"]
    second = api.record(
        channel="email", address="email:maria.l@example.com", contact_name="M. Lopez"
    )["customer_id"]
    api.wait_caught_up()
    return first, second


def test_merge_from_the_customer_page_then_unmerge(sqlite_api: Api) -> None:
    api = sqlite_api
    first, second = _two(api)
    client = signed_in_agent(api)
    path = f"/customers/{first}"
    assert f'action="/customers/{first}/merge"' in client.get(path).text

    found = client.get(f"{path}/merge", params={"q": "lopez"})
    assert f'href="/customers/{first}/merge/{second}"' in found.text
    assert f'href="/customers/{first}/merge/{first}"' not in found.text  # not itself

    preview = f"{path}/merge/{second}"
    shown = page_text(client.get(preview))
    assert "Merging M. Lopez into Maria Lopez" in shown
    csrf = csrf_of(client, preview)
    no_reason = client.post(preview, data={"csrf": csrf, "reason": " "}, follow_redirects=False)
    assert no_reason.headers["location"].startswith(f"{preview}?error=")
    assert "give a reason" in page_text(client.get(no_reason.headers["location"]))

    merged = client.post(preview, data={"csrf": csrf, "reason": HOSTILE}, follow_redirects=False)
    assert merged.status_code == 303
    assert merged.headers["location"] == path
    page = client.get(path)
    assert "Shown as this customer M. Lopez" in page_text(page)
    assert "<script>alert(1)" not in page.text
    customer = api.get(f"/v1/customers/{first}").json()
    assert customer["merged_customer_ids"] == [second]

    unmerged = client.post(
        f"/customers/{second}/unmerge",
        data={"csrf": csrf, "reason": "not the same Maria"},
        follow_redirects=False,
    )
    assert unmerged.status_code == 303
    assert unmerged.headers["location"] == f"{path}#members-title"
    assert "Shown as this customer" not in page_text(client.get(path))
    assert api.get(f"/v1/customers/{first}").json()["merged_customer_ids"] == []
    api.wait_caught_up()
    timeline = api.get(f"/v1/customers/{second}/timeline").json()["items"]
    recorded = {i["kind"]: i["data"] for i in timeline}
    assert (recorded["merged"]["actor"], recorded["merged"]["reason"]) == ("ann", HOSTILE)
    assert recorded["unmerged"]["actor"] == "ann"
    assert recorded["unmerged"]["reason"] == "not the same Maria"


def test_forms_without_the_csrf_token_are_refused(sqlite_api: Api) -> None:
    api = sqlite_api
    first, second = _two(api)
    client = signed_in_agent(api)
    bad = {"csrf": "0" * 32, "reason": "r"}
    for url, data in [
        (f"/customers/{first}/merge/{second}", bad),
        (f"/customers/{second}/unmerge", bad),
        (f"/customers/{first}/addresses", bad | {"address": "a@example.com"}),
    ]:
        assert client.post(url, data=data, follow_redirects=False).status_code == 403, url
    assert api.get(f"/v1/customers/{first}").json()["merged_customer_ids"] == []


def test_link_an_address_normalised_with_a_reason(sqlite_api: Api) -> None:
    api = sqlite_api
    first, _ = _two(api)
    client = signed_in_agent(api)
    path = f"/customers/{first}"
    csrf = csrf_of(client, path)
    linked = client.post(
        f"{path}/addresses",
        data={"csrf": csrf, "address": " Maria.Work@Example.COM ", "reason": HOSTILE},
        follow_redirects=False,
    )
    assert linked.status_code == 303, linked.text
    assert linked.headers["location"] == f"{path}#link-title"
    page = client.get(path)
    assert "maria.work@example.com" in page_text(page)
    assert "<script>alert(1)" not in page.text
    identities = api.get(f"/v1/customers/{first}").json()["identities"]
    assert {"address": "email:maria.work@example.com", "verified": False} in [
        {"address": i["address"], "verified": i["verified"]} for i in identities
    ]

    verified = client.post(
        f"{path}/addresses",
        data={"csrf": csrf, "address": "+1 555 010 7009", "verified": "yes", "reason": "sms"},
        follow_redirects=False,
    )
    assert verified.headers["location"] == f"{path}#link-title"
    identities = api.get(f"/v1/customers/{first}").json()["identities"]
    assert any(i["address"] == "phone:+15550107009" and i["verified"] for i in identities)


def test_link_refusals_are_shown_on_the_page(sqlite_api: Api) -> None:
    api = sqlite_api
    first, second = _two(api)
    client = signed_in_agent(api)
    path = f"/customers/{first}"
    csrf = csrf_of(client, path)
    for address, reason, expected in [
        ("maria.l@example.com", "r", "maria.l@example.com belongs to another customer"),
        ("not an address", "r", "not a valid address"),
        ("telegram:12345", "r", "link an email address or a phone number"),
        ("x@example.com", "  ", "give a reason"),
    ]:
        refused = client.post(
            f"{path}/addresses",
            data={"csrf": csrf, "address": address, "reason": reason},
            follow_redirects=False,
        )
        location = refused.headers["location"]
        assert location.startswith(f"{path}?error="), location
        assert expected in page_text(client.get(location)), expected
    # the verified link of another's address merges nothing from here either
    client.post(
        f"{path}/addresses",
        data={"csrf": csrf, "address": "maria.l@example.com", "verified": "yes", "reason": "r"},
    )
    assert api.get(f"/v1/customers/{first}").json()["merged_customer_ids"] == []
    assert api.get(f"/v1/customers/{second}").json()["customer_id"] == second


def test_consent_with_a_note_from_the_customer_page(sqlite_api: Api) -> None:
    api = sqlite_api
    first, _ = _two(api)
    client = signed_in_agent(api)
    path = f"/customers/{first}"
    changed = client.post(
        f"{path}/consent",
        data={
            "csrf": csrf_of(client, path),
            "channel": "sms",
            "purpose": "service",
            "granted": "no",
            "evidence": HOSTILE,
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303
    page = client.get(path)
    assert "Note (evidence)" in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "withdrawn agent by ann" in page_text(page)
    [line] = api.get(f"/v1/customers/{first}/consent").json()["history"]
    assert (line["source"], line["actor"], line["evidence"]) == ("agent", "ann", HOSTILE)
