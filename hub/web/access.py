"""Who is calling and what they may do: the :class:`Principal` of a bearer token or a console
session (the token store makes it), and the scopes of each role.

The API checks a bearer token's scopes (``hub.api.auth``); the console lets in only those whose
role may ``act``.
"""

from __future__ import annotations

from hub.store.tokens import Principal, Role

__all__ = ["SCOPES", "Principal", "Role", "may"]

#: What each role may do. ingest: record interactions and delivery reports; read: customers,
#: timelines, conversations; act: agent commands; events: the published event feed;
#: admin: operations (dead letters).
SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset({"ingest", "read", "act", "events", "admin"}),
    "agent": frozenset({"read", "act"}),
    "service": frozenset({"ingest", "read", "events"}),
}


def may(principal: Principal | None, scope: str) -> bool:
    """Whether ``principal`` (None: nobody signed in) has ``scope``."""
    return principal is not None and scope in SCOPES[principal.role]
