"""The Graph API, Meta's send side: a client posting to ``/{version}/...`` with the app's
token (httpx), the recipient an outbound message names, and Graph's error answers as the
hub's typed failures (retryable or not, the 24-hour service window named)."""

from __future__ import annotations

from typing import Any

import httpx

from hub.connectors.base import ConnectorError, OutboundMessage, PermanentError, RetryableError
from hub.connectors.fields import optional_text
from hub.connectors.settings import MetaSettings
from hub.events import AddressError, Channel, normalise_address

#: Graph error codes worth retrying: temporary failures (1, 2) and rate limits (app, user,
#: page, Instagram/Messenger, WhatsApp throughput, spam and pair rate limits).
_RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131048, 131056})
#: WhatsApp: more than 24 hours since the customer last wrote (re-engagement message).
_WHATSAPP_WINDOW_CODE = 131047
#: Messenger (2018278) and Instagram (2534022): code 10 "sent outside of allowed window".
_WINDOW_SUBCODES = frozenset({2018278, 2534022})


class GraphApi:
    """One HTTP client for the Graph API, built at the connector's start."""

    def __init__(self, settings: MetaSettings) -> None:
        token = settings.access_token
        base = settings.graph_base_url.rstrip("/")
        self._has_token = token is not None
        self._client = httpx.AsyncClient(
            base_url=f"{base}/{settings.graph_api_version}",
            headers={"Authorization": f"Bearer {token.get_secret_value()}"} if token else {},
            timeout=settings.timeout_seconds,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, channel: Channel, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Graph's JSON answer; a failure raised as :class:`RetryableError` or
        :class:`PermanentError`."""
        if not self._has_token:
            raise PermanentError("no access_token configured")
        try:
            response = await self._client.post(path, json=body)
        except httpx.TransportError as exc:
            raise RetryableError(f"Graph API unreachable: {type(exc).__name__}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.is_success and isinstance(answer, dict):
            return answer
        raise _graph_error(channel, response, answer)


def recipient(message: OutboundMessage, kind: str) -> str:
    """The id ``message`` goes to: its address's value, when the address is a ``kind``."""
    try:
        address = normalise_address(message.address)
    except AddressError as exc:
        raise PermanentError(exc.reason) from None
    if address.kind != kind:
        raise PermanentError(f"{message.channel} needs a {kind}: address, not {address.kind}:")
    return address.value


def _graph_error(channel: Channel, response: httpx.Response, answer: Any) -> ConnectorError:
    """A Graph API error answer as the hub's typed failure."""
    status = response.status_code
    error = answer.get("error") if isinstance(answer, dict) else None
    code = subcode = None
    if isinstance(error, dict):
        code, subcode = error.get("code"), error.get("error_subcode")
        reason = optional_text(error, "message") or f"Graph API answered HTTP {status}"
        details = optional_text(error.get("error_data"), "details")
        if details:
            reason = f"{reason} ({details})"
    else:
        reason = error if isinstance(error, str) and error else f"Graph API answered HTTP {status}"
    provider_code = str(code) if isinstance(code, int) else None
    if (channel == "whatsapp" and code == _WHATSAPP_WINDOW_CODE) or (
        channel != "whatsapp" and code == 10 and subcode in _WINDOW_SUBCODES
    ):
        hint = "; only an approved template can reopen it" if channel == "whatsapp" else ""
        return PermanentError(
            f"outside the 24-hour customer service window{hint} ({reason})",
            provider_code=provider_code,
        )
    if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return RetryableError(
            reason, provider_code=provider_code or str(status), retry_after=_retry_after(response)
        )
    return PermanentError(reason, provider_code=provider_code or str(status))


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
