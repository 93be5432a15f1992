"""What projections share: the rows a follower keeps from one batch for its next."""

from __future__ import annotations

from hub.projections.base import KeptRows


def _batch(kept: KeptRows[str, int], at: int, writes: dict[str, int], purge: bool = False) -> None:
    """One batch as ``Views.apply`` runs it, ending committed at ``at + 1``; ``purge``: an
    erasure in another thread forgets the kept rows between the fold's take and keep."""
    kept.begins(at)
    rows = kept.take()
    assert rows is not None
    if purge:
        kept.forget()
    kept.keep(rows, writes)
    kept.ends(at + 1)


def test_a_batch_keeps_what_it_wrote_for_the_next() -> None:
    kept: KeptRows[str, int] = KeptRows()
    _batch(kept, 0, {"a": 1})
    _batch(kept, 1, {"b": 2})
    kept.begins(2)
    assert kept.take() == {"a": 1, "b": 2}


def test_the_oldest_rows_go_first_past_the_limit() -> None:
    kept: KeptRows[str, int] = KeptRows(limit=2)
    _batch(kept, 0, {"a": 1, "b": 2})
    _batch(kept, 1, {"a": 3, "c": 4})  # "a" written again: now the latest
    kept.begins(2)
    assert kept.take() == {"a": 3, "c": 4}


def test_rows_are_not_trusted_at_another_position() -> None:
    kept: KeptRows[str, int] = KeptRows()
    _batch(kept, 0, {"a": 1})
    kept.begins(7)  # another follower moved the tables on
    assert kept.take() == {}


def test_a_batch_rolled_back_keeps_nothing() -> None:
    kept: KeptRows[str, int] = KeptRows()
    _batch(kept, 0, {"a": 1})
    kept.begins(1)
    rows = kept.take()
    assert rows is not None
    kept.keep(rows, {"b": 2})
    kept.ends(None)
    kept.begins(1)
    assert kept.take() == {}


def test_a_forget_while_a_batch_runs_leaves_that_batch_nothing_kept() -> None:
    """An erasure's purge (another thread) changed rows the batch may have folded: what the
    batch wrote in memory must not outlive it."""
    kept: KeptRows[str, int] = KeptRows()
    _batch(kept, 0, {"a": 1})
    _batch(kept, 1, {"b": 2}, purge=True)
    kept.begins(2)
    assert kept.take() == {}
    _batch(kept, 2, {"c": 3})  # and the next batch keeps again
    kept.begins(3)
    assert kept.take() == {"c": 3}
