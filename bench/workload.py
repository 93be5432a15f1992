"""A realistic, reproducible mix of interactions, and datasets built from it in-process.

Customers reach the company by phone (SMS and WhatsApp share the number), email (email, or web
chat signed in with the email) or anonymous web chat. A share of interactions are first contacts
from unknown addresses; the rest come from customers seen before. Emails reply in threads
(``thread_ref``), about a third of the traffic is the company answering (outbound).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from hub.config import Settings
from hub.events import InboundInteraction

_WORDS = [
    "order",
    "delivery",
    "parcel",
    "refund",
    "invoice",
    "account",
    "password",
    "reset",
    "payment",
    "card",
    "address",
    "change",
    "thanks",
    "please",
    "hello",
    "hi",
    "when",
    "where",
    "why",
    "arrived",
    "damaged",
    "missing",
    "late",
    "tracking",
    "number",
    "today",
    "tomorrow",
    "week",
    "store",
    "pickup",
    "return",
    "label",
    "exchange",
    "size",
    "colour",
    "discount",
    "code",
    "subscription",
    "cancel",
    "renew",
    "plan",
    "upgrade",
    "support",
    "agent",
    "call",
    "back",
    "email",
    "phone",
    "chat",
    "message",
    "photo",
    "receipt",
]
_FIRST = [
    "Maria",
    "James",
    "Aiko",
    "Lena",
    "Omar",
    "Sofia",
    "Noah",
    "Chen",
    "Priya",
    "Lucas",
    "Amara",
    "Mateo",
    "Ines",
    "Yusuf",
]
_LAST = [
    "Garcia",
    "Okafor",
    "Tanaka",
    "Fischer",
    "Haddad",
    "Rossi",
    "Smith",
    "Wang",
    "Patel",
    "Silva",
    "Mensah",
    "Lopez",
]


@dataclass(slots=True)
class _Customer:
    address: str
    kind: str  # phone | email | chat
    last_email: str | None = None


@dataclass
class Workload:
    """Generates interaction bodies (the JSON of POST /v1/interactions).

    ``clock``: "now" stamps each interaction with the current time; otherwise a virtual clock
    starts ``span`` ago and advances ``step`` per interaction (datasets spread over weeks).
    """

    seed: int = 1
    new_share: float = 0.1
    tag: str = ""
    clock: str = "now"
    span: timedelta = timedelta(days=30)
    step: timedelta = timedelta(seconds=1)
    customers: list[_Customer] = field(default_factory=list)
    _seq: int = 0
    _virtual: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.tag = self.tag or f"{self.seed:x}{self.rng.getrandbits(24):06x}"
        self._virtual = datetime.now(UTC) - self.span
        self._phone_base = self.rng.randrange(9_000_000)

    # -- pieces ------------------------------------------------------------------------------

    def _occurred_at(self) -> str:
        if self.clock == "now":
            return datetime.now(UTC).isoformat()
        self._virtual += self.step
        return self._virtual.isoformat()

    def _text(self, low: int = 40, high: int = 400) -> str:
        rng = self.rng
        target = rng.randint(low, high)
        words: list[str] = []
        size = 0
        while size < target:
            word = rng.choice(_WORDS)
            words.append(word)
            size += len(word) + 1
        return " ".join(words).capitalize() + "."

    def _name(self) -> str:
        return f"{self.rng.choice(_FIRST)} {self.rng.choice(_LAST)}"

    def _new_customer(self) -> _Customer:
        n = len(self.customers)
        roll = self.rng.random()
        if roll < 0.5:
            digits = (self._phone_base + n) % 9_000_000 + 1_000_000
            customer = _Customer(f"phone:+1555{digits:07d}", "phone")
        elif roll < 0.85:
            customer = _Customer(f"email:c{n}.{self.tag}@example.com", "email")
        else:
            customer = _Customer(f"chat:v{self.tag}-{n}", "chat")
        self.customers.append(customer)
        return customer

    def _channel(self, customer: _Customer) -> str:
        roll = self.rng.random()
        if customer.kind == "phone":
            return "sms" if roll < 0.4 else "whatsapp"
        if customer.kind == "email":
            return "email" if roll < 0.8 else "chat"
        return "chat"

    # -- interactions ------------------------------------------------------------------------

    def interaction(self, first_contact: bool | None = None) -> dict[str, Any]:
        """One interaction body; ``first_contact`` forces (or forbids) a new customer."""
        rng = self.rng
        if first_contact is None:
            first_contact = not self.customers or rng.random() < self.new_share
        customer = self._new_customer() if first_contact else rng.choice(self.customers)
        channel = self._channel(customer)
        self._seq += 1
        seq = self._seq
        body: dict[str, Any] = {
            "channel": channel,
            "direction": "inbound" if first_contact or rng.random() < 0.65 else "outbound",
            "address": customer.address,
            "occurred_at": self._occurred_at(),
            "text": self._text(),
            "metadata": {"source": "bench", "locale": rng.choice(("en", "de", "es", "fr"))},
        }
        if channel == "email":
            pmid = f"<{self.tag}.{seq}@mail.example.com>"
            if customer.last_email and rng.random() < 0.7:
                body["thread_ref"] = customer.last_email
                body["references"] = [customer.last_email]
                body["subject"] = "Re: your request"
            else:
                body["subject"] = f"Question about order {rng.randint(1000, 99999)}"
            customer.last_email = pmid
        else:
            pmid = f"{channel[:2]}-{self.tag}-{seq}"
        body["provider_message_id"] = pmid
        if first_contact or (channel == "whatsapp" and rng.random() < 0.2):
            body["contact_name"] = self._name()
        return body

    def batch(self, size: int) -> list[dict[str, Any]]:
        return [self.interaction() for _ in range(size)]

    def seed_customers(self, count: int) -> list[dict[str, Any]]:
        """First contacts only: builds the pool of returning customers."""
        return [self.interaction(first_contact=True) for _ in range(count)]


def to_inbound(body: dict[str, Any]) -> InboundInteraction:
    """The inbound contract of an API body (addresses here are already normalised)."""
    values = dict(body)
    values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
    if "references" in values:
        values["references"] = tuple(values["references"])
    return InboundInteraction(**values)


# -- datasets built in-process --------------------------------------------------------------


@dataclass
class Dataset:
    data_dir: Path
    customer_ids: list[UUID]
    interactions: int
    stored_events: int
    record_seconds: float
    project_seconds: float


def build_dataset(
    data_dir: Path, customers: int, messages: int, seed: int = 7, batch_size: int = 1000
) -> Dataset:
    """Record ``messages`` interactions from ``customers`` customers through the runtime in
    batches, spread over 30 days, then catch the projections up."""
    from hub.embedded.follower import LogFollower
    from hub.runtime import Runtime

    assert 0 < customers <= messages
    workload = Workload(seed=seed, clock="virtual", step=timedelta(days=30) / messages)
    rng = random.Random(seed)
    rest = [True] * (customers - 1) + [False] * (messages - customers)
    rng.shuffle(rest)
    firsts = [True, *rest]  # exactly ``customers`` first contacts, the first one first
    runtime = Runtime(Settings(data_dir=data_dir))
    runtime.start()
    try:
        customer_ids: set[UUID] = set()
        started = time.perf_counter()
        for start in range(0, messages, batch_size):
            chunk = [
                to_inbound(workload.interaction(first_contact=first))
                for first in firsts[start : start + batch_size]
            ]
            for result in runtime.record_now(chunk):
                customer_ids.add(result.customer_id)
        recorded = time.perf_counter() - started
        started = time.perf_counter()
        LogFollower(runtime.store, runtime.views, batch_size=5000).catch_up()
        projected = time.perf_counter() - started
        stored = runtime.store_position()
    finally:
        runtime.stop()
    return Dataset(
        data_dir=data_dir,
        customer_ids=sorted(customer_ids),
        interactions=messages,
        stored_events=stored,
        record_seconds=recorded,
        project_seconds=projected,
    )
