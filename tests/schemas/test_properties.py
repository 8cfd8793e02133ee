"""Unit tests for schemas/properties.py: definition rules, `value_problem`, `definition_for`."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from schemas.properties import (
    DEFAULT_PROPERTIES,
    DEFAULT_PROPERTY_NAMES,
    IDENTITY_PROPERTIES,
    MAX_LIST_ITEMS,
    MAX_PATTERN_LENGTH,
    MAX_STRING_LENGTH,
    SYSTEM_FIELDS,
    PropertyDefinition,
    definition_for,
    value_problem,
)


def define(type_: str = "string", **constraints: Any) -> PropertyDefinition:
    return PropertyDefinition.model_validate({"name": "p", "type": type_, **constraints})


def refused(type_: str = "string", **constraints: Any) -> str:
    with pytest.raises(ValidationError) as info:
        define(type_, **constraints)
    return str(info.value)


# --- the default properties ----------------------------------------------------------------


def test_default_properties_are_exactly_the_default_names() -> None:
    assert tuple(DEFAULT_PROPERTIES) == DEFAULT_PROPERTY_NAMES
    assert all(DEFAULT_PROPERTIES[n].name == n for n in DEFAULT_PROPERTY_NAMES)


def test_identity_properties_are_default_strings_and_nothing_is_required() -> None:
    assert set(IDENTITY_PROPERTIES) == {"customer_id", "email", "phone"}
    for name in IDENTITY_PROPERTIES:
        assert DEFAULT_PROPERTIES[name].type == "string"
    assert not any(d.required for d in DEFAULT_PROPERTIES.values())


def test_system_fields_are_not_default_properties() -> None:
    assert not set(SYSTEM_FIELDS) & set(DEFAULT_PROPERTY_NAMES)


def test_birthday_is_a_date() -> None:
    assert DEFAULT_PROPERTIES["birthday"].type == "date"


@pytest.mark.parametrize("value", ["a@b.co", "first.last+tag@example.org", "x@sub.domain.travel"])
def test_email_accepts_addresses(value: str) -> None:
    assert value_problem(DEFAULT_PROPERTIES["email"], value) is None


@pytest.mark.parametrize(
    "value", ["plain", "a@b", "@b.co", "a@b.co ", " a@b.co", "a b@c.de", "a@b.co\nx"]
)
def test_email_refuses_non_addresses_whole_value(value: str) -> None:
    problem = value_problem(DEFAULT_PROPERTIES["email"], value)
    assert problem is not None
    assert problem == "is not an email address"


def test_email_refuses_longer_than_254() -> None:
    value = "a" * 250 + "@b.co"
    assert (
        value_problem(DEFAULT_PROPERTIES["email"], value) == "value is longer than max_length 254"
    )


@pytest.mark.parametrize("value", ["+47 22 33 44 55", "(555) 123-4567", "123"])
def test_phone_accepts_numbers(value: str) -> None:
    assert value_problem(DEFAULT_PROPERTIES["phone"], value) is None


@pytest.mark.parametrize("value", ["12", "call me", "+47-abc-123"])
def test_phone_refuses_non_numbers(value: str) -> None:
    assert value_problem(DEFAULT_PROPERTIES["phone"], value) is not None


# --- PropertyDefinition rules --------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "plan", "plan.tier", "a-b_c9", "Z" * 64])
def test_definition_accepts_names(name: str) -> None:
    assert PropertyDefinition(name=name, type="string").name == name


@pytest.mark.parametrize("name", ["1plan", "_plan", ".plan", "a b", "plan!", "pl$an", "é"])
def test_definition_refuses_names(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        PropertyDefinition(name=name, type="string")
    assert "name: a letter" in str(info.value)


@pytest.mark.parametrize("name", ["", "a" * 65])
def test_definition_refuses_name_lengths(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        PropertyDefinition(name=name, type="string")
    assert "name" in str(info.value)


def test_definition_refuses_a_name_with_a_trailing_newline() -> None:
    with pytest.raises(ValidationError):
        PropertyDefinition(name="plan\n", type="string")


def test_definition_refuses_unknown_type_and_unknown_fields() -> None:
    assert "type" in refused("object")
    assert "extra" in refused("string", unit="cm").lower()


def test_enum_needs_allowed_values() -> None:
    assert "allowed_values: an enum needs its allowed values" in refused("enum")
    assert "allowed_values" in refused("enum", allowed_values=[])
    assert define("enum", allowed_values=["a"]).allowed_values == ["a"]


@pytest.mark.parametrize("type_", ["string", "boolean", "date", "datetime", "list"])
@pytest.mark.parametrize("bound", ["min", "max"])
def test_min_max_only_for_numbers(type_: str, bound: str) -> None:
    assert f"min/max: only for integer or number, not {type_}" in refused(type_, **{bound: 1})


def test_min_max_refused_for_enum() -> None:
    assert "min/max" in refused("enum", allowed_values=["a"], min=1)


@pytest.mark.parametrize("type_", ["integer", "number"])
def test_min_max_for_numbers(type_: str) -> None:
    definition = define(type_, min=-1, max=1)
    assert (definition.min, definition.max) == (-1, 1)
    assert define(type_, min=3, max=3).min == 3
    assert "min: greater than max" in refused(type_, min=2, max=1)


@pytest.mark.parametrize(
    "bounds", [{"min": float("inf")}, {"max": float("-inf")}, {"min": float("nan"), "max": 1}]
)
def test_non_finite_bounds_are_refused(bounds: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        define("number", **bounds)


@pytest.mark.parametrize("type_", ["integer", "number", "boolean", "date", "datetime"])
@pytest.mark.parametrize("bound", ["min_length", "max_length"])
def test_lengths_only_for_string_or_list(type_: str, bound: str) -> None:
    assert f"min_length/max_length: only for string or list, not {type_}" in refused(
        type_, **{bound: 1}
    )


def test_lengths_refused_for_enum() -> None:
    assert "min_length/max_length" in refused("enum", allowed_values=["a"], max_length=3)


@pytest.mark.parametrize("type_", ["string", "list"])
def test_lengths_for_string_and_list(type_: str) -> None:
    assert define(type_, min_length=0, max_length=1).max_length == 1
    assert define(type_, min_length=2, max_length=2).min_length == 2
    assert "min_length: greater than max_length" in refused(type_, min_length=3, max_length=2)
    assert "min_length" in refused(type_, min_length=-1)
    assert "max_length" in refused(type_, max_length=0)


@pytest.mark.parametrize("type_", ["integer", "number", "boolean", "date", "datetime"])
def test_pattern_only_for_string_or_list(type_: str) -> None:
    assert f"pattern: only for string or list, not {type_}" in refused(type_, pattern="a")


def test_pattern_rules() -> None:
    assert define("string", pattern="[a-z]+").pattern == "[a-z]+"
    assert define("list", pattern="[a-z]+").pattern == "[a-z]+"
    assert "pattern: not a valid regular expression" in refused("string", pattern="(")
    assert "pattern" in refused("string", pattern="")
    assert "pattern" in refused("string", pattern="a" * (MAX_PATTERN_LENGTH + 1))
    assert define("string", pattern="a" * MAX_PATTERN_LENGTH).pattern


@pytest.mark.parametrize("type_", ["string", "integer", "number", "boolean", "date", "datetime"])
def test_max_items_only_for_list(type_: str) -> None:
    assert f"max_items: only for list, not {type_}" in refused(type_, max_items=3)


def test_max_items_at_least_one() -> None:
    assert define("list", max_items=1).max_items == 1
    assert "max_items" in refused("list", max_items=0)


@pytest.mark.parametrize("type_", ["integer", "number", "boolean", "date", "datetime"])
def test_allowed_values_only_for_enum_string_or_list(type_: str) -> None:
    assert f"allowed_values: only for enum, string or list, not {type_}" in refused(
        type_, allowed_values=["1"]
    )


@pytest.mark.parametrize("type_", ["enum", "string", "list"])
def test_allowed_values_for_enum_string_and_list(type_: str) -> None:
    assert define(type_, allowed_values=["a", "b"]).allowed_values == ["a", "b"]


def test_description_limit() -> None:
    assert define(description="d" * 1000).description == "d" * 1000
    assert "description" in refused(description="d" * 1001)


# --- value_problem: strings and enums ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [(1, "a number"), (1.5, "a number"), (True, "a boolean"), (None, "null"), ([], "a list")],
)
@pytest.mark.parametrize("type_", ["string", "enum"])
def test_string_and_enum_need_a_string(type_: str, value: Any, kind: str) -> None:
    definition = define(type_, allowed_values=["a"]) if type_ == "enum" else define(type_)
    assert value_problem(definition, value) == f"expected a string, got {kind}"


def test_string_object_is_named() -> None:
    assert value_problem(define(), {"a": 1}) == "expected a string, got an object"


def test_string_without_constraints() -> None:
    assert value_problem(define(), "") is None
    assert value_problem(define(), "x" * MAX_STRING_LENGTH) is None
    assert (
        value_problem(define(), "x" * (MAX_STRING_LENGTH + 1))
        == f"value is longer than {MAX_STRING_LENGTH} characters"
    )


def test_string_lengths() -> None:
    definition = define(min_length=2, max_length=4)
    assert value_problem(definition, "ab") is None
    assert value_problem(definition, "abcd") is None
    assert value_problem(definition, "a") == "value is shorter than min_length 2"
    assert value_problem(definition, "abcde") == "value is longer than max_length 4"


def test_max_length_above_the_global_cap_still_caps() -> None:
    definition = define(max_length=10_000)
    assert value_problem(definition, "x" * (MAX_STRING_LENGTH + 1)) is not None


@pytest.mark.parametrize(
    ("value", "fits"),
    [("abc", True), ("a", True), ("abc1", False), ("1abc", False), ("ABC", False), ("", False)],
)
def test_string_pattern_must_match_the_whole_value(value: str, fits: bool) -> None:
    problem = value_problem(define(pattern="[a-z]+"), value)
    assert (problem is None) is fits
    if not fits:
        assert problem == "value does not match pattern '[a-z]+'"


def test_pattern_alternation_is_matched_whole() -> None:
    definition = define(pattern="a|ab")
    assert value_problem(definition, "ab") is None
    assert value_problem(definition, "abc") is not None


def test_string_allowed_values() -> None:
    definition = define(allowed_values=["free", "pro"])
    assert value_problem(definition, "pro") is None
    assert value_problem(definition, "Pro") == "value is not one of ['free', 'pro']"


def test_enum_allowed_values() -> None:
    definition = define("enum", allowed_values=["free", "pro"])
    assert value_problem(definition, "free") is None
    assert value_problem(definition, "gold") == "value is not one of ['free', 'pro']"
    assert value_problem(definition, "") is not None


# --- value_problem: numbers ----------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -5, 10**15])
def test_integer_accepts_ints(value: int) -> None:
    assert value_problem(define("integer"), value) is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [(1.0, "a number"), (1.5, "a number"), (True, "a boolean"), ("1", "a string"), (None, "null")],
)
def test_integer_refuses_non_ints(value: Any, kind: str) -> None:
    assert value_problem(define("integer"), value) == f"expected an integer, got {kind}"


def test_integer_range() -> None:
    definition = define("integer", min=0, max=10)
    assert value_problem(definition, 0) is None
    assert value_problem(definition, 10) is None
    assert value_problem(definition, -1) == "is less than min 0"
    assert value_problem(definition, 11) == "is greater than max 10"


@pytest.mark.parametrize("value", [0, 1.5, -2.25, 10**15])
def test_number_accepts_ints_and_floats(value: float) -> None:
    assert value_problem(define("number"), value) is None


@pytest.mark.parametrize(
    ("value", "kind"), [(False, "a boolean"), ("1.5", "a string"), ([1], "a list"), (None, "null")]
)
def test_number_refuses_non_numbers(value: Any, kind: str) -> None:
    assert value_problem(define("number"), value) == f"expected a number, got {kind}"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_number_refuses_non_finite(value: float) -> None:
    assert value_problem(define("number"), value) == "expected a finite number"


def test_number_range_words_fractions_and_whole_bounds() -> None:
    definition = define("number", min=0.5, max=2)
    assert value_problem(definition, 0.5) is None
    assert value_problem(definition, 2.0) is None
    assert value_problem(definition, 0.49) == "is less than min 0.5"
    assert value_problem(definition, 2.01) == "is greater than max 2"


def test_only_min_or_only_max() -> None:
    assert value_problem(define("number", min=1), 10**9) is None
    assert value_problem(define("number", max=1), -(10**9)) is None
    assert value_problem(define("number", min=1), 0) == "is less than min 1"
    assert value_problem(define("number", max=-1), 0) == "is greater than max -1"


# --- value_problem: booleans, dates, date-times --------------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_boolean_accepts_booleans(value: bool) -> None:
    assert value_problem(define("boolean"), value) is None


@pytest.mark.parametrize(
    ("value", "kind"), [(1, "a number"), (0, "a number"), ("true", "a string"), (None, "null")]
)
def test_boolean_refuses_non_booleans(value: Any, kind: str) -> None:
    assert value_problem(define("boolean"), value) == f"expected a boolean, got {kind}"


@pytest.mark.parametrize("value", ["2024-01-31", "1900-01-01", "2024-02-29"])
def test_date_accepts_yyyy_mm_dd(value: str) -> None:
    assert value_problem(define("date"), value) is None


@pytest.mark.parametrize(
    "value",
    ["20240131", "2024-1-31", "2024-02-30", "2023-02-29", "2024-13-01", "2024-01-31T00:00", "x"],
)
def test_date_refuses_other_text(value: str) -> None:
    assert value_problem(define("date"), value) == "expected a date (YYYY-MM-DD)"


def test_date_refuses_an_iso_week_date() -> None:
    assert value_problem(define("date"), "2024-W05-3") == "expected a date (YYYY-MM-DD)"


@pytest.mark.parametrize("value", [20240131, None, True])
def test_date_needs_a_string(value: Any) -> None:
    problem = value_problem(define("date"), value)
    assert problem is not None
    assert problem.startswith("expected a date (YYYY-MM-DD), got ")


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-31T10:20:30Z",
        "2024-01-31T10:20:30.123Z",
        "2024-01-31T10:20:30+02:00",
        "2024-01-31T10:20:30",
    ],
)
def test_datetime_accepts_iso_8601(value: str) -> None:
    assert value_problem(define("datetime"), value) is None


@pytest.mark.parametrize("value", ["yesterday", "2024-01-32T00:00:00Z", "31/01/2024 10:00", ""])
def test_datetime_refuses_other_text(value: str) -> None:
    assert value_problem(define("datetime"), value) == "expected an ISO 8601 date-time"


def test_datetime_needs_a_string() -> None:
    assert (
        value_problem(define("datetime"), 1706700000)
        == "expected an ISO 8601 date-time, got a number"
    )


# --- value_problem: lists ------------------------------------------------------------------


def test_list_accepts_strings() -> None:
    assert value_problem(define("list"), []) is None
    assert value_problem(define("list"), ["a", "b"]) is None


@pytest.mark.parametrize(
    ("value", "kind"), [("a", "a string"), ({"a": 1}, "an object"), (None, "null")]
)
def test_list_needs_a_list(value: Any, kind: str) -> None:
    assert value_problem(define("list"), value) == f"expected a list of strings, got {kind}"


def test_list_items_must_be_strings() -> None:
    assert value_problem(define("list"), ["a", 2]) == "item 1: expected a string, got a number"
    assert value_problem(define("list"), [None]) == "item 0: expected a string, got null"


def test_list_max_items() -> None:
    definition = define("list", max_items=2)
    assert value_problem(definition, ["a", "b"]) is None
    assert value_problem(definition, ["a", "b", "c"]) == "has 3 items, more than max_items 2"


def test_list_default_item_cap() -> None:
    assert value_problem(define("list"), ["a"] * MAX_LIST_ITEMS) is None
    assert (
        value_problem(define("list"), ["a"] * (MAX_LIST_ITEMS + 1))
        == f"has {MAX_LIST_ITEMS + 1} items, more than max_items {MAX_LIST_ITEMS}"
    )


def test_list_item_constraints_name_the_item() -> None:
    definition = define(
        "list", min_length=2, max_length=3, pattern="[a-z]+", allowed_values=["ab", "abc", "xyz"]
    )
    assert value_problem(definition, ["ab", "xyz"]) is None
    assert value_problem(definition, ["ab", "a"]) == "item 1 is shorter than min_length 2"
    assert value_problem(definition, ["abcd"]) == "item 0 is longer than max_length 3"
    assert value_problem(definition, ["ab", "A1"]) == "item 1 does not match pattern '[a-z]+'"
    assert value_problem(definition, ["ab", "zz"]) == ("item 1 is not one of ['ab', 'abc', 'xyz']")
    assert value_problem(define("list"), ["x" * (MAX_STRING_LENGTH + 1)]) == (
        f"item 0 is longer than {MAX_STRING_LENGTH} characters"
    )


# --- reasons never quote the value ---------------------------------------------------------

SECRET = "Zq9secretVALUE"


@pytest.mark.parametrize(
    ("definition", "value"),
    [
        (define(max_length=5), SECRET),
        (define(min_length=50), SECRET),
        (define(pattern="[0-9]+"), SECRET),
        (define(allowed_values=["a"]), SECRET),
        (define("enum", allowed_values=["a"]), SECRET),
        (define(), SECRET * 1000),
        (define("integer"), SECRET),
        (define("number"), SECRET),
        (define("boolean"), SECRET),
        (define("date"), SECRET),
        (define("date"), SECRET[:10]),
        (define("datetime"), SECRET),
        (define("list"), SECRET),
        (define("list", pattern="[0-9]+"), ["1", SECRET]),
        (define("list", allowed_values=["a"]), [SECRET]),
        (define("list", max_items=1), [SECRET, SECRET]),
        (DEFAULT_PROPERTIES["email"], SECRET),
        (DEFAULT_PROPERTIES["phone"], SECRET),
        (DEFAULT_PROPERTIES["birthday"], SECRET),
    ],
)
def test_reasons_never_contain_the_value(definition: PropertyDefinition, value: Any) -> None:
    problem = value_problem(definition, value)
    assert problem is not None
    assert SECRET[:10] not in problem


def test_numeric_reasons_never_contain_the_value() -> None:
    problem = value_problem(define("integer", max=10), 987654321)
    assert problem is not None
    assert "987654321" not in problem


# --- definition_for ------------------------------------------------------------------------


def test_definition_for_default_custom_and_undefined() -> None:
    plan = PropertyDefinition(name="plan", type="string")
    custom = {"plan": plan}
    assert definition_for("email", custom) is DEFAULT_PROPERTIES["email"]
    assert definition_for("plan", custom) is plan
    assert definition_for("nope", custom) is None
    assert definition_for("plan", {}) is None


def test_definition_for_prefers_the_default_definition() -> None:
    shadow = PropertyDefinition(name="email", type="integer")
    assert definition_for("email", {"email": shadow}) is DEFAULT_PROPERTIES["email"]
