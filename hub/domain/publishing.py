"""From stored aggregate events to published contract events (``hub.events``).

A pure function of one stored event and its store position: the relay, the ``/v1/events`` API and
the projections all see the same envelopes, with the same ids, on every replay. Personal fields
are decrypted here; when the customer's key is gone the envelope says ``erased`` and carries
none of them. Internal bookkeeping events (address claims, message counters) are not published.
With a message retention set, the body of a message older than it is left out as the envelope
is built (``data.body_expired``), so the same event's envelope loses its body as it ages; its
id and everything else stay the same (docs/retention.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub.domain import model
from hub.domain.consent import source_of
from hub.domain.crypto import PersonalDataCipher
from hub.domain.ids import uuid7
from hub.events import (
    Attachment,
    ConversationAssigned,
    ConversationOpened,
    ConversationStatusChanged,
    CustomerConsentChanged,
    CustomerCreated,
    CustomerDuplicateDismissed,
    CustomerDuplicateRestored,
    CustomerErased,
    CustomerIdentityLinked,
    CustomerMerged,
    CustomerProfileUpdated,
    CustomerTagsChanged,
    CustomerUnmerged,
    Envelope,
    InteractionDeliveryUpdated,
    InteractionQueued,
    InteractionReceived,
    InteractionSent,
    NoteAdded,
    ScheduledMessageCancelled,
    ScheduledMessageQueued,
    ScheduledMessageScheduled,
    ScheduledMessageSkipped,
)
from hub.events.activities import ActivityRecorded
from hub.events.feedback import FeedbackCommented, FeedbackReceived, FeedbackRequested
from hub.events.service import ConversationSlaBreached


def _customer_registered(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.originator_id
    data = {
        "display_name": c.decrypt(cid, e.display_name),
        "address": c.decrypt(cid, e.address),
        # Events stored before acquisition sources lack it; erased, it reads as None.
        "source": c.decrypt_json(cid, getattr(e, "source", None)),
    }
    return CustomerCreated, cid, e.first_seen_at, data


def _identity_linked(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.originator_id
    data = {
        "address": c.decrypt(cid, e.address),
        "address_kind": e.address_kind,
        "verified": e.verified,
        "reason": c.decrypt_text(cid, e.reason) or "",
        "actor": getattr(e, "actor", None),
    }
    return CustomerIdentityLinked, cid, e.timestamp, data


def _merged(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        "into_customer_id": e.into_customer_id,
        "actor": e.actor,
        "reason": c.decrypt_text(e.originator_id, e.reason) or "",
        "caused_by": e.caused_by,
    }
    return CustomerMerged, e.originator_id, e.timestamp, data


def _unmerged(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        "from_customer_id": e.from_customer_id,
        "actor": e.actor,
        "reason": c.decrypt_text(e.originator_id, e.reason) or "",
    }
    return CustomerUnmerged, e.originator_id, e.timestamp, data


def _erased(e: Any, _: PersonalDataCipher) -> tuple[Any, ...]:
    data = {"customer_ids": tuple(e.group), "actor": e.actor, "reason": e.reason}
    return CustomerErased, e.originator_id, e.erased_at, data


def _duplicate_dismissed(e: Any, _: PersonalDataCipher) -> tuple[Any, ...]:
    data = {"other_customer_id": e.other_customer_id, "actor": e.actor}
    return CustomerDuplicateDismissed, e.originator_id, e.timestamp, data


def _duplicate_restored(e: Any, _: PersonalDataCipher) -> tuple[Any, ...]:
    data = {"other_customer_id": e.other_customer_id, "actor": e.actor}
    return CustomerDuplicateRestored, e.originator_id, e.timestamp, data


def _tags_changed(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.originator_id

    def clear(values: list[str]) -> list[str]:
        return [t for t in (c.decrypt(cid, v) for v in values) if t is not None]

    data = {
        "tags": clear(e.tags),
        "added": clear(e.added),
        "removed": clear(e.removed),
        "actor": e.actor,
    }
    return CustomerTagsChanged, cid, e.timestamp, data


def _profile_updated(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.originator_id
    # Events stored before agents edited profiles carry only the name the hub learnt.
    changed = getattr(e, "changed", None)
    fields: dict[str, str | None] = getattr(e, "fields", None) or {}
    attributes: dict[str, str | None] = getattr(e, "attributes", None) or {}
    data: dict[str, Any] = {
        "display_name": c.decrypt(cid, e.display_name),
        "changed": list(changed) if changed is not None else ["display_name"],
        "actor": getattr(e, "actor", None),
        **{name: c.decrypt(cid, token) for name, token in fields.items()},
        "attributes": {
            key: c.decrypt_json(cid, token) if token is not None else None
            for key, token in attributes.items()
        },
        "attribute_kinds": dict(getattr(e, "kinds", None) or {}),
    }
    return CustomerProfileUpdated, cid, e.timestamp, data


def _conversation_opened(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.customer_id
    data = {
        "conversation_id": e.originator_id,
        "channel": e.channel,
        "address": c.decrypt(cid, e.address),
        # Dated by the opening: the retention expires it with the first message's body.
        "subject": c.decrypt(cid, e.subject, at=e.opened_at),
        "body_expired": c.expired(e.opened_at),
    }
    return ConversationOpened, cid, e.opened_at, data


def _status_changed(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        "conversation_id": e.originator_id,
        "status": e.status,
        "previous_status": e.previous_status,
        "actor": e.actor,
        "reason": e.reason,
    }
    return ConversationStatusChanged, e.customer_id, e.timestamp, data


def _assigned(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {"conversation_id": e.originator_id, "assignee": e.assignee, "actor": e.actor}
    return ConversationAssigned, e.customer_id, e.timestamp, data


def _note_added(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        "note_id": e.note_id,
        "conversation_id": e.originator_id,
        "text": c.decrypt(e.customer_id, e.text),
        "author": e.author,
    }
    return NoteAdded, e.customer_id, e.timestamp, data


def _message_recorded(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.customer_id
    # Past the retention the body is gone, whatever its format (docs/retention.md): the
    # message's time, channel, direction and delivery stay.
    at = e.occurred_at
    expired = c.expired(at)
    attachments = tuple(
        Attachment(
            name=c.decrypt(cid, a["name"], at=at) or "[erased]",
            content_type=a["content_type"],
            size=a["size"],
            url=c.decrypt(cid, a["url"], at=at),
        )
        for a in ([] if expired else e.attachments)
    )
    data = {
        "message_id": e.originator_id,
        "conversation_id": e.conversation_id,
        "channel": e.channel,
        "direction": e.direction,
        "address": c.decrypt(cid, e.address),
        "provider_message_id": e.provider_message_id,
        "text": c.decrypt(cid, e.text, at=at),
        "subject": c.decrypt(cid, e.subject, at=at),
        "thread_ref": e.thread_ref,
        "contact_name": c.decrypt(cid, e.contact_name),
        "attachments": attachments,
        "metadata": c.decrypt_json(cid, e.metadata, at=at) or {},
        "body_expired": expired,
    }
    if e.direction == "inbound":
        return InteractionReceived, cid, e.occurred_at, data
    if e.provider_message_id.startswith(model.REPLY_PREFIX):  # an agent's reply, not sent yet
        # Who wrote it is the hub's own record, not the body: it outlives the retention.
        meta = c.decrypt_json(cid, e.metadata) or {}
        data |= {
            "author": meta.get("author"),
            "urgent": bool(meta.get("urgent")),
            "automation": meta.get("automation"),
        }
        return InteractionQueued, cid, e.occurred_at, data
    return InteractionSent, cid, e.occurred_at, data


def _delivery(e: Any, occurred_at: Any, status: str, **fields: Any) -> tuple[Any, ...]:
    """``interaction.delivery_updated.v1`` from any of the message's delivery events."""
    data = {
        "message_id": e.originator_id,
        "conversation_id": e.conversation_id,
        "status": status,
        **fields,
    }
    return InteractionDeliveryUpdated, e.customer_id, occurred_at, data


def _delivery_updated(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    return _delivery(
        e, e.occurred_at, e.status, error_code=e.error_code, error_message=e.error_message
    )


def _dispatched(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    return _delivery(e, e.occurred_at, e.status, provider_message_id=e.provider_message_id)


def _dispatch_deferred(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    return _delivery(
        e,
        e.timestamp,
        "queued",
        error_code=e.error_code,
        error_message=e.error_message,
        held_until=e.until,
    )


def _consent_changed(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    evidence = getattr(e, "evidence", None)  # events stored before evidence existed lack it
    data = {
        "channel": e.channel,
        "purposes": tuple(e.purposes),
        "granted": e.granted,
        "reason": e.reason,
        "actor": e.actor,
        "message_id": e.message_id,
        "source": source_of(getattr(e, "source", ""), e.reason, e.channel),
        "evidence": c.decrypt(e.originator_id, evidence) if evidence else None,
        "request_id": getattr(e, "request_id", None),
    }
    return CustomerConsentChanged, e.originator_id, e.occurred_at, data


def _scheduled(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.customer_id
    plan = e.plan
    data = {
        "occurrence_id": e.originator_id,
        "key": e.key,
        "due_at": e.due_at,
        "action": plan["action"],
        "purpose": plan["purpose"],
        "channels": tuple(plan["channels"]),
        "template": plan.get("template"),
        "text": c.decrypt(cid, plan["text"]) if plan.get("text") else None,
        "subject": c.decrypt(cid, plan["subject"]) if plan.get("subject") else None,
        "conversation_id": e.conversation_id,
        "source": e.source,
        "actor": e.actor,
    }
    return ScheduledMessageScheduled, cid, e.timestamp, data


def _schedule_cancelled(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {"occurrence_id": e.originator_id, "actor": e.actor}
    return ScheduledMessageCancelled, e.customer_id, e.timestamp, data


def _schedule_skipped(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {"occurrence_id": e.originator_id, "code": e.code, "reason": e.reason}
    return ScheduledMessageSkipped, e.customer_id, e.occurred_at, data | {"source": e.source}


def _schedule_queued(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        "occurrence_id": e.originator_id,
        "message_id": e.message_id,
        "channel": e.channel,
        "template_version": e.template_version,
        "source": e.source,
    }
    return ScheduledMessageQueued, e.customer_id, e.occurred_at, data


def _sla_breached(e: Any, _: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        "conversation_id": e.conversation_id,
        "policy": e.policy,
        "target": e.target,
        "clock_started_at": e.clock_started_at,
        "due_at": e.due_at,
        "channel": e.channel,
    }
    return ConversationSlaBreached, e.customer_id, e.due_at, data


def _survey(e: Any) -> dict[str, Any]:
    return {
        "survey_id": e.survey_id,
        "kind": e.kind,
        "conversation_id": e.conversation_id,
        "agent": e.agent,
        "channel": e.channel,
    }


def _feedback_requested(e: Any, _: PersonalDataCipher) -> tuple[Any, ...]:
    data = {**_survey(e), "message_id": e.message_id}
    return FeedbackRequested, e.customer_id, e.asked_at, data


def _feedback_received(e: Any, _: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        **_survey(e),
        "score": e.score,
        "via": e.via,
        "message_id": e.message_id,
        "asked_at": e.asked_at,
    }
    return FeedbackReceived, e.customer_id, e.answered_at, data


def _feedback_commented(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    data = {
        **_survey(e),
        "comment": c.decrypt(e.customer_id, e.comment),
        "message_id": e.message_id,
    }
    return FeedbackCommented, e.customer_id, e.commented_at, data


def _activity_recorded(e: Any, c: PersonalDataCipher) -> tuple[Any, ...]:
    cid = e.customer_id
    personal = c.decrypt_json(cid, e.personal) or {}
    data = {
        "activity_id": e.originator_id,
        "type": e.type,
        "name": e.name,
        "amount": e.amount,
        "currency": e.currency,
        "source": e.source,
        "source_id": personal.get("source_id"),
        "reference": personal.get("reference"),
        "title": personal.get("title"),
        "description": personal.get("description"),
        "url": personal.get("url"),
        "metadata": personal.get("metadata") or {},
    }
    return ActivityRecorded, cid, e.occurred_at, data


# Keyed by the stored event class's qualified name (the classes are made by ``@event``).
_BUILDERS: dict[str, Callable[[Any, PersonalDataCipher], tuple[Any, ...]]] = {
    "Customer.Registered": _customer_registered,
    "Customer.IdentityLinked": _identity_linked,
    "Customer.ProfileUpdated": _profile_updated,
    "Customer.ConsentChanged": _consent_changed,
    "Customer.TagsChanged": _tags_changed,
    "Customer.Merged": _merged,
    "Customer.Unmerged": _unmerged,
    "Customer.Erased": _erased,
    "Customer.DuplicateDismissed": _duplicate_dismissed,
    "Customer.DuplicateRestored": _duplicate_restored,
    "Conversation.Opened": _conversation_opened,
    "Conversation.StatusChanged": _status_changed,
    "Conversation.Assigned": _assigned,
    "Conversation.NoteAdded": _note_added,
    "Message.Recorded": _message_recorded,
    "Message.DeliveryUpdated": _delivery_updated,
    "Message.Dispatched": _dispatched,
    "Message.DispatchDeferred": _dispatch_deferred,
    "Occurrence.Scheduled": _scheduled,
    "Occurrence.Cancelled": _schedule_cancelled,
    "Occurrence.Skipped": _schedule_skipped,
    "Occurrence.Queued": _schedule_queued,
    "SlaBreach.Recorded": _sla_breached,
    "Activity.Recorded": _activity_recorded,
    "SurveyLedger.Asked": _feedback_requested,
    "SurveyLedger.Answered": _feedback_received,
    "SurveyLedger.Commented": _feedback_commented,
}
#: The module of each published aggregate (the store topic is ``module:Class.Event``).
_MODULES = {
    "Occurrence": "hub.domain.automation",
    "SlaBreach": "hub.domain.service_levels",
    "Activity": "hub.domain.activities",
    "SurveyLedger": "hub.domain.surveys",
}

#: Store topics of the events that are published; the rest are internal.
PUBLISHED_TOPICS: tuple[str, ...] = tuple(
    f"{_MODULES.get(name.partition('.')[0], model.__name__)}:{name}" for name in _BUILDERS
)


def to_envelope(event: Any, position: int, cipher: PersonalDataCipher) -> Envelope | None:
    """The published form of a stored event, or None for an internal one."""
    builder = _BUILDERS.get(type(event).__qualname__)
    if builder is None:
        return None
    cls, customer_id, occurred_at, data = builder(event, cipher)
    correlation_id = getattr(event, "correlation_id", None)
    envelope: Envelope = cls.model_validate(
        {
            "id": uuid7(
                event.timestamp,
                seed=event.originator_id.bytes + event.originator_version.to_bytes(8, "big"),
            ),
            "occurred_at": occurred_at,
            "recorded_at": event.timestamp,
            "customer_id": customer_id,
            "position": position,
            "causation_id": correlation_id,
            "correlation_id": correlation_id,
            "erased": cipher.is_erased(customer_id),
            "data": data,
        }
    )
    return envelope
