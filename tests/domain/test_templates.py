"""Message templates in the event log (``hub.domain.templates``), on SQLite and PostgreSQL:
saved as versions (old ones readable), the same definition again records nothing, names
unique whatever the case, deleted and back, nothing published, loaded by name in a unit of
work, and what a definition may not say at save time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.domain.errors import NotFound
from hub.domain.rendering import TemplateInvalid, UnknownVariable, render
from hub.domain.templates import Template, check_definition, template_id
from hub.store import Store
from hub.store.transfer import export_store, import_store
from tests.domain.helpers import stored_count, types
from tests.support.store import SettingsFactory, opened


def definition(**extra: Any) -> dict[str, Any]:
    return {
        "default_language": "en",
        "defaults": {"first_name": "there"},
        "variants": [
            {"language": "en", "text": "Hi {{ first_name }}!"},
            {"language": "lt", "text": "Labas, {{ first_name }}!"},
        ],
    } | extra


def test_each_save_is_a_version_and_old_ones_stay_readable(store: Store) -> None:
    templates = store.app.templates
    first, created = templates.save("Welcome", definition(), actor="ana")
    assert (first.version, created, first.saved_by) == (1, True, "ana")
    changed = definition(description="Second take")
    second, created = templates.save("welcome", changed, actor="ben")
    assert (second.version, created, second.name) == (2, False, "welcome")
    assert second.versions == (1, 2)
    assert templates.get("WELCOME").description == "Second take"
    assert templates.get("Welcome", version=1).description is None
    assert templates.get("Welcome", version=1).saved_by == "ana"
    with pytest.raises(NotFound):
        templates.get("Welcome", version=3)
    assert [t.name for t in templates.all()] == ["welcome"]


def test_the_same_definition_again_records_nothing(store: Store) -> None:
    templates = store.app.templates
    templates.save("welcome", definition(), actor="ana")
    before = stored_count(store)
    again, created = templates.save("Welcome", definition(), actor="ben")
    assert (again.version, created) == (1, False)
    assert stored_count(store) == before


def test_delete_keeps_the_versions_and_a_save_brings_it_back(store: Store) -> None:
    templates = store.app.templates
    templates.save("welcome", definition(), actor="ana")
    templates.save("other", definition(), actor="ana")
    assert templates.delete("Welcome", actor="ana")
    assert not templates.delete("welcome", actor="ana")
    with pytest.raises(NotFound):
        templates.get("welcome")
    with pytest.raises(NotFound):
        templates.delete("never-saved", actor="ana")
    assert [t.name for t in templates.all()] == ["other"]
    back, created = templates.save("welcome", definition(), actor="ana")
    assert (back.version, created) == (2, True)  # numbering goes on
    assert [t.name for t in templates.all()] == ["other", "welcome"]


def test_templates_are_internal_and_load_by_name_in_a_unit_of_work(store: Store) -> None:
    store.app.templates.save("welcome", definition(), actor="ana")
    store.app.templates.save("welcome", definition(description="v2"), actor="ana")
    assert not [t for t in types(store) if "template" in t]  # nothing published

    def load(uow: Any) -> Template | None:
        found: Template | None = uow.get(Template, template_id("WELCOME"))
        return found

    template = store.app.read(load)
    assert template is not None
    assert (template.latest_version, template.default_language, template.deleted) == (
        2,
        "en",
        False,
    )
    assert template.defaults == {"first_name": "there"}
    assert render(template, "sms", "lt-LT", {}).text == "Labas, there!"
    assert render(template, "sms", "en", {"first_name": "Ona"}, version=1).version == 1


def test_an_unknown_attribute_is_refused_until_it_is_defined_or_has_a_default(
    store: Store,
) -> None:
    uses_plan = definition(variants=[{"language": "en", "text": "{{ attributes.plan }}"}])
    with pytest.raises(UnknownVariable) as unknown:
        store.app.templates.save("plan", uses_plan, actor="ana")
    assert unknown.value.code == "template_variable_unknown"
    assert unknown.value.details["variable"] == "attributes.plan"
    with_default = uses_plan | {"defaults": {"attributes.plan": "free"}}
    assert store.app.templates.save("plan", with_default, actor="ana")[0].version == 1
    store.app.profile.define_attribute("plan", "string", "Plan", actor="admin")
    assert store.app.templates.save("plan", uses_plan, actor="ana")[0].version == 2


INVALID, UNKNOWN = "template_invalid", "template_variable_unknown"
_EN = {"language": "en"}


def _en(**variant: Any) -> dict[str, Any]:
    return {"variants": [{"language": "en", **variant}]}


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"default_language": "english!"}, INVALID, "default_language"),
        ({"variants": []}, INVALID, "variants"),
        ({"variants": [{"language": "lt", "text": "x"}]}, INVALID, "variants"),  # no default
        (_en(text="{{ oops"), INVALID, "variants[0].text"),
        (_en(text="{{ x|center(9) }}"), INVALID, "variants[0].text"),
        (_en(text="{{ ''.__class__ }}"), INVALID, "variants[0].text"),
        (_en(text="{{ _secret }}"), INVALID, "variants[0].text"),
        (_en(text="{{ nickname }}"), UNKNOWN, "variants[0].text"),
        (_en(email={"subject": "{{ nick }}", "text": "x"}), UNKNOWN, "variants[0].email.subject"),
        (_en(channel="fax", text="x"), INVALID, None),
        (_en(channel="email", text="x"), INVALID, None),
        (_en(email={"text": "x"}), INVALID, "variants[0].email.subject"),
        ({"variants": [_EN | {"text": "a"}, {"language": "EN", "text": "b"}]}, INVALID, None),
        (_en(text="x" * 10_001), INVALID, "variants[0].text"),
        (_en(text="a\x00"), INVALID, "variants[0].text"),
        ({"defaults": {"bad key": "x"}}, INVALID, "defaults"),
        (_en(whatsapp={"name": "Bad", "language": "en"}), INVALID, "variants[0].whatsapp.name"),
    ],
)  # fmt: skip
def test_what_a_definition_may_not_say(
    change: dict[str, Any], code: str, field: str | None
) -> None:
    with pytest.raises((TemplateInvalid, UnknownVariable)) as refused:
        check_definition(definition(**change))
    assert refused.value.code == code
    if field is not None:
        assert refused.value.details["field"] == field


def test_a_declared_default_makes_a_variable_known() -> None:
    checked, attributes = check_definition(
        definition(
            defaults={"nickname": "friend", "event.data.amount": "0"},
            variants=[
                {"language": "en", "text": "{{ nickname }} {{ event.data.amount }}"},
                {"language": "en", "channel": "email", "email": {"subject": "Hi", "html": "<b/>"}},
            ],
        )
    )
    assert attributes == {}
    assert checked["defaults"] == {"event.data.amount": "0", "nickname": "friend"}
    assert checked["variants"][1]["email"] == {"subject": "Hi", "text": None, "html": "<b/>"}


def test_names_are_letters_digits_and_dots_dashes_underscores(store: Store) -> None:
    for bad in ("", "-lead", "a b", "x" * 65, "..", "ünï"):
        with pytest.raises(TemplateInvalid):
            store.app.templates.save(bad, definition(), actor="ana")
    assert store.app.templates.save("a.b-c_1", definition(), actor="ana")[0].name == "a.b-c_1"
    assert template_id("Reminder") == template_id("rEMINDER") != template_id("reminder2")


def test_templates_travel_in_a_store_export(make_settings: SettingsFactory, tmp_path: Path) -> None:
    source = make_settings("sqlite", data_dir=tmp_path / "source")
    with opened(source) as store:
        store.app.templates.save("welcome", definition(), actor="ana")
        store.app.templates.save("welcome", definition(description="v2"), actor="ana")
    keys = {
        "master_key": (source.data_dir / "master.key").read_text().strip(),
        "address_pepper": (source.data_dir / "pepper.key").read_text().strip(),
    }
    target = make_settings("sqlite", data_dir=tmp_path / "target", **keys)
    path = tmp_path / "hub-export.jsonl"
    export_store(source, path)
    import_store(target, path)
    with opened(target) as store:
        assert store.app.templates.get("Welcome").versions == (1, 2)
        assert store.app.templates.get("welcome", version=1).description is None
        assert [t.name for t in store.app.templates.all()] == ["welcome"]
