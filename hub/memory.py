"""The memory one process of the hub gives its caches: one budget, the operator's figure
(``HUB_CACHE_MIB``), which the caches share in fixed parts.

A cache declares its :class:`Part`: the share of the budget it may take and what one of
its entries costs (the average, in bytes, of real entries; ``tests/test_memory.py`` weighs
them and fails when a figure here is off by half). Its bound is that share over that cost,
in entries: counting entries is free where weighing each one would not be, and the test
keeps the counts honest. The shares add up to at most one, and no process holds every
cache (the server keeps aggregates, the projection process kept view rows), so a process's
caches stay under the budget.

Bounding by memory rather than by a count of entries is what lets a busy hub reach its
plateau early: caches of 20,000 entries each filled for as long as new customers kept
arriving (docs/performance.md, "Issue 20, step 6").

:func:`configure` sets the budget before the caches are made (``open_store`` does, from
the settings); every :class:`Lru` is resized by it too. A leaf module: the
standard library only.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, ParamSpec, TypeVar

__all__ = ["DEFAULT_MIB", "Part", "budget_bytes", "configure", "lru", "parts"]

P = ParamSpec("P")
R = TypeVar("R")

MIB = 1 << 20
#: The budget when nothing is configured (``Settings.cache_mib`` has the same default).
DEFAULT_MIB = 32.0

_lock = threading.Lock()
_budget = int(DEFAULT_MIB * MIB)
_parts: dict[str, Part] = {}
_resizable: weakref.WeakSet[Lru[Any, Any]] = weakref.WeakSet()


@dataclass(frozen=True)
class Part:
    """One cache's part of the budget: ``share`` of it, entries of ``entry_bytes`` each."""

    name: str
    share: float
    entry_bytes: int

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1 or self.entry_bytes <= 0:
            raise ValueError(f"cache part {self.name!r}: share in (0, 1], entry_bytes > 0")
        with _lock:
            taken = sum(p.share for p in _parts.values() if p.name != self.name)
            if taken + self.share > 1 + 1e-9:
                raise ValueError(
                    f"cache part {self.name!r}: the shares would add up to "
                    f"{taken + self.share:.2f} of the budget"
                )
            _parts[self.name] = self

    @property
    def entries(self) -> int:
        """How many entries this cache may hold under the budget now set."""
        return int(_budget * self.share) // self.entry_bytes


def parts() -> dict[str, Part]:
    """Every part declared so far, by name (the modules that declare them are imported)."""
    with _lock:
        return dict(_parts)


def budget_bytes() -> int:
    return _budget


def configure(mib: float) -> None:
    """Set this process's budget (MiB; 0: no caching) and resize every :class:`Lru`. Caches
    bounded otherwise (aggregates, kept rows, SQLite's pages) read their bound when they are
    made: call this before making them."""
    global _budget
    if mib < 0:
        raise ValueError("the cache budget cannot be negative")
    budget = int(mib * MIB)
    with _lock:
        if budget == _budget:
            return
        _budget = budget
        caches = list(_resizable)
    for cache in caches:
        cache.resize()


class Lru(Generic[P, R]):
    """``functools.lru_cache`` whose size follows its part of the budget: :func:`configure`
    resizes every one made (:func:`lru` is the decorator form)."""

    def __init__(self, function: Callable[P, R], part: Part) -> None:
        functools.update_wrapper(self, function)
        self._function = function
        self.part = part
        self._cached = functools.lru_cache(maxsize=part.entries)(function)
        with _lock:
            _resizable.add(self)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        call: Callable[..., R] = self._cached  # its arguments must be hashable
        return call(*args, **kwargs)

    def resize(self) -> None:
        """Start afresh at the budget's current bound (what was cached is dropped)."""
        self._cached = functools.lru_cache(maxsize=self.part.entries)(self._function)

    def cache_clear(self) -> None:
        self._cached.cache_clear()

    def cache_info(self) -> functools._CacheInfo:
        return self._cached.cache_info()


def lru(part: Part) -> Callable[[Callable[P, R]], Lru[P, R]]:
    """Decorate a pure function with a least-recently-used cache bounded by ``part``."""

    return lambda function: Lru(function, part)
