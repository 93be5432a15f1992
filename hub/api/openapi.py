"""The error responses of the OpenAPI document, added in one place from the one error model.

FastAPI documents what a route declares. The errors every route of a kind can answer are not
declared route by route but read off the route itself, so a new route cannot forget them:

- 401 and 403: it depends on :func:`hub.api.auth.authenticated` (401), through a scope check
  (:func:`hub.api.auth.require`: 403);
- 422: it has parameters or a body (replacing FastAPI's ``HTTPValidationError``, which is not
  the shape the hub answers with); 400 and 413: it has a body;
- 404: it has path parameters (every one is an id);
- 503: it uses the runtime (:func:`hub.api.auth.get_runtime`), so a store.

What only some routes answer (409, 410, 429, 400 ``invalid_cursor``...) each route declares
with ``responses=errors(...)`` (:func:`errors`); both end up in one response per
status whose description says every code it carries.

The document's ``webhooks`` section (OpenAPI 3.1) is added here too (:func:`document_webhooks`):
what the hub POSTs to a subscribed endpoint, one webhook per published event type, with the
envelope's schema and the Standard Webhooks headers.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from hub.api.auth import authenticated, get_runtime
from hub.events import EVENT_CLASSES
from hub.events.catalogue import component_schemas, type_name
from hub.web.errors import ErrorResponse

#: What each error status means, with the codes it carries: the description of the response
#: wherever it is documented (a route adds its own codes through :func:`errors`).
ERROR_STATUSES: dict[int, str] = {
    400: "`malformed_json`: the body is not JSON (`bad_request`: it could not be read).",
    401: "`unauthorized`: no bearer token, or one that is unknown or revoked.",
    403: "`forbidden`: the token's role lacks the scope this operation needs.",
    404: "`not_found`: nothing has the id in the path.",
    409: "The current state refuses the command; the code says which rule.",
    410: "`customer_erased`: the customer's personal data was erased.",
    413: "`payload_too_large`: the body exceeds the hub's limit (HUB_MAX_BODY_BYTES).",
    422: "`validation_error`: the request does not match the schema (`details` lists each "
    "problem); or another code naming a rule the schema cannot express.",
    429: "`rate_limited`: too many requests; retry after `Retry-After` seconds.",
    503: "`store_unavailable`: the store could not be reached; retry (after `Retry-After` "
    "seconds when given).",
}


def errors(*declared: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for the errors a route produces besides those every route of its kind
    does (:func:`document_errors` adds those): a status (described by :data:`ERROR_STATUSES`) or a
    ``(status, description)`` naming the route's own codes."""
    responses: dict[int | str, dict[str, Any]] = {}
    for item in declared:
        status, description = item if isinstance(item, tuple) else (item, ERROR_STATUSES[item])
        responses[status] = {"model": ErrorResponse, "description": description}
    return responses


_REF_PREFIX = "#/components/schemas/"
_ERROR_REF = {"$ref": f"{_REF_PREFIX}{ErrorResponse.__name__}"}
#: FastAPI's own 422 body and its item: unused once every 422 is the hub's error model.
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")

_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "The scheme to authenticate with: `Bearer`.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "schema": {"type": "integer"},
        }
    },
    503: {
        "Retry-After": {
            "description": "Seconds to wait before retrying (not sent by /readyz).",
            "schema": {"type": "integer"},
        }
    },
}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _calls(dependant: Dependant) -> set[object]:
    return {inspect.unwrap(d.call) for d in dependant.dependencies if d.call is not None}


def implied_errors(endpoint: Dependant, has_body: bool) -> list[int]:
    """The error statuses a route can answer by its kind (see the module docstring), from
    its dependency tree (``endpoint``: the route's own) and whether it reads a body."""
    statuses: set[int] = set()
    has_params = False
    for dependant in _dependants(endpoint):
        calls = _calls(dependant)
        if authenticated in calls:
            statuses.add(401)
            # Whatever builds on the authenticated principal (require's scope check) may
            # refuse it; the endpoint itself depending on it directly refuses nothing more.
            if dependant is not endpoint:
                statuses.add(403)
        if get_runtime in calls:
            statuses.add(503)
        if dependant.path_params:
            statuses.add(404)
        has_params = has_params or bool(
            dependant.path_params
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
        )
    if has_body:
        statuses |= {400, 413}
    if has_params or has_body:
        statuses.add(422)
    return sorted(statuses)


def _error_components(components: dict[str, Any]) -> None:
    """Put ErrorResponse and the models it uses in ``components`` (FastAPI has them only
    when some route declared them)."""
    _, top = models_json_schema(
        [(ErrorResponse, "serialization")], ref_template=_REF_PREFIX + "{model}"
    )
    for name, schema in top.get("$defs", {}).items():
        components.setdefault(name, schema)


def _is_error_model(response: dict[str, Any]) -> bool:
    """Whether ``response`` is documented with the error model (under any media type: FastAPI
    gives a route's declared responses the media type of its success, e.g. an event stream's)."""
    content = response.get("content", {}).values()
    return any(media.get("schema") == _ERROR_REF for media in content)


def document_errors(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> None:
    """Add to every operation of ``schema`` the error responses its route can answer."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    _error_components(components)
    # As FastAPI's get_openapi walks them: an included router's routes are contexts that
    # carry the router's prefix and dependencies along with the route's own.
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        operations = schema.get("paths", {}).get(route.path_format, {})
        implied = implied_errors(route.dependant, route.body_field is not None)
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in implied:
                _add_error(responses, status)
            for status, response in responses.items():
                if not _is_error_model(response):
                    continue
                # Errors are JSON whatever the route answers when it succeeds.
                response["content"] = {"application/json": {"schema": dict(_ERROR_REF)}}
                if status.isdigit() and int(status) in _HEADERS:
                    response.setdefault("headers", {}).update(_HEADERS[int(status)])
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_VALIDATION:  # in order: the first is what refers to the second
        if f'"{_REF_PREFIX}{name}"' not in json.dumps(schema):
            components.pop(name, None)


def _add_error(responses: dict[str, Any], status: int) -> None:
    """Document ``status`` with the hub's error model, keeping a route's own description
    (its codes) and adding the generic one."""
    generic = ERROR_STATUSES[status]
    found = responses.get(str(status))
    if found is not None and _is_error_model(found):
        if generic not in found.get("description", ""):
            found["description"] = f"{found['description']} Also {generic}"
        return
    # Absent, or FastAPI's HTTPValidationError for 422: the hub never answers that shape.
    responses[str(status)] = {
        "description": generic,
        "content": {"application/json": {"schema": dict(_ERROR_REF)}},
    }


def link(method: str, path: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link from a response to the operation ``method path``: each of its
    ``parameters`` is taken from the response body's field of that name (clients, and
    Schemathesis' stateful tests, follow it from one answer to the next call)."""
    pointer = path.replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method.lower()}",
        "parameters": {name: f"$response.body#/{field}" for name, field in parameters.items()},
    }


#: The Standard Webhooks headers of every delivery (docs/consuming.md says how to verify them).
WEBHOOK_HEADERS: list[dict[str, Any]] = [
    {
        "name": "webhook-id",
        "in": "header",
        "required": True,
        "description": "The event id (the envelope's `id`), the same on every attempt: dedupe "
        "on it.",
        "schema": {"type": "string", "format": "uuid"},
    },
    {
        "name": "webhook-timestamp",
        "in": "header",
        "required": True,
        "description": "Unix time in seconds of this attempt: refuse one far from your clock "
        "(the reference libraries allow 5 minutes), so a captured request cannot be replayed.",
        "schema": {"type": "integer"},
    },
    {
        "name": "webhook-signature",
        "in": "header",
        "required": True,
        "description": "`v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}."
        "{body}` under the endpoint's secret (`whsec_` + base64 of the key). While a rotated "
        "secret is in its grace period there are two, space-separated: accept either.",
        "schema": {"type": "string"},
    },
]

_WEBHOOK_RESPONSES: dict[str, Any] = {
    "2XX": {"description": "Delivered: the hub sends the endpoint's next event."},
    "410": {
        "description": "Gone: the hub disables the endpoint (enable it again through the API)."
    },
    "default": {
        "description": "Anything else (or no answer within the timeout): retried with "
        "exponential backoff and jitter, not before `Retry-After`, for the retry period; "
        "later events of the same customer wait for it."
    },
}

_PING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "type": {"const": "webhook.ping"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "endpoint_id": {"type": "string", "format": "uuid"},
    },
    "required": ["id", "type", "occurred_at", "endpoint_id"],
}


def _merge_schemas(components: dict[str, Any], schemas: dict[str, Any]) -> dict[str, str]:
    """Add ``schemas`` to ``components``; one whose name the API already uses for a different
    schema (the API's own ``Attachment``...) is added as ``Published<name>``. Returns the
    renames."""
    renames: dict[str, str] = {}
    for name, schema in schemas.items():
        new = name
        while new in components and components[new] != schema:
            new = f"Published{new}"
        if new != name:
            renames[name] = new
    text = json.dumps(schemas)
    if renames:
        pattern = re.compile(
            '"' + re.escape(_REF_PREFIX) + "(" + "|".join(map(re.escape, renames)) + ')"'
        )
        text = pattern.sub(lambda found: f'"{_REF_PREFIX}{renames[found[1]]}"', text)
    for name, schema in json.loads(text).items():
        components.setdefault(renames.get(name, name), schema)
    return renames


def _webhook(name: str, summary: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "tags": ["webhook deliveries"],
            "summary": summary,
            "description": description,
            "operationId": "webhook_" + re.sub(r"\W", "_", name),
            "parameters": WEBHOOK_HEADERS,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": _WEBHOOK_RESPONSES,
        }
    }


def document_webhooks(schema: dict[str, Any]) -> None:
    """Add the ``webhooks`` section: for every published event type, the POST the hub makes
    to an endpoint subscribed to it (body: the envelope, byte for byte as ``/v1/events`` and
    ``hub.events`` carry it); and the ping ``POST /v1/webhooks/{id}/test`` sends."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    names, schemas = component_schemas(_REF_PREFIX + "{model}", inbound=False)
    renames = _merge_schemas(components, schemas)
    webhooks: dict[str, Any] = {}
    for cls in EVENT_CLASSES:
        event_type = type_name(cls)
        name = names[event_type]
        doc = inspect.cleandoc(cls.__doc__ or "")
        webhooks[event_type] = _webhook(
            event_type,
            event_type,
            f"{doc}\n\nSigned as the Standard Webhooks specification says; at least once, in "
            "order per customer per endpoint. docs/events.md describes the event.",
            {"$ref": _REF_PREFIX + renames.get(name, name)},
        )
    webhooks["webhook.ping"] = _webhook(
        "webhook.ping",
        "webhook.ping",
        "A test delivery (`POST /v1/webhooks/{id}/test`), signed like every other.",
        _PING_SCHEMA,
    )
    schema["webhooks"] = webhooks
