"""What the console's customer page says about replying, from the domain's own rules: WhatsApp's
24-hour window, consent, a connector that is off, quiet hours in the customer's time zone. The
browser tests cover the pages' behaviour; these read the rendered HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import pytest

from hub.config import Settings
from tests.support.api import ADMIN_TOKEN, Api, ago, running_app
from tests.support.console import sign_in

META = {
    "app_secret": "s" * 32,
    "verify_token": "verify",
    "access_token": "EAAtoken",
    "graph_base_url": "http://127.0.0.1:9",
    "whatsapp_phone_number_id": "1065",
}


def _page(api: Api, customer_id: str) -> tuple[str, str]:
    """The customer's page: its HTML, and its text as a reader gets it."""
    client = api.client
    signed = sign_in(client, ADMIN_TOKEN)
    assert signed.status_code == 303
    page = client.get(f"/customers/{customer_id}")
    assert page.status_code == 200, page.text
    markup = re.sub(r"\s+", " ", page.text)
    return markup, html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.fixture
def quiet_all_day(make_settings: Callable[..., Settings]) -> Iterator[Api]:
    """WhatsApp on; quiet hours from 00:00 to 23:59 wherever the customer is."""
    settings = make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        meta=META,
        dispatch={"quiet_hours_start": "00:00", "quiet_hours_end": "23:59"},
    )
    with running_app(settings) as api:
        yield api


def test_whatsapp_outside_its_window_and_sms_off_say_why(quiet_all_day: Api) -> None:
    api = quiet_all_day
    recorded = api.record(
        channel="whatsapp", address="phone:+4915112345678", occurred_at=ago(60 * 30)
    )
    api.wait_caught_up()
    markup, page = _page(api, recorded["customer_id"])
    assert "WhatsApp: whatsapp allows free-text replies only within 24 hours" in page
    assert "SMS: no connector sends on 'sms' here" in page
    # The customer wrote 30 hours ago, so quiet hours (Europe/Berlin, from the number) apply.
    assert "Quiet hours in the customer's time zone: a reply now goes out at" in page
    assert "Europe/Berlin" in page
    assert re.search(r'<textarea id="reply-[^"]+" name="text" [^>]*disabled', markup)


def test_a_customer_who_just_wrote_is_not_held_and_can_be_answered(quiet_all_day: Api) -> None:
    api = quiet_all_day
    recorded = api.record(channel="whatsapp", address="phone:+4915112345679", occurred_at=ago(5))
    api.wait_caught_up()
    markup, page = _page(api, recorded["customer_id"])
    assert "allows free-text replies only within" not in page
    assert "Quiet hours" not in page  # wrote within the awake window: not held
    assert not re.search(r'<textarea id="reply-[^"]+" name="text" [^>]*disabled', markup)
