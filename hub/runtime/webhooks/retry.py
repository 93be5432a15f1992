"""When a failed webhook is tried again: exponential backoff with jitter, never before the
endpoint's ``Retry-After``, never past the end of the retry period (one last try there)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["backoff_seconds", "next_attempt", "retry_after_seconds"]


def backoff_seconds(attempt: int, base: float, most: float, rng: random.Random) -> float:
    """The delay after failed attempt number ``attempt`` (1, 2, ...): base, doubling, at most
    ``most``, times a random factor in [0.5, 1) so that retries of many events spread out."""
    exponent = min(max(attempt - 1, 0), 62)
    return min(base * 2.0**exponent, most) * rng.uniform(0.5, 1.0)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header (delay-seconds or an HTTP date) as seconds from ``now``;
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if at.tzinfo is None:  # an HTTP date is GMT
        return None
    return max((at - now).total_seconds(), 0.0)


def next_attempt(
    now: datetime,
    *,
    first_attempt_at: datetime,
    period: timedelta,
    backoff: float,
    retry_after: float | None,
) -> datetime | None:
    """When to try again after a failure at ``now``; None when the retry period (counted
    from the first attempt) is over: the event is given up. The backoff is cut to the end
    of the period, so the last try falls there; ``Retry-After`` is honoured up to it."""
    deadline = first_attempt_at + period
    if now >= deadline:
        return None
    at = min(now + timedelta(seconds=backoff), deadline)
    if retry_after is not None:
        at = max(at, min(now + timedelta(seconds=retry_after), deadline))
    return at
