"""Rendering templates (``hub.domain.rendering``): the language fallback and channel variants,
variables from a customer's profile (merged groups, attributes, the event), declared defaults
and missing variables, the sandbox holding against escapes and runaway output, SMS segments
(GSM 03.38, its extension table, UCS-2) and the size of an email."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from hub.domain.errors import CustomerErased, MissingVariable
from hub.domain.rendering import (
    NoVariant,
    Rendered,
    TemplateInvalid,
    TemplateRenderFailed,
    email_size,
    fallback_languages,
    inspect_source,
    render_definition,
    sms_segments,
    variables_for,
)
from hub.domain.templates import check_definition
from hub.store import Store
from tests.support.store import inbound

DEFINITION = check_definition(
    {
        "default_language": "en",
        "defaults": {"first_name": "there", "attributes.plan": "free"},
        "variants": [
            {
                "language": "en",
                "text": "Hi {{ first_name }}, your plan: {{ attributes.plan }}",
                "email": {
                    "subject": "Hello\r\n{{ first_name }}",
                    "text": "Dear {{ first_name }}",
                    "html": "<p>Dear {{ first_name }}</p>",
                },
                "whatsapp": {
                    "name": "greeting",
                    "language": "en_US",
                    "parameters": ["{{ first_name }}", "{{ attributes.plan|upper }}"],
                },
            },
            {"language": "lt", "text": "Labas, {{ first_name }}"},
            {"language": "lt", "channel": "sms", "text": "Sveiki, {{ first_name }}"},
            {"language": "pt-BR", "text": "Olá, {{ first_name }}"},
        ],
    }
)[0]


def _one(source: str) -> dict[str, Any]:
    """A definition of one English variant with ``source`` as its text."""
    variants = [{"language": "en", "text": source}]
    return check_definition({"default_language": "en", "variants": variants})[0]


def _render(channel: str, language: str | None, **variables: Any) -> Rendered:
    return render_definition(DEFINITION, 3, channel, language, variables)


def test_the_language_falls_back_region_then_language_then_default() -> None:
    assert fallback_languages("lt-LT", "en") == ["lt-LT", "lt", "en"]
    assert fallback_languages("zh-Hant-TW", "en-GB") == [
        "zh-Hant-TW",
        "zh-Hant",
        "zh",
        "en-GB",
        "en",
    ]
    assert fallback_languages("en-x-private", "en") == ["en-x-private", "en"]
    assert fallback_languages(None, "lt") == ["lt"]
    chat = _render("chat", "lt-LT", first_name="Ona")
    assert (chat.text, chat.language, chat.version) == ("Labas, Ona", "lt", 3)
    assert _render("chat", "pt-br", first_name="Ana").text == "Olá, Ana"  # case ignored
    assert _render("chat", "de-AT", first_name="Max").language == "en"
    assert _render("chat", None, first_name="Max").language == "en"


def test_a_channel_variant_wins_over_the_any_channel_one() -> None:
    assert _render("sms", "lt", first_name="Ona").text == "Sveiki, Ona"
    assert _render("chat", "lt", first_name="Ona").text == "Labas, Ona"
    # Lithuanian has no email: the default language's serves it.
    email = _render("email", "lt", first_name="Ona")
    assert (email.language, email.subject, email.text) == ("en", "Hello Ona", "Dear Ona")
    assert email.html == "<p>Dear Ona</p>"


def test_whatsapp_renders_the_approved_template_and_its_parameters() -> None:
    whatsapp = _render("whatsapp", "en", first_name="Ona", attributes={"plan": "gold"})
    assert whatsapp.whatsapp == {
        "name": "greeting",
        "language": "en_US",
        "parameters": ("Ona", "GOLD"),
    }
    assert whatsapp.text == "Hi Ona, your plan: gold"  # for a reply inside the 24-hour window


def test_no_variant_for_a_channel_is_refused() -> None:
    sms_only = check_definition(
        {"default_language": "en", "variants": [{"language": "en", "channel": "sms", "text": "x"}]}
    )[0]
    with pytest.raises(NoVariant) as none:
        render_definition(sms_only, 1, "email", "en", {})
    assert none.value.code == "template_no_variant"


def test_defaults_fill_what_has_no_value_and_a_missing_variable_names_itself() -> None:
    assert _render("chat", "en").text == "Hi there, your plan: free"
    assert (
        _render("chat", "en", first_name=None, attributes={"plan": None}).text
        == "Hi there, your plan: free"
    )
    assert (
        _render("chat", "en", first_name="Ona", attributes={"plan": "gold"}).text
        == "Hi Ona, your plan: gold"
    )
    bare = check_definition(
        {
            "default_language": "en",
            "variants": [
                {"language": "en", "text": "{{ company }} / {{ event.data.order.total }}"}
            ],
        }
    )[0]
    with pytest.raises(MissingVariable) as missing:
        render_definition(bare, 1, "sms", "en", {"event": {"data": {}}})
    assert (missing.value.code, missing.value.variable) == ("template_variable_missing", "company")
    with pytest.raises(MissingVariable) as missing:
        render_definition(
            bare, 1, "sms", "en", {"company": "Acme", "event": {"data": {"order": {}}}}
        )
    assert missing.value.details["variable"] == "event.data.order.total"
    total = {"company": "Acme", "event": {"data": {"order": {"total": 12.5}}}}
    assert render_definition(bare, 1, "sms", "en", total).text == "Acme / 12.5"


def test_is_defined_and_the_default_filter_still_work() -> None:
    source = "{% if attributes.vip is defined %}VIP {% endif %}{{ company|default('you') }}"
    checked = _one(source)
    assert render_definition(checked, 1, "sms", "en", {"attributes": {}}).text == "you"
    vip = {"attributes": {"vip": True}, "company": "Acme"}
    assert render_definition(checked, 1, "sms", "en", vip).text == "VIP Acme"


def test_html_is_escaped_only_in_the_html_part() -> None:
    email = _render("email", "en", first_name="<script>x</script>")
    assert email.html == "<p>Dear &lt;script&gt;x&lt;/script&gt;</p>"
    assert email.text == "Dear <script>x</script>"
    assert _render("sms", "en", first_name="a&b").text == "Hi a&b, your plan: free"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ first_name.__class__ }}",
        "{{ attributes['__class__'] }}",
        "{{ _x }}",
        "{{ range(10) }}",
        "{{ lipsum() }}",
        "{{ cycler }}",
        "{{ first_name|attr('__class__') }}",
        "{{ 'x'|center(1000000000) }}",
        "{{ 'x'|indent(1000000000) }}",
        "{{ '%s'|format(1) }}",
        "{{ first_name|safe }}",
    ],
)
def test_the_sandbox_refuses_escapes_at_save_time(source: str) -> None:
    with pytest.raises((TemplateInvalid, Exception)) as refused:
        _one(source)
    assert getattr(refused.value, "code", None) in ("template_invalid", "template_variable_unknown")


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{{ first_name.upper() }}", {"first_name": "ona"}),  # no method of a Python object
        ("{{ first_name.ljust(1000000000) }}", {"first_name": "ona"}),
        ("{{ attributes.items() }}", {"attributes": {"a": 1}}),
        ("{{ 'x' * 1000000000 }}", {}),
        ("{{ [1] * 1000000000 }}", {}),
        ("{{ 10 ** 100000000 }}", {}),
        ("{{ '%999999999s' % first_name }}", {"first_name": "ona"}),
        ("{{ first_name|replace('', first_name * 50000) }}", {"first_name": "o" * 100}),
        (
            "{% for a in first_name %}{% for b in first_name %}"
            "{{ first_name }}{% endfor %}{% endfor %}",
            {"first_name": "x" * 200},
        ),
        ("{{ 1 / 0 }}", {}),
    ],
)
def test_what_the_sandbox_stops_at_render_time(source: str, variables: dict[str, Any]) -> None:
    checked = _one(source)
    with pytest.raises((TemplateRenderFailed, MissingVariable)):
        render_definition(checked, 1, "sms", "en", variables)


def test_loops_and_filters_over_the_attributes() -> None:
    source = "{% for k, v in attributes|dictsort %}{{ loop.index }}:{{ k }}={{ v }} {% endfor %}"
    assert inspect_source(source, html=False, field="text").names == {"attributes"}
    out = render_definition(_one(source), 1, "sms", "en", {"attributes": {"b": 2, "a": True}})
    assert out.text == "1:a=True 2:b=2 "


# -- variables of a customer ------------------------------------------------------------------


def _customer(store: Store, address: str, name: str | None) -> UUID:
    channel = "email" if address.startswith("email:") else "sms"
    item = inbound(f"first-{address}", channel=channel, address=address, contact_name=name)
    [r] = store.app.record_interactions([item])
    return r.customer_id


def test_variables_come_from_the_profile_a_merged_group_folded(store: Store) -> None:
    app = store.app
    root = _customer(store, "phone:+37060000001", "Ona Marija Petraitė")
    member = _customer(store, "email:ona@example.com", None)
    app.profile.define_attribute("plan", "enum", "Plan", ["free", "gold"], actor="admin")
    app.profile.define_attribute("seats", "number", "Seats", actor="admin")
    app.profile.update(root, {"language": "lt-LT", "attributes": {"plan": "gold"}}, actor="a")
    app.profile.update(member, {"company": "UAB Pienas", "attributes": {"seats": 3}}, actor="a")
    app.identity.merge(root, member, actor="a", reason="same")

    event = {"type": "conversation.status_changed.v1", "data": {"status": "resolved"}}
    found = app.read(lambda uow: variables_for(uow, app.cipher, member, event))
    assert found == {
        "customer_id": str(root),
        "display_name": "Ona Marija Petraitė",
        "first_name": "Ona",
        "last_name": "Marija Petraitė",
        "language": "lt-LT",
        "company": "UAB Pienas",
        "attributes": {"plan": "gold", "seats": 3},
        "event": event,
    }
    alone = _customer(store, "phone:+37060000002", None)
    assert app.read(lambda uow: variables_for(uow, app.cipher, alone)) == {
        "customer_id": str(alone),
        "attributes": {},
    }
    app.erasure.erase(alone, actor="admin", reason="test_data")
    with pytest.raises(CustomerErased):
        app.read(lambda uow: variables_for(uow, app.cipher, alone))


# -- what a message costs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 1, 0)),
        ("x" * 160, ("GSM-7", 1, 160)),
        ("x" * 161, ("GSM-7", 2, 161)),
        ("x" * 306, ("GSM-7", 2, 306)),
        ("x" * 307, ("GSM-7", 3, 307)),
        ("Ærø @£$¥ èéùìò ÇØøÅå ΔΦΓΛΩΠΨΣΘΞ ßÉ ¡¿ ÄÖÑÜ§ äöñüà", ("GSM-7", 1, 49)),
        ("€" * 80, ("GSM-7", 1, 160)),  # the extension table: two septets each
        ("€" * 81, ("GSM-7", 2, 162)),
        ("x" * 152 + "€" + "x" * 152, ("GSM-7", 3, 306)),  # an escape pair is never split
        ("{}[]~|^\\", ("GSM-7", 1, 16)),
        ("ąčęėįšųūž", ("UCS-2", 1, 9)),  # Lithuanian
        ("ěščřžýáíé", ("UCS-2", 1, 9)),  # Czech: é and others are not all GSM
        ("Labas, Ąžuolai! " * 4 + "x" * 6, ("UCS-2", 1, 70)),
        ("ą" * 71, ("UCS-2", 2, 71)),
        ("ą" * 134, ("UCS-2", 2, 134)),
        ("ą" * 135, ("UCS-2", 3, 135)),
        ("Hi 👋", ("UCS-2", 1, 5)),  # an emoji: two UTF-16 units
        ("ą" * 66 + "👋", ("UCS-2", 1, 68)),
        ("ą" * 66 + "👋" + "ą" * 3, ("UCS-2", 2, 71)),  # a surrogate pair is never split
        ("ç", ("UCS-2", 1, 1)),  # only the capital Ç is in GSM 03.38
    ],
)
def test_sms_segments(text: str, expected: tuple[str, int, int]) -> None:
    assert tuple(sms_segments(text)) == expected


def test_the_size_of_an_email_is_its_mime_message() -> None:
    email = _render("email", "en", first_name="Ona")
    size = email_size(email)
    assert 300 < size < 2000
    bigger = email_size(_render("email", "en", first_name="Ona" * 100))
    assert bigger > size + 400  # the name is in the subject, the text and the HTML
    html_only = Rendered(version=1, language="en", channel="email", subject="S", html="<p>é</p>")
    assert email_size(html_only) > 0
