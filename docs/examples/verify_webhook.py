"""A webhook receiver for Interaction Hub: it verifies every delivery with the Standard Webhooks
reference library and handles each event once (docs/consuming.md).

    pip install standardwebhooks
    WEBHOOK_SECRET=whsec_... python verify_webhook.py 8000

The standard library's HTTP server keeps the example short; in a web framework, pass the raw
request body (bytes, before any JSON parsing) and the headers to ``verify`` the same way.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

# The endpoint's secret, as POST /v1/webhooks or rotate-secret showed it (whsec_...).
WEBHOOK = Webhook(os.environ["WEBHOOK_SECRET"])
# Delivery is at-least-once: remember the ids handled (in production: a unique key on the
# event id in the same database transaction as the handling).
HANDLED: set[str] = set()


def verify(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The event if the hub sent exactly this body (signature over id, timestamp and body;
    timestamp within 5 minutes); raises ``WebhookVerificationError`` otherwise."""
    event: dict[str, Any] = WEBHOOK.verify(body, headers)
    return event


def handle(event: dict[str, Any]) -> None:
    """Your code. Events of one customer arrive in order, the next only after this one was
    answered with a 2xx; keep it quick (queue slow work) so the hub's timeout is not hit."""
    print(event["type"], event["id"], flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        try:
            event = verify(body, dict(self.headers.items()))
        except WebhookVerificationError:
            self.send_response(401)  # not from the hub, or the secret is wrong: not handled
            self.end_headers()
            return
        if event["id"] not in HANDLED:  # the same event again (a retry, a replay): done already
            handle(event)
            HANDLED.add(event["id"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    server = HTTPServer(("127.0.0.1", port), Receiver)  # one request at a time
    print(json.dumps({"listening": server.server_port}), flush=True)
    server.serve_forever()
