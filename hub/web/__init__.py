"""What the two web packages share: the HTTP API (``hub.api``) and the agent console
(``hub.console``) import this package and never each other.

- ``access``: who is calling (:class:`Principal`, made by the token store) and what each role
  may do (:data:`SCOPES`);
- ``errors``: the one error body (``{"error": {"code", "message", "details"}}``), the
  :class:`ApiError` a route raises, and the exception handlers that answer with that body;
- ``streams``: what long-lived responses share: the store positions a client may send back
  (:data:`MAX_POSITION`, ``Last-Event-ID``), the re-check of the credential a stream was
  opened with, and the error event it ends with.
"""
