"""Message templates rendered for one customer and channel in Jinja2's sandbox, the variables a
customer's profile gives them, and what a rendered message costs (SMS segments, email bytes).

What is checked when (docs/automation.md, "Templates"):

- **at save time** (:func:`inspect_source`, called by ``hub.domain.templates``): the syntax,
  the filters (only :data:`FILTERS`), no name starting with ``_``, and every variable: a
  profile variable (:data:`PROFILE_VARIABLES`), ``attributes.<key>`` of a defined attribute,
  ``event.<...>`` (any path: an event's shape is only known when it happens), or one declared
  in the template's ``defaults``;
- **at send time** (:func:`render`): whether each variable used has a value for this
  customer (or event), else its declared default, else :class:`MissingVariable`; the size of
  what comes out; errors of the template's own arithmetic (:class:`TemplateRenderFailed`).

The sandbox goes further than Jinja2's: no attribute or method of a Python object is reachable
(``x.y`` only looks ``y`` up in a mapping of variables), no global (``range``, ``lipsum``...),
a short list of filters, and ``*``, ``**`` and ``%`` bounded, so a template can neither escape
nor make the process build a gigabyte string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from functools import lru_cache, partial
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2 import Template as JinjaTemplate
from jinja2.exceptions import TemplateRuntimeError, UndefinedError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from hub.domain.crypto import PersonalDataCipher
from hub.domain.errors import CustomerErased, DomainError, MissingVariable, NotFound
from hub.domain.model import Customer
from hub.domain.unit_of_work import UnitOfWork

__all__ = [
    "FILTERS",
    "MAX_OUTPUT",
    "PROFILE_VARIABLES",
    "MissingVariable",
    "NoVariant",
    "Rendered",
    "SmsSegments",
    "TemplateInvalid",
    "TemplateRenderFailed",
    "UnknownVariable",
    "Used",
    "Versioned",
    "channels_of",
    "choose_variant",
    "email_size",
    "fallback_languages",
    "inspect_source",
    "profile_group",
    "render",
    "render_definition",
    "sms_segments",
    "variables_for",
]

#: Variables every customer may have (a value missing: its default, else not sent).
PROFILE_VARIABLES = frozenset(
    {
        "customer_id",
        "display_name",
        "first_name",
        "last_name",
        "birthday",
        "language",
        "time_zone",
        "company",
    }
)
#: ``attributes.<key>`` (custom attributes) and ``event.<...>`` (the triggering event).
NAMESPACES = frozenset({"attributes", "event"})
#: The most characters one rendered part may have (a loop cannot build more).
MAX_OUTPUT = 100_000
#: Channels whose message is the variant's plain ``text``.
_TEXT_CHANNELS = frozenset({"sms", "chat", "messenger", "instagram", "telegram", "voice", "api"})
#: A merge group deeper than this is a bug, not data.
_MAX_CHAIN = 64
_MAX_GROUP = 10_000


class TemplateInvalid(DomainError):
    """A template the hub will not save: broken syntax, an unknown filter, a name starting
    with ``_``, a variant without what its channel needs...; ``details.field`` says where."""

    code = "template_invalid"
    status = 422


class UnknownVariable(DomainError):
    """The template uses a variable that is neither known nor declared in its defaults."""

    code = "template_variable_unknown"
    status = 422

    def __init__(self, variable: str, field: str) -> None:
        super().__init__(
            f"{field}: {{{{ {variable} }}}} is no profile variable, no defined attribute, "
            "no event field and not declared in defaults",
            variable=variable,
            field=field,
        )
        self.variable = variable


class NoVariant(DomainError):
    """No variant of the template, in any language of the fallback, serves the channel."""

    code = "template_no_variant"
    status = 422


class TemplateRenderFailed(DomainError):
    """The template failed on these values (arithmetic on text, a division by zero, output
    beyond :data:`MAX_OUTPUT`); nothing is sent."""

    code = "template_render_failed"
    status = 422


# -- the sandbox ------------------------------------------------------------------------------


class _Vars(dict[str, Any]):
    """A mapping of variables that knows its dotted path, for the name a missing one has."""

    __slots__ = ("path",)

    def __init__(self, path: str, items: Mapping[str, Any]) -> None:
        super().__init__((str(k), _wrap(_join(path, str(k)), v)) for k, v in items.items())
        self.path = path


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _wrap(path: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return _Vars(path, value)
    if isinstance(value, list | tuple):
        return [_wrap(f"{path}[{i}]", v) for i, v in enumerate(value)]
    return value


class _Missing(StrictUndefined):
    """Any use of a variable without a value is :class:`MissingVariable` naming it (``is
    defined`` and ``| default(...)`` still work, as with Jinja2's StrictUndefined)."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: str | None = None,
        exc: type[TemplateRuntimeError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, exc)
        if exc is UndefinedError:  # (the sandbox's unsafe access keeps its SecurityError)
            self._undefined_exception = partial(_missing_variable, name or "?")  # type: ignore[assignment]


def _missing_variable(name: str, _message: str | None = None) -> MissingVariable:
    return MissingVariable(name)


def _too_large() -> TemplateRenderFailed:
    return TemplateRenderFailed(f"the template makes more than {MAX_OUTPUT} characters")


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, narrowed: variables are looked up, never Python attributes."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, LoopContext):  # loop.index, loop.first...
            return super().getattr(obj, attribute)
        return self._lookup(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, list | tuple | str) and isinstance(argument, int | slice):
            try:
                return obj[argument]
            except IndexError:
                return self.undefined(obj=obj, name=str(argument))
        return self._lookup(obj, argument)

    def _lookup(self, obj: Any, key: Any) -> Any:
        if isinstance(obj, _Vars) and isinstance(key, str):
            if obj.get(key) is not None:  # None: no value, as if absent
                return obj[key]
            return self.undefined(name=_join(obj.path, key))
        return self.undefined(obj=obj, name=str(key))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_OUTPUT:
                    raise _too_large()
        elif operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise TemplateRenderFailed("an exponent above 64")
        elif operator == "%" and isinstance(left, str):
            raise TemplateRenderFailed("% formatting of text is not supported; use filters")
        return super().call_binop(context, operator, left, right)


def _replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
    text, old, new = str(value), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * max(0, len(new) - len(old)) > MAX_OUTPUT:
        raise _too_large()
    return text.replace(old, new, -1 if count is None else count)


#: The filters a template may use (Jinja2's, except those that make output of any size from
#: a number: center, indent, format, batch, slice...; ``safe``: variables are always escaped).
FILTERS = frozenset(
    {
        "abs", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first",
        "float", "int", "join", "last", "length", "list", "lower", "max", "min", "replace",
        "reverse", "round", "sort", "string", "striptags", "sum", "title", "trim",
        "truncate", "unique", "upper", "urlencode", "wordcount",
    }
)  # fmt: skip


@lru_cache(maxsize=2)
def _environment(html: bool) -> _Sandbox:
    env = _Sandbox(
        autoescape=html, undefined=_Missing, keep_trailing_newline=True, auto_reload=False
    )
    env.filters = {name: f for name, f in env.filters.items() if name in FILTERS}
    env.filters["replace"] = _replace
    env.globals.clear()
    return env


@lru_cache(maxsize=1024)
def _compiled(source: str, html: bool) -> JinjaTemplate:
    return _environment(html).from_string(source)


# -- save time ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Used:
    """What one template text uses: its top-level variables, and ``attributes.<key>`` keys."""

    names: frozenset[str]
    attributes: frozenset[str]


def _key_of(node: nodes.Node) -> Any:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return node.arg.value
    return None


def inspect_source(source: str, *, html: bool, field: str) -> Used:
    """What ``source`` uses, or :class:`TemplateInvalid` (``field`` names it) when it does not
    compile in the sandbox or names something starting with ``_``."""
    env = _environment(html)
    try:
        tree = env.parse(source)
        env.compile(tree)
    except TemplateSyntaxError as exc:
        raise TemplateInvalid(
            f"{field}: line {exc.lineno}: {exc.message}", field=field, line=exc.lineno
        ) from None
    attributes = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        key = _key_of(node)
        if isinstance(key, str) and key.startswith("_"):
            raise TemplateInvalid(
                f"{field}: {key!r}: names starting with _ are not allowed", field=field
            )
        inner = getattr(node, "node", None)
        if isinstance(inner, nodes.Name) and inner.name == "attributes" and isinstance(key, str):
            attributes.add(key)
    for name in tree.find_all(nodes.Name):
        if name.name.startswith("_"):
            raise TemplateInvalid(
                f"{field}: {name.name!r}: names starting with _ are not allowed", field=field
            )
    names = frozenset(meta.find_undeclared_variables(tree))
    if "attributes" not in names:
        attributes.clear()  # a local of the template's own, not the customer's
    return Used(names, frozenset(attributes))


# -- send time ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rendered:
    """A template rendered for one channel: the ``version`` and ``language`` used, the
    ``text`` (SMS, chat...; email: the plain part), an email's ``subject`` and ``html``, and
    WhatsApp's approved template ``{name, language, parameters: tuple[str, ...]}``."""

    version: int
    language: str
    channel: str
    text: str | None = None
    subject: str | None = None
    html: str | None = None
    whatsapp: Mapping[str, Any] | None = None


def fallback_languages(language: str | None, default: str) -> list[str]:
    """The languages to look for, in order: ``lt-LT`` -> ``lt`` -> the default's own chain
    (each as given, duplicates dropped, case ignored; a singleton subtag goes with the one
    after it, as in RFC 4647 lookup)."""
    chain: list[str] = []
    for tag in (language, default):
        parts = (tag or "").replace("_", "-").split("-")
        while parts and parts[0]:
            candidate = "-".join(parts)
            if candidate.casefold() not in (c.casefold() for c in chain):
                chain.append(candidate)
            parts = parts[:-1]
            if len(parts) > 1 and len(parts[-1]) == 1:
                parts = parts[:-1]
    return chain


def _serves(variant: Mapping[str, Any], channel: str) -> bool:
    if channel == "email":
        return variant.get("email") is not None
    if channel == "whatsapp":
        return variant.get("whatsapp") is not None or variant.get("text") is not None
    return variant.get("text") is not None


def _approved(variant: Mapping[str, Any], _: str) -> bool:
    return variant.get("whatsapp") is not None


def choose_variant(
    definition: Mapping[str, Any], channel: str, language: str | None
) -> dict[str, Any]:
    """The variant for ``channel`` in the first language of :func:`fallback_languages` that
    has one serving it, a variant for that channel before one for any channel;
    :class:`NoVariant` when none does. For WhatsApp, a variant with an approved template
    first (business-initiated messages need one), in the nearest language that has one;
    then text."""
    variants: list[dict[str, Any]] = definition["variants"]
    chain = fallback_languages(language, definition["default_language"])
    for serves in (_approved, _serves) if channel == "whatsapp" else (_serves,):
        for tag in chain:
            same = [v for v in variants if v["language"].casefold() == tag.casefold()]
            for wanted in (channel, None):
                for variant in same:
                    if variant["channel"] == wanted and serves(variant, channel):
                        return variant
    raise NoVariant(
        f"no variant of this template serves {channel} (in {language or 'any language'} "
        f"or {definition['default_language']})",
        channel=channel,
    )


def _run(source: str | None, html: bool, context: Mapping[str, Any]) -> str | None:
    if source is None:
        return None
    try:
        out, size = [], 0
        for chunk in _compiled(source, html).generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise _too_large()
            out.append(chunk)
        return "".join(out)
    except DomainError:
        raise
    except Exception as exc:  # the template's own error on these values, never the hub's
        raise TemplateRenderFailed(f"the template failed: {exc}") from None


def _context(defaults: Mapping[str, str], variables: Mapping[str, Any]) -> _Vars:
    """The variables given (as JSON has them), a declared default where one has no value
    (``a.b`` keys nest)."""
    merged: dict[str, Any] = json.loads(json.dumps(dict(variables), default=str))
    for key, value in defaults.items():
        _set_default(merged, key.split("."), value)
    return _Vars("", merged)


def _set_default(holder: dict[str, Any], path: list[str], value: str) -> None:
    *parents, last = path
    for part in parents:
        if holder.get(part) is None:
            holder[part] = {}
        inner = holder[part]
        if not isinstance(inner, dict):
            return  # a value stands where the default would nest: the value wins
        holder = inner
    if holder.get(last) is None:
        holder[last] = value


class Versioned(Protocol):
    """What :func:`render` reads of a template (``hub.domain.templates.Template``, which
    imports this module: hence no import of it here)."""

    name: str
    latest_version: int
    versions: dict[int, dict[str, Any]]


def render(
    template: Versioned,
    channel: str,
    language: str | None,
    variables: Mapping[str, Any],
    version: int | None = None,
) -> Rendered:
    """``template`` (its latest version, or ``version``) for ``channel`` in ``language`` (or
    the nearest of :func:`fallback_languages`) with ``variables`` (:func:`variables_for`).
    Raises :class:`MissingVariable`, :class:`NoVariant`, :class:`TemplateRenderFailed`, and
    :class:`NotFound` for a version the template never had. A deleted template still renders
    (what a message sent before the deletion said can be shown); whether to send is the
    caller's question."""
    number = template.latest_version if version is None else version
    definition = template.versions.get(number)
    if definition is None:
        raise NotFound(f"template {template.name!r} has no version {number}", version=number)
    return render_definition(definition, number, channel, language, variables)


def render_definition(
    definition: Mapping[str, Any],
    version: int,
    channel: str,
    language: str | None,
    variables: Mapping[str, Any],
) -> Rendered:
    """:func:`render` of a definition (``hub.domain.templates`` shape) as version ``version``."""
    variant = choose_variant(definition, channel, language)
    context = _context(definition.get("defaults") or {}, variables)
    text = _run(variant.get("text"), False, context)
    subject = html = None
    whatsapp: dict[str, Any] | None = None
    if channel == "email":
        email = variant["email"]
        raw_subject = _run(email["subject"], False, context) or ""
        subject = " ".join(raw_subject.split())  # a header: no line breaks, whatever the data
        text = _run(email.get("text"), False, context) or text
        html = _run(email.get("html"), True, context)
    elif channel == "whatsapp" and variant.get("whatsapp") is not None:
        approved = variant["whatsapp"]
        whatsapp = {
            "name": approved["name"],
            "language": approved["language"],
            "parameters": tuple(_run(p, False, context) or "" for p in approved["parameters"]),
        }
    return Rendered(
        version=version,
        language=variant["language"],
        channel=channel,
        text=text,
        subject=subject,
        html=html,
        whatsapp=whatsapp,
    )


def channels_of(definition: Mapping[str, Any]) -> list[str]:
    """The channels a definition has something for: SMS, email, WhatsApp when any variant
    serves them, then every other channel a variant names."""
    variants: list[dict[str, Any]] = definition["variants"]
    found = [c for c in ("sms", "email", "whatsapp") if any(_serves(v, c) for v in variants)]
    named = sorted({v["channel"] for v in variants if v["channel"] is not None} - set(found))
    return found + named


# -- the variables of a customer ---------------------------------------------------------------


def profile_group(uow: UnitOfWork, customer: Customer) -> list[Customer]:
    """The merge group ``customer`` belongs to, its root first, then the customers merged
    into it in merge order (the fold ``hub.domain.profile`` shows)."""
    root = customer
    for _ in range(_MAX_CHAIN):
        if root.merged_into is None:
            break
        root = uow.require(Customer, root.merged_into, "customer")
    group, seen, index = [root], {root.id}, 0
    while index < len(group) and len(group) < _MAX_GROUP:
        uow.load(group[index].absorbed)
        for member_id in group[index].absorbed:
            member = uow.get(Customer, member_id)
            if member is not None and member.id not in seen:
                seen.add(member.id)
                group.append(member)
        index += 1
    return group


def variables_for(
    uow: UnitOfWork,
    cipher: PersonalDataCipher,
    customer: Customer | UUID,
    event: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A customer's template variables from their profile, decrypted, a merged group folded
    as the profile shows it (the root's value where set, else the first member's):
    ``customer_id`` (the root's), ``display_name``, ``first_name`` (its first word),
    ``last_name`` (the rest), ``birthday``, ``language``, ``time_zone``, ``company``,
    ``attributes`` ({key: value}), and ``event`` (the triggering envelope's dict) when given.
    A value not set is absent (so a template's default, or :class:`MissingVariable`, applies).
    :class:`CustomerErased` for an erased customer."""
    found = customer if isinstance(customer, Customer) else None
    if found is None:
        assert isinstance(customer, UUID)
        found = uow.require(Customer, customer, "customer")
    group = profile_group(uow, found)
    if any(cipher.is_erased(c.id) for c in (group[0], found)):
        raise CustomerErased("this customer was erased", customer_id=str(found.id))
    fields: dict[str, str] = {}
    attributes: dict[str, Any] = {}
    for member in group:
        own = {"display_name": member.display_name, **member.profile}
        for name, token in own.items():
            value = cipher.decrypt(member.id, token) if token else None
            if value and name not in fields:
                fields[name] = value
        for key, token in member.attributes.items():
            text = cipher.decrypt(member.id, token) if token else None
            if text is not None and key not in attributes:
                attributes[key] = json.loads(text)
    variables: dict[str, Any] = {"customer_id": str(group[0].id), **fields}
    words = fields.get("display_name", "").split()
    if words:
        variables["first_name"] = words[0]
    if len(words) > 1:
        variables["last_name"] = " ".join(words[1:])
    variables["attributes"] = attributes
    if event is not None:
        variables["event"] = dict(event)
    return variables


# -- what a message costs ------------------------------------------------------------------------

#: GSM 03.38: the basic table (ESC left out) and the extension table (two septets each).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")


class SmsSegments(NamedTuple):
    """``encoding`` GSM-7 or UCS-2; ``segments`` the parts the message is sent in;
    ``characters`` counted as the encoding does (septets: an extension-table character
    counts 2; UTF-16 units: an emoji counts 2)."""

    encoding: str
    segments: int
    characters: int


def sms_segments(text: str) -> SmsSegments:
    """How ``text`` goes out by SMS: GSM-7 when every character is in GSM 03.38 (160 in
    one part, 153 per part when concatenated), else UCS-2 (70, 67); a character never split
    between two parts (an escape pair, a surrogate pair)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        widths = [2 if c in GSM_EXTENSION else 1 for c in text]
        encoding, single, part = "GSM-7", 160, 153
    else:
        widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
        encoding, single, part = "UCS-2", 70, 67
    total = sum(widths)
    if total <= single:
        return SmsSegments(encoding, 1, total)
    segments, used = 1, 0
    for width in widths:
        if used + width > part:
            segments, used = segments + 1, 0
        used += width
    return SmsSegments(encoding, segments, total)


def email_size(rendered: Rendered) -> int:
    """The bytes of ``rendered`` as a MIME message (subject, the plain text and the HTML as
    alternatives), without the From/To headers a connector adds."""
    message = EmailMessage()
    message["Subject"] = rendered.subject or ""
    if rendered.text is not None:
        message.set_content(rendered.text)
        if rendered.html is not None:
            message.add_alternative(rendered.html, subtype="html")
    else:
        message.set_content(rendered.html or "", subtype="html")
    return len(bytes(message))
