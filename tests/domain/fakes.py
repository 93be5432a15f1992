"""Fakes of the ports hub.domain.policy declares: the channels (``ChannelPolicy``) and a
provider's delivery report (``ProviderReport``), as a few fields each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID


@dataclass
class FakeChannels:
    """Every channel on unless ``off`` says why not; service windows and deduping providers
    by channel."""

    off: dict[str, str] = field(default_factory=dict)
    windows: dict[str, timedelta] = field(default_factory=dict)
    deduping: frozenset[str] = frozenset()

    def unavailable(self, channel: str) -> str | None:
        return self.off.get(channel)

    def service_window(self, channel: str) -> timedelta | None:
        return self.windows.get(channel)

    def status_callback_url(self, channel: str, message_id: UUID) -> str | None:
        return f"https://hub.test/status/{channel}/{message_id}"

    def idempotent(self, channel: str) -> bool:
        return channel in self.deduping

    def unsubscribe_url(
        self, channel: str, customer_id: UUID, purpose: str, message_id: UUID
    ) -> str | None:
        return f"https://hub.test/unsubscribe/{channel}/{purpose}/{message_id}"


@dataclass(frozen=True)
class FakeReport:
    channel: str
    provider_message_id: str
    status: str
    occurred_at: datetime
    message_id: UUID | None = None
    error_code: str | None = None
    error_message: str | None = None
    revoke_consent: bool = False
