"""Settings of the built-in connectors (``HUB_TWILIO__...``, ``HUB_EMAIL__...``,
``HUB_META__...``, ``HUB_TELEGRAM__...``): pydantic models only, so that reading the
configuration never imports a provider's SDK. Each connector class names its model as
``settings_model``.

A list setting is written ``EnvList[list[str]]`` (or ``tuple``): from the environment it is
a comma-separated list (``HUB_EMAIL__DOMAINS=a.example,b.example``) or a JSON array. A
third-party connector's ``settings_model`` gets the same parsing by using it too (its
``HUB_CONNECTORS__<NAME>__*`` values reach it as strings)."""

from __future__ import annotations

import json
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import NoDecode


def split_list(value: object) -> object:
    """A list given as one string: a JSON array when it starts with ``[``, else items
    separated by commas (blanks around them dropped; an empty string is an empty list).
    Anything but a string is left to the field's own validation."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(
                "expected a JSON array or comma-separated values, got malformed JSON"
            ) from None
    return [item.strip() for item in text.split(",") if item.strip()]


T = TypeVar("T")
#: A list setting: pydantic-settings' own JSON decoding is off for it (``NoDecode``, which
#: also reaches nested fields such as ``HUB_EMAIL__DOMAINS``), and :func:`split_list`
#: accepts both forms instead.
EnvList = Annotated[T, NoDecode, BeforeValidator(split_list)]


class TwilioSettings(BaseModel):
    """``HUB_TWILIO__...``: the account, the sending number and the REST base URL."""

    model_config = ConfigDict(frozen=True)

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_number: str | None = Field(default=None, description="E.164 sender, e.g. +15550001111.")
    messaging_service_sid: str | None = Field(
        default=None, description="Send through this Messaging Service instead of from_number."
    )
    api_base_url: str = Field(
        default="https://api.twilio.com",
        description="Twilio's REST API; tests point it at a local server.",
    )
    rate_per_second: float | None = Field(default=None, gt=0)
    webhook_signing_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Secret of a Webhooks SharedKey, for webhooks that a Webhook Rule signs with it "
            "(they carry X-Twilio-Webhooks-Signature-Settings); others are signed with "
            "auth_token."
        ),
    )
    timeout_seconds: float = Field(
        default=15.0, gt=0, description="Whole-request timeout of a REST call."
    )

    @property
    def enabled(self) -> bool:
        return bool(
            self.account_sid
            and self.auth_token
            and (self.from_number or self.messaging_service_sid)
        )


class EmailSettings(BaseModel):
    """``HUB_EMAIL__...``: the SMTP server to send through, the listener and the mailbox."""

    model_config = ConfigDict(frozen=True)

    from_address: str | None = Field(default=None, description="Sender, e.g. support@example.com")
    from_name: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_ca_file: str | None = Field(
        default=None,
        description="PEM bundle to verify the SMTP server's certificate with, instead of the "
        "system's (a private relay with its own CA).",
    )
    listen: str | None = Field(
        default=None, description="host:port of the built-in SMTP listener, e.g. 127.0.0.1:2525"
    )
    domains: EnvList[list[str]] = Field(
        default_factory=list, description="Recipient domains the SMTP listener accepts."
    )
    max_message_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    imap_url: SecretStr | None = Field(
        default=None, description="imaps://user:password@host:993/INBOX (or imap:// on loopback)"
    )
    imap_poll_seconds: float = Field(default=30.0, gt=0)
    imap_batch: int = Field(default=50, ge=1, le=1000, description="Messages fetched per round.")
    imap_timeout: float = Field(default=30.0, gt=0, description="Seconds per IMAP command.")
    imap_verify: bool = Field(
        default=True, description="Check the IMAP server's TLS certificate (imaps://)."
    )
    imap_ca_file: str | None = Field(
        default=None, description="CA bundle to trust for imaps:// (default: the system's)."
    )
    rate_per_second: float | None = Field(default=None, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.from_address and (self.smtp_host or self.listen or self.imap_url))


class MetaSettings(BaseModel):
    """``HUB_META__...``: the app's secrets, the access token and the Graph API's address."""

    model_config = ConfigDict(frozen=True)

    app_secret: SecretStr | None = None
    verify_token: SecretStr | None = None
    access_token: SecretStr | None = None
    graph_base_url: str = Field(
        default="https://graph.facebook.com", description="Tests point it at a local server."
    )
    graph_api_version: str = "v21.0"
    whatsapp_phone_number_id: str | None = Field(
        default=None, description="The WhatsApp Business phone number id that sends."
    )
    page_id: str | None = Field(default=None, description="Messenger: the Page that sends.")
    instagram_account_id: str | None = Field(
        default=None, description="Instagram: the professional account that sends."
    )
    rate_per_second: float | None = Field(default=None, gt=0)
    timeout_seconds: float = Field(default=15.0, gt=0, description="Per Graph API request.")

    @property
    def enabled(self) -> bool:
        return bool(self.app_secret and self.verify_token and self.access_token)


class TelegramSettings(BaseModel):
    """``HUB_TELEGRAM__...``: the bot's token, the webhook secret and the API's address."""

    model_config = ConfigDict(frozen=True)

    bot_token: SecretStr | None = None
    secret_token: SecretStr | None = None
    api_base_url: str = Field(
        default="https://api.telegram.org", description="Tests point it at a local server."
    )
    rate_per_second: float | None = Field(default=None, gt=0)
    timeout_seconds: float = Field(default=15.0, gt=0, description="Per Bot API request.")

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token and self.secret_token)


class ChatSettings(BaseModel):
    """``HUB_CHAT__...``: the web chat widget (``/chat/widget.js``, ``/chat/ws``). On unless
    turned off; it needs no provider."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    secret: SecretStr | None = Field(
        default=None,
        description=(
            "Key that signs visitor tokens and verification codes. Unset: one is generated "
            "on first start and kept in the hub's state database (shared by every process)."
        ),
    )
    allowed_origins: EnvList[tuple[str, ...]] = Field(
        default=(),
        description=(
            "Web origins (https://www.example.com) whose pages may open the chat, besides the "
            "hub's own (HUB_PUBLIC_URL's origin, or the host the browser asked for when it is "
            'unset). ["*"]: any site, which lets any page talk to the hub as your visitors.'
        ),
    )
    visitors_per_ip_per_minute: int = Field(
        default=20,
        ge=1,
        description="New visitors (a hello without a valid token) one client IP (an IPv6 /64) "
        "may start a minute, in bursts of as many.",
    )
    messages_per_visitor_per_minute: int = Field(
        default=20,
        ge=1,
        description="Frames that record or mail something (message, identify, verify) one "
        "visitor may send a minute, in bursts of as many.",
    )
    messages_per_ip_per_minute: int = Field(
        default=120,
        ge=1,
        description="The same frames from all the visitors of one client IP (an IPv6 /64).",
    )
    code_guesses_per_hour: int = Field(
        default=10,
        ge=1,
        description="Verification codes one visitor may try for one email address in an hour, "
        "whatever the sockets and identify frames: a six-digit code cannot be guessed.",
    )
    token_days: int = Field(default=365, ge=1, description="How long a visitor token is valid.")
    code_minutes: int = Field(
        default=15, ge=1, le=1440, description="How long an email verification code is valid."
    )
    max_text: int = Field(default=4000, ge=1, le=100_000, description="Characters per message.")
    title: str = Field(default="Chat with us", max_length=100, description="The widget's title.")
    rate_per_second: float | None = Field(default=None, gt=0)


class SandboxSettings(BaseModel):
    """The sandbox's settings: on only with ``HUB_SANDBOX=true`` (or ``hub serve --demo``),
    which ``hub.config.Settings.connector_section`` turns into ``enabled``. The delays are
    seconds after a send at which the simulated provider reports it sent, delivered, read."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = False
    sent_after: float = Field(default=0.5, ge=0)
    delivered_after: float = Field(default=1.5, ge=0)
    read_after: float = Field(default=3.0, ge=0)
    secret: SecretStr | None = Field(
        default=None,
        description="Key of the sandbox's webhook signatures; unset: a random one per process.",
    )
