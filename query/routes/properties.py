"""Property definitions: /v1/properties (the defaults, and the custom ones kept through
profilestore.definitions; the materializer reads those with every batch, so a change applies to
the next SDK writes)."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from infra.http import ApiError
from profilestore import definitions as store
from query.audit import record_audit
from query.deps import AdminDep, RedisDep, require_reader
from schemas.messages import FieldError
from schemas.properties import (
    CONSTRAINT_TYPES,
    DEFAULT_PROPERTIES,
    SYSTEM_FIELDS,
    DefaultProperty,
    PropertyDefinition,
    PropertyType,
)

# Reads for every operator; each write takes `AdminDep` and leaves an audit entry.
router = APIRouter(
    prefix="/v1/properties", tags=["properties"], dependencies=[Depends(require_reader)]
)

MAX_DEFINITIONS = 500


class PropertyCatalog(BaseModel):
    default: list[DefaultProperty]
    custom: list[PropertyDefinition]
    # constraint -> the property types it applies to
    constraints: dict[str, list[PropertyType]]
    types: list[PropertyType]


class PropertyPatch(BaseModel):
    """Any definition field but the name; null clears a constraint."""

    model_config = ConfigDict(extra="forbid")

    type: Any = None
    required: Any = None
    min: Any = None
    max: Any = None
    min_length: Any = None
    max_length: Any = None
    pattern: Any = None
    allowed_values: Any = None
    max_items: Any = None
    description: Any = None


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        field, sep, reason = message.partition(": ")
        if not where and sep:  # model-level checks name their field first
            where, message = field, reason
        errors.append(FieldError(field=where or "definition", reason=message))
    return errors


def _definition(data: dict[str, Any]) -> PropertyDefinition:
    try:
        return PropertyDefinition.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid property definition", _field_errors(exc)) from None


async def _stored(redis: RedisDep, name: str) -> PropertyDefinition:
    definition = await store.get_definition(redis, name)
    if definition is None:
        raise ApiError(404, f"no custom property {name!r}")
    return definition


@router.get("", response_model=PropertyCatalog)
async def list_properties(redis: RedisDep) -> PropertyCatalog:
    stored = await store.all_definitions(redis)
    custom = sorted(stored.values(), key=lambda d: d.name)
    return PropertyCatalog(
        default=list(DEFAULT_PROPERTIES.values()),
        custom=custom,
        constraints={name: list(types) for name, types in CONSTRAINT_TYPES.items()},
        types=list(get_args(PropertyType)),
    )


@router.get("/{name}", response_model=DefaultProperty | PropertyDefinition)
async def get_property(name: str, redis: RedisDep) -> PropertyDefinition:
    return DEFAULT_PROPERTIES.get(name) or await _stored(redis, name)


@router.post("", status_code=201, response_model=PropertyDefinition)
async def create_property(
    operator: AdminDep, request: Request, body: dict[str, Any], redis: RedisDep
) -> PropertyDefinition:
    definition = _definition(body)
    if definition.name in DEFAULT_PROPERTIES or definition.name in SYSTEM_FIELDS:
        raise ApiError(
            409,
            f"{definition.name!r} is a default property or a system field",
            [FieldError(field="name", reason="taken by a default property or system field")],
        )
    if await store.count_definitions(redis) >= MAX_DEFINITIONS:
        raise ApiError(400, f"at most {MAX_DEFINITIONS} custom properties")
    if not await store.add_definition(redis, definition):
        raise ApiError(
            409,
            f"custom property {definition.name!r} exists; PATCH it instead",
            [FieldError(field="name", reason="already defined")],
        )
    await record_audit(request, operator, "property.create", definition.name)
    return definition


@router.patch("/{name}", response_model=PropertyDefinition)
async def update_property(
    operator: AdminDep, request: Request, name: str, body: PropertyPatch, redis: RedisDep
) -> PropertyDefinition:
    if name in DEFAULT_PROPERTIES:
        raise ApiError(400, "default properties cannot be changed")
    current = await _stored(redis, name)
    definition = _definition(
        {**current.model_dump(), **body.model_dump(exclude_unset=True), "name": name}
    )
    await store.put_definition(redis, definition)
    await record_audit(request, operator, "property.update", name)
    return definition


@router.delete("/{name}", status_code=204)
async def delete_property(
    operator: AdminDep, request: Request, name: str, redis: RedisDep
) -> Response:
    """Values already stored stay on the profiles, unchecked from now on."""
    if not await store.delete_definition(redis, name):
        raise ApiError(404, f"no custom property {name!r}")
    await record_audit(request, operator, "property.delete", name)
    return Response(status_code=204)
