"""A loopback Graph API for the Meta connector's tests: ``POST /{version}/{sender}/messages`` as
WhatsApp Cloud API, Messenger and Instagram answer it, with Graph's token check, its body
validation and its error bodies; and the test Meta app (its secrets and ids) with WhatsApp's
webhook envelope, for every test that plays Meta."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.peers.http import Peer, SeenRequest

#: The test Meta app: its webhook secrets, Graph token and version, and its senders.
APP_SECRET = "6f1c1a2e9d5b4c7f8a3e2d1c0b9a8f7e"
VERIFY_TOKEN = "hub-verify-7Yq2"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAtestaccesstoken"
VERSION = "v21.0"
WA_PHONE_ID = "106540352242922"
PAGE_ID = "104281698714936"
IG_ID = "17841405793187218"

_WHATSAPP_KEYS = frozenset(
    {
        "messaging_product",
        "recipient_type",
        "to",
        "type",
        "text",
        "template",
        "context",
        "biz_opaque_callback_data",
    }
)


def whatsapp(value: dict[str, Any]) -> dict[str, Any]:
    """The WhatsApp Business Account envelope around one ``messages`` change."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": WA_PHONE_ID},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def graph_error(
    message: str, code: int, *, status: int = 400, subcode: int | None = None
) -> JSONResponse:
    """An error as the Graph API writes it."""
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": secrets.token_urlsafe(8),
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status)


class GraphPeer(Peer):
    """The Graph API's send endpoints. Customers in :attr:`outside_window` (wa_id, PSID or
    IGSID) last wrote more than 24 hours ago: free text to them is refused as Graph refuses
    it."""

    def __init__(
        self,
        *,
        access_token: str,
        version: str,
        whatsapp_phone_number_id: str,
        page_id: str,
        instagram_account_id: str,
    ) -> None:
        self.access_token = access_token
        self.version = version
        self.whatsapp_phone_number_id = whatsapp_phone_number_id
        self.page_id = page_id
        self.instagram_account_id = instagram_account_id
        self.outside_window: set[str] = set()
        self._ids = itertools.count(1)
        super().__init__([("POST", "/{version}/{sender}/messages", self._messages)])

    async def _messages(self, request: Request, seen: SeenRequest) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return graph_error("Invalid OAuth access token.", 190, status=401)
        if request.path_params["version"] != self.version:
            return graph_error("Unknown path components", 2500)
        body = seen.json
        if not isinstance(body, dict):
            return graph_error("(#100) The request body must be a JSON object", 100)
        sender = request.path_params["sender"]
        if sender == self.whatsapp_phone_number_id:
            return self._whatsapp(body)
        if sender == self.page_id:
            return self._messaging(body, max_text=2000, needs_type=True, keys={"text", "metadata"})
        if sender == self.instagram_account_id:
            return self._messaging(body, max_text=1000, needs_type=False, keys={"text"})
        return graph_error(
            f"Unsupported post request. Object with ID '{sender}' does not exist", 100, subcode=33
        )

    def _whatsapp(self, body: dict[str, Any]) -> Response:
        unknown = set(body) - _WHATSAPP_KEYS
        if unknown:
            return graph_error(f"(#100) Param {sorted(unknown)[0]} is not valid", 100)
        if body.get("messaging_product") != "whatsapp":
            return graph_error("(#100) The parameter messaging_product is required.", 100)
        to = body.get("to")
        if not isinstance(to, str) or not to.isdigit():
            return graph_error("(#100) Invalid parameter: to", 100)
        kind = body.get("type")
        if kind == "text":
            text = body.get("text")
            if not isinstance(text, dict) or not isinstance(text.get("body"), str):
                return graph_error("(#100) The parameter text['body'] is required.", 100)
            if not 0 < len(text["body"]) <= 4096:
                return graph_error("(#100) Param text['body'] must be 1-4096 characters", 100)
            if to in self.outside_window:
                return graph_error(
                    "(#131047) Re-engagement message: More than 24 hours have passed since "
                    "the recipient last replied to the sender number.",
                    131047,
                )
        elif kind == "template":
            problem = _template_problem(body.get("template"))
            if problem:
                return graph_error(f"(#100) {problem}", 100)
        else:
            return graph_error(f"(#100) Unsupported message type {kind!r}", 100)
        wamid = f"wamid.HBgL{next(self._ids):010d}{secrets.token_hex(6).upper()}"
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            }
        )

    def _messaging(
        self, body: dict[str, Any], *, max_text: int, needs_type: bool, keys: set[str]
    ) -> Response:
        recipient = body.get("recipient")
        if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str):
            return graph_error("(#100) The parameter recipient is required", 100)
        if needs_type and body.get("messaging_type") not in {"RESPONSE", "UPDATE", "MESSAGE_TAG"}:
            return graph_error("(#100) The parameter messaging_type is required", 100)
        message = body.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("text"), str):
            return graph_error("(#100) The parameter message is required", 100)
        if set(message) - keys:
            return graph_error(f"(#100) Param message[{sorted(set(message) - keys)[0]}]", 100)
        if not 0 < len(message["text"]) <= max_text:
            return graph_error(f"(#100) Length of param message[text] must be <= {max_text}", 100)
        if recipient["id"] in self.outside_window:
            return graph_error(
                "(#10) This message is sent outside of allowed window.",
                10,
                subcode=2018278 if needs_type else 2534022,
            )
        mid = f"m_{secrets.token_urlsafe(24)}"
        return JSONResponse({"recipient_id": recipient["id"], "message_id": mid})


def _template_problem(template: Any) -> str | None:
    if not isinstance(template, dict) or not isinstance(template.get("name"), str):
        return "The parameter template['name'] is required."
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        return "The parameter template['language']['code'] is required."
    for component in template.get("components", []):
        if component.get("type") not in {"header", "body", "button"}:
            return "Invalid component type"
        for parameter in component.get("parameters", []):
            if parameter.get("type") != "text" or not isinstance(parameter.get("text"), str):
                return "Invalid parameter in component"
    return None
