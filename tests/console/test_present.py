"""Pure parts of the console's safety: which URLs become links, and which timeline cursors
decode (only those :func:`encode_cursor` makes, to an in-range UTC time)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.console.present import link_url
from hub.projections.timeline import decode_cursor, encode_cursor


@pytest.mark.parametrize(
    "url",
    ["https://files.example.com/a.jpg", "http://127.0.0.1:8080/x?y=1#z", "HTTPS://EXAMPLE.COM/"],
)
def test_http_and_https_urls_are_links(url: str) -> None:
    assert link_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\nscript:alert(1)",
        "\x01javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "//evil.example/x",
        "/relative/path",
        "https:///no-host",
        "http://[::1",
        "https://example.com/a b",
        "",
        None,
        42,
    ],
)
def test_other_urls_are_not_links(url: object) -> None:
    assert link_url(url) is None


@given(st.text())
def test_a_link_is_always_http_or_https(text: str) -> None:
    shown = link_url(text)
    assert shown is None or shown.lower().startswith(("http://", "https://"))


@given(
    st.datetimes(timezones=st.just(UTC)),
    st.uuids(),
)
def test_cursors_round_trip(at: datetime, item_id: UUID) -> None:
    assert decode_cursor(encode_cursor(at, item_id)) == (at, item_id)


@given(
    st.one_of(
        st.text(),
        st.builds(
            lambda at, minutes, item: base64.urlsafe_b64encode(
                f"{at.isoformat()}{'' if minutes is None else _offset(minutes)}|{item}".encode()
            ).decode(),
            st.one_of(  # any time, often within a day of the ends of the range
                st.datetimes(),
                st.datetimes(max_value=datetime(1, 1, 2)),
                st.datetimes(min_value=datetime(9999, 12, 31)),
            ),
            st.none() | st.integers(-24 * 60 + 1, 24 * 60 - 1),
            st.uuids(),
        ),
    )
)
def test_any_text_decodes_to_an_in_range_utc_time_or_value_error(cursor: str) -> None:
    try:
        at, _ = decode_cursor(cursor)
    except ValueError:
        return
    assert at.utcoffset() == timedelta(0)
    assert datetime.min.replace(tzinfo=UTC) <= at <= datetime.max.replace(tzinfo=UTC)


def _offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
