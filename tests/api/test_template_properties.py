"""Properties of the templates API's text boundaries (SQLite): any string as a template's name
or as one of its texts is a 4xx or saved and then readable as sent, and a template saved
renders for a customer (a preview) as an answer or a 4xx, never a 5xx."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hub.events.common import check_text
from tests.support.api import Api
from tests.support.hostile import HOSTILE_TEXT

_RUN = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
#: Text with template syntax in it, well-formed or not.
JINJA_TEXT = st.one_of(
    HOSTILE_TEXT,
    st.lists(
        st.sampled_from(
            [
                "{{ first_name }}",
                "{{ attributes.plan }}",
                "{{ event.data.x }}",
                "{{",
                "}}",
                "{%",
                "%}",
                "{% if first_name %}",
                "{% endif %}",
                "{{ ''.__class__ }}",
                "{{ 'x' * 999999999 }}",
                "{{ 1/0 }}",
                "{# c #}",
                "€ ą 👋 <b>",
                "\x00",
                "\ud800",
            ]
        ),
        max_size=6,
    ).map("".join),
)


def _readable(value: str) -> bool:
    try:
        check_text(value)
    except ValueError:
        return False
    return True


def _path(name: str) -> str:
    """``name`` as a path segment, percent-encoded (a lone surrogate as the bytes it would
    be: not UTF-8, as a hostile client may send)."""
    return quote(name.encode("utf-8", "surrogatepass"), safe="")


def _put(api: Api, name: str, body: dict[str, Any]) -> Any:
    # Escaped JSON, as any client may send: "\ud800" is valid JSON and a lone surrogate.
    return api.put(
        f"/v1/templates/{_path(name)}",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )


def _body(text: str) -> dict[str, Any]:
    return {
        "default_language": "en",
        "defaults": {"first_name": "there"},
        "variants": [
            {
                "language": "en",
                "text": text,
                "email": {"subject": text or "-", "html": text},
            }
        ],
    }


@_RUN
@given(name=HOSTILE_TEXT)
@example(name="x" * 64)
@example(name="x" * 65)
@example(name="..")
@example(name="a/b")
@example(name="Ünï")
def test_any_name_is_a_4xx_or_saved_and_readable(sqlite_api: Api, name: str) -> None:
    response = _put(sqlite_api, name, _body("Hi"))
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert not _NAME.fullmatch(name), response.text
        return
    assert response.status_code in (200, 201), response.text
    assert _NAME.fullmatch(name)
    assert response.json()["name"] == name
    got = sqlite_api.get(f"/v1/templates/{_path(name)}")
    assert got.status_code == 200, got.text
    assert got.json()["name"] == name


@_RUN
@given(text=JINJA_TEXT)
@example(text="x" * 10_000)
@example(text="x" * 10_001)
@example(text="{{ first_name }}\r\n<script>")
def test_any_text_is_a_4xx_or_saved_readable_and_rendered(sqlite_api: Api, text: str) -> None:
    api = sqlite_api
    response = _put(api, "prop", _body(text))
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        code = response.json()["error"]["code"]
        assert code in ("validation_error", "template_invalid", "template_variable_unknown")
        return
    sent = json.loads(json.dumps(text))  # escaped surrogate pairs arrive joined
    assert _readable(sent)
    [variant] = api.get("/v1/templates/prop").json()["variants"]
    assert variant["text"] == sent
    assert variant["email"]["html"] == sent
    customer = api.record(address="phone:+15550188888")["customer_id"]  # the same each time
    preview = api.post("/v1/templates/prop/preview", json={"customer_id": customer})
    assert preview.status_code < 500, preview.text
    if preview.status_code >= 400:
        code = preview.json()["error"]["code"]
        assert code in ("template_variable_missing", "template_render_failed"), preview.text
        return
    channels = {c["channel"]: c for c in preview.json()["channels"]}
    assert channels["sms"]["sms"]["segments"] >= 1
    assert channels["email"]["email_bytes"] > 0
    assert "\n" not in channels["email"]["subject"]
    RENDERED.append(text)


#: The texts that were saved and rendered: the run must reach the sandbox.
RENDERED: list[str] = []


def test_the_text_property_reached_the_renderer() -> None:
    assert len(RENDERED) >= 20, RENDERED
