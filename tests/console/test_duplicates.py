"""Duplicate suggestions in the console, without JavaScript: the card on a customer's page,
the review page (bands, paging), the merge preview and its two buttons (merge; not the same
person, with an undo), refusals back on the page, CSRF-checked forms and the access log."""

from __future__ import annotations

import re
from uuid import UUID

from hypothesis import HealthCheck, given, settings

from tests.support.api import Api
from tests.support.console import csrf_of, page_text, signed_in_agent
from tests.support.hostile import HOSTILE_TEXT, as_utf8_wire


def _jonas(api: Api) -> tuple[str, str]:
    sms = api.record(address="phone:+37061234567", contact_name="Jonas Kazlauskas")
    mail = api.record(
        channel="email",
        address="email:jonas.k@pavyzdys.lt",
        contact_name="Jonas K.",
        text="Mano telefonas +370 612 34567",
    )
    api.wait_caught_up()
    return sms["customer_id"], mail["customer_id"]


def test_the_customer_page_shows_possible_duplicates_with_evidence(sqlite_api: Api) -> None:
    api = sqlite_api
    sms, mail = _jonas(api)
    client = signed_in_agent(api)

    shown = page_text(client.get(f"/customers/{sms}"))
    assert "Possible duplicates" in shown
    assert "Jonas K. high" in shown
    assert "a message mentions +37061234567, an address of the other customer" in shown
    assert f'href="/duplicates/{sms}/{mail}"' in client.get(f"/customers/{sms}").text
    other_side = page_text(client.get(f"/customers/{mail}"))
    assert "Jonas Kazlauskas high" in other_side

    alone = api.record(address="phone:+37069999999", contact_name="Petras")["customer_id"]
    api.wait_caught_up()
    assert "Possible duplicates None found." in page_text(client.get(f"/customers/{alone}"))


def test_not_the_same_person_from_the_card_and_its_undo(sqlite_api: Api) -> None:
    api = sqlite_api
    sms, mail = _jonas(api)
    client = signed_in_agent(api)
    path = f"/customers/{sms}"
    csrf = csrf_of(client, path)

    stale = client.post(f"/duplicates/{sms}/{mail}/dismiss", data={"csrf": "0" * 32, "back": path})
    assert stale.status_code == 403
    dismissed = client.post(
        f"/duplicates/{sms}/{mail}/dismiss",
        data={"csrf": csrf, "back": path},
        follow_redirects=False,
    )
    assert dismissed.status_code == 303
    assert dismissed.headers["location"] == f"{path}?undo={sms}.{mail}"
    shown = page_text(client.get(path))
    assert "Jonas K. high" not in shown
    assert "Not the same person Jonas K. Undo" in shown

    undone = client.post(
        f"/duplicates/{sms}/{mail}/restore",
        data={"csrf": csrf, "back": path},
        follow_redirects=False,
    )
    assert undone.status_code == 303
    assert undone.headers["location"] == path
    assert "Jonas K. high" in page_text(client.get(path))

    # console.js posts in the background: no redirect, a refusal as JSON
    fetched = client.post(
        f"/duplicates/{sms}/{sms}/dismiss",
        data={"csrf": csrf, "back": path},
        headers={"X-Requested-With": "fetch"},
    )
    assert fetched.status_code == 422
    assert fetched.json()["code"] == "invalid_command"
    refused = client.post(
        f"/duplicates/{sms}/{sms}/dismiss",
        data={"csrf": csrf, "back": "//evil.example/"},
        follow_redirects=False,
    )
    assert refused.headers["location"].startswith("/duplicates?")


def test_the_review_page_lists_pairs_by_band(sqlite_api: Api) -> None:
    api = sqlite_api
    _jonas(api)
    for n in range(3):
        api.record(address=f"phone:+4477009001{n}0", contact_name="John Smith")
    api.wait_caught_up()
    client = signed_in_agent(api)

    shown = page_text(client.get("/duplicates"))
    assert shown.index("Jonas") < shown.index("John Smith")
    assert "high · " in shown
    assert shown.count("both are named John Smith") == 3
    high = page_text(client.get("/duplicates?band=high"))
    assert "John Smith" not in high
    assert "Jonas Kazlauskas ↔ and Jonas K." in high or "Jonas K. ↔ and Jonas Kazlauskas" in high
    assert "No possible duplicates in this band." in page_text(
        client.get("/duplicates?band=medium")
    )
    assert client.get("/duplicates?cursor=nope").status_code == 400


def test_the_preview_then_merge(sqlite_api: Api) -> None:
    api = sqlite_api
    sms, mail = _jonas(api)
    api.record(address="phone:+37061234567", text="antra žinutė")
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/duplicates/{sms}/{mail}"

    preview = client.get(path)
    shown = page_text(preview)
    assert "Merging Jonas K. into Jonas Kazlauskas" in shown
    assert re.search(r"SMS 2 0 2", shown), shown
    assert re.search(r"Email 0 1 1", shown), shown
    assert "display name Jonas Kazlauskas Jonas K. Jonas Kazlauskas (conflict" in shown
    assert "Why they may be one person high" in shown
    csrf = csrf_of(client, path)

    merged = client.post(f"{path}/merge", data={"csrf": csrf}, follow_redirects=False)
    assert merged.status_code == 303
    assert merged.headers["location"] == f"/customers/{sms}"
    page = page_text(client.get(f"/customers/{sms}"))
    assert "1 other record shown as this customer" in page
    assert client.get(path, follow_redirects=False).headers["location"] == f"/customers/{sms}"
    assert client.get(f"/duplicates/{sms}/01890000-0000-7000-8000-000000000000").status_code == 404


def test_a_refused_merge_comes_back_to_the_preview_with_the_reason(sqlite_api: Api) -> None:
    api = sqlite_api
    sms, mail = _jonas(api)
    assert api.runtime is not None
    api.runtime.commands.identity.configure(max_group_size=2)
    third = api.record(address="phone:+37061234500", contact_name="Jonas")["customer_id"]
    api.post(f"/v1/customers/{sms}/merge", json={"customer_id": third})
    api.wait_caught_up()
    client = signed_in_agent(api)
    path = f"/duplicates/{sms}/{mail}"

    refused = client.post(
        f"{path}/merge", data={"csrf": csrf_of(client, path)}, follow_redirects=False
    )
    assert refused.status_code == 303
    assert refused.headers["location"].startswith(f"{path}?error=")
    shown = page_text(client.get(refused.headers["location"]))
    assert "merging would make a group of 3 customers (2 + 1); the limit is 2" in shown


def test_the_pages_reads_are_access_logged(sqlite_api: Api) -> None:
    api = sqlite_api
    sms, mail = _jonas(api)
    client = signed_in_agent(api)
    client.get(f"/customers/{sms}")
    client.get("/duplicates")
    client.get(f"/duplicates/{sms}/{mail}")
    assert api.runtime is not None
    api.runtime.access_log.flush()
    entries, _ = api.runtime.access_log.entries([UUID(mail)], 50)
    actions = {e.action for e in entries}
    assert {"console:duplicates_card", "console:duplicates", "console:merge_preview"} <= actions


@given(back=HOSTILE_TEXT, cursor=HOSTILE_TEXT, undo=HOSTILE_TEXT)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
def test_any_text_in_the_forms_and_queries_is_safe(
    sqlite_api: Api, back: str, cursor: str, undo: str
) -> None:
    """Where a form goes back to is always one of the console's own pages; a cursor the
    console did not make is a 400; anything in ``undo`` or ``error`` is shown escaped or not
    at all."""
    api = sqlite_api
    client = signed_in_agent(api)
    one = api.record(address="phone:+37061234567")["customer_id"]
    two = api.record(address="phone:+37061234568")["customer_id"]
    csrf = csrf_of(client, "/duplicates")
    posted = client.post(
        f"/duplicates/{one}/{two}/restore",
        data={"csrf": csrf, "back": as_utf8_wire(back)},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    location = posted.headers["location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    cursor, undo = as_utf8_wire(cursor), as_utf8_wire(undo)
    page = client.get("/duplicates", params={"cursor": cursor, "undo": undo, "error": undo})
    assert page.status_code in (200, 400, 422), page.text
    if page.status_code == 200:
        assert "<script>alert" not in page.text
