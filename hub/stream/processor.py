"""The processor: inbound records from ``hub.inbound`` into the store, a batch per transaction.

Transport-free: the Faust agent in ``hub.stream.app`` hands it the raw records of a batch and
sends what it sets aside to the dead-letter topic. A record that is not a valid inbound
interaction can never be processed and is set aside at once, with the reason. A batch the domain
refuses is split to find the record at fault; a store outage is not a record's fault and is
raised, so the agent retries and commits no offset meanwhile.

What it sets aside is also kept in the hub's dead letters (kind ``interaction``, source
``hub.inbound``, the record's value whole), where ``hub dead-letters`` and the admin API list
and retry it as in the embedded runtime. They are written with the batch's work, before its
offsets are committed; a redelivered batch finds them kept already (a letter's id derives from
its bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from hub.domain.application import HubApplication, Recorded
from hub.domain.errors import DomainError, StoreUnavailable
from hub.events import InboundInteraction
from hub.store.dead_letters import DeadLetters, NewDeadLetter, Original

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes
    reason: str


@dataclass
class BatchOutcome:
    recorded: list[Recorded] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)


#: The source of the processor's dead letters.
SOURCE = "hub.inbound"


class Processor:
    def __init__(self, app: HubApplication, dead_letters: DeadLetters) -> None:
        self._app = app
        self._dead_letters = dead_letters

    def process(self, records: Sequence[tuple[bytes | None, bytes]]) -> BatchOutcome:
        outcome = BatchOutcome()
        valid: list[tuple[tuple[bytes | None, bytes], InboundInteraction]] = []
        for key, value in records:
            try:
                valid.append(((key, value), InboundInteraction.model_validate_json(value)))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "record"
                reason = f"invalid inbound interaction: {where}: {first.get('msg')}"
                outcome.dead_letters.append(DeadLetter(key, value, reason))
        self._record(valid, outcome)
        if outcome.dead_letters:
            self._dead_letters.add([_kept(letter) for letter in outcome.dead_letters])
        return outcome

    def _record(
        self,
        valid: list[tuple[tuple[bytes | None, bytes], InboundInteraction]],
        outcome: BatchOutcome,
    ) -> None:
        if not valid:
            return
        try:
            outcome.recorded += self._app.record_interactions([item for _, item in valid])
        except StoreUnavailable:
            raise
        except (DomainError, ValueError, TypeError, LookupError) as exc:
            if len(valid) == 1:
                (key, value), _ = valid[0]
                log.error("inbound record refused by the domain: %s", exc)
                outcome.dead_letters.append(DeadLetter(key, value, f"refused: {exc}"))
                return
            half = len(valid) // 2  # find the record at fault; the rest goes through
            self._record(valid[:half], outcome)
            self._record(valid[half:], outcome)


def _kept(letter: DeadLetter) -> NewDeadLetter:
    fields = {"key": letter.key.decode("utf-8", "replace")} if letter.key is not None else {}
    return NewDeadLetter(SOURCE, letter.reason, Original.interaction(letter.value, **fields))
