"""Helpers of the console's HTTP tests: signing in as a browser does (the sign-in form first,
for its CSRF token and pre-session cookie) and reading a page's form token."""

from __future__ import annotations

import html
import re

import httpx

from tests.support.api import Api

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


def csrf_of(client: httpx.Client, path: str) -> str:
    """The CSRF token of the first form on the page at ``path``."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found, "the page has no form"
    return found.group(1)


def sign_in(client: httpx.Client, token: str, next_path: str = "/") -> httpx.Response:
    """Open the sign-in form, then post it with ``token``; the answer, not followed."""
    csrf = csrf_of(client, "/login")
    return client.post(
        "/login",
        data={"token": token, "next": next_path, "csrf": csrf},
        follow_redirects=False,
    )


def page_text(page: httpx.Response) -> str:
    """A page's words as a person reads them: tags out, entities decoded, runs of white
    space as one (the page must have answered 200)."""
    assert page.status_code == 200, page.text
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def signed_in_agent(api: Api, name: str = "ann") -> httpx.Client:
    """The app's client, signed in to the console as a new agent ``name``."""
    runtime = api.runtime
    assert runtime is not None
    _, token = runtime.tokens.create("agent", name)
    assert sign_in(api.client, token).status_code == 303
    return api.client
