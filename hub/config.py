"""Typed configuration: the one place the hub reads its environment (prefix ``HUB_``)."""

from __future__ import annotations

import ssl
from datetime import time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.connectors.settings import (
    ChatSettings,
    EmailSettings,
    MetaSettings,
    TelegramSettings,
    TwilioSettings,
)


class KafkaSettings(BaseModel):
    """The distributed runtime's broker (``HUB_KAFKA__...``); SASL/SSL pass through to aiokafka."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    topic_prefix: str = Field(default="", description="Put before every topic name.")
    partitions: int = Field(default=12, ge=1, description="Partitions of new topics.")
    replication_factor: int = Field(default=3, ge=1, description="Replicas of new topics.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    retention_hours: float = Field(
        default=168,
        gt=0,
        description="Retention of hub.inbound and hub.events (they carry personal data in "
        "plaintext for consumers, so how long it stays on the broker is bounded by this).",
    )
    idempotent_producer: bool = Field(
        default=True,
        description="Use Kafka's idempotent producer (fewer duplicates on the wire; "
        "correctness never depends on it). Turn off for brokers without it.",
    )
    transactions: bool = Field(
        default=False,
        description="Faust's exactly_once guarantee (Kafka transactions for the dead letters "
        "and offsets). Correctness never depends on it: effects are deduplicated anyway.",
    )
    commit_interval: float = Field(
        default=1.0, gt=0, description="Seconds between consumer offset commits."
    )
    relay_lease_seconds: float = Field(
        default=15.0,
        gt=0,
        description="How long a standby relay waits before taking over from one that stopped "
        "renewing its lease (one batch must take far less).",
    )
    session_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds without a heartbeat before a worker's partitions go to the others.",
    )
    rebalance_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds the group waits for its workers to rejoin in a rebalance (some "
        "brokers wait this long when a group forms).",
    )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client of the hub gets."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = ssl.create_default_context()  # the system's CAs
        if self.sasl_mechanism:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        return options


class DispatchSettings(BaseModel):
    """How outbound messages go out (``HUB_DISPATCH__...``)."""

    model_config = ConfigDict(frozen=True)

    quiet_hours_start: time | None = Field(
        default=time(21, 0),
        description="Local time in the customer's time zone from which non-urgent messages "
        "are held (None: no quiet hours).",
    )
    quiet_hours_end: time = Field(default=time(8, 0), description="...until this local time.")
    default_time_zone: str | None = Field(
        default=None,
        description="IANA zone for customers whose zone is unknown (None: no quiet hours for "
        "them).",
    )
    awake_window: timedelta = Field(
        default=timedelta(hours=1),
        description="A reply within this time of the customer's own last message is not held "
        "by quiet hours: they are awake and waiting.",
    )
    max_attempts: int = Field(default=5, ge=1, description="Tries of a retryable failure.")
    retry_base_seconds: float = Field(default=2.0, gt=0, description="First back-off; doubles.")
    in_doubt_seconds: float = Field(
        default=600.0,
        gt=0,
        description="A send interrupted by a crash on a channel without idempotency keys is "
        "not repeated; without a status callback within this time it is recorded as failed.",
    )


class Settings(BaseSettings):
    """Effective configuration of one hub process.

    Nested models (``HUB_X__Y``) come with the connectors; the core keeps flat names.
    """

    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("hub-data"),
        description="Directory for the embedded runtime's SQLite files and generated keys.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    store_url: str | None = Field(
        default=None,
        description="Event store: sqlite:///path or postgresql://user:pass@host:port/db. "
        "Default: a SQLite file in the data directory.",
    )
    views_url: str | None = Field(
        default=None,
        description="Read models: same URL forms. Default: a second SQLite file in the data "
        "directory (embedded), or the store's database (PostgreSQL).",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = Field(
        default="NORMAL",
        description="SQLite WAL durability: NORMAL survives a process crash, "
        "FULL also a power cut.",
    )

    admin_token: SecretStr | None = Field(
        default=None, description="An admin bearer token accepted from start-up."
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 bytes wrapping every customer data key. Embedded default: "
        "generated once into <data_dir>/master.key.",
    )
    address_pepper: SecretStr | None = Field(
        default=None,
        description="Secret for deriving address ids (so ids do not reveal phone numbers). "
        "Embedded default: generated once into <data_dir>/pepper.key.",
    )

    default_region: str | None = Field(
        default=None,
        description="ISO country code for phone numbers written without a +country prefix.",
    )
    conversation_window: timedelta = Field(
        default=timedelta(hours=24),
        description="A message on a non-email channel joins the open conversation of its address "
        "when that conversation saw activity within this window.",
    )
    max_clock_skew: timedelta = Field(
        default=timedelta(minutes=5),
        description="How far in the future an occurred_at may be before it is refused.",
    )
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    max_batch_items: int = Field(default=1000, gt=0)
    projection_batch_size: int = Field(default=1000, gt=0)
    projection_poll_interval: float = Field(
        default=0.5, gt=0, description="Seconds between polls for writes by other processes."
    )
    projection_coalesce_ms: float = Field(
        default=15.0,
        ge=0,
        description="After a wake-up the projections wait this long for more writes, so a "
        "busy hub applies batches rather than single events.",
    )
    aggregate_cache_size: int = Field(
        default=100_000, ge=0, description="Aggregates kept in memory between commands."
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    public_url: str | None = Field(
        default=None,
        description="The hub's address as providers call it (https://hub.example.com): "
        "webhook signatures are checked against it, status callback URLs built from it.",
    )
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    meta: MetaSettings = Field(default_factory=MetaSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    connectors: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Settings of third-party connectors by name (HUB_CONNECTORS__FAX__TOKEN); "
        "a third-party connector is on when it has an entry here.",
    )
    log_level: str = "INFO"
    opentelemetry: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry traces, metrics and logs of requests, "
        "with the global providers (opentelemetry-instrument, FASTAPI_OTEL_AUTO_CONFIGURE). "
        "Off by default: /metrics has the hub's own figures, and the check whether any "
        "provider is set costs every request (a twentieth of a webhook's CPU, measured).",
    )

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str | None) -> str | None:
        return value.upper() if value else value

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{(self.data_dir / 'events.db').resolve()}"

    def resolved_views_url(self) -> str:
        if self.views_url:
            return self.views_url
        store = self.resolved_store_url()
        if store.startswith("postgresql"):
            return store
        return f"sqlite:///{(self.data_dir / 'views.db').resolve()}"

    def masked(self) -> dict[str, Any]:
        """The effective configuration with every secret (and URL password) masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "**********" if value.get_secret_value() else None
            elif isinstance(value, BaseModel):
                shown[name] = {
                    k: ("**********" if isinstance(v, SecretStr) else v)
                    for k, v in value.model_dump().items()
                }
            elif name == "connectors":  # third-party settings: no way to tell what is secret
                shown[name] = {c: dict.fromkeys(v, "**********") for c, v in value.items()}
            elif name.endswith("_url") and isinstance(value, str):
                shown[name] = mask_url(value)
            else:
                shown[name] = value
        shown["resolved_store_url"] = mask_url(self.resolved_store_url())
        shown["resolved_views_url"] = mask_url(self.resolved_views_url())
        return shown


def mask_url(url: str) -> str:
    """Hide the password part of a database URL."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is shown as-is minus nothing secret to hide
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; tests build their own ``Settings``."""
    return Settings()
