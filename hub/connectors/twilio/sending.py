"""Sending through Twilio's Messages API with the twilio library's async REST client: the
create-message arguments of an outbound message, and Twilio's refusals as the hub's typed
failures (a 429 or 5xx retryable, with its Retry-After)."""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TraceConfig, TraceRequestEndParams
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient  # type: ignore[import-untyped]
from twilio.rest import Client  # type: ignore[import-untyped]

from hub.connectors.base import OutboundMessage, PermanentError, RetryableError, SendResult
from hub.connectors.settings import TwilioSettings
from hub.connectors.twilio.webhooks import STATUSES
from hub.events.addresses import AddressError, normalise_address

# Twilio's exceptions do not keep the response headers, so the Retry-After of the last response
# a send received is kept here (per task: each send sees its own).
_retry_after: ContextVar[str | None] = ContextVar("twilio_retry_after", default=None)


class MessagesApi:
    """The account's Messages API: one aiohttp session, opened at the connector's start."""

    def __init__(self, settings: TwilioSettings) -> None:
        if not (settings.account_sid and settings.auth_token):
            raise PermanentError("twilio needs account_sid and auth_token")
        trace = TraceConfig()
        trace.on_request_end.append(_remember_retry_after)
        http = AsyncTwilioHttpClient(pool_connections=False)
        # The library ignores its own timeout argument; the session's timeout is what holds.
        http.session = ClientSession(
            timeout=ClientTimeout(total=settings.timeout_seconds), trace_configs=[trace]
        )
        client = Client(
            username=settings.account_sid,
            password=settings.auth_token.get_secret_value(),
            account_sid=settings.account_sid,
            http_client=http,
        )
        # The library reads TWILIO_EDGE / TWILIO_REGION from the environment and would rewrite
        # the host of api_base_url with them; the settings are the only configuration here.
        client.edge = None
        client.region = None
        client.api.base_url = settings.api_base_url.rstrip("/")
        self.http: Any = http
        self._client: Any = client

    async def close(self) -> None:
        await self.http.close()

    async def create(self, arguments: dict[str, Any]) -> SendResult:
        """Create one message; Twilio's answer as the hub's send result or typed failure."""
        _retry_after.set(None)
        try:
            created = await self._client.messages.create_async(**arguments)
        except TwilioRestException as exc:
            raise _refusal(exc.status, str(exc.msg), exc.code) from None
        except TwilioServiceException as exc:
            reason = f"{exc.title}: {exc.detail}" if exc.detail else str(exc.title)
            raise _refusal(exc.status, reason, exc.code) from None
        except (ClientError, TimeoutError, OSError) as exc:
            raise RetryableError(f"Twilio unreachable: {type(exc).__name__}: {exc}") from None
        except ValueError as exc:  # a 2xx whose body is not JSON
            raise RetryableError(f"Twilio answered with an unreadable body: {exc}") from None
        if not created.sid:
            raise RetryableError("Twilio answered without a message sid")
        status = STATUSES.get(str(created.status or "").lower(), "accepted")
        return SendResult(provider_message_id=created.sid, status=status)


def create_arguments(message: OutboundMessage, settings: TwilioSettings) -> dict[str, Any]:
    """The create-message arguments of ``message``: recipient, body, sender, callback URL."""
    try:
        recipient = normalise_address(message.address)
    except AddressError as exc:
        raise PermanentError(f"not a phone address: {exc.reason}") from None
    if recipient.kind != "phone":
        raise PermanentError(f"twilio sends SMS to phone addresses, not {recipient.kind!r}")

    arguments: dict[str, Any] = {"to": recipient.value, "body": message.text}
    if settings.messaging_service_sid:
        arguments["messaging_service_sid"] = settings.messaging_service_sid
    elif settings.from_number:
        arguments["from_"] = settings.from_number
    else:
        raise PermanentError("twilio has neither from_number nor messaging_service_sid")
    if message.status_callback_url:
        arguments["status_callback"] = message.status_callback_url
    return arguments


async def _remember_retry_after(
    session: ClientSession, context: SimpleNamespace, params: TraceRequestEndParams
) -> None:
    _retry_after.set(params.response.headers.get("Retry-After"))


def _refusal(status: int, reason: str, code: object) -> RetryableError | PermanentError:
    provider_code = str(code) if code is not None else None
    reason = reason or f"Twilio answered {status}"
    if status == 429 or status >= 500:
        return RetryableError(
            reason, provider_code=provider_code, retry_after=_seconds(_retry_after.get())
        )
    return PermanentError(reason, provider_code=provider_code)


def _seconds(retry_after: str | None) -> float | None:
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(retry_after)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
