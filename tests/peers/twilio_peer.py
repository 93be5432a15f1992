"""Twilio's Messages API on loopback: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``
with HTTP Basic auth, Twilio's validation errors and its Message resource; and Twilio's side of
its webhooks (the test account, the form fields it posts, its signature computed independently
of the twilio library) for every test that plays Twilio."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.connectors.settings import TwilioSettings
from tests.peers.http import Peer, SeenRequest

MESSAGES_PATH = "/2010-04-01/Accounts/{account_sid}/Messages.json"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")

#: The test account: its credentials, its own number, and a customer writing to it.
ACCOUNT_SID = "AC" + "5ef8732a3c49700934481addd5ce1659"
AUTH_TOKEN = "12345678901234567890123456789012"
FROM_NUMBER = "+15550001111"
CUSTOMER = "+14155552671"


def twilio_signature(
    secret: str, url: str, params: list[tuple[str, str]], digest: Any = hashlib.sha1
) -> str:
    """Twilio's algorithm: the URL, then every POST field as name + value sorted by name (and
    value), HMAC'd with the secret, base64."""
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(secret.encode(), data.encode(), digest).digest()).decode()


def incoming_params(
    body: str, sid: str, *, sender: str = CUSTOMER, account_sid: str = ACCOUNT_SID, **extra: str
) -> list[tuple[str, str]]:
    """The fields of Twilio's incoming-message webhook, as a long code in the US receives them."""
    fields = {
        "ToCountry": "US",
        "ToState": "CA",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "ToCity": "SAN FRANCISCO",
        "FromZip": "94105",
        "SmsSid": sid,
        "FromState": "CA",
        "SmsStatus": "received",
        "FromCity": "SAN FRANCISCO",
        "Body": body,
        "FromCountry": "US",
        "To": FROM_NUMBER,
        "ToZip": "94105",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
        **extra,
    }
    return list(fields.items())


def status_params(sid: str, status: str, **extra: str) -> list[tuple[str, str]]:
    fields = {
        "SmsSid": sid,
        "SmsStatus": status,
        "MessageStatus": status,
        "To": CUSTOMER,
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": FROM_NUMBER,
        "ApiVersion": "2010-04-01",
        **extra,
    }
    return list(fields.items())


def twilio_settings(base_url: str, **overrides: Any) -> TwilioSettings:
    """The hub's Twilio settings for the test account, sending to ``base_url``."""
    values: dict[str, Any] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM_NUMBER,
        "api_base_url": base_url,
        "timeout_seconds": 5,
        **overrides,
    }
    return TwilioSettings.model_validate(values)


def twilio_env(base_url: str) -> dict[str, str]:
    """The environment of a hub process sending SMS and WhatsApp to the peer at
    ``base_url`` with the test account."""
    return {
        "HUB_TWILIO__ACCOUNT_SID": ACCOUNT_SID,
        "HUB_TWILIO__AUTH_TOKEN": AUTH_TOKEN,
        "HUB_TWILIO__FROM_NUMBER": FROM_NUMBER,
        "HUB_TWILIO__API_BASE_URL": base_url,
    }


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status,
    )


def _segments(body: str) -> int:
    gsm = all(ord(c) < 128 for c in body)
    single, multi = (160, 153) if gsm else (70, 67)
    if len(body) <= single:
        return 1
    return -(-len(body) // multi)


class TwilioPeer(Peer):
    """The Messages endpoint of one account; :attr:`messages` holds what it accepted."""

    def __init__(self, account_sid: str, auth_token: str, *, own_numbers: set[str]) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.own_numbers = own_numbers
        self.messages: list[dict[str, Any]] = []
        super().__init__([("POST", MESSAGES_PATH, self._create)])

    def _authorised(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization", "") == f"Basic {expected}"

    async def _create(self, request: Request, seen: SeenRequest) -> Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        if request.path_params["account_sid"] != self.account_sid:
            return _error(
                404,
                20404,
                f"The requested resource {seen.path} was not found",
            )
        form = {k: v[0] for k, v in seen.form.items()}
        to = form.get("To", "")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        sender = form.get("From")
        service = form.get("MessagingServiceSid")
        if not sender and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if sender and sender not in self.own_numbers:
            return _error(
                400,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone "
                "number or short code for your account.",
            )
        body = form.get("Body", "")
        if not body and "MediaUrl" not in form:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )

        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(_segments(body)) if sender else "0",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": to,
            "uri": uri,
        }
        self.messages.append({**resource, "status_callback": form.get("StatusCallback")})
        return JSONResponse(resource, 201)
