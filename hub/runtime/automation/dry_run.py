"""A rule's or campaign's dry run: who would get what, and who would be skipped and why,
decided as firing would decide (``ScheduleCommands.preview``, recording nothing) at each
occurrence's due time, plus the quiet hours the dispatcher would hold a message for.

Campaigns: the segment's members now; date rules: the customers whose date falls on a given
local day. At most ``evaluate`` occurrences are decided (``complete`` says whether that was
all of them), ``limit`` of them listed, with totals per decision and per skip reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from hub.config import Settings
from hub.domain.application import HubApplication
from hub.domain.automation import OccurrenceSpec
from hub.domain.automations import CAMPAIGN, DATE, AutomationRecord
from hub.domain.consent import ConsentRules
from hub.domain.errors import DomainError
from hub.domain.policy import ChannelPolicy, QuietHours
from hub.domain.scheduling import Limits
from hub.projections.directory import customers
from hub.projections.segment_filter import FilterContext, count
from hub.runtime.automation.audience import zones_of
from hub.runtime.automation.campaigns import campaign_specs
from hub.runtime.automation.dates import date_specs
from hub.runtime.automation.timing import zone_for

__all__ = ["DryRun", "DryRunRow", "DryRunUnsupported", "dry_run", "limits_of"]

#: The most occurrences one dry run decides.
MAX_EVALUATED = 2000
#: The text of a message shown, at most.
PREVIEW_CHARS = 500


class DryRunUnsupported(DomainError):
    """An event rule has no audience to try before its events arrive."""

    code = "dry_run_unsupported"
    status = 422


@dataclass(frozen=True, slots=True)
class DryRunRow:
    """One customer's outcome: ``send`` (now, on ``channel``), ``held`` (quiet hours in
    their zone: sent at ``held_until``) or ``skip`` (``code``, ``reason``)."""

    customer_id: UUID
    display_name: str | None
    due_at: datetime
    decision: str
    channel: str | None = None
    code: str | None = None
    reason: str | None = None
    held_until: datetime | None = None
    subject: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class DryRun:
    automation_id: UUID
    audience: int
    evaluated: int
    complete: bool
    decisions: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    rows: list[DryRunRow] = field(default_factory=list)


def limits_of(settings: Settings) -> Limits:
    a = settings.automation
    return Limits(
        frequency_cap=a.frequency_cap,
        frequency_period=timedelta(days=a.frequency_days),
        conversation_window=settings.conversation_window,
    )


def dry_run(
    app: HubApplication,
    views: Engine,
    settings: Settings,
    policy: ChannelPolicy,
    record: AutomationRecord,
    *,
    now: datetime,
    on: date | None = None,
    limit: int = 200,
    evaluate: int = MAX_EVALUATED,
) -> DryRun:
    """What the rule or campaign would do (see the module docstring)."""
    consent = ConsentRules.configured(settings.consent)
    default_zone = settings.dispatch.default_time_zone
    planned: list[tuple[OccurrenceSpec, ZoneInfo]] = []
    if record.kind == CAMPAIGN:
        assert record.definition.segment_id is not None
        tree = app.segments.get(record.definition.segment_id).tree
        ctx = FilterContext(now=now, granted_by_contact=consent.granted_by_contact)
        with views.connect() as conn:
            audience = count(conn, tree, ctx)
        for specs, zones in campaign_specs(views, record, tree, ctx, default_zone):
            planned += [(s, zones[s.customer_id]) for s in specs]
            if len(planned) >= evaluate:
                break
    elif record.kind == DATE:
        day = on or now.astimezone(UTC).date()
        specs = date_specs(views, record, [day], default_zone)
        audience = len(specs)
        zones = _zones(views, default_zone, (s.customer_id for s in specs))
        planned = [(s, zones[s.customer_id]) for s in specs]
    else:
        raise DryRunUnsupported("an event rule has no audience before its events arrive")
    planned = planned[:evaluate]
    d = settings.dispatch
    quiet = QuietHours(d.quiet_hours_start, d.quiet_hours_end, default_zone, d.awake_window)
    limits = limits_of(settings)
    names = _names(views, [s.customer_id for s, _ in planned[:limit]])
    decisions: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    rows: list[DryRunRow] = []
    for spec, zone in planned:
        at = max(spec.due_at, now)
        outcome = app.schedules.preview(spec, now=at, policy=policy, rules=consent, limits=limits)
        held = quiet.until(at, zone) if outcome.decision == "send" else None
        decision = "held" if held is not None else outcome.decision
        decisions[decision] += 1
        if outcome.decision == "skip":
            skipped[outcome.code or "unknown"] += 1
        if len(rows) < limit:
            rendered = outcome.rendered
            text = rendered.text if rendered is not None else None
            rows.append(
                DryRunRow(
                    customer_id=spec.customer_id,
                    display_name=names.get(spec.customer_id),
                    due_at=spec.due_at,
                    decision=decision,
                    channel=outcome.channel,
                    code=outcome.code,
                    reason=outcome.reason,
                    held_until=held,
                    subject=rendered.subject if rendered is not None else None,
                    text=text[:PREVIEW_CHARS] if text else None,
                )
            )
    return DryRun(
        automation_id=record.automation_id,
        audience=audience,
        evaluated=len(planned),
        complete=len(planned) >= audience,
        decisions=dict(decisions),
        skipped=dict(skipped),
        rows=rows,
    )


def _names(views: Engine, ids: list[UUID]) -> dict[UUID, str | None]:
    if not ids:
        return {}
    c = customers.c
    with views.connect() as conn:
        rows = conn.execute(select(c.customer_id, c.display_name).where(c.customer_id.in_(ids)))
        return {cid: name for cid, name in rows}


def _zones(views: Engine, default_zone: str | None, ids: Iterable[UUID]) -> dict[UUID, ZoneInfo]:
    wanted = list(dict.fromkeys(ids))
    with views.connect() as conn:
        found = zones_of(conn, wanted, default_zone)
    return {cid: found.get(cid) or zone_for(None, None, default_zone) for cid in wanted}
