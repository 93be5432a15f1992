"""Erasing a customer from the console: admins only, with a typed confirmation; afterwards the
customer's page says it was erased (410) and shows nothing of them."""

from __future__ import annotations

from tests.support.api import ADMIN_TOKEN, Api, assert_error
from tests.support.console import csrf_of, sign_in

NAME = "Rūta Erasmaitė-QZ91"


def _customer(api: Api) -> str:
    recorded = api.record(address="phone:+37060071401", contact_name=NAME, text="QZ91 tekstas")
    api.wait_caught_up()
    return str(recorded["customer_id"])


def test_an_admin_erases_after_typing_erase(sqlite_api: Api) -> None:
    api = sqlite_api
    customer = _customer(api)
    sign_in(api.client, ADMIN_TOKEN)
    page = api.client.get(f"/customers/{customer}")
    assert f'action="/customers/{customer}/erase"' in page.text
    csrf = csrf_of(api.client, f"/customers/{customer}")
    form = {"csrf": csrf, "reason": "data_subject_request"}

    unconfirmed = api.client.post(
        f"/customers/{customer}/erase", data={**form, "confirm": "yes"}, follow_redirects=False
    )
    assert unconfirmed.status_code == 303
    assert "type%20erase%20to%20confirm" in unconfirmed.headers["location"]
    assert api.get(f"/v1/customers/{customer}").status_code == 200

    done = api.client.post(f"/customers/{customer}/erase", data={**form, "confirm": "erase"})

    assert done.status_code == 200, done.text
    assert "Personal data erased" in done.text
    assert NAME not in done.text
    after = api.client.get(f"/customers/{customer}")
    assert after.status_code == 410
    assert NAME not in after.text
    assert_error(api.get(f"/v1/customers/{customer}"), 410, "customer_erased")


def test_an_agent_neither_sees_nor_may_use_the_erase_form(sqlite_api: Api) -> None:
    api = sqlite_api
    assert api.runtime is not None
    customer = _customer(api)
    _, agent = api.runtime.tokens.create("agent", "console-agent")
    sign_in(api.client, agent)
    page = api.client.get(f"/customers/{customer}")
    assert page.status_code == 200
    assert "/erase" not in page.text
    csrf = csrf_of(api.client, f"/customers/{customer}")

    refused = api.client.post(
        f"/customers/{customer}/erase",
        data={"csrf": csrf, "reason": "data_subject_request", "confirm": "erase"},
    )

    assert refused.status_code == 403
    assert api.get(f"/v1/customers/{customer}").status_code == 200
