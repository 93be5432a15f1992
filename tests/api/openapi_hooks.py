"""Schemathesis hooks of the OpenAPI conformance run (tests/api/schemathesis.toml): one check
the built-in ones cannot make, because it needs the hub's error codes, and ids of things that
exist for the operations on them.

Some operations refuse schema-valid requests on purpose, for rules a JSON Schema cannot state
(an address that cannot be normalised, a time before 1970, a cursor this API did not give),
so the configuration lets ``positive_data_acceptance`` take that status there. This check
keeps that allowance narrow: such a refusal must carry the rule's own code, never the codes
of the hub's own schema validation, which would mean the published schema and the server's
validation disagree (say, a character the schema allows and the server refuses).
"""

from __future__ import annotations

import json
import os
from typing import Any
from uuid import UUID

import schemathesis
from hypothesis import strategies as st

#: Ids by path parameter name (customer_id...) of what the test recorded before the run.
KNOWN_IDS: dict[str, list[str]] = json.loads(os.environ.get("HUB_CONFORMANCE_IDS") or "{}")

#: The codes of a request refused for not matching the schema (hub/web/errors.py).
SCHEMA_REFUSALS = frozenset({"validation_error", "malformed_json", "bad_request"})


@schemathesis.check
def schema_valid_never_refused_as_invalid(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> bool | None:
    """A request generated from the schema is never refused as not matching the schema."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    try:
        body: Any = response.json()
    except ValueError:
        return None  # not the error model: status and content-type checks report that
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if code in SCHEMA_REFUSALS:
        raise AssertionError(
            f"a request valid by the published schema was refused as {code}: "
            f"{error.get('details') if isinstance(error, dict) else None}"
        )
    return True


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


@schemathesis.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[dict[str, Any]]:
    """Half the time, an id of something that exists (random ids only ever find a 404, so the
    operation behind it would go untested); a malformed id (negative data) stays as it is."""
    operation = getattr(context, "operation", None)
    erasing = str(getattr(operation, "path", "")).endswith("/erase")
    # An erasure takes its own customer: erasing the others would leave every later operation
    # on them a 410.
    ids = (
        {**KNOWN_IDS, "customer_id": KNOWN_IDS.get("erasable_customer_id", [])}
        if erasing
        else KNOWN_IDS
    )
    known = {
        name: ids[name]
        for name, value in (path_parameters or {}).items()
        if ids.get(name) and _is_uuid(value)
    }
    if not known:
        return st.just(path_parameters)
    real = st.fixed_dictionaries({name: st.sampled_from(ids) for name, ids in known.items()})
    return st.one_of(st.just(path_parameters), real.map(lambda ids: {**path_parameters, **ids}))
