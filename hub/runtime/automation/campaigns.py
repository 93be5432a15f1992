"""The campaigns' planner: when a campaign's time comes near (``LEAD`` before its first
message), its segment's members are read a page at a time and each becomes an occurrence
(``campaign:{campaign_id}:{customer_id}``), due at the campaign's time (absolute, or the
local time in each customer's zone), spread by its throttle: the i-th message of a start
time is due ``i / throttle`` seconds after it. Then the campaign is marked planned.

Expanding again after a crash finds the keys already there; membership is the segment's
at expansion time (consent, quiet hours and the cap are decided when each one fires).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from hub.domain.application import HubApplication
from hub.domain.automation import OccurrenceSpec
from hub.domain.automations import CAMPAIGN, AutomationRecord, Definition
from hub.domain.consent import ConsentRules
from hub.domain.errors import NotFound
from hub.events.segments import Filter
from hub.projections.segment_filter import FilterContext
from hub.runtime.automation.audience import segment_page, zones_of
from hub.runtime.automation.specs import campaign_key, plan_of, schedule, source_of
from hub.runtime.automation.timing import GRACE, local_due

__all__ = ["LEAD", "CampaignPlanner", "campaign_specs", "start_window"]

log = logging.getLogger(__name__)

#: How long before its first message a campaign's audience is expanded.
LEAD = timedelta(hours=1)
PAGE = 500
_EARLIEST, _LATEST = ZoneInfo("Etc/GMT-14"), ZoneInfo("Etc/GMT+12")


def start_window(d: Definition) -> tuple[datetime, datetime]:
    """The first and the last time the campaign's messages start at (the same for an
    absolute time; for a local time, in the zones furthest east and west)."""
    if d.at is not None:
        return d.at.astimezone(UTC), d.at.astimezone(UTC)
    assert d.on is not None
    assert d.local_time is not None
    return local_due(d.on, d.local_time, _EARLIEST), local_due(d.on, d.local_time, _LATEST)


def campaign_specs(
    engine: Engine,
    record: AutomationRecord,
    tree: Filter,
    ctx: FilterContext,
    default_zone: str | None,
    *,
    not_before: datetime | None = None,
    page_size: int = PAGE,
) -> Iterator[tuple[list[OccurrenceSpec], dict[UUID, ZoneInfo]]]:
    """The campaign's occurrences, a page of members at a time (with their zones); none is
    due before ``not_before`` (a campaign expanded late starts now, still spread)."""
    d = record.definition
    plan, source = plan_of(record), source_of(record)
    sent_from: dict[datetime, int] = {}  # start time -> messages due from it so far
    after: UUID | None = None
    while True:
        with engine.connect() as conn:
            ids, after = segment_page(conn, tree, ctx, page_size, after)
            zones = zones_of(conn, ids, default_zone)
        specs = []
        for cid in ids:
            base = d.at if d.at is not None else local_due(d.on, d.local_time, zones[cid])  # type: ignore[arg-type]
            if not_before is not None and base < not_before:
                base = not_before
            n = sent_from.get(base, 0)
            sent_from[base] = n + 1
            spread = timedelta(seconds=n / d.throttle) if d.throttle else timedelta(0)
            specs.append(
                OccurrenceSpec(
                    key=campaign_key(record.automation_id, cid),
                    customer_id=cid,
                    due_at=base + spread,
                    plan=plan,
                    source=source,
                )
            )
        if specs:
            yield specs, zones
        if after is None:
            return


class CampaignPlanner:
    """Expands campaigns whose time is near into occurrences (a
    ``hub.runtime.scheduler.Planner``)."""

    name = "campaigns"

    def __init__(
        self,
        app: HubApplication,
        views: Engine,
        default_zone: str | None,
        consent: ConsentRules,
        *,
        lead: timedelta = LEAD,
        grace: timedelta = GRACE,
        page_size: int = PAGE,
    ) -> None:
        self._app = app
        self._views = views
        self._default_zone = default_zone
        self._granted_by_contact = consent.granted_by_contact
        self._lead = lead
        self._grace = grace
        self._page_size = page_size

    def plan(self, now: datetime) -> int:
        new = 0
        for campaign in self._app.automations.all(CAMPAIGN):
            if campaign.state != "scheduled":
                continue
            first, last = start_window(campaign.definition)
            if now < first - self._lead:
                continue
            cid = campaign.automation_id
            tree = self._segment(campaign)
            if now > last + self._grace or tree is None:
                log.warning("campaign %s missed: its time passed, or its segment is gone", cid)
                self._app.automations.mark_planned(cid, 0, now, missed=True)
                continue
            ctx = FilterContext(now=now, granted_by_contact=self._granted_by_contact)
            count = 0
            for specs, _ in campaign_specs(
                self._views,
                campaign,
                tree,
                ctx,
                self._default_zone,
                not_before=now,
                page_size=self._page_size,
            ):
                new += schedule(self._app, specs)
                count += len(specs)
            self._app.automations.mark_planned(cid, count, now)
        return new

    def _segment(self, campaign: AutomationRecord) -> Filter | None:
        assert campaign.definition.segment_id is not None
        try:
            return self._app.segments.get(campaign.definition.segment_id).tree
        except NotFound:
            return None
