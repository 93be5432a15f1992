"""Where a customer came from (the acquisition source), decided once, at the first contact.

What the first interaction tells, in this order of precedence (docs/profile.md):
1. the chat widget's page, when it has utm_* parameters or a referrer (``via: chat_page``);
2. the API's ``source`` field (``via: api``);
3. the company endpoint the customer wrote to (a number, mailbox, page or bot), mapped to a
   source name by ``HUB_ACQUISITION__ENDPOINTS`` (``via: endpoint``; the endpoint is kept
   even when no mapping names it).
Later contacts never change it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.events import InboundInteraction
from hub.events.inbound import normalise_endpoint


def endpoint_sources(mapping: Mapping[str, str]) -> dict[str, str]:
    """The endpoint -> source map with its endpoints spelt as interactions carry them
    (``phone:+370 600 00000`` -> ``phone:+37060000000``); a key that is no endpoint is kept
    as given (it then matches nothing an interaction carries)."""
    found: dict[str, str] = {}
    for endpoint, source in mapping.items():
        try:
            found[normalise_endpoint(endpoint)] = source
        except ValueError:
            found[endpoint] = source
    return found


def first_contact_source(
    item: InboundInteraction, sources: Mapping[str, str]
) -> dict[str, Any] | None:
    """The source a first contact tells (the fields of ``hub.events.AcquisitionSource``), or
    None when it tells nothing. ``sources``: :func:`endpoint_sources` of the settings."""
    told = item.source
    if told is not None and not told.empty:
        return {
            "via": told.via,
            "source": told.source,
            "medium": told.medium,
            "campaign": told.campaign,
            "referrer": told.referrer,
            "endpoint": item.endpoint,
        }
    if item.endpoint:
        return {
            "via": "endpoint",
            "source": sources.get(item.endpoint),
            "medium": None,
            "campaign": None,
            "referrer": None,
            "endpoint": item.endpoint,
        }
    return None
