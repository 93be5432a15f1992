"""A trivial webhook receiver for the webhooks benchmark, in a process of its own on loopback.

``POST`` anything: answers ``204`` at once and notes when the request arrived, how long after
the event's ``recorded_at`` (when the body is a hub envelope), and its ``webhook-id``.
``GET /stats`` returns the counts and the latencies seen so far; ``POST /reset`` forgets them.
A plain ASGI function under uvicorn, so that the receiver costs as little as possible of
the figure: the benchmark's baseline is this same receiver driven by a plain client.

``python -m bench.webhook_receiver --port PORT``
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from typing import Any

import orjson

_state: dict[str, Any] = {"count": 0, "ids": set(), "latencies_ms": [], "first": None, "last": None}


def _reset() -> None:
    _state.update(count=0, ids=set(), latencies_ms=[], first=None, last=None)


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Any, status: int, body: bytes = b"") -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _body(receive)
    now = time.time()
    if scope["method"] == "GET":
        stats = {
            "count": _state["count"],
            "unique": len(_state["ids"]),
            "latencies_ms": _state["latencies_ms"],
            "first": _state["first"],
            "last": _state["last"],
        }
        await _answer(send, 200, orjson.dumps(stats))
        return
    if scope["path"] == "/reset":
        _reset()
        await _answer(send, 204)
        return
    _state["count"] += 1
    _state["first"] = _state["first"] or now
    _state["last"] = now
    for name, value in scope["headers"]:
        if name == b"webhook-id":
            _state["ids"].add(value)
    try:
        recorded = orjson.loads(body).get("recorded_at")
    except (orjson.JSONDecodeError, AttributeError):
        recorded = None
    if isinstance(recorded, str):
        _state["latencies_ms"].append((now - datetime.fromisoformat(recorded).timestamp()) * 1000)
    await _answer(send, 204)


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
