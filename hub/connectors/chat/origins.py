"""Which pages may open the chat: a browser names the page's origin when it opens a WebSocket,
and only the hub's own and the allowed ones (``HUB_CHAT__ALLOWED_ORIGINS``) get in."""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower case and without a default port; None when
    it is not an http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("http", "https") or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    shown = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{shown}"


def origin_allowed(
    origin: str | None, allowed: tuple[str, ...], public_url: str | None, host: str | None
) -> bool:
    """Whether a page of ``origin`` may open the chat: one of ``allowed`` (``*``: any), or
    the hub's own: ``public_url``'s origin, or without one, the host the browser asked for
    (the hub's own ``/chat/`` page). A socket without an Origin comes from no page: refused
    unless any origin is allowed."""
    if "*" in allowed:
        return True
    if origin is None:
        return False
    asked = _origin(origin)
    if asked is None:
        return False
    if public_url:
        own = _origin(public_url)
    else:
        own = _origin(f"{urlsplit(origin).scheme}://{host}") if host else None
    return asked == own or asked in {_origin(a) for a in allowed}
