"""Rate limits of the anonymous web chat: token buckets per client network and per visitor.

In-process: each process that serves ``/chat/ws`` (``hub serve``, or each ``ingest`` process
of the distributed runtime) limits the traffic it serves, so behind a load balancer a client
gets at most the limit times the number of processes. The clock is an input, for tests.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from hub.connectors.settings import ChatSettings

Clock = Callable[[], float]

_PRUNE_SECONDS = 60.0


class Limit:
    """``count`` tokens every ``period`` seconds (a minute) for each key, in bursts of up to
    as many."""

    def __init__(self, count: int, clock: Clock = time.monotonic, period: float = 60.0) -> None:
        self.capacity = float(count)
        self.rate = count / period
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._pruned = clock()

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token (0: it has one now); takes nothing."""
        tokens = self._tokens(key, self._clock())
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str) -> None:
        now = self._clock()
        self._buckets[key] = (self._tokens(key, now) - 1.0, now)
        if now - self._pruned >= _PRUNE_SECONDS:
            self._prune(now)

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - at) * self.rate)

    def _prune(self, now: float) -> None:
        """Forget the keys whose bucket is full again (as good as never seen), so memory
        follows the clients of the last minute or so, not every client ever."""
        self._pruned = now
        full = [k for k in self._buckets if self._tokens(k, now) >= self.capacity]
        for key in full:
            del self._buckets[key]


def acquire(*wanted: tuple[Limit, str]) -> float:
    """Take one token of each ``(limit, key)`` if every one has a token, and return 0; else
    take none and return the seconds until all of them will have one."""
    wait = max(limit.wait(key) for limit, key in wanted)
    if wait > 0:
        return wait
    for limit, key in wanted:
        limit.take(key)
    return 0.0


def network_of(host: str | None) -> str:
    """The key of a client address: the IPv4 address, or the IPv6 /64 (one subscriber
    usually has a whole /64, so a per-address limit would not hold them)."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a Unix socket path or a name: one key per peer name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ChatLimits:
    """The chat's limits (``HUB_CHAT__*_PER_MINUTE``, ``HUB_CHAT__CODE_GUESSES_PER_HOUR``)."""

    def __init__(self, settings: ChatSettings, clock: Clock = time.monotonic) -> None:
        self.new_visitors = Limit(settings.visitors_per_ip_per_minute, clock)
        self.visitor_messages = Limit(settings.messages_per_visitor_per_minute, clock)
        self.network_messages = Limit(settings.messages_per_ip_per_minute, clock)
        self.code_guesses = Limit(settings.code_guesses_per_hour, clock, period=3600.0)

    def new_visitor(self, client: str | None) -> float:
        """Seconds to wait before ``client`` may start a new visitor (0: now, counted)."""
        return acquire((self.new_visitors, network_of(client)))

    def message(self, client: str | None, visitor_id: str) -> float:
        """Seconds to wait before this visitor may send a message (0: now, counted)."""
        return acquire(
            (self.visitor_messages, visitor_id), (self.network_messages, network_of(client))
        )

    def code_guess(self, visitor_id: str, address: str) -> float:
        """Seconds to wait before this visitor may try another code for ``address`` (0: now,
        counted). Kept apart from the socket: a new ``identify`` or a reconnect does not
        give more guesses."""
        return acquire((self.code_guesses, f"{visitor_id} {address}"))
