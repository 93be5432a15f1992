"""Helpers of the console's HTTP tests: signing in as a browser does (the sign-in form first,
for its CSRF token and pre-session cookie) and reading a page's form token."""

from __future__ import annotations

import re

import httpx

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
