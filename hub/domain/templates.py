"""Message templates: a named text per language and channel, versioned (docs/automation.md).

- :func:`template_id` is the uuid5 of the casefolded name: names are unique, case ignored, by
  the store's own uniqueness, and anyone can load a template by name in a unit of work
  (``uow.get(Template, template_id(name))``).
- :class:`Template` records ``Started`` once, then ``Saved`` for each new version (1, 2, ...)
  with the whole definition, and ``Deleted``; every version stays readable, so a message can
  always be explained by the version it used. Saving the same definition again records nothing.
- :class:`TemplateIndex`, one per hub, lists the templates by name.
- Their events are internal (not published: ``hub.domain.publishing`` publishes only what it
  names): a template is the company's text and holds no customer's data, so an erasure leaves
  it; a store export carries it like every stored event.

A definition is plain JSON (:func:`check_definition`): ``default_language`` (BCP 47),
``description``, ``defaults`` (declared default values of variables, ``{"first_name":
"there"}``, dotted keys for nested ones: ``attributes.plan``) and ``variants``, each
``{language, channel (None: any), text, email: {subject, text, html}, whatsapp: {name,
language, parameters}}``. Rendering is ``hub.domain.rendering``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import DomainError, NotFound
from hub.domain.model import Customer
from hub.domain.profile import CATALOGUE_ID, AttributeCatalogue
from hub.domain.profile_values import check_language
from hub.domain.rendering import (
    NAMESPACES,
    PROFILE_VARIABLES,
    Rendered,
    TemplateInvalid,
    UnknownVariable,
    channels_of,
    fallback_languages,
    inspect_source,
    profile_group,
    render,
    variables_for,
)
from hub.domain.unit_of_work import CommandRunner, UnitOfWork
from hub.events.common import check_text

__all__ = [
    "CHANNELS",
    "INDEX_ID",
    "MAX_PART",
    "NAME_PATTERN",
    "Preview",
    "Template",
    "TemplateCommands",
    "TemplateIndex",
    "TemplateRecord",
    "check_definition",
    "check_name",
    "render_preview",
    "require",
    "template_id",
]

_NAMESPACE = UUID("3c0e7a52-9f41-4b8e-8d2a-61f5b0c4e7d9")
#: The one template index of a hub.
INDEX_ID = uuid5(_NAMESPACE, "template-index")
#: A template's name: 1 to 64 letters, digits, ``-``, ``_`` or ``.``, first a letter or digit.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
#: The most characters of one part (a text, an HTML body, a default value).
MAX_PART = 10_000
MAX_SUBJECT = 1_000
MAX_DESCRIPTION = 500
MAX_VARIANTS = 50
MAX_DEFAULTS = 50
MAX_PARAMETERS = 20
MAX_PARAMETER = 1_000
#: A default's key: a variable, or a dotted path into one (``attributes.plan``).
DEFAULT_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}(\.[A-Za-z0-9_]{1,64}){0,7}$")
#: A provider-approved WhatsApp template's name and language (``en_US``, ``lt``).
_WHATSAPP_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_WHATSAPP_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8}){0,2}$")
#: The channels a variant can be for.
CHANNELS = ("email", "sms", "whatsapp", "chat", "messenger", "instagram", "telegram")


def template_id(name: str) -> UUID:
    """The id of the template called ``name`` (case ignored)."""
    return uuid5(_NAMESPACE, f"template:{name.casefold()}")


class Template(Aggregate):
    """A named message template and all its versions (internal events).

    ``latest_version`` is the template's version (1, 2, ...; ``version`` is the aggregate's
    own event count, as for every aggregate), ``versions`` every version's definition."""

    @staticmethod
    def create_id(name: str, **_: Any) -> UUID:
        return template_id(name)

    @event("Started")
    def __init__(self, name: str) -> None:
        self.name = name
        self.latest_version = 0
        self.versions: dict[int, dict[str, Any]] = {}
        self.saved_by: dict[int, str | None] = {}
        self.deleted = False

    @event("Saved")
    def save(self, number: int, name: str, definition: dict[str, Any], actor: str | None) -> None:
        """Version ``number`` of the template is ``definition`` (whole); a deleted template is
        back."""
        self.name = name
        self.latest_version = number
        self.versions = self.versions | {number: definition}
        self.saved_by = self.saved_by | {number: actor}
        self.deleted = False

    @event("Deleted")
    def delete(self, actor: str | None) -> None:
        self.deleted = True

    @property
    def definition(self) -> dict[str, Any]:
        """The latest version's definition."""
        return self.versions[self.latest_version]

    @property
    def default_language(self) -> str:
        return str(self.definition["default_language"])

    @property
    def variants(self) -> list[dict[str, Any]]:
        return list(self.definition["variants"])

    @property
    def defaults(self) -> dict[str, str]:
        return dict(self.definition["defaults"])


class TemplateIndex(Aggregate):
    """Every template's id and name (internal events)."""

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return INDEX_ID

    @event("Started")
    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # template id (str) -> name

    @event("Listed")
    def list_template(self, template_id: UUID, name: str) -> None:
        self.names = self.names | {str(template_id): name}

    @event("Unlisted")
    def unlist(self, template_id: UUID) -> None:
        self.names = {k: v for k, v in self.names.items() if k != str(template_id)}


@dataclass(frozen=True, slots=True)
class TemplateRecord:
    """One version of a template as readers see it."""

    template_id: UUID
    name: str
    version: int
    latest_version: int
    versions: tuple[int, ...]
    default_language: str
    description: str | None
    defaults: dict[str, str]
    variants: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    saved_by: str | None

    @property
    def definition(self) -> dict[str, Any]:
        return {
            "default_language": self.default_language,
            "description": self.description,
            "defaults": self.defaults,
            "variants": self.variants,
        }

    @classmethod
    def of(cls, template: Template, version: int | None = None) -> TemplateRecord:
        number = template.latest_version if version is None else version
        definition = template.versions[number]
        return cls(
            template_id=template.id,
            name=template.name,
            version=number,
            latest_version=template.latest_version,
            versions=tuple(sorted(template.versions)),
            default_language=definition["default_language"],
            description=definition["description"],
            defaults=dict(definition["defaults"]),
            variants=list(definition["variants"]),
            created_at=template.created_on,
            updated_at=template.modified_on,
            saved_by=template.saved_by.get(number),
        )


# -- checking a definition ------------------------------------------------------------------


def check_name(name: str) -> str:
    """A template's name as given, or :class:`TemplateInvalid` (:data:`NAME_PATTERN`)."""
    if not _NAME.fullmatch(name):
        raise TemplateInvalid(
            "a template's name has 1 to 64 letters, digits, '-', '_' or '.', "
            "beginning with a letter or digit",
            field="name",
        )
    return name


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise TemplateInvalid(f"{field}: required", field=field)
        return None
    if not isinstance(value, str):
        raise TemplateInvalid(f"{field}: text expected", field=field)
    try:
        check_text(value)
    except ValueError as exc:
        raise TemplateInvalid(f"{field}: {exc}", field=field) from None
    if len(value) > limit:
        raise TemplateInvalid(f"{field}: at most {limit} characters", field=field)
    if required and not value.strip():
        raise TemplateInvalid(f"{field}: required", field=field)
    return value


def _language(value: Any, field: str) -> str:
    try:
        checked = check_language(value)
    except DomainError as exc:
        raise TemplateInvalid(f"{field}: {exc.message}", field=field) from None
    if checked is None:
        raise TemplateInvalid(f"{field}: required", field=field)
    return checked


class _Checker:
    """Checks one definition's parts, noting what each uses."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # variable -> the first field using it
        self.attributes: dict[str, str] = {}  # attribute key -> the first field using it

    def source(self, value: Any, field: str, limit: int, *, html: bool = False) -> str | None:
        text = _text(value, field, limit)
        if text is not None:
            used = inspect_source(text, html=html, field=field)
            for name in used.names:
                self.names.setdefault(name, field)
            for key in used.attributes:
                self.attributes.setdefault(key, field)
        return text

    def variant(self, raw: Any, at: str) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise TemplateInvalid(f"{at}: an object expected", field=at)
        channel = raw.get("channel")
        if channel is not None and channel not in CHANNELS:
            raise TemplateInvalid(f"{at}.channel: one of {', '.join(CHANNELS)}", field=at)
        variant: dict[str, Any] = {
            "language": _language(raw.get("language"), f"{at}.language"),
            "channel": channel,
            "text": self.source(raw.get("text"), f"{at}.text", MAX_PART),
            "email": self.email(raw.get("email"), f"{at}.email"),
            "whatsapp": self.whatsapp(raw.get("whatsapp"), f"{at}.whatsapp"),
        }
        needs: tuple[str, ...] = ("text", "email", "whatsapp")  # any channel: any of them
        if channel is not None:
            needs = {"email": ("email",), "whatsapp": ("whatsapp", "text")}.get(channel, ("text",))
        if all(variant[part] is None for part in needs):
            wanted = " or ".join(needs)
            raise TemplateInvalid(f"{at}: a variant for {channel or 'any channel'} needs {wanted}")
        return variant

    def email(self, raw: Any, at: str) -> dict[str, Any] | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise TemplateInvalid(f"{at}: an object expected", field=at)
        if raw.get("subject") is None or not str(raw.get("subject")).strip():
            raise TemplateInvalid(f"{at}.subject: required", field=f"{at}.subject")
        email = {
            "subject": self.source(raw.get("subject"), f"{at}.subject", MAX_SUBJECT),
            "text": self.source(raw.get("text"), f"{at}.text", MAX_PART),
            "html": self.source(raw.get("html"), f"{at}.html", MAX_PART, html=True),
        }
        return email

    def whatsapp(self, raw: Any, at: str) -> dict[str, Any] | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise TemplateInvalid(f"{at}: an object expected", field=at)
        name, language = raw.get("name"), raw.get("language")
        if not isinstance(name, str) or not _WHATSAPP_NAME.fullmatch(name):
            raise TemplateInvalid(
                f"{at}.name: the approved template's name (a-z, 0-9, _)", field=f"{at}.name"
            )
        if not isinstance(language, str) or not _WHATSAPP_LANGUAGE.fullmatch(language):
            raise TemplateInvalid(
                f"{at}.language: the approved template's language (en_US, lt)",
                field=f"{at}.language",
            )
        parameters = raw.get("parameters") or []
        if not isinstance(parameters, list) or len(parameters) > MAX_PARAMETERS:
            raise TemplateInvalid(
                f"{at}.parameters: a list of at most {MAX_PARAMETERS}", field=f"{at}.parameters"
            )
        checked = [
            self.source(p, f"{at}.parameters[{i}]", MAX_PARAMETER) for i, p in enumerate(parameters)
        ]
        if any(p is None for p in checked):
            raise TemplateInvalid(f"{at}.parameters: text expected", field=f"{at}.parameters")
        return {"name": name, "language": language, "parameters": checked}


def check_definition(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition as stored, and the custom attributes it uses (key -> the field that
    uses it first: whether they are defined is the store's to say); :class:`TemplateInvalid`
    or :class:`UnknownVariable` for what the rules refuse (module docstring of
    ``hub.domain.rendering``: what is checked at save time)."""
    default_language = _language(raw.get("default_language"), "default_language")
    description = _text(raw.get("description"), "description", MAX_DESCRIPTION)
    defaults_in = raw.get("defaults") or {}
    if not isinstance(defaults_in, Mapping) or len(defaults_in) > MAX_DEFAULTS:
        raise TemplateInvalid(f"defaults: an object of at most {MAX_DEFAULTS}", field="defaults")
    defaults: dict[str, str] = {}
    for key, value in sorted(defaults_in.items()):
        if not isinstance(key, str) or not DEFAULT_KEY.fullmatch(key):
            raise TemplateInvalid(
                f"defaults: {key!r} is no variable name (letters, digits, _; dots between)",
                field="defaults",
            )
        defaults[key] = _text(value, f"defaults.{key}", MAX_PART, required=False) or ""
    variants_in = raw.get("variants")
    if not isinstance(variants_in, list) or not 1 <= len(variants_in) <= MAX_VARIANTS:
        raise TemplateInvalid(f"variants: 1 to {MAX_VARIANTS} variants", field="variants")
    checker = _Checker()
    variants = [checker.variant(v, f"variants[{i}]") for i, v in enumerate(variants_in)]
    seen: set[tuple[str, str | None]] = set()
    for i, variant in enumerate(variants):
        key = (variant["language"].casefold(), variant["channel"])
        if key in seen:
            raise TemplateInvalid(
                f"variants[{i}]: a second variant for {variant['language']} and "
                f"{variant['channel'] or 'any channel'}",
                field=f"variants[{i}]",
            )
        seen.add(key)
    chain = {c.casefold() for c in fallback_languages(None, default_language)}
    if not any(v["language"].casefold() in chain for v in variants):
        raise TemplateInvalid(
            f"variants: none in the default language {default_language}", field="variants"
        )
    declared = {key.split(".")[0] for key in defaults}
    for name, field in sorted(checker.names.items()):
        if name not in PROFILE_VARIABLES | NAMESPACES | declared:
            raise UnknownVariable(name, field)
    attributes = {
        key: field
        for key, field in checker.attributes.items()
        if f"attributes.{key}" not in defaults
    }
    definition = {
        "default_language": default_language,
        "description": description.strip() if description and description.strip() else None,
        "defaults": defaults,
        "variants": variants,
    }
    return definition, attributes


# -- commands -----------------------------------------------------------------------------------


class TemplateCommands:
    """Save, read, list and delete templates (``HubApplication.templates``)."""

    def __init__(self, runner: CommandRunner) -> None:
        self._runner = runner

    def save(
        self, name: str, definition: Mapping[str, Any], *, actor: str | None
    ) -> tuple[TemplateRecord, bool]:
        """Make ``definition`` the template's next version; the version saved and whether the
        template is new (or back after a deletion). The same definition as the latest
        records nothing and answers that version. :class:`TemplateInvalid`,
        :class:`UnknownVariable` (also for an attribute no one defined) refuse it."""
        wanted = check_name(name)
        checked, attributes = check_definition(definition)

        def command(uow: UnitOfWork) -> tuple[TemplateRecord, bool]:
            catalogue = uow.get(AttributeCatalogue, CATALOGUE_ID)
            defined = catalogue.definitions if catalogue is not None else {}
            for key, field in sorted(attributes.items()):
                if key not in defined:
                    raise UnknownVariable(f"attributes.{key}", field)
            template = uow.get(Template, template_id(wanted))
            if template is None:
                template = Template(name=wanted)
                uow.add(template)
            elif not template.deleted and template.definition == checked:
                return TemplateRecord.of(template), False
            created = template.latest_version == 0 or template.deleted
            template.save(
                number=template.latest_version + 1, name=wanted, definition=checked, actor=actor
            )
            index = _index(uow)
            if index.names.get(str(template.id)) != wanted:
                index.list_template(template_id=template.id, name=wanted)
            uow.collect(index, template)
            return TemplateRecord.of(template), created

        return self._runner.run(command)

    def get(self, name: str, version: int | None = None) -> TemplateRecord:
        """The template's latest version, or ``version``; :class:`NotFound` for a name no
        template has (or a deleted one) and a version it never had."""

        def query(uow: UnitOfWork) -> TemplateRecord:
            template = require(uow, name)
            if version is not None and version not in template.versions:
                raise NotFound(f"template {name!r} has no version {version}", version=version)
            return TemplateRecord.of(template, version)

        return self._runner.read(query)

    def all(self) -> list[TemplateRecord]:
        """Every template's latest version, by name."""

        def query(uow: UnitOfWork) -> list[TemplateRecord]:
            index = uow.get(TemplateIndex, INDEX_ID)
            if index is None:
                return []
            ids = [UUID(k) for k in index.names]
            uow.load(ids)
            found = [uow.get(Template, i) for i in ids]
            records = [TemplateRecord.of(t) for t in found if t is not None and not t.deleted]
            return sorted(records, key=lambda r: (r.name.casefold(), r.name))

        return self._runner.read(query)

    def delete(self, name: str, *, actor: str | None) -> bool:
        """Delete the template (its versions stay in the log, and a message that used one
        can still be explained); whether it was there. :class:`NotFound` for a name no
        template ever had."""

        def command(uow: UnitOfWork) -> bool:
            template = uow.get(Template, template_id(name))
            if template is None:
                raise NotFound(f"no template {name!r}", name=name)
            if template.deleted:
                return False
            index = _index(uow)
            index.unlist(template_id=template.id)
            template.delete(actor=actor)
            uow.collect(index, template)
            return True

        return self._runner.run(command)

    def preview(
        self,
        cipher: PersonalDataCipher,
        name: str,
        customer_id: UUID,
        *,
        channel: str | None = None,
        language: str | None = None,
        event: Mapping[str, Any] | None = None,
        version: int | None = None,
    ) -> Preview:
        """:func:`render_preview`, in a read."""
        return self._runner.read(
            lambda uow: render_preview(
                uow,
                cipher,
                name,
                customer_id,
                channel=channel,
                language=language,
                event=event,
                version=version,
            )
        )


def require(uow: UnitOfWork, name: str) -> Template:
    """The template called ``name`` (case ignored); :class:`NotFound` when there is none or it
    was deleted."""
    template = uow.get(Template, template_id(name))
    if template is None or template.deleted:
        raise NotFound(f"no template {name!r}", name=name)
    return template


def _index(uow: UnitOfWork) -> TemplateIndex:
    index = uow.get(TemplateIndex, INDEX_ID)
    if index is None:
        index = TemplateIndex()
        uow.add(index)
    return index


# -- preview ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    """A template rendered for one customer: on each channel asked for (or every channel the
    template serves), with the customer's merge group (root first) whose data it read."""

    name: str
    version: int
    customer_ids: tuple[UUID, ...]
    language: str | None
    rendered: tuple[Rendered, ...]


def render_preview(
    uow: UnitOfWork,
    cipher: PersonalDataCipher,
    name: str,
    customer_id: UUID,
    *,
    channel: str | None = None,
    language: str | None = None,
    event: Mapping[str, Any] | None = None,
    version: int | None = None,
) -> Preview:
    """What the template would say to the customer: in ``language``, else the customer's
    profile language (then the fallback). :class:`MissingVariable` (and the other render
    errors) as a send would meet them; :class:`NotFound` for a template, version or customer
    that is not there, :class:`CustomerErased`."""
    template = require(uow, name)
    if version is not None and version not in template.versions:
        raise NotFound(f"template {name!r} has no version {version}", version=version)
    customer = uow.require(Customer, customer_id, "customer")
    variables = variables_for(uow, cipher, customer, event)
    group = tuple(c.id for c in profile_group(uow, customer))
    wanted = language or variables.get("language")
    number = template.latest_version if version is None else version
    channels = [channel] if channel else channels_of(template.versions[number])
    rendered = tuple(render(template, c, wanted, variables, number) for c in channels)
    return Preview(template.name, number, group, wanted, rendered)
