"""Typed configuration: the one place the hub reads its environment (prefix ``HUB_``)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping, Sequence
from datetime import time, timedelta
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from hub.connectors.settings import (
    ChatSettings,
    EmailSettings,
    EnvList,
    MetaSettings,
    SandboxSettings,
    TelegramSettings,
    TwilioSettings,
)


class ConfigurationError(Exception):
    """The configuration cannot work; the message says which setting to fix. The ``hub``
    command prints it (one line per problem, no traceback) and exits 2."""


class InvalidSettings(ConfigurationError):
    """Settings that do not validate: one line per problem, each naming its variable."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


class KafkaSettings(BaseModel):
    """The distributed runtime's broker (``HUB_KAFKA__...``); SASL/SSL pass through to aiokafka."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port[,host:port]")
    topic_prefix: str = Field(default="", description="Put before every topic name.")
    cloudevents_source: str = Field(
        default="urn:interaction-hub",
        min_length=1,
        description="The CloudEvents `source` (a URI reference naming this hub) in the ce_source "
        "header of every record on hub.events (docs/consuming.md).",
    )
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
        description="Kafka transactions: the process worker commits each batch's offsets and "
        "dead letters in one transaction (the webhooks worker: Faust's exactly_once). "
        "Correctness never depends on it: effects are deduplicated anyway.",
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
    max_in_flight: int = Field(
        default=16,
        ge=1,
        description="Sends under way at once (each to a different recipient: one recipient's "
        "messages go one after the other, in order).",
    )


class AutomationSettings(BaseModel):
    """Scheduled and automated messages (``HUB_AUTOMATION__...``, docs/automation.md)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = Field(
        default=True,
        description="Run the scheduler where the dispatcher runs (false: scheduled messages "
        "wait, and fire when it runs again).",
    )
    frequency_cap: int = Field(
        default=3,
        ge=0,
        description="At most this many marketing messages per customer in frequency_days "
        "(0: no cap); the rest are skipped with the reason frequency_cap.",
    )
    frequency_days: float = Field(default=7.0, gt=0, description="The cap's period.")
    plan_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the scheduler runs the rules and campaigns that plan ahead "
        "(birthdays, anniversaries, campaigns due).",
    )


class RetentionSettings(BaseModel):
    """How long personal data is kept (``HUB_RETENTION__...``)."""

    model_config = ConfigDict(frozen=True)

    message_days: int | None = Field(
        default=None,
        ge=1,
        description="Message bodies, subjects and attachments' metadata older than this many "
        "days become unreadable everywhere; the fact that a message existed stays (None: kept).",
    )
    access_log_days: int = Field(
        default=730,
        ge=1,
        description="Access log entries (who read whose personal data) older than this many "
        "days are deleted.",
    )


class IdentitySettings(BaseModel):
    """Duplicate suggestions and merges (``HUB_IDENTITY__...``; docs/profile.md)."""

    model_config = ConfigDict(frozen=True)

    blocklist: EnvList[list[str]] = Field(
        default_factory=list,
        description="Addresses (kind:value, e.g. email:office@example.com or phone:+37060000000) "
        "that many people share or that are fake: never evidence of a duplicate, never linked "
        "automatically. Added to the built-in ones (info@, noreply@, test@example.com...) and "
        "to those set through PUT /v1/identity-blocklist.",
    )
    shared_address_limit: int = Field(
        default=3,
        ge=2,
        description="An address mentioned by or seen on more than this many customers is "
        "shared (a front desk, a family phone): never evidence of a duplicate.",
    )
    max_group_size: int = Field(
        default=20,
        ge=2,
        description="The most customers one merge group may hold: a merge that would make it "
        "larger is refused with a reason, so one bad merge cannot swallow thousands.",
    )


class AcquisitionSettings(BaseModel):
    """Where customers come from (``HUB_ACQUISITION__...``; docs/profile.md)."""

    model_config = ConfigDict(frozen=True)

    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="The company's own channel endpoints mapped to a source, set on customers "
        "whose first contact was to it: "
        '\'{"phone:+37060000000": "radio-spring", "email:sales@example.com": "sales-page"}\'.',
    )


_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ReportsSettings(BaseModel):
    """The business reports' money (``HUB_REPORTS__...``; docs/analytics.md): the currency
    value is reported in, and what one unit of each other currency is worth in it. An
    amount in a currency without a rate is left out of the value and counted as
    ``unconverted``, never taken 1:1."""

    model_config = ConfigDict(frozen=True)

    currency: str = Field(default="EUR", description="ISO 4217 code value figures are reported in.")
    rates: dict[str, Decimal] = Field(
        default_factory=dict,
        description="One unit of each other currency in the reporting currency, as decimal "
        'text: HUB_REPORTS__RATES=\'{"USD": "0.92", "CZK": "0.041"}\'.',
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY.match(value):
            raise ValueError(f"{value!r}: an ISO 4217 code is three capital letters")
        return value

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for code, rate in value.items():
            if not _CURRENCY.match(code):
                raise ValueError(f"{code!r}: an ISO 4217 code is three capital letters")
            if not rate.is_finite() or rate <= 0:
                raise ValueError(f"{code}: a rate is a positive decimal, not {rate}")
        return value


class WebhookSettings(BaseModel):
    """Outbound webhooks to downstream services (``HUB_WEBHOOKS__...``; docs/webhooks.md)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = Field(
        default=True,
        description="Deliver webhooks from this process at all (endpoints can still be "
        "managed, and events are still queued for them, when off).",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Allow endpoints on loopback, private, link-local (cloud metadata), "
        "shared (CGNAT) and other non-public addresses. Off: such addresses are refused at "
        "every attempt, after resolving the name once, and the connection goes to the "
        "address checked.",
    )
    retry_period: timedelta = Field(
        default=timedelta(days=3),
        gt=timedelta(0),
        description="How long an event is retried from its first attempt before it is given "
        "up (kept, redeliverable); an endpoint without any success for this long is disabled.",
    )
    backoff_base_seconds: float = Field(
        default=5.0, gt=0, description="The first retry's delay; doubles with each attempt."
    )
    backoff_max_seconds: float = Field(
        default=3600.0, gt=0, description="The longest delay between two attempts."
    )
    connect_timeout_seconds: float = Field(
        default=5.0, gt=0, description="Seconds to connect to an endpoint."
    )
    total_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Seconds one attempt may take in all: resolving, connecting, sending, "
        "and reading the answer.",
    )
    response_cap_bytes: int = Field(
        default=4096,
        ge=0,
        description="The most of an answer's body read (the rest is not waited for); its "
        "first 256 characters are kept in the attempt log.",
    )
    max_in_flight: int = Field(
        default=16,
        ge=1,
        description="Sends to one endpoint at a time by one process (each to a different "
        "customer: a customer's events go one after the other, in order).",
    )
    secret_grace: timedelta = Field(
        default=timedelta(hours=24),
        ge=timedelta(0),
        description="After a secret rotation, the previous secret stays valid this long: "
        "both signatures are sent meanwhile.",
    )
    attempt_log_days: int = Field(
        default=30, ge=1, description="Attempts older than this many days leave the log."
    )


_PURPOSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PurposeSettings(BaseModel):
    """A configured consent purpose (``HUB_CONSENT__PURPOSES__<NAME>__...``)."""

    model_config = ConfigDict(frozen=True)

    granted_by_contact: bool = Field(
        default=False,
        description="Granted by the customer writing to you, like service (until withdrawn); "
        "otherwise it needs an explicit opt-in, like marketing.",
    )


class ConsentSettings(BaseModel):
    """The consent rules (``HUB_CONSENT__...``; docs/consent.md). Built in: ``service`` is
    granted by the customer writing to you, ``marketing`` needs an explicit opt-in."""

    model_config = ConfigDict(frozen=True)

    purposes: dict[str, PurposeSettings] = Field(
        default_factory=dict,
        description="Purposes besides the built-in service (replies in a conversation the "
        "customer started) and marketing (anything the hub starts on its own), by name "
        '(lowercase letters, digits, _): HUB_CONSENT__PURPOSES=\'{"reminders": '
        '{"granted_by_contact": true}, "surveys": {}}\'.',
    )
    double_opt_in_email: bool = Field(
        default=True,
        description="An agent's or the API's grant of an opt-in purpose (marketing...) on "
        "email only records a request: the customer confirms it through a signed link "
        "(double opt-in), and only then is it granted.",
    )
    confirmation_days: float = Field(
        default=7, gt=0, le=365, description="How long a double opt-in link stays valid."
    )

    @field_validator("purposes")
    @classmethod
    def _purpose_names(cls, value: dict[str, PurposeSettings]) -> dict[str, PurposeSettings]:
        for name in value:
            if not _PURPOSE_NAME.match(name):
                raise ValueError(f"{name!r}: a purpose is lowercase letters, digits and _")
            if name in ("service", "marketing"):
                raise ValueError(f"{name!r} is built in: its rule is fixed")
        return value


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
    stream_recheck_seconds: float = Field(
        default=5.0,
        gt=0,
        description="A long-lived stream (/v1/events/stream, the console's live feeds) checks "
        "its token or session again at least this often and ends once it is revoked or "
        "signed out (at once for a revocation made in the same process).",
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
    request_head_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's line and headers (from "
        "connecting, or from the first byte of a later request); then 408 and disconnected.",
    )
    request_body_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a request body may pause before it is answered 408 (nothing is "
        "recorded); also its grace period before request_body_min_rate applies.",
    )
    request_body_min_rate: float = Field(
        default=500.0,
        gt=0,
        description="Bytes a second a request body must average after its first "
        "request_body_timeout seconds, so a trickle does not hold a connection.",
    )
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
    projection_process: bool = Field(
        default=True,
        description="`hub serve` applies the projections in a child process of its own, so "
        "that recording and projecting each get a core; false: in a thread of the server.",
    )
    stream_roles_process: bool = Field(
        default=True,
        description="`hub run all` runs the roles that follow the topics and the log (process, "
        "relay, project, webhooks) in a child process of its own, so that they and the roles "
        "that answer requests (ingest, api, dispatch) each get a core; false: all in one "
        "process.",
    )
    cache_mib: float = Field(
        default=32.0,
        ge=0,
        description="Memory (MiB) each process of the hub gives its caches, which share it "
        "in fixed parts: the aggregates commands load, SQLite's page caches (its soft heap "
        "limit), the view rows a projection batch keeps for the next, customers' keys, "
        "parsed addresses. Larger saves reads when many customers write at once; 0 turns "
        "the caches off (hub/memory.py).",
    )
    dead_letter_retention: timedelta = Field(
        default=timedelta(days=30),
        gt=timedelta(0),
        description="Dead letters (what was received but could not be recorded, kept whole "
        "and encrypted for a retry) older than this are purged: they hold personal data.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)

    public_url: str | None = Field(
        default=None,
        description="The hub's address as providers call it (https://hub.example.com): "
        "webhook signatures are checked against it, status callback URLs built from it.",
    )
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)
    acquisition: AcquisitionSettings = Field(default_factory=AcquisitionSettings)
    reports: ReportsSettings = Field(default_factory=ReportsSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    meta: MetaSettings = Field(default_factory=MetaSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    sandbox: bool = Field(
        default=False,
        description="Simulated customers (the demo's): SMS, WhatsApp, email and Telegram sends "
        "stay in this process and report delivery; /sandbox/ writes back as the customer. "
        "Never for a hub with real customers.",
    )
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
        "provider is set costs every request (docs/performance.md).",
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

    def connector_section(self, name: str) -> BaseModel | None:
        """The typed settings of built-in connector ``name`` (``HUB_TWILIO__...`` is
        ``twilio``), ``None`` for any other name. The connector registry reads them here."""
        sections: dict[str, BaseModel] = {
            "twilio": self.twilio,
            "email": self.email,
            "meta": self.meta,
            "telegram": self.telegram,
            "chat": self.chat,
            "sandbox": SandboxSettings(enabled=self.sandbox),
        }
        return sections.get(name)

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
    # SQLAlchemy only here: every `hub` command reads the settings, and loading SQLAlchemy
    # would add a fifth of a second to the ones that never touch a database (`hub keygen`).
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is shown as-is minus nothing secret to hide
        return url


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment, with ``overrides`` (command-line options, by field
    name) on top. Raises :class:`InvalidSettings` naming every variable that does not
    validate, what it was given (never a secret's value) and what is expected."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise InvalidSettings([_problem(error, overrides) for error in exc.errors()]) from exc
    except SettingsError as exc:
        raise InvalidSettings([_undecodable(exc)]) from exc


def _problem(error: ErrorDetails, overrides: Mapping[str, Any]) -> str:
    """One line for one validation error: ``HUB_PORT='abc': expected a valid integer...``."""
    variable, secret = _variable(error["loc"], overrides)
    given = error.get("input")
    if secret:
        shown = " (value not shown)"
    elif isinstance(given, str | int | float | bool | PurePath):
        value = str(given) if isinstance(given, PurePath) else given
        if isinstance(value, str) and variable.endswith("_URL"):
            value = mask_url(value)  # a database URL's password
        shown = f"={value!r}" if len(repr(value)) <= 80 else f"={repr(value)[:77]}..."
    else:  # a whole section (a model's own check): its values may include secrets
        shown = ""
    message = error["msg"]
    for prefix, instead in (("Input should be ", "expected "), ("Value error, ", "")):
        if message.startswith(prefix):
            message = instead + message.removeprefix(prefix)
    return f"{variable}{shown}: {message}"


def _variable(loc: tuple[int | str, ...], overrides: Mapping[str, Any]) -> tuple[str, bool]:
    """The environment variable (or command-line option) an error's location names, and
    whether its value may be secret: a ``SecretStr``, or a whole section or a third-party
    connector's setting, whose secrets the hub cannot tell apart."""
    if loc and loc[0] in overrides:
        return f"--{str(loc[0]).replace('_', '-')}", False
    path: list[str] = []
    model: type[BaseModel] | None = Settings
    secret = in_dict = False
    for key in loc:
        if isinstance(key, int):  # an item of a list: named by its place in the variable
            return "HUB_" + "__".join(path).upper() + f"[{key}]", secret
        if in_dict:
            path.append(key)
            continue
        field = model.model_fields.get(key) if model is not None else None
        if field is None:  # a union member's tag, or a model's own check: not a variable
            break
        path.append(key)
        members = (field.annotation, *get_args(field.annotation))
        model = next((m for m in members if isinstance(m, type) and issubclass(m, BaseModel)), None)
        in_dict = get_origin(field.annotation) is dict
        secret = SecretStr in members or in_dict or model is not None
    return ("HUB_" + "__".join(path).upper()) if path else "the configuration", secret


def _undecodable(exc: SettingsError) -> str:
    """pydantic-settings could not decode a whole section given as one JSON variable
    (``HUB_KAFKA='{...'``): its value may hold secrets, so only the reason is shown."""
    found = re.search(r'field "(\w+)"', str(exc))
    variable = f"HUB_{found[1].upper()}" if found else "a HUB_ variable"
    reason = exc.__cause__ or exc
    return (
        f"{variable}: not valid JSON ({reason}); expected a JSON object, or each part as "
        f"its own {variable}__<NAME> variable"
    )
