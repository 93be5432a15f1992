"""Domain errors: each carries a machine-readable code; the API maps them to responses."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""

    code = "domain_error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    code = "not_found"
    status = 404


class CustomerErased(DomainError):
    """The customer's personal data was erased; nothing personal can be added."""

    code = "customer_erased"
    status = 410


class InvalidCommand(DomainError):
    code = "invalid_command"
    status = 422


class StoreUnavailable(DomainError):
    """The event store or a view database could not be reached; retrying may work."""

    code = "store_unavailable"
    status = 503


class Conflict(DomainError):
    """The command contradicts the current state (for example, merge a customer already
    merged elsewhere); the code says which rule."""

    status = 409

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class SendRefused(DomainError):
    """The message cannot go out on this channel now; nothing was recorded."""

    code = "send_refused"
    status = 409

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


class MissingVariable(DomainError):
    """A template uses a variable that has no value for this customer (or event) and no
    declared default; nothing is sent (``hub.domain.rendering``)."""

    code = "template_variable_missing"
    status = 422

    def __init__(self, variable: str) -> None:
        super().__init__(
            f"the template uses {{{{ {variable} }}}}, which has no value here and no default",
            variable=variable,
        )
        self.variable = variable
