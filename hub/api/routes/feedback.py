"""The one-click links of survey emails, opened without a login (docs/surveys.md).

A survey's email carries one link per score (``{public_url}/feedback/{token}``): the token is
signed for the customer, the survey and the score (``hub.domain.links``, kind ``survey``),
and expires with the survey's answer window.

Mail scanners and link previews open every link of a message, which would answer every
survey with its first link's score. So the click is recorded at once only when the browser
says a person clicked it: a top-level navigation with user activation
(``Sec-Fetch-Mode: navigate`` and ``Sec-Fetch-User: ?1``, sent by current browsers and never
by a fetch without a click). Any other ``GET`` shows the score and a button that ``POST``s
it. Either way the page then offers a comment box. The first answer stands; a comment is
taken once. The pages hold no personal data.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from hub.api.auth import RuntimeDep
from hub.domain.errors import DomainError
from hub.domain.surveys import MAX_COMMENT
from hub.runtime import Runtime
from hub.runtime.surveys import SURVEY_LINK
from hub.web.links import InvalidLink, link_page, refused_link_page, signer_of

log = logging.getLogger(__name__)

router = APIRouter(prefix="/feedback", tags=["surveys"])
#: A form body larger than this is refused before it is parsed.
_MAX_BODY = 4 * MAX_COMMENT + 1024


class _Link:
    """What a verified survey token names."""

    def __init__(self, fields: dict[str, object]) -> None:
        try:
            self.customer_id = UUID(str(fields["c"]))
            self.survey_id = UUID(str(fields["s"]))
            self.score = int(str(fields["n"]))
        except (KeyError, ValueError):
            raise InvalidLink() from None


def _link(runtime: Runtime, token: str) -> _Link:
    return _Link(signer_of(runtime.store).verify(SURVEY_LINK, token))


def _clicked(request: Request) -> bool:
    """Whether a person's click opened the page (not a scanner's or a preview's fetch)."""
    headers = request.headers
    return headers.get("sec-fetch-mode") == "navigate" and headers.get("sec-fetch-user") == "?1"


def _comment_form(score: int) -> str:
    return (
        f"<p>Your answer: <strong>{score}</strong>. Thank you!</p>"
        '<form method="post"><label for="comment">Anything to add? (optional)</label><br>'
        f'<textarea id="comment" name="comment" rows="4" cols="40" maxlength="{MAX_COMMENT}">'
        '</textarea><br><button type="submit">Send</button></form>'
    )


def _gone() -> HTMLResponse:
    return link_page(
        "Survey closed", "<p>This survey can no longer be answered. Thank you.</p>", status=410
    )


async def _answer(runtime: Runtime, link: _Link, comment: str | None) -> tuple[str, int] | None:
    try:
        found = await run_in_threadpool(
            lambda: runtime.commands.surveys.answer(
                link.customer_id, link.survey_id, link.score, via="link", comment=comment
            )
        )
    except DomainError:  # no such survey (erased), a score out of range
        return None
    return found.outcome, found.score


@router.get("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def feedback_page(token: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """A person's click records the score; any other fetch shows it with a button."""
    try:
        link = _link(runtime, token)
    except InvalidLink as exc:
        return refused_link_page(exc)
    if not _clicked(request):
        body = (
            f"<p>Rate us <strong>{link.score}</strong>?</p>"
            '<form method="post"><button type="submit">Send my answer</button></form>'
        )
        return link_page("Your feedback", body)
    answered = await _answer(runtime, link, None)
    if answered is None:
        return _gone()
    log.info("survey answered by its link (%s)", answered[0])
    return link_page("Thank you", _comment_form(answered[1]))


@router.post("/{token}", response_class=HTMLResponse, include_in_schema=False)
async def feedback_answer(token: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """The page's button, or its comment box: records the score (if it is the first answer)
    and the comment (if none was given yet)."""
    try:
        link = _link(runtime, token)
    except InvalidLink as exc:
        return refused_link_page(exc)
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        return link_page("Too long", "<p>That comment is too long.</p>", status=413)
    try:
        fields = parse_qs(raw.decode("utf-8", errors="replace"), max_num_fields=4)
    except ValueError:  # more fields than the form has: not our page's
        return link_page("Not understood", "<p>That form was not ours.</p>", status=400)
    comment = (fields.get("comment") or [""])[0][:MAX_COMMENT].strip() or None
    answered = await _answer(runtime, link, comment)
    if answered is None:
        return _gone()
    if comment:
        return link_page("Thank you", "<p>Thank you for your words.</p>")
    return link_page("Thank you", _comment_form(answered[1]))
