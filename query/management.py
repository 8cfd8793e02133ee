"""Pure: management request bodies -> checked `UserCommand`s. Every broken rule is reported at
once, each naming its field, so one 400 tells the operator everything to fix."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, create_model

from schemas.commands import Status, UserCommand
from schemas.messages import FieldError
from schemas.properties import (
    DEFAULT_PROPERTIES,
    DEFAULT_PROPERTY_NAMES,
    IDENTITY_PROPERTIES,
    PropertyDefinition,
    value_problem,
)

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s:][^:]*$")]
MAX_TAGS_PER_REQUEST = 100
MAX_CUSTOM_PER_REQUEST = 200


class _DefaultPropertiesBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict[str, Any]:
        """The default properties the body names (null included: an unset)."""
        return {n: getattr(self, n) for n in DEFAULT_PROPERTY_NAMES if n in self.model_fields_set}


# The default properties as top-level fields, made from their one declaration
# (schemas.properties.DEFAULT_PROPERTIES). Typed `Any` so that every value is checked by
# `value_problem`, which words the reasons the same way for every write path.
if TYPE_CHECKING:
    _DefaultProperties = _DefaultPropertiesBase
else:
    _DefaultProperties = create_model(
        "_DefaultProperties",
        __base__=_DefaultPropertiesBase,
        **{name: (Any, None) for name in DEFAULT_PROPERTY_NAMES},
    )


class UserCreate(_DefaultProperties):
    user_id: str | None = Field(default=None, min_length=1, max_length=255)
    custom: dict[str, Any] = Field(default_factory=dict, max_length=MAX_CUSTOM_PER_REQUEST)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)
    status: Status = "active"


class UserUpdate(_DefaultProperties):
    """Fields left out are unchanged; a property set to null is unset."""

    custom: dict[str, Any] = Field(default_factory=dict, max_length=MAX_CUSTOM_PER_REQUEST)
    status: Status | None = None
    tags_add: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)
    tags_remove: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS_PER_REQUEST)


def _checked(
    values: Mapping[str, Any],
    custom: Mapping[str, Any],
    definitions: Mapping[str, PropertyDefinition],
    errors: list[FieldError],
) -> tuple[dict[str, Any], list[str]]:
    """(properties to set, properties to unset), appending a FieldError per broken rule."""
    to_set: dict[str, Any] = {}
    to_unset: list[str] = []
    named: list[tuple[str, str, Any, PropertyDefinition | None]] = [
        (name, name, value, DEFAULT_PROPERTIES[name]) for name, value in values.items()
    ]
    for name, value in custom.items():
        where = f"custom.{name}"
        if name in DEFAULT_PROPERTIES:
            errors.append(FieldError(field=where, reason="a default property: send it top-level"))
            continue
        definition = definitions.get(name)
        if definition is None:
            errors.append(
                FieldError(field=where, reason="no such custom property; define it first")
            )
            continue
        named.append((name, where, value, definition))
    for name, where, value, definition in named:
        if value is None:
            if definition is not None and definition.required:
                errors.append(FieldError(field=where, reason="is required and cannot be unset"))
            else:
                to_unset.append(name)
            continue
        problem = value_problem(definition, value) if definition is not None else None
        if problem:
            errors.append(FieldError(field=where, reason=problem))
        else:
            to_set[name] = value
    return to_set, to_unset


def create_command(
    body: UserCreate, definitions: Mapping[str, PropertyDefinition], now: datetime
) -> tuple[UserCommand | None, list[FieldError]]:
    errors: list[FieldError] = []
    to_set, _ = _checked(body.given(), body.custom, definitions, errors)
    if not any(to_set.get(name) for name in IDENTITY_PROPERTIES):
        errors.append(
            FieldError(
                field="customer_id",
                reason="at least one of customer_id, email, phone is required",
            )
        )
    for name, definition in definitions.items():
        if definition.required and name not in body.custom:
            errors.append(FieldError(field=f"custom.{name}", reason="is required"))
    if errors:
        return None, errors
    command = UserCommand(
        command_id=new_command_id(),
        op="create",
        user_id=body.user_id or uuid.uuid4().hex,
        issued_at=now,
        set=to_set,
        tags_add=body.tags,
        status=body.status,
    )
    return command, []


def update_command(
    user_id: str,
    body: UserUpdate,
    current: Mapping[str, Any],
    definitions: Mapping[str, PropertyDefinition],
    now: datetime,
) -> tuple[UserCommand | None, list[FieldError]]:
    """`current`: the user's current default properties by name, to keep an identity one."""
    errors: list[FieldError] = []
    to_set, to_unset = _checked(body.given(), body.custom, definitions, errors)
    after = {**current, **to_set}
    for name in to_unset:
        after.pop(name, None)
    if not any(after.get(name) for name in IDENTITY_PROPERTIES) and any(
        current.get(name) for name in IDENTITY_PROPERTIES
    ):
        errors.append(
            FieldError(
                field="customer_id",
                reason="the user would have none of customer_id, email, phone left",
            )
        )
    if errors:
        return None, errors
    command = UserCommand(
        command_id=new_command_id(),
        op="update",
        user_id=user_id,
        issued_at=now,
        set=to_set,
        unset=to_unset,
        tags_add=body.tags_add,
        tags_remove=body.tags_remove,
        status=body.status,
    )
    return command, []


def new_command_id() -> str:
    """Unique per request: the materializer dedups a command replayed after a crash by it."""
    return f"cmd-{uuid.uuid4().hex}"


def delete_command(user_id: str, now: datetime) -> UserCommand:
    return UserCommand(command_id=new_command_id(), op="delete", user_id=user_id, issued_at=now)
