"""A customer's editable profile (``PATCH /v1/customers/{id}``) and the custom attributes
admins define (``/v1/attributes``); docs/profile.md."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path
from fastapi.concurrency import run_in_threadpool

from hub.api.auth import RuntimeDep, require
from hub.api.openapi import errors
from hub.api.profile_models import (
    AttributeDefinedOut,
    AttributeIn,
    AttributeList,
    AttributeOut,
    ProfileOut,
    ProfilePatch,
)
from hub.domain.errors import NotFound
from hub.domain.profile_values import AttributeDefinition
from hub.runtime import Runtime
from hub.web.access import Principal
from hub.web.errors import ApiError

router = APIRouter(tags=["profile"])
Reader = Annotated[Principal, require("read")]
Actor = Annotated[Principal, require("act")]
Admin = Annotated[Principal, require("admin")]
AttributeKeyPath = Annotated[
    str,
    Path(
        pattern=r"^[a-z][a-z0-9_]{0,39}$",
        description="A lower-case letter, then up to 39 lower-case letters, digits or _.",
        examples=["plan"],
    ),
]


def _missing(runtime: Runtime, customer_id: UUID) -> ApiError:
    """Why the store has no such customer for the views either: erased (410) or unknown."""
    with runtime.read() as conn:
        erased = runtime.views.erased_among(conn, [customer_id])
    if erased:
        return ApiError(
            410, "customer_erased", f"customer {customer_id}'s personal data was erased"
        )
    return ApiError(404, "not_found", f"no customer {customer_id}")


@router.patch(
    "/v1/customers/{customer_id}",
    response_model=ProfileOut,
    responses=errors(
        410,
        (
            422,
            "`invalid_profile`: a field's value breaks its rule (a real date, an IANA zone, a "
            "BCP 47 tag; `details.field` names it); `unknown_attribute`: no such attribute is "
            "defined; `invalid_attribute`: a value not of its attribute's type, or an enum "
            "value not allowed.",
        ),
    ),
)
async def update_profile(
    customer_id: UUID, body: ProfilePatch, runtime: RuntimeDep, who: Actor
) -> ProfileOut:
    """Edit the customer's profile: display name, birthday, time zone, language, company and
    custom attributes, as a JSON merge patch (a field left out stays, null clears). One
    `customer.profile_updated.v1` names what changed and who; the same patch again records
    nothing. A merged customer's edit goes to its group's root."""

    def update() -> ProfileOut:
        try:
            state = runtime.commands.profile.update(customer_id, body.changes(), actor=who.name)
        except NotFound:
            raise _missing(runtime, customer_id) from None
        return ProfileOut(
            customer_id=state.customer_id,
            display_name=state.display_name,
            birthday=state.birthday,
            time_zone=state.time_zone,
            language=state.language,
            company=state.company,
            attributes=state.attributes,
            changed=list(state.changed),
        )

    return await run_in_threadpool(update)


def _out(definition: AttributeDefinition) -> AttributeOut:
    return AttributeOut.model_validate(
        {
            "key": definition.key,
            "type": definition.kind,
            "label": definition.label,
            "values": list(definition.values),
        }
    )


@router.get("/v1/attributes", response_model=AttributeList)
async def list_attributes(runtime: RuntimeDep, who: Reader) -> AttributeList:
    """The custom attributes defined, by key: what `PATCH /v1/customers/{id}` takes."""
    found = await run_in_threadpool(runtime.commands.profile.attributes)
    return AttributeList(items=[_out(d) for d in found])


@router.put(
    "/v1/attributes/{key}",
    response_model=AttributeDefinedOut,
    responses=errors(
        (409, "`attribute_type_change`: the key is defined with another type; a key keeps it."),
        (
            422,
            "`invalid_attribute_definition`: an enum without values, values on another type, "
            "a value listed twice, or a blank label.",
        ),
    ),
)
async def define_attribute(
    key: AttributeKeyPath, body: AttributeIn, runtime: RuntimeDep, who: Admin
) -> AttributeDefinedOut:
    """Define a custom attribute (admins): its type (string, number, boolean, date, or enum
    with its values) and label. Defining it again may change the label and an enum's values,
    never the type; the same definition again records nothing."""
    definition, changed = await run_in_threadpool(
        lambda: runtime.commands.profile.define_attribute(
            key, body.type, body.label, body.values, actor=who.name
        )
    )
    return AttributeDefinedOut(**_out(definition).model_dump(), changed=changed)
