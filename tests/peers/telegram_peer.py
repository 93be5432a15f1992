"""A loopback Telegram Bot API for the Telegram connector's tests: ``POST /bot<token>/sendMessage``
with the Bot API's token check, validation and ``{"ok": false, ...}`` error bodies."""

from __future__ import annotations

import itertools
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.peers.http import Peer, SeenRequest


def bot_api_error(status: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status)


class BotApiPeer(Peer):
    """``sendMessage`` of one bot. Users in :attr:`blocked` have blocked the bot."""

    def __init__(self, *, token: str) -> None:
        self.token = token
        self.blocked: set[int] = set()
        self._ids = itertools.count(1000)
        super().__init__([("POST", "/bot{token}/sendMessage", self._send_message)])

    async def _send_message(self, request: Request, seen: SeenRequest) -> Response:
        if request.path_params["token"] != self.token:
            return bot_api_error(401, "Unauthorized")
        body = seen.json
        if not isinstance(body, dict):
            return bot_api_error(400, "Bad Request: message text is empty")
        chat_id = body.get("chat_id")
        if isinstance(chat_id, bool) or not isinstance(chat_id, int | str):
            return bot_api_error(400, "Bad Request: chat not found")
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return bot_api_error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return bot_api_error(400, "Bad Request: message is too long")
        reply = body.get("reply_parameters")
        if reply is not None and (
            not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int)
        ):
            return bot_api_error(400, "Bad Request: can't parse reply parameters JSON object")
        if int(chat_id) in self.blocked:
            return bot_api_error(403, "Forbidden: bot was blocked by the user")
        return JSONResponse(
            {
                "ok": True,
                "result": {
                    "message_id": next(self._ids),
                    "from": {
                        "id": int(self.token.partition(":")[0]),
                        "is_bot": True,
                        "first_name": "Hub Bot",
                        "username": "hub_test_bot",
                    },
                    "chat": {"id": int(chat_id), "first_name": "Ada", "type": "private"},
                    "date": int(time.time()),
                    "text": text,
                },
            }
        )
