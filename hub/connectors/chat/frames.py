"""The chat's wire format: JSON text frames, decoded and checked before use (docs/chat.md).

A frame the hub refuses is answered with an ``error`` frame (:class:`FrameError`) and the
socket goes on; only a missing ``hello`` and a new visitor too many end it, with the close
codes below.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from hub.events.common import scrub_text

Frame = dict[str, Any]

#: Seconds a new socket has to send its ``hello``.
HELLO_SECONDS = 10.0
#: Close codes (RFC 6455): no hello, or a page of an origin not allowed; a new visitor too many.
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A BCP 47 language tag as browsers give it (navigator.language); anything else is dropped.
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8}){0,6}")
_MAX_NAME = 200
MAX_EMAIL = 320
MAX_SEQ = 2**63 - 1  # the mailbox's BIGINT

#: The scores of the hub's surveys, lowest and highest (``hub.domain.surveys.SCALES``, which a
#: connector does not import; a test keeps the two equal).
SURVEY_SCALES: Mapping[str, tuple[int, int]] = {"csat": (1, 5), "nps": (0, 10)}
#: An answer button's value: the score, as the text of the visitor's message.
CHOICE = re.compile(r"(?:10|[0-9])")
#: What marks a visitor's message as a survey button's answer (its interaction's metadata;
#: ``hub.runtime.surveys`` records its score ``via`` button).
SURVEY_CHOICE = "survey_choice"


class FrameError(Exception):
    """A frame the hub refuses: answered with an ``error`` frame, and the socket goes on."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    def frame(self) -> Frame:
        return {"type": "error", "code": self.code, "message": self.message, **self.details}


def rate_limited(wait: float, message: str, **details: Any) -> FrameError:
    seconds = max(1, math.ceil(wait))
    return FrameError(
        "rate_limited", f"{message}; try again in {seconds} s", retry_after=seconds, **details
    )


def decode(text: str | None) -> Frame:
    """A frame's JSON object (``text`` None: a binary frame); :class:`FrameError` for
    anything else."""
    if text is None:
        raise FrameError("invalid_json", "a frame must be JSON text, not binary")
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):  # also: a number of over 4300 digits, deep nesting
        frame = None
    if not isinstance(frame, dict):
        raise FrameError("invalid_json", "a frame must be a JSON object")
    return frame


def encode(frame: Frame) -> str:
    return json.dumps(frame, separators=(",", ":"), default=str)


def clean_name(value: object) -> str | None:
    """A display name as given: scrubbed (U+FFFD for NUL and lone surrogates, see
    ``scrub_text``) rather than refused, since a hello must not fail for it."""
    if not isinstance(value, str):
        return None
    return scrub_text(value).strip()[:_MAX_NAME].strip() or None


def clean_language(value: object) -> str | None:
    return value if isinstance(value, str) and _LANGUAGE.fullmatch(value) else None


def client_id_of(provider_message_id: str | None, visitor_id: str) -> str | None:
    """The widget's ``client_id`` of a visitor's message (its provider message id is
    ``<visitor id>:<client id>``); None for an agent's."""
    prefix = f"{visitor_id}:"
    if provider_message_id and provider_message_id.startswith(prefix):
        return provider_message_id[len(prefix) :]
    return None


def survey_of(data: Mapping[str, Any]) -> Frame | None:
    """The answer buttons of a survey question, from its timeline item's ``data`` (the hub's
    own metadata of a message the survey watcher queued: ``automation`` of kind ``survey``,
    id ``csat`` or ``nps``); None for any other message, or one whose body expired."""
    metadata = data.get("metadata")
    automation = metadata.get("automation") if isinstance(metadata, Mapping) else None
    if not isinstance(automation, Mapping) or automation.get("kind") != "survey":
        return None
    kind = automation.get("id")
    scale = SURVEY_SCALES.get(kind) if isinstance(kind, str) else None
    if scale is None:
        return None
    low, high = scale
    choices = [{"label": str(n), "value": str(n)} for n in range(low, high + 1)]
    return {"kind": kind, "min": low, "max": high, "choices": choices}


def is_choice(data: Mapping[str, Any]) -> bool:
    """Whether a visitor's message was a survey button's answer (its timeline item's ``data``)."""
    metadata = data.get("metadata")
    return isinstance(metadata, Mapping) and metadata.get(SURVEY_CHOICE) is True
