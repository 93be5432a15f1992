"""A lean HTTP/1.1 keep-alive client on asyncio streams, for load generation.

httpx costs the client more CPU per request than a small server spends answering it; on a
2-core machine that would measure the client. This one sends pre-encoded requests and parses
only the status line, ``Content-Length`` and chunked bodies: enough for the hub's JSON routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson

from tests.support.processes import HOST


class HttpError(Exception):
    pass


def encode_request(
    method: str,
    path: str,
    port: int,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


class Connection:
    """One keep-alive connection; requests on it are sequential."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = headers or {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> Connection:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)
        return self

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def send_raw(self, raw: bytes) -> tuple[int, bytes]:
        """Send an encoded request; returns (status, body).

        uvicorn closes keep-alive connections idle for 5 s: such a connection is reopened,
        and a GET the server closed on before answering is sent once more.
        """
        if self._reader is not None and self._reader.at_eof():
            await self.close()
        attempts = 2 if raw.startswith(b"GET ") else 1  # only a GET is safe to send again
        status_line = b""
        for _ in range(attempts):
            if self._writer is None:
                await self.open()
            assert self._reader is not None
            assert self._writer is not None
            self._writer.write(raw)
            reader = self._reader
            status_line = await reader.readline()
            if status_line:
                break
            await self.close()
        if not status_line:
            raise HttpError("connection closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length = -1
        chunked = False
        close = False
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lowered == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            close = True
        if close:
            await self.close()
        return status, body

    async def request(self, method: str, path: str, json_body: Any = None) -> tuple[int, bytes]:
        body = orjson.dumps(json_body) if json_body is not None else None
        return await self.request_body(method, path, body)

    async def request_body(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """A request whose JSON body is already encoded."""
        return await self.send_raw(encode_request(method, path, self.port, body, self.headers))

    async def get_json(self, path: str) -> Any:
        status, body = await self.request("GET", path)
        if status != 200:
            raise HttpError(f"GET {path}: {status} {body[:200]!r}")
        return orjson.loads(body)


def install_uvloop() -> None:
    """Use uvloop for the client's event loop when available (less client CPU)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# -- the hub's routes ---------------------------------------------------------------------------


async def post_batch(conn: Connection, items: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /v1/interactions/batch; raises unless every item was recorded."""
    status, body = await conn.request("POST", "/v1/interactions/batch", {"interactions": items})
    if status != 200:
        raise HttpError(f"batch: {status} {body[:300]!r}")
    result: dict[str, Any] = orjson.loads(body)
    if result["rejected"]:
        first = next(r for r in result["results"] if r["status"] == "rejected")
        raise HttpError(f"batch: {result['rejected']} rejected, first: {first}")
    return result


async def post_encoded_batch(
    conn: Connection, body: bytes, request_seconds: list[float]
) -> dict[str, Any]:
    """POST /v1/interactions/batch with a pre-encoded body; its request time is appended to
    ``request_seconds``. Returns the outcome; raises unless 200 (the caller checks the counts)."""
    sent = time.perf_counter()
    status, answer = await conn.request_body("POST", "/v1/interactions/batch", body)
    request_seconds.append(time.perf_counter() - sent)
    if status != 200:
        raise HttpError(f"batch: {status} {answer[:300]!r}")
    outcome: dict[str, Any] = orjson.loads(answer)
    return outcome


async def readyz(conn: Connection) -> dict[str, Any] | None:
    """/readyz's body, or None while the hub answers 503 (not ready, or busy past its probe
    timeout)."""
    status, body = await conn.request("GET", "/readyz")
    if status == 503:
        return None
    if status != 200:
        raise HttpError(f"readyz: {status} {body[:300]!r}")
    result: dict[str, Any] = orjson.loads(body)
    return result


async def wait_caught_up(conn: Connection, timeout: float, interval: float = 0.01) -> float:
    """Poll /readyz until ``lag`` is 0; returns the ``perf_counter`` time it was seen at 0."""
    deadline = time.perf_counter() + timeout
    while True:
        status = await readyz(conn)
        now = time.perf_counter()
        if status is not None and status["lag"] == 0:
            return now
        if now > deadline:
            lag = status["lag"] if status is not None else "unknown (503)"
            raise TimeoutError(f"projections still {lag} behind after {timeout}s")
        await asyncio.sleep(interval)
