"""Proving an email in the chat: the code mailed to it, and how often it is mailed and tried.

An ``identify`` frame makes an address pending and mails it a code (``tokens.VisitorTokens``:
nothing stored); ``verify`` checks one. Per socket: at most three mails, 30 s apart, and five
tries, then ``identify`` again. Per visitor and address, across sockets: the hourly code
guesses of ``limits.ChatLimits``, so a six-digit code cannot be guessed slowly.
"""

from __future__ import annotations

import logging
import math
import time
from uuid import uuid4

from hub.connectors.base import Connector, ConnectorError, OutboundMessage
from hub.connectors.chat.frames import FrameError
from hub.connectors.chat.limits import ChatLimits
from hub.connectors.chat.tokens import VisitorTokens

log = logging.getLogger(__name__)

MAX_CODE_SENDS = 3
CODE_RESEND_SECONDS = 30.0
MAX_CODE_ATTEMPTS = 5


class Verification:
    """One socket's pending proof: the address waiting for its code, the codes mailed, the
    tries made."""

    def __init__(self, tokens: VisitorTokens, limits: ChatLimits, code_minutes: int) -> None:
        self._tokens = tokens
        self._limits = limits
        self._code_minutes = code_minutes
        self.pending: str | None = None
        self._sends: list[float] = []
        self._attempts = 0

    def begin(self, address: str) -> None:
        """``address`` (normalised, ``email:...``) now waits for its code; tries start over."""
        self.pending = address
        self._attempts = 0

    async def mail_code(self, mailer: Connector | None, visitor_id: str, address: str) -> bool:
        """Mail ``address`` its code through ``mailer``; whether it went (not when email is
        off, too many were mailed or the last is too recent, or the mail was refused)."""
        now = time.monotonic()
        recent = [t for t in self._sends if now - t < CODE_RESEND_SECONDS]
        if mailer is None or len(self._sends) >= MAX_CODE_SENDS or recent:
            return False
        code = self._tokens.code(visitor_id, address)
        message = OutboundMessage(
            message_id=uuid4(),
            channel="email",
            address=address,
            subject=f"Your code: {code}",
            text=(
                f"Your verification code is {code}.\n\nType it in the chat window to confirm "
                f"that this address is yours. It is valid for {self._code_minutes} minutes. "
                "If you did not ask for it, ignore this message."
            ),
        )
        try:
            await mailer.send(message)
        except ConnectorError as exc:
            log.warning("chat: the verification code could not be mailed: %s", exc.reason)
            return False
        self._sends.append(now)
        return True

    def expecting(self) -> str:
        """The address a code may be tried for; :class:`FrameError` when there is none or
        this socket's tries are spent."""
        if self.pending is None:
            raise FrameError("nothing_to_verify", "identify with an email first")
        if self._attempts >= MAX_CODE_ATTEMPTS:
            raise FrameError("too_many_attempts", "identify again to get a new code")
        return self.pending

    def check(self, visitor_id: str, address: str, code: object) -> None:
        """Count one try of ``code`` for ``address``; :class:`FrameError` when the visitor
        tried too many this hour or the code is wrong."""
        wait = self._limits.code_guess(visitor_id, address)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise FrameError(
                "too_many_attempts",
                f"too many codes tried for this address; try again in {seconds} s",
                retry_after=seconds,
            )
        self._attempts += 1
        if not isinstance(code, str) or not self._tokens.check_code(visitor_id, address, code):
            raise FrameError(
                "invalid_code",
                "that code is not the one we mailed, or it expired",
                attempts_left=MAX_CODE_ATTEMPTS - self._attempts,
            )

    def proven(self) -> None:
        self.pending = None
