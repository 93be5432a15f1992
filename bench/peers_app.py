"""The providers the channel benchmarks send to, in one process of their own on loopback:
Twilio's Messages API, the Graph API's messages endpoints, Telegram's ``sendMessage`` (HTTP,
uvicorn) and an SMTP sink (aiosmtpd). Each answers as the provider does, minimally, and
counts what it received (``GET /count``), so the benchmark knows when everything arrived.

``python -m bench.peers_app --port HTTP_PORT --smtp-port SMTP_PORT``
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
received: Counter[str] = Counter()
_ids = itertools.count(1)


@app.post("/2010-04-01/Accounts/{account_sid}/Messages.json", status_code=201)
async def twilio_message(account_sid: str, request: Request) -> dict[str, Any]:
    form = await request.body()  # parsed enough: the connector's request is what is measured
    received["twilio"] += 1
    return {
        "sid": f"SM{next(_ids):032x}",
        "account_sid": account_sid,
        "status": "queued",
        "num_segments": "1",
        "body_bytes": len(form),
    }


@app.post("/{version}/{sender}/messages")
async def graph_message(version: str, sender: str, request: Request) -> dict[str, Any]:
    body = await request.json()
    received["graph"] += 1
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
        "messages": [{"id": f"wamid.{next(_ids):020d}"}],
    }


@app.post("/{bot}/sendMessage")
async def telegram_message(bot: str, request: Request) -> JSONResponse:
    body = await request.json()
    received["telegram"] += 1
    result = {"message_id": next(_ids), "chat": {"id": body["chat_id"]}, "date": 0}
    return JSONResponse({"ok": True, "result": result})


@app.get("/count")
def count() -> dict[str, int]:
    return dict(received)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


class _Sink:
    """Accepts every message (the trivial SMTP peer)."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received["smtp"] += 1
        return "250 2.0.0 Ok: queued"


async def _serve(port: int, smtp_port: int) -> None:
    import uvicorn

    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(
        lambda: SMTP(_Sink(), hostname="peer.example.com"), "127.0.0.1", smtp_port
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    try:
        await server.serve()
    finally:
        smtp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.smtp_port))


if __name__ == "__main__":
    main()
