"""Saved segments in the event log (``hub.domain.segments``), on SQLite and PostgreSQL: define,
change, delete and list; names unique whatever the case, also between two processes racing;
the same command again records nothing; nothing published; filters checked against the
types of defined attributes."""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

import pytest

from hub.config import Settings
from hub.domain.errors import Conflict, DomainError, InvalidCommand, NotFound
from hub.domain.segments import AttributeType, InvalidFilter, check_attribute_types
from hub.events.segments import FILTER, parse_filter
from hub.store import Store
from tests.domain.helpers import stored_count, types
from tests.support.store import opened

VIP = parse_filter({"tag": "vip"})
SMS = parse_filter({"all": [{"tag": "vip"}, {"channel": "sms"}]})
SMS_JSON = {"all": [{"tag": "vip"}, {"channel": "sms"}]}


def test_define_read_list_change_and_delete(store: Store) -> None:
    segments = store.app.segments
    vip = segments.define("  VIP customers ", VIP, description="Our best", actor="ana")
    assert vip.name == "VIP customers"
    assert vip.filter == {"tag": "vip"}
    assert (vip.created_by, vip.updated_by, vip.description) == ("ana", "ana", "Our best")
    sms = segments.define("By SMS", SMS, actor="ana")
    assert [s.name for s in segments.all()] == ["By SMS", "VIP customers"]
    assert segments.get(vip.segment_id) == vip

    changed, did = segments.change(vip.segment_id, "VIPs", SMS, actor="ben")
    assert did
    assert (changed.name, changed.filter, changed.updated_by) == ("VIPs", SMS_JSON, "ben")
    assert changed.description is None  # the whole definition is replaced
    assert changed.updated_at > changed.created_at
    assert segments.get(vip.segment_id) == changed

    assert segments.delete(sms.segment_id, actor="ben")
    with pytest.raises(NotFound):
        segments.get(sms.segment_id)
    with pytest.raises(NotFound):
        segments.change(sms.segment_id, "Again", VIP, actor="ben")
    assert [s.name for s in segments.all()] == ["VIPs"]
    # Its name is free again.
    again = segments.define("by sms", VIP, actor="ana")
    assert again.segment_id != sms.segment_id


def test_the_same_command_again_records_nothing(store: Store) -> None:
    segments = store.app.segments
    vip = segments.define("VIP", VIP, actor="ana")
    before = stored_count(store)
    _, did = segments.change(vip.segment_id, " VIP ", parse_filter({"tag": " vip "}), actor="ben")
    assert not did
    assert stored_count(store) == before
    assert segments.delete(vip.segment_id, actor="ben")
    after_delete = stored_count(store)
    assert not segments.delete(vip.segment_id, actor="ben")
    assert stored_count(store) == after_delete
    with pytest.raises(NotFound):
        segments.delete(VIP_ID, actor="ben")


VIP_ID = UUID("01890000-0000-7000-8000-000000000000")  # no segment has it


def test_names_are_unique_whatever_the_case(store: Store) -> None:
    segments = store.app.segments
    first = segments.define("Lithuanian speakers", VIP, actor="ana")
    other = segments.define("Others", VIP, actor="ana")
    with pytest.raises(Conflict) as taken:
        segments.define("LITHUANIAN speakers", SMS, actor="ben")
    assert taken.value.code == "segment_name_taken"
    assert taken.value.status == 409
    with pytest.raises(Conflict):
        segments.change(other.segment_id, "lithuanian SPEAKERS", VIP, actor="ben")
    # A segment may change the case of its own name.
    renamed, did = segments.change(first.segment_id, "lithuanian speakers", VIP, actor="ben")
    assert did
    assert renamed.name == "lithuanian speakers"


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b", "\ud800"])
def test_names_must_be_text_of_1_to_100_characters(store: Store, name: str) -> None:
    with pytest.raises(InvalidCommand):
        store.app.segments.define(name, VIP, actor="ana")
    assert store.app.segments.all() == []


def test_a_filter_breaking_a_rule_is_refused(store: Store) -> None:
    deep: dict[str, Any] = {"tag": "vip"}
    for _ in range(8):
        deep = {"not": deep}
    for tree in (deep, {"attribute": "tier", "op": "lt", "value": True}):
        with pytest.raises(InvalidFilter):
            store.app.segments.define("Refused", FILTER.validate_python(tree), actor="ana")
    vip = store.app.segments.define("VIP", VIP, actor="ana")
    with pytest.raises(InvalidFilter):
        store.app.segments.change(vip.segment_id, "VIP", FILTER.validate_python(deep), actor="x")
    assert [s.filter for s in store.app.segments.all()] == [{"tag": "vip"}]


def test_segments_are_internal_events(store: Store) -> None:
    store.app.segments.define("VIP", VIP, actor="ana")
    assert stored_count(store) > 0
    assert sum(types(store).values()) == 0  # nothing published


def _define_together(stores: list[Store], name: str) -> list[str]:
    """Each store defines a segment called ``name`` at the same moment: what each got."""
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def define(store: Store) -> None:
        barrier.wait(timeout=10)
        try:
            store.app.segments.define(name, VIP, actor="x")
            outcomes.append("defined")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=define, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


def test_two_processes_taking_one_name_leave_one_segment(settings: Settings) -> None:
    with opened(settings) as one, opened(settings) as two:
        for n in range(4):
            assert _define_together([one, two], f"Race {n}") == ["defined", "segment_name_taken"]
        names = [s.name for s in two.app.segments.all()]
        assert names == ["Race 0", "Race 1", "Race 2", "Race 3"]


TYPES = {
    "tier": AttributeType("enum", ("gold", "silver")),
    "score": AttributeType("number"),
    "newsletter": AttributeType("boolean"),
    "since": AttributeType("date"),
    "note": AttributeType("string"),
}


@pytest.mark.parametrize(
    "leaf",
    [
        {"attribute": "tier", "value": "bronze"},
        {"attribute": "tier", "op": "in", "value": ["gold", "platinum"]},
        {"attribute": "tier", "op": "lt", "value": "gold"},
        {"attribute": "score", "value": "42"},
        {"attribute": "score", "value": True},
        {"attribute": "newsletter", "value": 1},
        {"attribute": "newsletter", "op": "gt", "value": 0},
        {"attribute": "since", "op": "lt", "value": "2024-13-01"},
        {"attribute": "since", "value": 20240101},
        {"attribute": "note", "value": 5},
    ],
)
def test_a_defined_attribute_is_compared_as_its_type(leaf: dict[str, Any]) -> None:
    with pytest.raises(InvalidFilter) as refused:
        check_attribute_types(parse_filter({"not": {"all": [leaf]}}), TYPES)
    assert refused.value.status == 422
    assert leaf["attribute"] in refused.value.message


@pytest.mark.parametrize(
    "leaf",
    [
        {"attribute": "tier", "op": "in", "value": ["gold", "silver"]},
        {"attribute": "tier", "op": "ne", "value": "gold"},
        {"attribute": "score", "op": "ge", "value": 4.5},
        {"attribute": "newsletter", "value": False},
        {"attribute": "since", "op": "lt", "value": "2024-02-29"},
        {"attribute": "note", "op": "gt", "value": "m"},
        {"attribute": "tier", "op": "exists"},
        {"attribute": "undefined", "value": 5},
    ],
)
def test_values_a_type_holds_pass(leaf: dict[str, Any]) -> None:
    check_attribute_types(parse_filter(leaf), TYPES)
