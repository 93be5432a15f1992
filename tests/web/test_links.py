"""Signed link tokens (hub.web.links, signed by hub.domain.links): what one key signed for one
kind verifies, and nothing else does: an altered, truncated or foreign token, a token of another
kind, an expired one; and the pages a refused link answers with."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.web.links import InvalidLink, LinkSigner, link_page, refused_link_page

KEY = os.urandom(32)
signer = LinkSigner(KEY)


def test_a_signed_payload_verifies_and_is_url_safe() -> None:
    customer = uuid.uuid4()
    token = signer.sign("unsubscribe", {"c": str(customer), "ch": "email", "p": "marketing"})
    assert signer.verify("unsubscribe", token) == {
        "c": str(customer),
        "ch": "email",
        "p": "marketing",
    }
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_another_kind_or_key_is_refused() -> None:
    token = signer.sign("unsubscribe", {"c": "x"})
    with pytest.raises(InvalidLink) as refused:
        signer.verify("double_opt_in", token)
    assert (refused.value.status, refused.value.code) == (400, "invalid_link")
    with pytest.raises(InvalidLink):
        LinkSigner(os.urandom(32)).verify("unsubscribe", token)


def test_every_altered_character_is_refused() -> None:
    token = signer.sign("unsubscribe", {"c": "customer", "p": "service"})
    for i, char in enumerate(token):
        for other in {"A", "b", "-", "."} - {char}:
            altered = token[:i] + other + token[i + 1 :]
            with pytest.raises(InvalidLink):
                signer.verify("unsubscribe", altered)
    for cut in (token[:-1], token[1:], token + "A", token + "=", token.split(".")[0], ""):
        with pytest.raises(InvalidLink):
            signer.verify("unsubscribe", cut)


def test_a_forged_payload_with_a_reused_mac_is_refused() -> None:
    good = signer.sign("unsubscribe", {"c": "mine"})
    other = signer.sign("unsubscribe", {"c": "theirs"})
    forged = other.split(".")[0] + "." + good.split(".")[1]
    with pytest.raises(InvalidLink):
        signer.verify("unsubscribe", forged)


def test_expiry() -> None:
    now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    token = signer.sign("double_opt_in", {"c": "x"}, expires_at=now + timedelta(hours=1))
    assert signer.verify("double_opt_in", token, now=now) == {"c": "x"}
    assert signer.verify("double_opt_in", token, now=now + timedelta(minutes=59)) == {"c": "x"}
    with pytest.raises(InvalidLink) as refused:
        signer.verify("double_opt_in", token, now=now + timedelta(hours=1))
    assert (refused.value.status, refused.value.code) == (410, "link_expired")
    # No expiry given: valid whenever.
    lasting = signer.sign("unsubscribe", {"c": "x"})
    assert signer.verify("unsubscribe", lasting, now=now + timedelta(days=3650)) == {"c": "x"}


def test_reserved_keys_and_short_keys_are_refused() -> None:
    with pytest.raises(ValueError):
        signer.sign("unsubscribe", {"k": "other kind"})
    with pytest.raises(ValueError):
        LinkSigner(b"short")


@given(st.text(max_size=3000))
def test_any_string_is_refused_or_was_signed(text: str) -> None:
    """Whatever arrives in a URL: InvalidLink, never another exception, never a payload."""
    with pytest.raises(InvalidLink):
        signer.verify("unsubscribe", text)


@given(
    st.dictionaries(
        st.text(min_size=2, max_size=20),
        st.one_of(st.text(max_size=50), st.integers(-(2**53), 2**53), st.booleans(), st.none()),
        max_size=6,
    ),
    st.text(min_size=1, max_size=30),
)
def test_any_payload_round_trips(payload: dict[str, object], kind: str) -> None:
    surrogate = any(
        0xD800 <= ord(c) <= 0xDFFF
        for part in [kind, *payload, *(v for v in payload.values() if isinstance(v, str))]
        for c in part
    )
    if surrogate:  # not text: JSON cannot carry it, and the signer says so
        with pytest.raises((TypeError, ValueError)):
            signer.sign(kind, payload)
        return
    token = signer.sign(kind, payload)
    assert signer.verify(kind, token) == payload


def test_the_pages_of_a_refused_link() -> None:
    bad = refused_link_page(InvalidLink())
    assert bad.status_code == 400
    assert b"not valid" in bad.body
    expired = refused_link_page(InvalidLink(expired=True))
    assert expired.status_code == 410
    assert b"expired" in expired.body
    page = link_page("<Title>", "<p>ok</p>", status=201)
    assert page.status_code == 201
    assert b"&lt;Title&gt;" in page.body
    assert b"<script" not in page.body
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
