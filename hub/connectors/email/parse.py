"""Raw RFC 5322 mail -> the hub's inbound contract: one interaction, or the delivery report a
bounce (an RFC 3464 DSN) carries. Shared by the SMTP listener and the IMAP poller.

:func:`parse_message` never raises for what a message contains: a message it cannot make
sense of comes back as a :class:`SetAside` carrying the whole message (acknowledged, then
kept as an encrypted dead letter to retry after a fix), since a peer would otherwise retry it
for days. Every text it takes from a message is valid Unicode without NUL: what a mail
already sent cannot be refused, so undecodable bytes become U+FFFD.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage, Message, MIMEPart
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from uuid import UUID

from pydantic import JsonValue, ValidationError

from hub.connectors.base import DeliveryReport, SetAside, WebhookOutcome
from hub.events import InboundInteraction
from hub.events.addresses import AddressError, normalise_address
from hub.events.common import EARLIEST_OCCURRED_AT, Attachment, scrub_text
from hub.events.inbound import MAX_TEXT, endpoint_of

__all__ = ["html_to_text", "parse_message", "strip_quoted"]

#: The full body kept in metadata is bounded too: an event is not a mail archive.
MAX_FULL_TEXT = 4 * MAX_TEXT
#: A Date header this far past the time of receipt is a wrong clock, not a fact.
MAX_CLOCK_SKEW = timedelta(days=1)
MAX_REFERENCES = 100
MAX_ATTACHMENTS = 100
_MAX_ID = 512

_MSG_ID = re.compile(r"<[^<>\s]+>")
_ANGLE_ADDR = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
# An RFC 2045 token: what a MIME type and subtype are made of.
_MIME_TOKEN = re.compile(r"[!#$%&'*+\-.^_`{|}~0-9A-Za-z]+")
# Permanent statuses that say the address itself cannot receive (RFC 3463): bad mailbox or
# domain (5.1.x) and a disabled mailbox (5.2.1). A 5.7.1 content or spam rejection is
# permanent for that message, not a reason to stop writing to the customer.
_ADDRESS_DEAD = re.compile(r"^5\.(1\.\d+|2\.1)$")

# Where quoted history starts in a reply (top-posting clients).
_ATTRIBUTION = re.compile(
    r"^\s*(On\s.+\swrote:|Am\s.+\sschrieb.*:|Le\s.+\sa\s+écrit\s*:|El\s.+\sescribió:)\s*$",
    re.IGNORECASE,
)
_ORIGINAL_MESSAGE = re.compile(r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht)\s*-{2,}")
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De):\*?\s", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*\*?(Sent|Date|Gesendet|Envoyé):\*?\s", re.IGNORECASE)
_OUTLOOK_RULE = re.compile(r"^\s*_{10,}\s*$")


def parse_message(raw: bytes, *, received_at: datetime) -> WebhookOutcome:
    """The interaction (or, for a bounce, the delivery report) one raw message carries.

    ``received_at`` is when the hub got it: the fallback for a missing or implausible
    ``Date``. Anything that cannot be recorded comes back in ``set_aside``.
    """
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the stdlib parser is lenient; this is a last resort
        return _set_aside(raw, f"unparseable message: {type(exc).__name__}: {exc}")
    assert isinstance(msg, EmailMessage)
    try:
        if _is_delivery_report(msg):
            return _bounce(msg, raw, received_at)
        return _interaction(msg, raw, received_at)
    except ValidationError as exc:
        return _set_aside(raw, f"message does not fit the contract: {exc.errors()[0]['msg']}")
    except Exception as exc:
        # The stdlib's header parsers raise on some malformed headers (IndexError on a lone
        # "<"); whatever else is left must not bounce the mail back to its sender for days:
        # it is kept whole as a dead letter, to retry once the parser knows better.
        return _set_aside(raw, f"parse failed: {type(exc).__name__}: {exc}")


# -- an ordinary message ---------------------------------------------------------------------


def _interaction(msg: EmailMessage, raw: bytes, received_at: datetime) -> WebhookOutcome:
    sender = _addresses(msg, "From")
    if not sender:
        return _set_aside(raw, "no From address")
    name, addr = sender[0]
    try:
        address = str(normalise_address(f"email:{addr}"))
    except AddressError as exc:
        return _set_aside(raw, f"From address {addr!r} is not an email address: {exc.reason}")

    _repair_content_types(msg)
    body_part = msg.get_body(preferencelist=("plain", "html")) or _other_text(msg)
    full_text = ""
    if body_part is not None:
        full_text = _text_of(body_part)
        if body_part.get_content_subtype() == "html":
            full_text = html_to_text(full_text)
    full_text = _clean(full_text).strip()
    text = strip_quoted(full_text) or full_text

    metadata: dict[str, JsonValue] = {
        "full_text": full_text[:MAX_FULL_TEXT],
        "to": _normalised(_addresses(msg, "To")),
        "cc": _normalised(_addresses(msg, "Cc")),
    }
    if len(text) > MAX_TEXT or len(full_text) > MAX_FULL_TEXT:
        metadata["truncated"] = True
    if _is_auto_reply(msg):
        metadata["auto_reply"] = True
    language = (_header(msg, "Content-Language") or "").split(",")[0].strip()
    if language and len(language) <= 35:
        metadata["language"] = language

    in_reply_to = _MSG_ID.findall(_header(msg, "In-Reply-To") or "")
    subject = _clean(_header(msg, "Subject") or "").strip()
    contact_name = _clean(name).strip()
    interaction = InboundInteraction(
        channel="email",
        direction="inbound",
        address=address,
        provider_message_id=_message_id(msg, raw),
        occurred_at=_occurred_at(msg, received_at),
        text=text[:MAX_TEXT],
        subject=subject[:998] or None,
        thread_ref=next((i for i in in_reply_to if len(i) <= _MAX_ID), None),
        references=_references(msg),
        contact_name=contact_name[:200] or None,
        attachments=_attachments(msg, body_part),
        metadata=metadata,
        endpoint=_mailbox(msg),
    )
    return WebhookOutcome(interactions=(interaction,))


def _message_id(msg: Message, raw: bytes) -> str:
    given = _clean(_header(msg, "Message-ID") or "").strip()
    if given and len(given) <= _MAX_ID:
        return given
    # Deterministic, so the same message delivered twice (a retry, a re-poll) dedupes.
    return f"<sha256.{hashlib.sha256(raw).hexdigest()[:40]}@hub.invalid>"


def _references(msg: Message) -> tuple[str, ...]:
    ids = [i for i in _MSG_ID.findall(_header(msg, "References") or "") if len(i) <= _MAX_ID]
    if len(ids) > MAX_REFERENCES:
        # RFC 5322 3.6.4: when trimming, keep the thread's root and the most recent ones.
        ids = ids[:1] + ids[-(MAX_REFERENCES - 1) :]
    return tuple(_clean(i) for i in ids)


def _occurred_at(msg: Message, received_at: datetime) -> datetime:
    value = _header(msg, "Date")
    if not value:
        return received_at
    try:
        when = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        return received_at
    if when.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322 3.3)
        when = when.replace(tzinfo=UTC)
    try:
        in_utc = when.astimezone(UTC)
    except (OverflowError, ValueError):
        return received_at
    if in_utc < EARLIEST_OCCURRED_AT or in_utc > received_at + MAX_CLOCK_SKEW:
        return received_at
    return when


def _attachments(msg: EmailMessage, body_part: Message | None) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for part in msg.walk():
        if part.is_multipart() or part is body_part:
            continue
        filename = part.get_filename()
        if not filename and part.get_content_disposition() != "attachment":
            continue  # an alternative rendering (the HTML of a text/plain mail), not a file
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        name = _clean(filename or "").strip()[:255] or "attachment"
        content_type = part.get_content_type()
        if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type, re.ASCII):
            content_type = "application/octet-stream"
        found.append(Attachment(name=name, content_type=content_type[:255], size=size))
        if len(found) == MAX_ATTACHMENTS:
            break
    return tuple(found)


def _is_auto_reply(msg: Message) -> bool:
    auto_submitted = (_header(msg, "Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return True
    return (_header(msg, "Precedence") or "").strip().lower() in {"auto_reply", "bulk", "junk"}


# -- a bounce --------------------------------------------------------------------------------


def _is_delivery_report(msg: Message) -> bool:
    return (
        msg.get_content_type() == "multipart/report"
        and str(msg.get_param("report-type", "")).lower() == "delivery-status"
    )


def _bounce(msg: EmailMessage, raw: bytes, received_at: datetime) -> WebhookOutcome:
    per_message: list[Message] = []
    original_id: str | None = None
    for part in msg.iter_parts():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            per_message = _status_blocks(part)
        elif kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original_id = _header(inner[0], "Message-ID") or original_id
        elif kind == "text/rfc822-headers":
            headers = HeaderParser(policy=policy.default).parsestr(_text_of(part))
            original_id = _header(headers, "Message-ID") or original_id
    if not per_message:
        return _set_aside(raw, "delivery report without a delivery-status part")
    envelope, recipients = per_message[0], per_message[1:]
    original_id = (
        original_id
        or _header(envelope, "Original-Envelope-Id")
        or _header(msg, "X-Original-Message-ID")
    )
    ids = _MSG_ID.findall(original_id or "")
    provider_message_id = ids[0] if ids else _clean(original_id or "").strip()
    if not provider_message_id:
        return _set_aside(raw, "delivery report that does not say which message it is about")

    for block in recipients:
        action = (_header(block, "Action") or "").strip().lower()
        status = (_header(block, "Status") or "").strip().split(" ")[0]
        if action == "failed":
            delivery = "failed"
        elif action == "delivered":
            delivery = "delivered"
        else:
            continue  # delayed (still being retried), relayed, expanded: nothing settled yet
        # Unfolded, the continuation lines leave runs of blanks behind.
        diagnostic = re.sub(r"\s+", " ", _clean(_header(block, "Diagnostic-Code") or "")).strip()
        report = DeliveryReport(
            channel="email",
            provider_message_id=provider_message_id[:_MAX_ID],
            message_id=_hub_message_id(provider_message_id),
            status=delivery,
            occurred_at=_occurred_at(msg, received_at),
            error_code=(status or None) if delivery == "failed" else None,
            error_message=diagnostic[:1000] or None,
            revoke_consent=delivery == "failed" and bool(_ADDRESS_DEAD.match(status)),
        )
        return WebhookOutcome(reports=(report,))
    return WebhookOutcome()


def _hub_message_id(message_id: str) -> UUID | None:
    """The hub's id of a message it sent (``<{uuid}@domain>``, see the connector's compose):
    lets the hub reconcile a send whose result it never got."""
    try:
        return UUID(message_id.strip("<>").partition("@")[0])
    except ValueError:
        return None


def _status_blocks(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status part: per-message, then per-recipient."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return [b for b in payload if isinstance(b, Message)]
    # Some MTAs send it base64 or quoted-printable: parse the decoded text ourselves.
    data = part.get_payload(decode=True)
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(payload)
    chunks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [HeaderParser(policy=policy.default).parsestr(c) for c in chunks if c.strip()]


# -- text ------------------------------------------------------------------------------------


def strip_quoted(text: str) -> str:
    """The new part of a reply: quoted lines (``>``) and the history below an attribution
    line (``On ... wrote:``, ``-----Original Message-----``, Outlook's From:/Sent: block)."""
    lines = text.split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _history_starts(lines, index):
            if kept and _OUTLOOK_RULE.match(kept[-1]):
                kept.pop()
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def _history_starts(lines: list[str], index: int) -> bool:
    line = lines[index]
    if _ORIGINAL_MESSAGE.match(line) or _ATTRIBUTION.match(line):
        return True
    # Gmail wraps a long attribution: "On Mon, ... Alice <" / "alice@example.com> wrote:".
    if (
        re.match(r"^\s*On\s", line)
        and index + 1 < len(lines)
        and _ATTRIBUTION.match(f"{line} {lines[index + 1].strip()}")
    ):
        return True
    if _OUTLOOK_FROM.match(line):
        return any(_OUTLOOK_SENT.match(following) for following in lines[index + 1 : index + 4])
    return False


class _TextExtractor(HTMLParser):
    _BLOCKS = frozenset(
        {"p", "div", "br", "tr", "li", "ul", "ol", "table", "blockquote", "hr", "pre"}
        | {f"h{n}" for n in range(1, 7)}
    )
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS and tag not in {"li", "br", "tr"}:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Readable text of an HTML body (stdlib only: paragraphs and line breaks kept)."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = (line.strip() for line in "".join(extractor.parts).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _repair_content_types(msg: EmailMessage) -> None:
    """Give every part whose Content-Type is malformed the type RFC 2045 (5.2) gives it,
    ``text/plain`` (its parameters, such as the charset, kept), so the body is found.

    The stdlib's :meth:`~email.message.Message.get_content_type` does this for a type
    without one ``/`` (``text``), but passes ``text/``, ``text/;charset=utf-8`` and
    ``text/ plain`` through as they are, which no body search matches."""
    for part in msg.walk():
        maintype, _, subtype = part.get_content_type().partition("/")
        if not (_MIME_TOKEN.fullmatch(maintype) and _MIME_TOKEN.fullmatch(subtype)):
            part.set_type("text/plain")


def _other_text(part: MIMEPart) -> MIMEPart | None:
    """The first inline text part of another subtype (``text/markdown``, ``text/enriched``):
    RFC 2046 (4.1.4) reads an unknown text subtype as plain text, which beats no body. Not
    inside attachments, nor inside an attached message (``iter_parts`` does not enter one)."""
    if part.get_content_disposition() == "attachment":
        return None
    if part.is_multipart():
        for sub in part.iter_parts():
            found = _other_text(sub)
            if found is not None:
                return found
        return None
    return part if part.get_content_maintype() == "text" else None


def _text_of(part: Message) -> str:
    data = part.get_payload(decode=True)
    if part.get_param("charset") is None and isinstance(data, bytes) and not data.isascii():
        # No charset means US-ASCII (RFC 2045), which 8-bit text cannot be: the stdlib
        # would turn every such byte into U+FFFD. Undeclared 8-bit mail is UTF-8 or else
        # some single-byte charset.
        return _decode_guessing(data)
    try:
        content: Any = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, KeyError, AttributeError):
        pass  # an unknown or lying charset: decode by hand below
    return _decode_guessing(data) if isinstance(data, bytes) else ""


def _decode_guessing(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _clean(text: str) -> str:
    # The contract refuses NUL (PostgreSQL text cannot hold it), dropped here, and lone
    # surrogates, which the stdlib leaves for undecodable bytes of raw headers
    # (surrogateescape): they become U+FFFD, since a mail already received is kept rather
    # than refused. CRLF is wire format only.
    return scrub_text(text.replace("\x00", "")).replace("\r\n", "\n").replace("\r", "\n")


# -- headers ---------------------------------------------------------------------------------


def _header(msg: Message, name: str) -> str | None:
    """A header's text, :func:`_clean`: every text field the hub takes from a header comes
    through here (or :func:`_addresses`), so none carries a NUL or a lone surrogate."""
    try:
        value = msg.get(name)
    except Exception:  # a malformed header the registry chokes on; use its raw text
        value = next((v for k, v in msg.raw_items() if k.lower() == name.lower()), None)
    return None if value is None else _clean(str(value))


def _addresses(msg: Message, name: str) -> list[tuple[str, str]]:
    try:
        values = [str(v) for v in msg.get_all(name) or []]
    except Exception:  # the registry chokes on some malformed lists ('"' alone); raw text
        values = [v for k, v in msg.raw_items() if k.lower() == name.lower()]
    pairs = []
    for display, addr in getaddresses([_clean(v) for v in values]):
        angle = _ANGLE_ADDR.search(addr) if "<" in addr else None
        if angle is not None:  # an unbalanced quote swallowed the display name: 'Ann <a@b>'
            display, addr = display or addr[: angle.start()].strip(' "'), angle.group(1)
        if "@" in addr:
            pairs.append((display, addr))
    return pairs


def _mailbox(msg: Message) -> str | None:
    """The company's mailbox the message was sent to (``Delivered-To``, else the first
    ``To``): the endpoint a first contact's acquisition source may be mapped from."""
    pairs = _addresses(msg, "Delivered-To") or _addresses(msg, "To")
    return endpoint_of("email", pairs[0][1]) if pairs else None


def _normalised(pairs: list[tuple[str, str]]) -> list[JsonValue]:
    found: list[JsonValue] = []
    for _, addr in pairs:
        try:
            found.append(str(normalise_address(f"email:{addr}")))
        except AddressError:
            continue
    return found


def _set_aside(raw: bytes, reason: str) -> WebhookOutcome:
    """The message kept whole (``original``), to be dead-lettered encrypted and retried."""
    payload: dict[str, JsonValue] = {"size": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    return WebhookOutcome(
        set_aside=(SetAside(reason=scrub_text(reason), payload=payload, original=raw),)
    )
