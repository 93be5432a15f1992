"""Sends one webhook request safely: the name resolved once and the address checked
(``hub.runtime.webhooks.guard``), the connection made to that address with the name kept in
the ``Host`` header and in TLS (SNI, certificate check), redirects not followed, proxies from
the environment ignored, a connect timeout and a total one, and the answer's body read only
up to a cap.

An HTTP answer of any status is an :class:`Answer`; no answer at all is a
:class:`SendFailed` carrying the reason (the deliverer retries both kinds alike).
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from yarl import URL

from hub.config import WebhookSettings
from hub.runtime.webhooks.guard import check_url, refusal, resolve

__all__ = [
    "EXCERPT_CHARS",
    "AddressRefused",
    "Answer",
    "ConnectionFailed",
    "SendFailed",
    "SendTimeout",
    "Sender",
    "excerpt",
]

#: Characters of an answer's body kept in the attempt log.
EXCERPT_CHARS = 256
#: Clients (connection pools) kept, one per endpoint host; the oldest goes beyond this.
_MAX_CLIENTS = 256


class SendFailed(Exception):
    """The attempt got no HTTP answer; ``reason`` says why (no payload in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AddressRefused(SendFailed):
    """The URL's host is, or resolves to, an address webhooks may not go to."""


class SendTimeout(SendFailed):
    """No connection, or no complete answer, in time."""


class ConnectionFailed(SendFailed):
    """The name did not resolve, the connection failed or broke, TLS did not verify."""


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered: the status, its ``Retry-After`` as given, the first
    characters of the body (control characters removed) and the time taken."""

    status_code: int
    retry_after: str | None
    excerpt: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def excerpt(body: bytes) -> str:
    """The first characters of a body for the log, without control characters."""
    text = body.decode("utf-8", errors="replace")
    kept = (" " if ch in "\t\r\n" else ch for ch in text)
    return "".join(ch for ch in kept if unicodedata.category(ch)[0] != "C")[:EXCERPT_CHARS]


class Sender:
    """Sends webhook requests; one connection pool per endpoint host, closed by
    :meth:`aclose` (or ``async with``).

    The client is aiohttp's: a delivery is mostly the HTTP client's work on the event loop,
    and aiohttp's costs several times less CPU per request than httpx's (``bench``, row
    ``webhooks``; docs/performance.md)."""

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings
        self._clients: dict[tuple[str, str, int], aiohttp.ClientSession] = {}

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()

    def _client(self, key: tuple[str, str, int]) -> aiohttp.ClientSession:
        # One pool per host: connections go to checked addresses, and a pool keyed by
        # address alone could carry one name's request over a connection made for another.
        client = self._clients.get(key)
        if client is None:
            if len(self._clients) >= _MAX_CLIENTS:
                oldest = next(iter(self._clients))
                old = self._clients.pop(oldest)
                asyncio.get_running_loop().create_task(old.close())
            s = self._settings
            client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=s.max_in_flight),
                timeout=aiohttp.ClientTimeout(
                    total=s.total_timeout_seconds, sock_connect=s.connect_timeout_seconds
                ),
                trust_env=False,  # a proxy from the environment would connect by name
                auto_decompress=False,  # the cap counts the bytes as they come
                cookie_jar=aiohttp.DummyCookieJar(),  # an endpoint's cookies are not kept
                skip_auto_headers=("User-Agent",),
            )
            self._clients[key] = client
        return client

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """POST ``body`` to ``url``; raises :class:`SendFailed` when there is no answer."""
        try:
            scheme, host, port = check_url(url)
        except ValueError as exc:
            raise AddressRefused(str(exc)) from None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._settings.total_timeout_seconds):
                return await self._send(url, scheme, host, port, body, headers, started)
        except TimeoutError:
            seconds = self._settings.total_timeout_seconds
            raise SendTimeout(f"no complete answer within {seconds:g}s") from None
        except aiohttp.ClientError as exc:
            raise ConnectionFailed(f"{type(exc).__name__}: {_short(exc)}") from None

    async def _send(
        self,
        url: str,
        scheme: str,
        host: str,
        port: int,
        body: bytes,
        headers: Mapping[str, str],
        started: float,
    ) -> Answer:
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise ConnectionFailed(f"{host} does not resolve: {_short(exc)}") from None
        if not addresses:
            raise ConnectionFailed(f"{host} does not resolve")
        if not self._settings.allow_private_networks:
            for address in addresses:
                reason = refusal(address)
                if reason is not None:
                    raise AddressRefused(f"{host}: {reason}")
        target = URL(url)
        sent_headers = {
            **headers,
            "Host": target.raw_authority,  # the name, for the server's routing
            "Accept-Encoding": "identity",
        }
        client = self._client((scheme, host, port))
        cap = self._settings.response_cap_bytes
        for index, address in enumerate(addresses):  # each checked; the next if refused
            try:
                async with client.post(
                    target.with_host(str(address)),
                    data=body,
                    headers=sent_headers,
                    allow_redirects=False,
                    # TLS: the name in SNI, and the certificate checked against it
                    server_hostname=host if scheme == "https" else None,
                ) as response:
                    read = bytearray()
                    while cap and len(read) < cap:
                        chunk = await response.content.read(cap - len(read))
                        if not chunk:
                            break
                        read += chunk
                    return Answer(
                        status_code=response.status,
                        retry_after=response.headers.get("Retry-After"),
                        excerpt=excerpt(bytes(read[:cap])),
                        latency_ms=round((time.monotonic() - started) * 1000, 3),
                    )
            except aiohttp.ClientConnectorError:
                if index == len(addresses) - 1:
                    raise
        raise ConnectionFailed(f"{host}: no address to connect to")


def _short(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__)[:200]
