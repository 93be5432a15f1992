"""Request and response bodies of the templates API (``hub.api.routes.templates``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hub.domain.rendering import Rendered, email_size, sms_segments
from hub.domain.templates import (
    DEFAULT_KEY,
    MAX_DEFAULTS,
    MAX_DESCRIPTION,
    MAX_PARAMETER,
    MAX_PARAMETERS,
    MAX_PART,
    MAX_SUBJECT,
    MAX_VARIANTS,
    Preview,
    TemplateRecord,
)
from hub.events.common import Text

#: The channels a variant can be for (null: any channel).
TemplateChannel = Literal["email", "sms", "whatsapp", "chat", "messenger", "instagram", "telegram"]
#: A template text: Jinja2 syntax in a sandbox, at most 10,000 characters.
Part = Annotated[Text, Field(max_length=MAX_PART)]
Language = Annotated[Text, Field(min_length=1, max_length=35, examples=["lt", "pt-BR"])]
DefaultKey = Annotated[str, StringConstraints(pattern=DEFAULT_KEY.pattern)]
_WHATSAPP_NAME = r"^[a-z0-9_]{1,512}$"
_WHATSAPP_LANGUAGE = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,2}$"


class EmailPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: Annotated[Text, Field(min_length=1, max_length=MAX_SUBJECT)] = Field(
        description="Line breaks a variable brings are made spaces."
    )
    text: Part | None = Field(
        default=None, description="The plain-text body (null: the variant's `text`)."
    )
    html: Part | None = Field(
        default=None, description="The HTML body; variables in it are HTML-escaped."
    )


class WhatsAppPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=_WHATSAPP_NAME)] = Field(
        description="The name of a template the provider approved."
    )
    language: Annotated[str, Field(pattern=_WHATSAPP_LANGUAGE)] = Field(
        description="The approved template's language as the provider names it (`en_US`)."
    )
    parameters: list[Annotated[Text, Field(max_length=MAX_PARAMETER)]] = Field(
        default_factory=list,
        max_length=MAX_PARAMETERS,
        description="The approved template's parameters in order, each a template text.",
    )


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    language: Language = Field(description="BCP 47.")
    channel: TemplateChannel | None = Field(
        default=None,
        description="The channel this variant is for; null: any channel. For one language, "
        "a variant for the channel wins over one for any channel.",
    )
    text: Part | None = Field(
        default=None, description="The message on SMS, chat, Messenger, Instagram, Telegram."
    )
    email: EmailPart | None = None
    whatsapp: WhatsAppPart | None = Field(
        default=None,
        description="A provider-approved template, for messages outside WhatsApp's 24-hour "
        "window (inside it, `text` is sent).",
    )


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default_language: Language = Field(
        description="The language when the customer's has no variant (lt-LT -> lt -> this); "
        "a variant in it is required."
    )
    description: Annotated[Text, Field(max_length=MAX_DESCRIPTION)] | None = None
    defaults: dict[DefaultKey, Part] = Field(
        default_factory=dict,
        max_length=MAX_DEFAULTS,
        description="Declared default values of variables (`first_name`, `attributes.plan`, "
        "`event.data.total`), used when the customer (or event) has none.",
    )
    variants: list[Variant] = Field(
        min_length=1,
        max_length=MAX_VARIANTS,
        description="One per language and channel (or any channel).",
    )


class TemplateOut(BaseModel):
    template_id: UUID
    name: str
    version: int = Field(description="The version shown.")
    latest_version: int
    versions: list[int] = Field(description="Every version, each readable with `?version=`.")
    default_language: str
    description: str | None
    defaults: dict[str, str]
    variants: list[Variant]
    created_at: datetime
    updated_at: datetime
    saved_by: str | None = Field(description="Who saved this version (a token's name).")

    @classmethod
    def of(cls, record: TemplateRecord) -> TemplateOut:
        return cls(
            template_id=record.template_id,
            name=record.name,
            version=record.version,
            latest_version=record.latest_version,
            versions=list(record.versions),
            default_language=record.default_language,
            description=record.description,
            defaults=record.defaults,
            variants=[Variant.model_validate(v) for v in record.variants],
            created_at=record.created_at,
            updated_at=record.updated_at,
            saved_by=record.saved_by,
        )


class TemplateList(BaseModel):
    items: list[TemplateOut] = Field(description="Every template's latest version, by name.")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: UUID
    channel: TemplateChannel | None = Field(
        default=None, description="null: every channel the template has a variant for."
    )
    language: Language | None = Field(
        default=None, description="null: the customer's profile language."
    )
    event: dict[str, Any] | None = Field(
        default=None, description="An event envelope, for `{{ event.data... }}`."
    )
    version: int | None = Field(default=None, ge=1, description="null: the latest.")


class SmsOut(BaseModel):
    encoding: Literal["GSM-7", "UCS-2"]
    segments: int = Field(description="Parts it is sent in (160/153 GSM-7, 70/67 UCS-2).")
    characters: int = Field(
        description="As the encoding counts: GSM extension characters (€ [ ] { } ...) and "
        "emoji count 2."
    )


class WhatsAppOut(BaseModel):
    name: str
    language: str
    parameters: list[str]


class RenderedOut(BaseModel):
    channel: str
    language: str = Field(description="The variant's language (after the fallback).")
    text: str | None
    subject: str | None
    html: str | None
    whatsapp: WhatsAppOut | None
    sms: SmsOut | None = Field(description="SMS only.")
    email_bytes: int | None = Field(
        description="Email only: the MIME message's size (without the From/To headers)."
    )

    @classmethod
    def of(cls, rendered: Rendered) -> RenderedOut:
        sms = None
        if rendered.channel == "sms" and rendered.text is not None:
            sms = SmsOut(**sms_segments(rendered.text)._asdict())
        approved = rendered.whatsapp
        return cls(
            channel=rendered.channel,
            language=rendered.language,
            text=rendered.text,
            subject=rendered.subject,
            html=rendered.html,
            whatsapp=WhatsAppOut(
                name=approved["name"],
                language=approved["language"],
                parameters=list(approved["parameters"]),
            )
            if approved is not None
            else None,
            sms=sms,
            email_bytes=email_size(rendered) if rendered.channel == "email" else None,
        )


class PreviewOut(BaseModel):
    name: str
    version: int
    customer_id: UUID = Field(description="The customer (a merged group's root).")
    language: str | None = Field(description="The language asked for, before the fallback.")
    channels: list[RenderedOut]

    @classmethod
    def of(cls, found: Preview) -> PreviewOut:
        return cls(
            name=found.name,
            version=found.version,
            customer_id=found.customer_ids[0],
            language=found.language,
            channels=[RenderedOut.of(r) for r in found.rendered],
        )
