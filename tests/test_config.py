"""Reading the settings from the environment: lists as comma-separated values or JSON, and an
invalid setting reported as one line naming its variable (never a secret's value)."""

from __future__ import annotations

import json
import os
import types
from collections.abc import Iterator
from typing import Any, Union, get_args, get_origin

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from hub.config import InvalidSettings, Settings, _problem, _variable, load_settings
from hub.connectors.settings import EmailSettings, split_list


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets (the developer's own HUB_ settings stay out)."""
    for name in list(os.environ):
        if name.upper().startswith("HUB_"):
            monkeypatch.delenv(name)


# -- lists ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("hub.test", ["hub.test"]),
        ("hub.test,support.example", ["hub.test", "support.example"]),
        (" hub.test , support.example ,", ["hub.test", "support.example"]),
        ('["hub.test", "support.example"]', ["hub.test", "support.example"]),
        (' ["a,b.test"] ', ["a,b.test"]),  # JSON for an item with a comma
        ("", []),
    ],
)
def test_a_nested_list_setting_is_comma_separated_or_json(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: list[str]
) -> None:
    monkeypatch.setenv("HUB_EMAIL__DOMAINS", given)
    monkeypatch.setenv("HUB_CHAT__ALLOWED_ORIGINS", given.replace("hub.test", "https://a.test"))

    settings = load_settings()

    assert settings.email.domains == expected
    assert list(settings.chat.allowed_origins) == [
        item.replace("hub.test", "https://a.test") for item in expected
    ]


item = st.text(st.characters(exclude_categories=["Cs"], exclude_characters=","), min_size=1).filter(
    lambda s: s == s.strip() and not s.startswith("[")
)


@given(st.lists(item, max_size=8))
def test_any_list_reads_back_from_both_forms(items: list[str]) -> None:
    assert split_list(",".join(items)) == items
    assert split_list(json.dumps(items)) == items
    assert EmailSettings(domains=",".join(items)).domains == items


def _list_fields(
    model: type[BaseModel], prefix: str = "HUB_"
) -> Iterator[tuple[str, type[BaseModel], str]]:
    """Every list-like field of the settings, with its variable, its model and its name."""
    for name, field in model.model_fields.items():
        members = (field.annotation, *get_args(field.annotation))
        for member in members:
            if isinstance(member, type) and issubclass(member, BaseModel):
                yield from _list_fields(member, f"{prefix}{name.upper()}__")
        annotation = field.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if get_origin(annotation) in (list, tuple, set, frozenset):
            yield f"{prefix}{name.upper()}", model, name


def test_every_list_setting_accepts_a_comma_separated_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list setting added later gets the same parsing (``EnvList``), or this fails."""
    found = list(_list_fields(Settings))
    assert ("HUB_EMAIL__DOMAINS", EmailSettings, "domains") in found
    for variable, _, _ in found:
        monkeypatch.setenv(variable, "one.test,two.test")

    settings = load_settings()

    for variable, _, name in found:
        section: Any = settings
        for part in variable.removeprefix("HUB_").lower().split("__")[:-1]:
            section = getattr(section, part)
        assert list(getattr(section, name)) == ["one.test", "two.test"], variable


# -- invalid settings ----------------------------------------------------------------------


def _problems(monkeypatch: pytest.MonkeyPatch, **variables: str) -> list[str]:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettings) as caught:
        load_settings()
    assert str(caught.value) == "\n".join(caught.value.problems)
    return list(caught.value.problems)


def test_each_invalid_setting_is_one_line_naming_variable_value_and_expectation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems = _problems(
        monkeypatch,
        HUB_PORT="http",
        HUB_SQLITE_SYNCHRONOUS="fast",
        HUB_KAFKA__PARTITIONS="0",
        HUB_EMAIL__DOMAINS='["hub.test"',
        HUB_CHAT__ALLOWED_ORIGINS="[1]",
    )

    assert problems == [
        "HUB_PORT='http': expected a valid integer, unable to parse string as an integer",
        "HUB_SQLITE_SYNCHRONOUS='fast': expected 'OFF', 'NORMAL' or 'FULL'",
        "HUB_KAFKA__PARTITIONS='0': expected greater than or equal to 1",
        "HUB_EMAIL__DOMAINS='[\"hub.test\"': expected a JSON array or comma-separated "
        "values, got malformed JSON",
        "HUB_CHAT__ALLOWED_ORIGINS[0]=1: expected a valid string",
    ]


def test_a_section_given_as_bad_json_is_named_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems = _problems(monkeypatch, HUB_KAFKA='{"sasl_password": "hunter2", ')

    assert len(problems) == 1
    assert problems[0].startswith("HUB_KAFKA: not valid JSON (")
    assert "hunter2" not in problems[0]


def test_third_party_settings_and_secrets_are_never_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problems = _problems(monkeypatch, HUB_CONNECTORS__FAX="token-s3cret")

    assert problems == ["HUB_CONNECTORS__FAX (value not shown): expected a valid dictionary"]
    assert _variable(("kafka", "sasl_password"), {}) == ("HUB_KAFKA__SASL_PASSWORD", True)
    assert _variable(("master_key",), {}) == ("HUB_MASTER_KEY", True)
    assert _variable(("connectors", "fax", "token"), {}) == ("HUB_CONNECTORS__FAX__TOKEN", True)
    assert _variable(("email", "smtp_port"), {}) == ("HUB_EMAIL__SMTP_PORT", False)
    assert _variable(("email",), {}) == ("HUB_EMAIL", True)  # a section: may hold secrets


def test_a_database_url_is_shown_without_its_password() -> None:
    problem = _problem(
        {
            "type": "value_error",
            "loc": ("views_url",),
            "msg": "Value error, unknown scheme",
            "input": "postgres+nope://hub:pw-s3cret@db/hub",
        },
        {},
    )

    assert problem == "HUB_VIEWS_URL='postgres+nope://hub:***@db/hub': unknown scheme"


def test_a_command_line_option_is_named_as_such() -> None:
    with pytest.raises(InvalidSettings) as caught:
        load_settings(port=70000)

    assert caught.value.problems == ("--port=70000: expected less than or equal to 65535",)
