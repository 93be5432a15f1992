"""Dead letters end to end (issue 13, item 4): a mail from any syntactically valid address is
recorded; what cannot be recorded is kept whole and encrypted with its reason, listed, shown,
retried (recorded exactly once) and dropped by an admin, through the API and `hub
dead-letters` on a stopped hub's data directory; and purged past its retention."""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from hub.cli import app as cli_app
from hub.config import Settings
from hub.connectors.base import WebhookOutcome
from hub.events import InboundInteraction
from hub.runtime.gateway import Gateway
from hub.runtime.group_commit import Unrecorded
from hub.store import open_store
from hub.store.dead_letters import DeadLetters, NewDeadLetter, Original, dead_letters
from tests.peers.twilio_peer import (
    AUTH_TOKEN,
    CUSTOMER,
    incoming_params,
    twilio_settings,
    twilio_signature,
)
from tests.support.api import ADMIN_TOKEN, Api, assert_error, running_app, smtp_to, wait_for
from tests.support.processes import free_port, wait_for_port

PUBLIC = "https://hub.example.test"
DOMAIN = "support.example.com"
LOCAL_SENDER = "father.time@xcar.wooster.local"
SMS_URL = f"{PUBLIC}/webhooks/twilio/sms"


def _settings(make_settings: Callable[..., Settings], smtp_port: int, **extra: Any) -> Settings:
    return make_settings(
        "sqlite",
        admin_token=ADMIN_TOKEN,
        public_url=PUBLIC,
        twilio=twilio_settings("http://127.0.0.1:9"),  # nothing is sent in these tests
        email=smtp_to(free_port(), DOMAIN, listen=f"127.0.0.1:{smtp_port}", domains=[DOMAIN]),
        **extra,
    )


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def hub(make_settings: Callable[..., Settings], smtp_port: int) -> Iterator[Api]:
    with running_app(_settings(make_settings, smtp_port)) as api:
        wait_for_port("127.0.0.1", smtp_port, timeout=10)  # the listener binds after start
        yield api


def _mail(message_id: str, text: str, sender: str = LOCAL_SENDER) -> bytes:
    message = EmailMessage()
    message["From"] = f"Father Time <{sender}>"
    message["To"] = f"help@{DOMAIN}"
    message["Subject"] = "The clock in the hall"
    message["Message-ID"] = message_id
    message.set_content(text)
    return message.as_bytes(policy=policy.SMTP)


def _deliver(port: int, raw: bytes, sender: str = LOCAL_SENDER) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        assert client.sendmail(sender, [f"help@{DOMAIN}"], raw) == {}  # 250: accepted


def _messages_of(api: Api, address: str) -> list[dict[str, Any]]:
    api.wait_caught_up()
    found = api.get("/v1/customers", params={"address": address}).json()["items"]
    return api.messages(found[0]["customer_id"]) if found else []


def _letters(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/v1/dead-letters", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _kept(api: Api, *letters: NewDeadLetter) -> list[str]:
    """Letters as a hub before a fix would have kept them (the original whole)."""
    assert api.runtime is not None
    return [str(i) for i in api.runtime.store.dead_letters.add(list(letters))]


# -- identity ------------------------------------------------------------------------------


def test_a_mail_from_a_local_domain_is_recorded_on_a_timeline_not_dead_lettered(
    hub: Api, smtp_port: int
) -> None:
    _deliver(smtp_port, _mail("<clock-1@xcar.wooster.local>", "It has stopped again."))

    (message,) = wait_for(lambda: _messages_of(hub, f"email:{LOCAL_SENDER}"))
    assert message["text"] == "It has stopped again."
    assert _letters(hub) == []
    assert hub.readiness()["dead_letters"] == 0


# -- what cannot be recorded ---------------------------------------------------------------


def test_an_unusable_mail_is_accepted_kept_whole_and_encrypted_then_dropped(
    hub: Api, smtp_port: int
) -> None:
    raw = (
        b"Subject: no sender\r\nMessage-ID: <nofrom-1@example.org>\r\n\r\n"
        b"Order 4711 for Father Time, paid in full.\r\n"
    )
    _deliver(smtp_port, raw, sender="")

    (letter,) = wait_for(lambda: _letters(hub))
    assert (letter["kind"], letter["source"], letter["reason"]) == (
        "email",
        "email",
        "no From address",
    )
    assert (letter["size"], letter["attempts"], letter["last_error"]) == (len(raw), 0, None)
    shown = hub.get(f"/v1/dead-letters/{letter['id']}")
    assert shown.status_code == 200, shown.text
    original = shown.json()["original"]
    assert original["body"].encode() == raw  # complete, not a head and a hash
    assert original["body_encoding"] == "utf-8"
    assert hub.readiness()["dead_letters"] == 1
    assert "hub_dead_letters 1.0" in hub.client.get("/metrics").text

    assert hub.runtime is not None
    with hub.runtime.store.state_engine.connect() as conn:
        row = conn.execute(select(dead_letters)).mappings().one()
    at_rest = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert b"Father Time" not in at_rest
    assert b"no From address" not in at_rest

    dropped = hub.request("DELETE", f"/v1/dead-letters/{letter['id']}")
    assert dropped.status_code == 204
    assert_error(hub.get(f"/v1/dead-letters/{letter['id']}"), 404, "not_found")
    assert_error(hub.request("DELETE", f"/v1/dead-letters/{letter['id']}"), 404, "not_found")
    assert hub.readiness()["dead_letters"] == 0


def test_a_retry_that_fails_again_keeps_the_letter_with_the_new_error(
    hub: Api, smtp_port: int
) -> None:
    _deliver(smtp_port, b"Subject: no sender\r\n\r\nhello\r\n", sender="")
    (letter,) = wait_for(lambda: _letters(hub))

    failed = assert_error(hub.post(f"/v1/dead-letters/{letter['id']}/retry"), 422, "retry_failed")
    assert failed["details"] == {"attempts": 1, "error": "no From address"}
    assert_error(hub.post(f"/v1/dead-letters/{letter['id']}/retry"), 422, "retry_failed")
    (after,) = _letters(hub)
    assert (after["attempts"], after["last_error"]) == (2, "no From address")
    assert after["last_attempt_at"] is not None


def test_a_mail_set_aside_before_a_fix_is_recorded_once_by_its_retry(
    hub: Api, smtp_port: int
) -> None:
    raw = _mail("<clock-2@xcar.wooster.local>", "Please wind it up.")
    earlier = datetime.now(UTC) - timedelta(days=2)
    (letter_id,) = _kept(
        hub,
        NewDeadLetter(
            "email",
            f"From address {LOCAL_SENDER!r} is not an email address: special-use domain",
            Original.email(raw),
            earlier,
        ),
    )

    retried = hub.post(f"/v1/dead-letters/{letter_id}/retry")

    assert retried.status_code == 200, retried.text
    assert retried.json() == {"id": letter_id, "recorded": 1, "duplicates": 0, "reports": 0}
    (message,) = wait_for(lambda: _messages_of(hub, f"email:{LOCAL_SENDER}"))
    assert message["text"] == "Please wind it up."
    assert_error(hub.get(f"/v1/dead-letters/{letter_id}"), 404, "not_found")
    assert_error(hub.post(f"/v1/dead-letters/{letter_id}/retry"), 404, "not_found")
    # The sender's MTA delivers it again, or it is set aside again and retried: still once.
    _deliver(smtp_port, raw)
    (again_id,) = _kept(hub, NewDeadLetter("email", "again", Original.email(raw)))
    assert hub.post(f"/v1/dead-letters/{again_id}/retry").json()["duplicates"] == 1
    assert len(_messages_of(hub, f"email:{LOCAL_SENDER}")) == 1


# -- webhooks ------------------------------------------------------------------------------


def _signed_sms(
    params: list[tuple[str, str]], secret: str = AUTH_TOKEN
) -> tuple[dict[str, str], bytes]:
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": twilio_signature(secret, SMS_URL, params),
    }
    return headers, urlencode(params).encode()


def test_a_webhook_with_an_item_set_aside_keeps_the_request_whole(hub: Api) -> None:
    params = incoming_params("Hi from a short code", "SM" + "d" * 32, sender="ACME")
    headers, body = _signed_sms(params)
    answered = hub.client.post("/webhooks/twilio/sms", content=body, headers=headers)
    assert answered.status_code == 200  # Twilio must not retry it for a day

    (letter,) = _letters(hub, kind="webhook")
    assert letter["source"] == "twilio"
    assert "'ACME' is not a phone number" in letter["reason"]
    original = hub.get(f"/v1/dead-letters/{letter['id']}").json()["original"]
    assert original["body"].encode() == body
    fields = original["fields"]
    assert (fields["method"], fields["hook"], fields["url"]) == ("POST", "sms", SMS_URL)
    assert fields["headers"]["x-twilio-signature"] == headers["x-twilio-signature"]
    # Retried through the connector: the signature verifies again, the sender still is no
    # phone number.
    failed = assert_error(hub.post(f"/v1/dead-letters/{letter['id']}/retry"), 422, "retry_failed")
    assert "'ACME' is not a phone number" in failed["details"]["error"]


def test_a_kept_webhook_request_is_recorded_once_by_its_retry_if_its_signature_holds(
    hub: Api,
) -> None:
    params = incoming_params("Where is my parcel?", "SM" + "e" * 32)
    headers, body = _signed_sms(params)
    forged = {
        **headers,
        "x-twilio-signature": _signed_sms(params, "x" * 32)[0]["x-twilio-signature"],
    }

    def kept(source: str, signed: dict[str, str]) -> str:
        request = Original.webhook(
            method="POST", hook="sms", url=SMS_URL, headers=signed, query={}, body=body
        )
        (letter_id,) = _kept(hub, NewDeadLetter(source, "a bug since fixed", request))
        return letter_id

    good = kept("twilio", headers)
    retried = hub.post(f"/v1/dead-letters/{good}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["recorded"] == 1
    # Twilio retrying the same request live: recorded once all the same.
    assert hub.client.post("/webhooks/twilio/sms", content=body, headers=headers).status_code == 200
    assert len(_messages_of(hub, f"phone:{CUSTOMER}")) == 1

    refused = assert_error(
        hub.post(f"/v1/dead-letters/{kept('twilio', forged)}/retry"), 422, "retry_failed"
    )
    assert "X-Twilio-Signature does not match" in refused["details"]["error"]
    elsewhere = assert_error(
        hub.post(f"/v1/dead-letters/{kept('fax', headers)}/retry"), 422, "retry_failed"
    )
    assert "connector 'fax' is not configured here" in elsewhere["details"]["error"]


# -- an interaction that failed to record ---------------------------------------------------


def test_an_item_that_failed_to_record_is_kept_and_recorded_by_its_retry(hub: Api) -> None:
    assert hub.runtime is not None
    runtime = hub.runtime
    item = InboundInteraction(
        channel="sms",
        direction="inbound",
        address="phone:+15550142001",
        provider_message_id="SMfailedonce",
        occurred_at=datetime.now(UTC) - timedelta(minutes=1),
        text="recorded at the second try",
    )

    async def failing(items: Sequence[InboundInteraction]) -> list[object]:
        return [Unrecorded(RuntimeError("the store refused this one")) for _ in items]

    # As the runtime's gateway (its record function answers Unrecorded for an item that
    # failed on its own), on the app's event loop.
    gateway = Gateway(
        runtime.settings,
        runtime.store.app,
        runtime.store.state_engine,
        failing,
        runtime.record_now,
        runtime.store.dead_letters,
    )
    portal = hub.client.portal  # type: ignore[attr-defined]
    portal.call(gateway.receive, "twilio", WebhookOutcome(interactions=(item,)))

    (letter,) = _letters(hub, kind="interaction")
    assert letter["source"] == "twilio"
    assert letter["reason"] == "not recorded: RuntimeError: the store refused this one"
    shown = hub.get(f"/v1/dead-letters/{letter['id']}").json()["original"]
    assert shown["json_body"]["provider_message_id"] == "SMfailedonce"
    retried = hub.post(f"/v1/dead-letters/{letter['id']}/retry")
    assert retried.json()["recorded"] == 1, retried.text
    (message,) = _messages_of(hub, "phone:+15550142001")
    assert message["text"] == "recorded at the second try"


def test_a_webhook_whose_item_fails_in_the_store_is_acknowledged_and_kept(
    hub: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real webhook path: an item the store refuses (a fault injected at the
    store, as a rule the validators miss would cause) does not fail the webhook; Twilio gets
    its 200 and the item is a dead letter, recorded by its retry once the fault is gone."""
    assert hub.runtime is not None
    app = hub.runtime.store.app
    record = app.record_interactions

    def refusing(items: Sequence[InboundInteraction]) -> Any:
        if any(i.provider_message_id.endswith("poison") for i in items):
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return record(items)

    monkeypatch.setattr(app, "record_interactions", refusing)
    headers, body = _signed_sms(incoming_params("poisoned", "SM" + "f" * 26 + "poison"))
    answered = hub.client.post("/webhooks/twilio/sms", content=body, headers=headers)
    assert answered.status_code == 200, answered.text

    (letter,) = _letters(hub, kind="interaction")
    assert letter["source"] == "twilio"
    assert "UnicodeEncodeError" in letter["reason"]
    monkeypatch.setattr(app, "record_interactions", record)
    retried = hub.post(f"/v1/dead-letters/{letter['id']}/retry")
    assert retried.json()["recorded"] == 1, retried.text
    assert [m["text"] for m in _messages_of(hub, CUSTOMER)] == ["poisoned"]


# -- who may -------------------------------------------------------------------------------


def test_only_an_admin_may_see_retry_or_drop_dead_letters(hub: Api) -> None:
    assert hub.runtime is not None
    (letter_id,) = _kept(hub, NewDeadLetter("email", "r", Original.email(b"x")))
    calls = [
        ("GET", "/v1/dead-letters"),
        ("GET", f"/v1/dead-letters/{letter_id}"),
        ("POST", f"/v1/dead-letters/{letter_id}/retry"),
        ("DELETE", f"/v1/dead-letters/{letter_id}"),
    ]
    for role in ("agent", "service"):
        _, token = hub.runtime.tokens.create(role, role)
        for method, url in calls:
            assert_error(hub.request(method, url, token=token), 403, "forbidden")
    for method, url in calls:
        assert_error(hub.request(method, url, token=None), 401, "unauthorized")
    assert hub.get(f"/v1/dead-letters/{letter_id}").status_code == 200


# -- retention -----------------------------------------------------------------------------


def test_letters_past_their_retention_are_purged_when_the_hub_starts(
    make_settings: Callable[..., Settings], smtp_port: int
) -> None:
    settings = _settings(make_settings, smtp_port, dead_letter_retention=timedelta(days=7))
    store = open_store(settings)
    try:
        DeadLetters.create_table(store.state_engine)
        now = datetime.now(UTC)
        _, recent = store.dead_letters.add(
            [
                NewDeadLetter("email", "old", Original.email(b"old"), now - timedelta(days=8)),
                NewDeadLetter("email", "new", Original.email(b"new"), now - timedelta(days=6)),
            ]
        )
    finally:
        store.close()
    with running_app(settings) as api:
        wait_for(lambda: [x["id"] for x in _letters(api)] == [str(recent)])
        assert api.readiness()["dead_letters"] == 1


# -- hub dead-letters ----------------------------------------------------------------------


def _cli(data_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["dead-letters", *args, "--data-dir", str(data_dir)])


def test_the_cli_lists_shows_retries_drops_and_purges_on_a_stopped_hubs_data_dir(
    make_settings: Callable[..., Settings], smtp_port: int
) -> None:
    settings = _settings(make_settings, smtp_port)
    data_dir = settings.data_dir
    raw = _mail("<clock-3@xcar.wooster.local>", "Tick tock.")
    store = open_store(settings)
    now = datetime.now(UTC)
    try:
        DeadLetters.create_table(store.state_engine)
        fixed, broken, stale = (
            str(i)
            for i in store.dead_letters.add(
                [
                    NewDeadLetter("email", "before the fix", Original.email(raw), now),
                    NewDeadLetter(
                        "hub.inbound",
                        "bad",
                        Original.interaction(b"{not json"),
                        now - timedelta(hours=1),
                    ),
                    NewDeadLetter(
                        "email",
                        "stale",
                        Original.email(b"x"),
                        now - timedelta(days=40),
                    ),
                ]
            )
        )
    finally:
        store.close()

    listed = _cli(data_dir, "list")
    assert listed.exit_code == 0, listed.output
    assert [line.split()[0] for line in listed.output.splitlines()] == [fixed, broken, stale]
    assert "before the fix" in listed.output
    assert _cli(data_dir, "list", "--kind", "interaction").output.split()[0] == broken

    shown = _cli(data_dir, "show", fixed)
    assert shown.exit_code == 0, shown.output
    assert "Tick tock." in shown.output
    assert "father.time@xcar.wooster.local" in shown.output

    retried = _cli(data_dir, "retry", fixed)
    assert retried.exit_code == 0, retried.output
    assert "1 new, 0 already recorded" in retried.output
    failing = _cli(data_dir, "retry", broken)
    assert failing.exit_code == 1
    assert "still fails (attempt 1): invalid inbound interaction" in failing.output
    assert _cli(data_dir, "retry", fixed).exit_code == 1  # gone: retried

    purged = _cli(data_dir, "purge")
    assert purged.exit_code == 0, purged.output
    assert purged.output.startswith("purged 1 dead letter(s)")
    assert _cli(data_dir, "drop", broken).exit_code == 0
    assert _cli(data_dir, "drop", broken).exit_code == 1
    assert _cli(data_dir, "list").output == ""

    with running_app(settings) as api:  # the retried mail is on the timeline, once
        (message,) = _messages_of(api, f"email:{LOCAL_SENDER}")
        assert message["text"] == "Tick tock."
