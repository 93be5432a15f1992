"""The web chat's guards as pure code: the rate limits' token buckets on a controlled clock,
the client network key, the origin allow-list, and visitor tokens and codes given garbage."""

from __future__ import annotations

import pytest
from hypothesis import given

from hub.connectors.chat.limits import ChatLimits, Limit, acquire, network_of
from hub.connectors.chat.origins import origin_allowed
from hub.connectors.chat.tokens import VisitorTokens
from hub.connectors.settings import ChatSettings
from tests.support.hostile import HOSTILE_TEXT


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_limit_allows_a_burst_then_one_token_per_share_of_the_minute() -> None:
    clock = Clock()
    limit = Limit(3, clock)
    for _ in range(3):
        assert acquire((limit, "a")) == 0
    assert acquire((limit, "a")) == pytest.approx(20.0)
    assert acquire((limit, "b")) == 0  # every key has its own bucket
    clock.now += 19.0
    assert acquire((limit, "a")) == pytest.approx(1.0)
    clock.now += 1.0
    assert acquire((limit, "a")) == 0
    assert acquire((limit, "a")) == pytest.approx(20.0)


def test_acquire_takes_from_every_limit_or_from_none() -> None:
    clock = Clock()
    visitor, network = Limit(10, clock), Limit(1, clock)
    assert acquire((visitor, "v"), (network, "n")) == 0
    assert acquire((visitor, "v"), (network, "n")) == pytest.approx(60.0)
    # The visitor's refused frame cost the visitor nothing.
    assert visitor.wait("v") == 0
    for _ in range(9):
        assert acquire((visitor, "v")) == 0
    assert acquire((visitor, "v")) > 0


def test_buckets_of_quiet_clients_are_forgotten() -> None:
    clock = Clock()
    limit = Limit(60, clock)
    for n in range(1000):
        limit.take(f"client-{n}")
    assert len(limit) == 1000
    clock.now += 61.0
    limit.take("one more")
    assert len(limit) == 1


def test_chat_limits_count_new_visitors_and_messages_per_network() -> None:
    clock = Clock()
    limits = ChatLimits(
        ChatSettings(
            visitors_per_ip_per_minute=1,
            messages_per_visitor_per_minute=2,
            messages_per_ip_per_minute=3,
        ),
        clock,
    )
    assert limits.new_visitor("203.0.113.5") == 0
    assert limits.new_visitor("203.0.113.5") == pytest.approx(60.0)
    assert limits.new_visitor("203.0.113.6") == 0
    assert [limits.message("198.51.100.1", "v1") for _ in range(3)][2] == pytest.approx(30.0)
    assert limits.message("198.51.100.1", "v2") == 0
    assert limits.message("198.51.100.1", "v3") == pytest.approx(20.0)  # the network's 3


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        (None, "unknown"),
        ("some.sock", "some.sock"),
    ],
)
def test_a_client_network_is_an_ipv4_address_or_an_ipv6_64(host: str | None, key: str) -> None:
    assert network_of(host) == key


@pytest.mark.parametrize(
    ("origin", "allowed", "public_url", "host", "expected"),
    [
        # No list, no public URL: the host the browser asked for (the hub's own /chat/ page).
        ("http://127.0.0.1:8000", (), None, "127.0.0.1:8000", True),
        ("https://Hub.Example.com", (), None, "hub.example.com", True),
        ("https://attacker.example", (), None, "hub.example.com", False),
        ("http://127.0.0.1:8001", (), None, "127.0.0.1:8000", False),
        (None, (), None, "hub.example.com", False),
        ("null", (), None, "hub.example.com", False),
        # With a public URL: its origin, whatever Host a proxy forwards.
        ("https://hub.example.com", (), "https://hub.example.com/base", "10.0.0.5:8000", True),
        ("https://hub.example.com:443", (), "https://hub.example.com", "x", True),
        ("http://hub.example.com", (), "https://hub.example.com", "hub.example.com", False),
        ("http://10.0.0.5:8000", (), "https://hub.example.com", "10.0.0.5:8000", False),
        # Listed origins, besides the hub's own.
        ("https://www.example.com", ("https://www.example.com",), None, "hub", True),
        ("https://www.example.com", ("https://WWW.example.com:443/",), None, "hub", True),
        ("http://hub:8000", ("https://www.example.com",), None, "hub:8000", True),
        ("https://evil.example", ("https://www.example.com",), None, "hub", False),
        ("https://www.example.com.evil.example", ("https://www.example.com",), None, "h", False),
        # Any, only when asked for.
        ("https://attacker.example", ("*",), None, "hub", True),
        (None, ("*",), None, "hub", True),
    ],
)
def test_the_origin_allow_list(
    origin: str | None,
    allowed: tuple[str, ...],
    public_url: str | None,
    host: str,
    expected: bool,
) -> None:
    assert origin_allowed(origin, allowed, public_url, host) is expected


@given(origin=HOSTILE_TEXT, host=HOSTILE_TEXT)
def test_no_origin_or_host_header_breaks_the_check(origin: str, host: str) -> None:
    assert origin_allowed(origin, ("https://www.example.com",), None, host) in (True, False)


@given(token=HOSTILE_TEXT, code=HOSTILE_TEXT)
def test_garbage_tokens_and_codes_are_just_not_valid(token: str, code: str) -> None:
    tokens = VisitorTokens("key", max_age_seconds=3600, code_seconds=900)
    assert tokens.visitor(token) is None
    assert tokens.check_code("v", "email:a@example.com", code) is False
    for digits in ("\u00b2" * 6, "\uff11" * 6, "1\u00b2.", "12345\u0661"):
        assert tokens.check_code("v", "email:a@example.com", digits) is False
        assert tokens.visitor(f"abc.{digits}.mac") is None
