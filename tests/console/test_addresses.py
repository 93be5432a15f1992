"""Lists name a customer by a readable address: a phone number formatted internationally, an
email as it is, other kinds by what they are (hub.console.present.address_label)."""

from __future__ import annotations

import pytest

from hub.console.present import address_label
from tests.support.api import ADMIN_TOKEN, Api
from tests.support.console import sign_in


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("phone:+15550101001", "+1 555-010-1001"),
        ("phone:+4915112345678", "+49 1511 2345678"),
        ("phone:not-a-number", "not-a-number"),
        ("email:maria@example.com", "maria@example.com"),
        ("chat:3f2a9c0d1e7b4a55", "Web chat visitor \u20267b4a55"),
        ("telegram:123456789", "Telegram user 123456789"),
        ("messenger:42", "Messenger user 42"),
        ("", ""),
        (None, ""),
    ],
)
def test_an_address_as_lists_show_it(address: str | None, shown: str) -> None:
    assert address_label(address) == shown


def test_the_queue_and_search_show_a_formatted_number(sqlite_api: Api) -> None:
    api = sqlite_api
    api.record(address="phone:+15550101001")
    api.wait_caught_up()
    assert sign_in(api.client, ADMIN_TOKEN).status_code == 303
    queue = api.client.get("/")
    assert queue.status_code == 200
    assert "+1 555-010-1001" in queue.text
    assert "phone:+1555" not in queue.text
    found = api.client.get("/search", params={"q": "5550101001"})
    assert found.status_code == 200
    assert "+1 555-010-1001" in found.text
