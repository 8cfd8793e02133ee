"""Custom property definitions: /v1/properties. Stored in Redis (`ps:property_definitions`);
the materializer reads them with every batch, so a change applies to the next SDK writes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from infra.http import ApiError
from profilestore.layout import PROPERTY_DEFINITIONS
from query.deps import RedisDep, require_admin
from schemas.messages import FieldError
from schemas.properties import DEFAULT_PROPERTIES, SYSTEM_FIELDS, PropertyDefinition

router = APIRouter(
    prefix="/v1/properties", tags=["properties"], dependencies=[Depends(require_admin)]
)

MAX_DEFINITIONS = 500


class PropertyCatalog(BaseModel):
    default: list[PropertyDefinition]
    custom: list[PropertyDefinition]


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
    raw = await redis.hget(PROPERTY_DEFINITIONS, name)
    if raw is None:
        raise ApiError(404, f"no custom property {name!r}")
    return PropertyDefinition.model_validate_json(raw)


@router.get("", response_model=PropertyCatalog)
async def list_properties(redis: RedisDep) -> PropertyCatalog:
    stored = await redis.hgetall(PROPERTY_DEFINITIONS)
    custom = sorted(
        (PropertyDefinition.model_validate_json(v) for v in stored.values()),
        key=lambda d: d.name,
    )
    return PropertyCatalog(default=list(DEFAULT_PROPERTIES.values()), custom=custom)


@router.get("/{name}", response_model=PropertyDefinition)
async def get_property(name: str, redis: RedisDep) -> PropertyDefinition:
    return DEFAULT_PROPERTIES.get(name) or await _stored(redis, name)


@router.post("", status_code=201, response_model=PropertyDefinition)
async def create_property(body: dict[str, Any], redis: RedisDep) -> PropertyDefinition:
    definition = _definition(body)
    if definition.name in DEFAULT_PROPERTIES or definition.name in SYSTEM_FIELDS:
        raise ApiError(
            409,
            f"{definition.name!r} is a default property or a system field",
            [FieldError(field="name", reason="taken by a default property or system field")],
        )
    if await redis.hlen(PROPERTY_DEFINITIONS) >= MAX_DEFINITIONS:
        raise ApiError(400, f"at most {MAX_DEFINITIONS} custom properties")
    if not await redis.hsetnx(PROPERTY_DEFINITIONS, definition.name, definition.model_dump_json()):
        raise ApiError(
            409,
            f"custom property {definition.name!r} exists; PATCH it instead",
            [FieldError(field="name", reason="already defined")],
        )
    return definition


@router.patch("/{name}", response_model=PropertyDefinition)
async def update_property(name: str, body: PropertyPatch, redis: RedisDep) -> PropertyDefinition:
    if name in DEFAULT_PROPERTIES:
        raise ApiError(400, "default properties cannot be changed")
    current = await _stored(redis, name)
    definition = _definition(
        {**current.model_dump(), **body.model_dump(exclude_unset=True), "name": name}
    )
    await redis.hset(PROPERTY_DEFINITIONS, name, definition.model_dump_json())
    return definition


@router.delete("/{name}", status_code=204)
async def delete_property(name: str, redis: RedisDep) -> Response:
    """Values already stored stay on the profiles, unchecked from now on."""
    if not await redis.hdel(PROPERTY_DEFINITIONS, name):
        raise ApiError(404, f"no custom property {name!r}")
    return Response(status_code=204)
