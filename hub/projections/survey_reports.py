"""The satisfaction report over survey answers (``hub.projections.surveys``): CSAT and NPS
per day, week, month, channel, agent, customer tag or acquisition source, medium or campaign,
by when the question was sent (docs/surveys.md, "Scores", says what counts).

- CSAT: the share of answers that are 4 or 5, and the average score;
- NPS: % promoters (9-10) minus % detractors (0-6), from -100 to 100;
- response rate: answered / sent, per kind.

A customer's source is its merge group's, as the business reports take it (the member
created first); an erased customer's is ``(erased)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from hub.projections.base import as_utc
from hub.projections.business import business_customers
from hub.projections.merges import merges
from hub.projections.service_reports import (
    ATTRIBUTION,
    Report,
    ReportQuery,
    grouped_report,
    rate,
)
from hub.projections.surveys import survey_answers

__all__ = ["COLUMNS", "ERASED", "satisfaction"]

COLUMNS = (
    "csat_sent",
    "csat_answered",
    "csat_response_rate",
    "csat",
    "csat_average",
    "nps_sent",
    "nps_answered",
    "nps_response_rate",
    "promoters",
    "passives",
    "detractors",
    "nps",
)
ERASED = "(erased)"
_CHUNK = 500


def _figures(members: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    csat = [m["score"] for m in members if m["kind"] == "csat"]
    nps = [m["score"] for m in members if m["kind"] == "nps"]
    csat_scores = [s for s in csat if s is not None]
    nps_scores = [s for s in nps if s is not None]
    promoters = sum(1 for s in nps_scores if s >= 9)
    detractors = sum(1 for s in nps_scores if s <= 6)
    return {
        "csat_sent": len(csat),
        "csat_answered": len(csat_scores),
        "csat_response_rate": rate(len(csat_scores), len(csat)),
        "csat": rate(sum(1 for s in csat_scores if s >= 4), len(csat_scores)),
        "csat_average": round(sum(csat_scores) / len(csat_scores), 2) if csat_scores else None,
        "nps_sent": len(nps),
        "nps_answered": len(nps_scores),
        "nps_response_rate": rate(len(nps_scores), len(nps)),
        "promoters": promoters,
        "passives": len(nps_scores) - promoters - detractors,
        "detractors": detractors,
        "nps": round(100 * (promoters - detractors) / len(nps_scores), 1) if nps_scores else None,
    }


def _chunks(values: Sequence[UUID]) -> Iterable[list[UUID]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


def attribution(conn: Connection, customer_ids: Iterable[UUID]) -> dict[UUID, dict[str, Any]]:
    """Each customer's group's acquisition source, medium and campaign (the member created
    first, as ``hub.projections.business_reports`` takes it)."""
    wanted = sorted(set(customer_ids))
    m, c = merges.c, business_customers.c
    root_of: dict[UUID, UUID] = {}
    for chunk in _chunks(wanted):
        query = select(m.customer_id, m.root_id).where(m.customer_id.in_(chunk))
        root_of |= dict(conn.execute(query).tuples().all())
    roots = sorted({root_of.get(cid, cid) for cid in wanted})
    members: dict[UUID, UUID] = {root: root for root in roots}
    for chunk in _chunks(roots):
        query = select(m.customer_id, m.root_id).where(m.root_id.in_(chunk))
        members |= dict(conn.execute(query).tuples().all())
    best: dict[UUID, tuple[datetime, dict[str, Any]]] = {}
    for chunk in _chunks(sorted(members)):
        found = conn.execute(
            select(c.customer_id, c.created_at, c.source, c.medium, c.campaign).where(
                c.customer_id.in_(chunk), c.created_at.is_not(None)
            )
        ).tuples()
        for member, created, source, medium, campaign in found:
            root, at = members[member], as_utc(created)
            if root not in best or at < best[root][0]:
                best[root] = (at, {"source": source, "medium": medium, "campaign": campaign})
    none = dict.fromkeys(ATTRIBUTION)
    return {cid: best.get(root_of.get(cid, cid), (None, none))[1] for cid in wanted}


def satisfaction(conn: Connection, query: ReportQuery) -> Report:
    """Surveys sent in the range, and their answers (an answer counts with its question)."""
    t = survey_answers.c
    rows = conn.execute(
        select(t.kind, t.channel, t.agent, t.customer_id, t.asked_at, t.score)
        .where(t.asked_at >= query.since, t.asked_at < query.until)
        .order_by(t.asked_at, t.survey_id)
    ).mappings()
    members: list[dict[str, Any]] = [{**r, "policy": None} for r in rows]
    if query.group in ATTRIBUTION:
        sources = attribution(conn, (r["customer_id"] for r in members if r["customer_id"]))
        erased = dict.fromkeys(ATTRIBUTION, ERASED)
        for row in members:
            cid = row["customer_id"]
            row |= sources[cid] if cid is not None else erased
    return grouped_report(
        conn, "satisfaction", query, COLUMNS, members, "asked_at", "agent", _figures
    )
