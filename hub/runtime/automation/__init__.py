"""Rules and campaigns at work (docs/automation.md, "Rules" and "Campaigns"): the planners
the scheduler runs every ``HUB_AUTOMATION__PLAN_INTERVAL_SECONDS`` (``hub.runtime.scheduler``),
and the dry run.

- ``timing``: local days, local times and zones (pure);
- ``audience``: who a rule or campaign is for, in SQL over the views;
- ``specs``: the occurrences' keys and plans, scheduled in batches;
- ``dates``: :class:`DatePlanner` (birthdays, anniversaries, date attributes);
- ``events``: :class:`EventRulePlanner` (follows the published log);
- ``campaigns``: :class:`CampaignPlanner` (a segment expanded when its time is near);
- ``dry_run``: who would get what, and who would be skipped and why.
"""

from __future__ import annotations

from hub.config import Settings
from hub.domain.consent import ConsentRules
from hub.projections import Views
from hub.runtime.automation.campaigns import CampaignPlanner
from hub.runtime.automation.dates import DatePlanner
from hub.runtime.automation.events import EventRulePlanner
from hub.store import Store

__all__ = ["CampaignPlanner", "DatePlanner", "EventRulePlanner", "planners"]


def planners(
    store: Store, views: Views, settings: Settings
) -> list[DatePlanner | EventRulePlanner | CampaignPlanner]:
    """The planners of rules and campaigns, for ``Runtime.planners``."""
    consent = ConsentRules.configured(settings.consent)
    zone = settings.dispatch.default_time_zone
    return [
        DatePlanner(store.app, views.engine, zone),
        EventRulePlanner(store, views.engine, consent),
        CampaignPlanner(store.app, views.engine, zone, consent),
    ]
