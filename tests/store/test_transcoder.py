"""Unit tests of hub.store.transcoder.OrjsonTranscoder: tagged UUIDs, datetimes and "~" strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest

from hub.store.transcoder import OrjsonTranscoder

U1 = UUID("01900000-0000-7000-8000-000000000001")
U2 = UUID("5e1f1c0e-0000-8000-8000-000000000003")
T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T_PLUS2 = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))


@pytest.fixture
def transcoder() -> OrjsonTranscoder:
    return OrjsonTranscoder()


@pytest.mark.parametrize(
    "state",
    [
        {"id": U1, "at": T0},
        {"at": T_PLUS2},
        {"plain": "hello", "empty": ""},
        {"tilde": "~", "double": "~~", "triple": "~~~", "word": "~tilde at start"},
        {"looks_like_uuid": "~u" + U1.hex, "looks_like_time": "~d" + T0.isoformat()},
        {"escaped_uuid": "~~u" + U1.hex, "inner_tilde": "a~u" + U1.hex},
        {"n": None, "zero": 0, "big": 2**62, "neg": -7, "yes": True, "no": False, "f": 1.5},
        {"ids": [U1, U2], "times": [T0, T_PLUS2], "mixed": [1, "~", None, True, U1]},
        {"nested": {"id": U1, "deeper": {"at": T0, "list": [{"x": "~u"}, ["~d", U2]]}}},
        {"attachments": [{"name": "pd1:abc", "url": None, "size": 3}], "empty_list": []},
        {"unicode": "naïve ☃ ~ü", "empty_dict": {}},
    ],
    ids=lambda s: ",".join(s),
)
def test_round_trip(transcoder: OrjsonTranscoder, state: dict[str, Any]) -> None:
    data = transcoder.encode(state)
    assert isinstance(data, bytes)
    decoded = transcoder.decode(data)
    assert decoded == state
    assert _types(decoded) == _types(state)


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)


def test_datetimes_keep_their_offset(transcoder: OrjsonTranscoder) -> None:
    decoded = transcoder.decode(transcoder.encode({"at": T_PLUS2, "utc": T0}))
    assert decoded["at"].utcoffset() == timedelta(hours=2)
    assert decoded["utc"].utcoffset() == timedelta(0)
    assert decoded["utc"].microsecond == 123456


def test_literal_tag_strings_are_not_mistaken_for_values(transcoder: OrjsonTranscoder) -> None:
    literal = "~u" + U1.hex
    decoded = transcoder.decode(
        transcoder.encode({"a": literal, "b": [literal], "c": {"d": literal}})
    )
    assert decoded == {"a": literal, "b": [literal], "c": {"d": literal}}
    assert isinstance(decoded["a"], str)
    assert isinstance(decoded["b"][0], str)
    assert isinstance(decoded["c"]["d"], str)


def test_encoding_is_compact_json_with_tags(transcoder: OrjsonTranscoder) -> None:
    assert transcoder.encode({"id": U1, "s": "~x", "n": 1}) == (
        b'{"id":"~u' + U1.hex.encode() + b'","s":"~~x","n":1}'
    )


def test_tuples_decode_as_lists(transcoder: OrjsonTranscoder) -> None:
    assert transcoder.decode(transcoder.encode({"refs": ("a", U1)})) == {"refs": ["a", U1]}
