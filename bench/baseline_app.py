"""The baselines of single_ingest and channels: a trivial FastAPI app served by uvicorn like
``hub serve``.

It parses a body shaped like POST /v1/interactions with a similar pydantic model and answers
202 with a small JSON body, or a Twilio webhook's form and answers empty TwiML, doing nothing
else: the cost of the framework and the server alone.

    python -m bench.baseline_app --host 127.0.0.1 --port 8001
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

app = FastAPI(title="bench baseline")
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class Attachment(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=255)
    size: int = Field(ge=0)
    url: str | None = Field(default=None, max_length=2048)


class InteractionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = "api"
    direction: str
    address: str = Field(min_length=1, max_length=320)
    provider_message_id: str = Field(min_length=1, max_length=512)
    occurred_at: AwareDatetime
    text: str = Field(default="", max_length=64 * 1024)
    subject: str | None = Field(default=None, max_length=998)
    thread_ref: str | None = Field(default=None, max_length=512)
    references: list[str] = Field(default_factory=list, max_length=100)
    contact_name: str | None = Field(default=None, max_length=200)
    attachments: list[Attachment] = Field(default_factory=list, max_length=100)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)


class Accepted(BaseModel):
    message_id: uuid.UUID
    customer_id: uuid.UUID
    conversation_id: uuid.UUID
    duplicate: bool


_NIL = uuid.UUID(int=0)


@app.post("/v1/interactions", status_code=202, response_model=Accepted)
async def accept(body: InteractionBody) -> Accepted:
    return Accepted(message_id=_NIL, customer_id=_NIL, conversation_id=_NIL, duplicate=False)


@app.post("/webhooks/twilio/sms")
async def sms_webhook(request: Request) -> Response:
    """The trivial webhook: parse the form, answer Twilio's empty TwiML."""
    fields = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    if "MessageSid" not in fields:
        return Response(status_code=400)
    return Response(EMPTY_TWIML, media_type="application/xml")


_twilio: Any = None  # the hub's Twilio connector, for --verify-twilio


@app.post("/webhooks/twilio/verify")
async def sms_webhook_verified(request: Request) -> Response:
    """The webhook's own floor: the hub's Twilio connector verifies the signature and parses
    the message into an interaction (``handle_webhook``), and nothing is recorded or sent."""
    from hub.connectors.base import WebhookRequest

    body = await request.body()
    outcome = _twilio.handle_webhook(
        WebhookRequest(
            method="POST",
            hook="sms",
            url=_twilio_url,
            headers={k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]},
            query={},
            body=body,
        )
    )
    return Response(outcome.body, outcome.status, media_type=outcome.media_type)


_twilio_url = ""


@app.get("/healthz")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--verify-twilio",
        metavar="URL",
        help="serve /webhooks/twilio/verify with the hub's Twilio connector (HUB_TWILIO__* "
        "from the environment), verifying signatures made for URL",
    )
    args = parser.parse_args()
    if args.verify_twilio:
        global _twilio, _twilio_url
        from hub.config import Settings
        from hub.connectors.twilio import TwilioConnector

        _twilio, _twilio_url = TwilioConnector(Settings().twilio), args.verify_twilio
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
