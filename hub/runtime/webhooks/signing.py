"""Webhook secrets and signatures, as the Standard Webhooks specification has them: a secret is
``whsec_`` + base64 of random bytes; a delivery carries ``webhook-id``, ``webhook-timestamp``
and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of id.timestamp.body>``, one per valid
secret, space-separated), made with the specification's reference library.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import datetime

from standardwebhooks import Webhook

__all__ = ["USER_AGENT", "delivery_headers", "new_secret"]

USER_AGENT = "interaction-hub-webhooks/1"
_SECRET_BYTES = 24


def new_secret() -> str:
    """A new endpoint secret (shown once, at creation or rotation)."""
    return "whsec_" + base64.b64encode(os.urandom(_SECRET_BYTES)).decode()


def delivery_headers(
    message_id: str, at: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The headers of one attempt: signed with every secret given (the current one first,
    the previous one during a rotation's grace)."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
