"""Profile properties: the default properties every profile has, custom property definitions
with their constraints, and `value_problem`, the one check every write path (API, SDK traits)
runs against a definition."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

PropertyType = Literal["string", "integer", "number", "boolean", "date", "datetime", "enum", "list"]

# Which types each constraint applies to (served to the dashboard by GET /v1/properties).
CONSTRAINT_TYPES: dict[str, tuple[PropertyType, ...]] = {
    "min": ("integer", "number"),
    "max": ("integer", "number"),
    "min_length": ("string", "list"),
    "max_length": ("string", "list"),
    "pattern": ("string", "list"),
    "allowed_values": ("enum", "string", "list"),
    "max_items": ("list",),
}

# Read-only fields the system keeps; no write path may set them.
SYSTEM_FIELDS: tuple[str, ...] = (
    "user_id",
    "created_at",
    "first_seen",
    "last_seen",
    "status",
    "custom",
    "tags",
)
# Segment's spec trait names for the default properties.
SEGMENT_TRAIT_ALIASES: dict[str, str] = {
    "customerId": "customer_id",
    "firstName": "first_name",
    "lastName": "last_name",
}

NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,63}")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# What orjson (and so every message) can carry.
INTEGER_RANGE = (-(2**63), 2**64 - 1)
MAX_PATTERN_LENGTH = 200
MAX_STRING_LENGTH = 4096
MAX_LIST_ITEMS = 1000


class PropertyDefinition(BaseModel):
    """A property's type and constraints. Custom ones are managed at /v1/properties."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    type: PropertyType
    required: bool = False
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN_LENGTH)
    allowed_values: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    max_items: int | None = Field(default=None, ge=1)
    description: str = Field(default="", max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> PropertyDefinition:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(
                "name: a letter, then letters, digits, '_', '.' or '-' (at most 64 characters)"
            )
        if self.type == "enum" and not self.allowed_values:
            raise ValueError("allowed_values: an enum needs its allowed values")
        if (self.min is not None or self.max is not None) and self.type not in CONSTRAINT_TYPES[
            "min"
        ]:
            raise ValueError(f"min/max: only for integer or number, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min: greater than max")
        if (
            self.min_length is not None or self.max_length is not None
        ) and self.type not in CONSTRAINT_TYPES["min_length"]:
            raise ValueError(f"min_length/max_length: only for string or list, not {self.type}")
        if (
            self.min_length is not None
            and self.max_length is not None
            and self.min_length > self.max_length
        ):
            raise ValueError("min_length: greater than max_length")
        if self.pattern is not None:
            if self.type not in CONSTRAINT_TYPES["pattern"]:
                raise ValueError(f"pattern: only for string or list, not {self.type}")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern: not a valid regular expression ({exc})") from None
        if self.max_items is not None and self.type not in CONSTRAINT_TYPES["max_items"]:
            raise ValueError(f"max_items: only for list, not {self.type}")
        if self.allowed_values is not None and self.type not in CONSTRAINT_TYPES["allowed_values"]:
            raise ValueError(f"allowed_values: only for enum, string or list, not {self.type}")
        return self


class DefaultProperty(PropertyDefinition):
    """A property every profile has, with the label the dashboard shows for it."""

    label: str
    # customer_id, email and phone identify a person: creating a user needs at least one.
    identity: bool = False


def _default(
    name: str, label: str, type_: PropertyType = "string", **constraints: Any
) -> DefaultProperty:
    return DefaultProperty(name=name, label=label, type=type_, **constraints)


# The default properties, declared once: the names below, the management API's request fields
# (query/management.py), the profile decoding and the dashboard (from GET /v1/properties) derive
# from this table. schemas/profiles.py spells them out as typed response fields: keep in sync
# (tests/schemas/test_properties.py checks).
DEFAULT_PROPERTIES: dict[str, DefaultProperty] = {
    d.name: d
    for d in (
        _default(
            "customer_id",
            "Customer ID",
            max_length=255,
            identity=True,
            description="your id for this person (identity property)",
        ),
        _default(
            "email",
            "Email",
            max_length=254,
            pattern=r"[^@\s]+@[^@\s]+\.[^@\s]+",
            identity=True,
            description="an email address (identity property)",
        ),
        _default(
            "phone",
            "Phone",
            max_length=32,
            pattern=r"\+?[0-9 ().\-]{3,32}",
            identity=True,
            description="digits, +, spaces (identity property)",
        ),
        _default("first_name", "First name", max_length=255),
        _default("last_name", "Last name", max_length=255),
        _default("gender", "Gender", max_length=64),
        _default("birthday", "Birthday", "date"),
        _default("country", "Country", max_length=64),
        _default("city", "City", max_length=255),
        _default("language", "Language", max_length=35),
        _default(
            "timezone",
            "Time zone",
            max_length=64,
            description="IANA time zone, e.g. Europe/Oslo",
        ),
    )
}
DEFAULT_PROPERTY_NAMES: tuple[str, ...] = tuple(DEFAULT_PROPERTIES)
IDENTITY_PROPERTIES: tuple[str, ...] = tuple(n for n, d in DEFAULT_PROPERTIES.items() if d.identity)


# The built-in patterns, said in words (a custom pattern is quoted as written).
PATTERN_REASONS = {
    ("email", DEFAULT_PROPERTIES["email"].pattern): "is not an email address",
    ("phone", DEFAULT_PROPERTIES["phone"].pattern): "is not a phone number (digits, +, spaces)",
}


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _string_problem(definition: PropertyDefinition, value: str, what: str) -> str | None:
    if len(value) > MAX_STRING_LENGTH:
        return f"{what} is longer than {MAX_STRING_LENGTH} characters"
    if definition.min_length is not None and len(value) < definition.min_length:
        return f"{what} is shorter than min_length {definition.min_length}"
    if definition.max_length is not None and len(value) > definition.max_length:
        return f"{what} is longer than max_length {definition.max_length}"
    if definition.pattern is not None and not _compiled(definition.pattern).fullmatch(value):
        worded = PATTERN_REASONS.get((definition.name, definition.pattern))
        return worded or f"{what} does not match pattern {definition.pattern!r}"
    if definition.allowed_values is not None and value not in definition.allowed_values:
        return f"{what} is not one of {definition.allowed_values}"
    return None


def value_problem(definition: PropertyDefinition, value: Any) -> str | None:
    """Why `value` breaks `definition`, in words that never quote the value; None if it fits.
    (None itself is an unset, checked by the caller against `required`.)"""
    kind = definition.type
    if kind in ("string", "enum"):
        if not isinstance(value, str):
            return f"expected a string, got {_json_type(value)}"
        return _string_problem(definition, value, "value")
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {_json_type(value)}"
        if not INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1]:
            return "is outside the 64-bit integer range"
        return _range_problem(definition, value)
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number, got {_json_type(value)}"
        if value != value or value in (float("inf"), float("-inf")):
            return "expected a finite number"
        if isinstance(value, int) and not INTEGER_RANGE[0] <= value <= INTEGER_RANGE[1]:
            return "is outside the 64-bit integer range"
        return _range_problem(definition, value)
    if kind == "boolean":
        return None if isinstance(value, bool) else f"expected a boolean, got {_json_type(value)}"
    if kind == "date":
        if not isinstance(value, str):
            return f"expected a date (YYYY-MM-DD), got {_json_type(value)}"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "expected a date (YYYY-MM-DD)"
        return None if DATE_PATTERN.fullmatch(value) else "expected a date (YYYY-MM-DD)"
    if kind == "datetime":
        if not isinstance(value, str):
            return f"expected an ISO 8601 date-time, got {_json_type(value)}"
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "expected an ISO 8601 date-time"
        return None
    # list of strings
    if not isinstance(value, list):
        return f"expected a list of strings, got {_json_type(value)}"
    limit = definition.max_items if definition.max_items is not None else MAX_LIST_ITEMS
    if len(value) > limit:
        return f"has {len(value)} items, more than max_items {limit}"
    for index, item in enumerate(value):
        if not isinstance(item, str):
            return f"item {index}: expected a string, got {_json_type(item)}"
        problem = _string_problem(definition, item, f"item {index}")
        if problem:
            return problem
    return None


def _range_problem(definition: PropertyDefinition, value: float) -> str | None:
    if definition.min is not None and value < definition.min:
        return f"is less than min {_number(definition.min)}"
    if definition.max is not None and value > definition.max:
        return f"is greater than max {_number(definition.max)}"
    return None


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def definition_for(
    name: str, custom: Mapping[str, PropertyDefinition]
) -> PropertyDefinition | None:
    """The definition a property is checked against: a default one, else a custom one; None
    for an undefined custom property (kept as sent, unchecked)."""
    return DEFAULT_PROPERTIES.get(name) or custom.get(name)
