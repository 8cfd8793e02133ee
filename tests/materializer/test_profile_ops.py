"""Unit tests for materializer/profile_ops.py: identify traits and served configs -> operations
and rejections, and management commands -> operations."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from materializer.decode import WireEvent
from materializer.profile_ops import (
    MAX_CONFIG_KEY_LENGTH,
    ProfileOps,
    canonical_traits,
    command_operations,
    configs_served,
    served_config,
    trait_operations,
)
from profilestore.wire import Op
from schemas.commands import UserCommand
from schemas.properties import MAX_LIST_ITEMS, SYSTEM_FIELDS, PropertyDefinition
from tests.support import builders

TS = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

DEFS: dict[str, PropertyDefinition] = {
    d.name: d
    for d in (
        PropertyDefinition(name="plan", type="enum", allowed_values=["free", "pro"]),
        PropertyDefinition(name="tier", type="string", required=True),
        PropertyDefinition(name="logins", type="integer", min=0, max=100),
        PropertyDefinition(name="score", type="number", min=-1.5),
        PropertyDefinition(name="balance", type="number"),
        PropertyDefinition(name="devices", type="list", max_items=3, pattern="[a-z]+"),
        PropertyDefinition(name="labels", type="list"),
        PropertyDefinition(name="vip", type="boolean"),
    )
}


def ops_of(traits: dict[str, Any], defs: dict[str, PropertyDefinition] | None = None) -> list[Op]:
    result = trait_operations(traits, DEFS if defs is None else defs)
    assert result.rejections == []
    return result.ops


def rejected(traits: dict[str, Any]) -> ProfileOps:
    result = trait_operations(traits, DEFS)
    assert result.rejections
    return result


def make_event(**fields: Any) -> WireEvent:
    return builders.make_event(**{"event": "$config_served", **fields})


# --- plain traits and $set ------------------------------------------------------------------


def test_plain_traits_are_sets_with_json_values() -> None:
    ops = ops_of({"plan": "pro", "logins": 3, "vip": True, "labels": ["a"], "extra": {"x": 1}})
    assert ops == [
        {"o": "s", "k": "plan", "v": '"pro"'},
        {"o": "s", "k": "logins", "v": "3"},
        {"o": "s", "k": "vip", "v": "true"},
        {"o": "s", "k": "labels", "v": '["a"]'},
        {"o": "s", "k": "extra", "v": '{"x":1}'},
    ]


def test_undefined_properties_are_kept_as_sent() -> None:
    ops = ops_of({"anything": [1, "two", None]}, {})
    assert ops == [{"o": "s", "k": "anything", "v": '[1,"two",null]'}]


def test_set_operation_is_a_set() -> None:
    assert ops_of({"$set": {"plan": "free"}}) == [{"o": "s", "k": "plan", "v": '"free"'}]


def test_set_once_operation() -> None:
    assert ops_of({"$set_once": {"plan": "free", "first_seen_on": "ios"}}) == [
        {"o": "o", "k": "plan", "v": '"free"'},
        {"o": "o", "k": "first_seen_on", "v": '"ios"'},
    ]


def test_set_once_value_is_checked() -> None:
    result = rejected({"$set_once": {"plan": "gold"}})
    assert result.ops == []
    assert result.rejections == [("traits.$set_once.plan", "value is not one of ['free', 'pro']")]


def test_set_once_null_never_unsets() -> None:
    result = trait_operations({"$set_once": {"plan": None}}, DEFS)
    assert not [op for op in result.ops if op["o"] == "u"]


def test_plain_traits_come_before_operations_in_a_fixed_order() -> None:
    traits = {
        "$remove": {"labels": ["x"]},
        "$prepend": {"labels": ["p"]},
        "$append": {"labels": ["a"]},
        "$union_front": {"labels": ["f"]},
        "$union": {"labels": ["y"]},
        "$increment": {"logins": 1},
        "$unset": ["vip"],
        "$set_once": {"a": 1},
        "$set": {"b": 2},
        "plain": 3,
    }
    codes = [op["o"] for op in ops_of(traits)]
    assert codes == ["s", "s", "o", "u", "i", "+", "f", "a", "p", "-"]


@pytest.mark.parametrize("where", ["plain", "$set"])
def test_null_unsets(where: str) -> None:
    traits: dict[str, Any] = {"plan": None} if where == "plain" else {"$set": {"plan": None}}
    assert ops_of(traits) == [{"o": "u", "k": "plan"}]


def test_null_on_a_required_property_is_rejected() -> None:
    result = rejected({"tier": None, "$set": {"tier": None}})
    assert result.ops == []
    assert result.rejections == [
        ("traits.tier", "is required and cannot be unset"),
        ("traits.$set.tier", "is required and cannot be unset"),
    ]


def test_required_property_can_be_set() -> None:
    assert ops_of({"tier": "gold"}) == [{"o": "s", "k": "tier", "v": '"gold"'}]


# --- system fields, unknown operations, names -----------------------------------------------


@pytest.mark.parametrize("name", SYSTEM_FIELDS)
def test_system_fields_cannot_be_written(name: str) -> None:
    result = trait_operations(
        {
            name: "x",
            "$set": {name: "x"},
            "$set_once": {name: "x"},
            "$unset": [name],
            "$increment": {name: 1},
            "$union": {name: ["x"]},
            "$union_front": {name: ["x"]},
            "$append": {name: ["x"]},
            "$prepend": {name: ["x"]},
            "$remove": {name: ["x"]},
        },
        DEFS,
    )
    assert result.ops == []
    reason = f"{name} cannot be written"
    assert result.rejections == [
        (f"traits.{name}", reason),
        (f"traits.$set.{name}", reason),
        (f"traits.$set_once.{name}", reason),
        (f"traits.$unset.{name}", reason),
        (f"traits.$increment.{name}", reason),
        (f"traits.$union.{name}", reason),
        (f"traits.$union_front.{name}", reason),
        (f"traits.$append.{name}", reason),
        (f"traits.$prepend.{name}", reason),
        (f"traits.$remove.{name}", reason),
    ]


def test_system_field_null_is_refused_not_unset() -> None:
    result = trait_operations({"user_id": None}, DEFS)
    assert result.ops == []
    assert result.rejections == [("traits.user_id", "user_id cannot be written")]


def test_unknown_dollar_operation_is_refused() -> None:
    result = trait_operations({"$push": {"labels": ["a"]}, "plan": "pro"}, DEFS)
    assert result.ops == [{"o": "s", "k": "plan", "v": '"pro"'}]
    assert result.rejections == [("traits.$push", "unknown operation")]


def test_dollar_names_inside_an_operation_are_refused() -> None:
    result = trait_operations({"$set": {"$set": {"a": 1}}}, DEFS)
    assert result.ops == []
    assert result.rejections == [("traits.$set.$set", "$set cannot be written")]


def test_empty_name_is_refused() -> None:
    result = trait_operations({"": 1, "$unset": [""]}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        ("traits.", "an empty name cannot be written"),
        ("traits.$unset.", "an empty name cannot be written"),
    ]


@pytest.mark.parametrize("key", ["$set", "$set_once", "$increment", "$union", "$remove"])
@pytest.mark.parametrize("value", [["plan"], "plan", 1, None])
def test_operations_need_an_object(key: str, value: Any) -> None:
    result = trait_operations({key: value}, DEFS)
    assert result.ops == []
    assert result.rejections == [(f"traits.{key}", "expected an object of property names")]


@pytest.mark.parametrize("value", [{"plan": True}, "plan", ["plan", 1], None])
def test_unset_needs_a_list_of_names(value: Any) -> None:
    result = trait_operations({"$unset": value}, DEFS)
    assert result.ops == []
    assert result.rejections == [("traits.$unset", "expected a list of property names")]


def test_unset_names() -> None:
    assert ops_of({"$unset": ["plan", "undefined"]}) == [
        {"o": "u", "k": "plan"},
        {"o": "u", "k": "undefined"},
    ]


def test_unset_required_is_rejected_and_others_still_apply() -> None:
    result = trait_operations({"$unset": ["tier", "plan"]}, DEFS)
    assert result.ops == [{"o": "u", "k": "plan"}]
    assert result.rejections == [("traits.$unset.tier", "is required and cannot be unset")]


# --- Segment aliases ------------------------------------------------------------------------


def test_canonical_traits_maps_segment_names() -> None:
    traits = {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "customerId": "c-1",
        "address": {"city": "Oslo", "country": "NO", "street": "Main 1"},
        "plan": "pro",
    }
    assert canonical_traits(traits) == {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "customer_id": "c-1",
        "city": "Oslo",
        "country": "NO",
        "address": {"street": "Main 1"},
        "plan": "pro",
    }


def test_canonical_traits_drops_an_emptied_address_and_keeps_a_non_object_one() -> None:
    assert canonical_traits({"address": {"city": "Oslo"}}) == {"city": "Oslo"}
    assert canonical_traits({"address": "Main 1, Oslo"}) == {"address": "Main 1, Oslo"}


def test_canonical_traits_does_not_change_its_input() -> None:
    traits = {"address": {"city": "Oslo", "zip": "0150"}}
    canonical_traits(traits)
    assert traits == {"address": {"city": "Oslo", "zip": "0150"}}


def test_segment_aliases_become_default_property_sets() -> None:
    ops = ops_of({"firstName": "Ada", "address": {"city": "Oslo", "country": "NO"}})
    assert ops == [
        {"o": "s", "k": "first_name", "v": '"Ada"'},
        {"o": "s", "k": "city", "v": '"Oslo"'},
        {"o": "s", "k": "country", "v": '"NO"'},
    ]


def test_segment_aliases_inside_operations() -> None:
    ops = ops_of(
        {
            "$set": {"lastName": "L", "address": {"city": "Oslo"}},
            "$set_once": {"customerId": "c-1"},
            "$unset": ["firstName"],
        }
    )
    assert ops == [
        {"o": "s", "k": "last_name", "v": '"L"'},
        {"o": "s", "k": "city", "v": '"Oslo"'},
        {"o": "o", "k": "customer_id", "v": '"c-1"'},
        {"o": "u", "k": "first_name"},
    ]


def test_aliased_values_are_checked_against_the_default_definition() -> None:
    result = trait_operations({"firstName": 5, "address": {"country": "x" * 65}}, {})
    assert result.ops == []
    assert result.rejections == [
        ("traits.first_name", "expected a string, got a number"),
        ("traits.country", "value is longer than max_length 64"),
    ]


# --- constraint violations become rejections ------------------------------------------------


def test_default_property_constraints() -> None:
    result = trait_operations(
        {"email": "not-an-email", "birthday": "1990-13-01", "city": "Oslo"}, {}
    )
    assert result.ops == [{"o": "s", "k": "city", "v": '"Oslo"'}]
    assert [f for f, _ in result.rejections] == ["traits.email", "traits.birthday"]
    assert result.rejections[1][1] == "expected a date (YYYY-MM-DD)"


@pytest.mark.parametrize(
    ("traits", "rejection"),
    [
        ({"plan": "gold"}, ("traits.plan", "value is not one of ['free', 'pro']")),
        ({"logins": 101}, ("traits.logins", "is greater than max 100")),
        ({"logins": 1.5}, ("traits.logins", "expected an integer, got a number")),
        ({"score": -2}, ("traits.score", "is less than min -1.5")),
        ({"vip": "yes"}, ("traits.vip", "expected a boolean, got a string")),
        (
            {"devices": ["a", "b", "c", "d"]},
            ("traits.devices", "has 4 items, more than max_items 3"),
        ),
        (
            {"$set": {"devices": ["IOS"]}},
            ("traits.$set.devices", "item 0 does not match pattern '[a-z]+'"),
        ),
    ],
)
def test_constraint_violations_are_rejections_not_ops(
    traits: dict[str, Any], rejection: tuple[str, str]
) -> None:
    result = trait_operations(traits, DEFS)
    assert result.ops == []
    assert result.rejections == [rejection]


def test_one_bad_value_does_not_stop_the_others() -> None:
    result = trait_operations({"plan": "gold", "vip": False, "$set": {"logins": -1, "x": 1}}, DEFS)
    assert result.ops == [{"o": "s", "k": "vip", "v": "false"}, {"o": "s", "k": "x", "v": "1"}]
    assert [f for f, _ in result.rejections] == ["traits.plan", "traits.$set.logins"]


def test_rejection_reasons_never_contain_the_value() -> None:
    secret = "Zq9secretVALUE"
    result = trait_operations(
        {
            "plan": secret,
            "logins": secret,
            "email": secret,
            "$increment": {"logins": secret},
            "$union": {"devices": [secret]},
        },
        DEFS,
    )
    assert len(result.rejections) == 5
    assert not any(secret in reason for _, reason in result.rejections)


# --- $increment -----------------------------------------------------------------------------


def test_increment_carries_bounds_from_min_and_max() -> None:
    assert ops_of({"$increment": {"logins": 2, "score": 0.5, "balance": -3, "free": 1}}) == [
        {"o": "i", "k": "logins", "d": 2, "lo": 0, "hi": 100},
        {"o": "i", "k": "score", "d": 0.5, "lo": -1.5},
        {"o": "i", "k": "balance", "d": -3},
        {"o": "i", "k": "free", "d": 1},
    ]


@pytest.mark.parametrize("delta", ["1", True, None, [1], {"by": 1}])
def test_increment_must_be_a_number(delta: Any) -> None:
    result = trait_operations({"$increment": {"balance": delta}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        ("traits.$increment.balance", "an increment must be a finite number")
    ]


@pytest.mark.parametrize("delta", [1.5, 1.0])
def test_integer_property_takes_whole_increments(delta: float) -> None:
    result = trait_operations({"$increment": {"logins": delta}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        ("traits.$increment.logins", "an integer property takes whole increments")
    ]


@pytest.mark.parametrize(
    ("name", "type_"),
    [("plan", "enum"), ("vip", "boolean"), ("labels", "list"), ("city", "string")],
)
def test_cannot_increment_a_non_numeric_property(name: str, type_: str) -> None:
    result = trait_operations({"$increment": {name: 1}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        (f"traits.$increment.{name}", f"cannot increment a {type_} property")
    ]


# --- $union / $remove -----------------------------------------------------------------------


def test_union_carries_max_from_max_items_else_the_list_limit() -> None:
    assert ops_of({"$union": {"devices": ["ios", "web"], "labels": ["a"], "free": ["b"]}}) == [
        {"o": "+", "k": "devices", "items": ['"ios"', '"web"'], "max": 3},
        {"o": "+", "k": "labels", "items": ['"a"'], "max": MAX_LIST_ITEMS},
        {"o": "+", "k": "free", "items": ['"b"'], "max": MAX_LIST_ITEMS},
    ]


def test_union_may_send_more_items_than_max_items() -> None:
    """max_items caps the stored list (the apply script keeps at most `max`), not the union."""
    assert ops_of({"$union": {"devices": ["a", "b", "c", "d"]}}) == [
        {"o": "+", "k": "devices", "items": ['"a"', '"b"', '"c"', '"d"'], "max": 3}
    ]


def test_union_items_are_checked() -> None:
    result = trait_operations({"$union": {"devices": ["ios", "Android"]}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        ("traits.$union.devices", "item 1 does not match pattern '[a-z]+'")
    ]


def test_remove_items_are_not_checked_against_the_definition() -> None:
    assert ops_of({"$remove": {"devices": ["Android", "X", "Y", "Z"]}}) == [
        {"o": "-", "k": "devices", "items": ['"Android"', '"X"', '"Y"', '"Z"']}
    ]


LIST_KEYS = ["$union", "$union_front", "$append", "$prepend", "$remove"]


@pytest.mark.parametrize("key", LIST_KEYS)
@pytest.mark.parametrize(
    "items",
    [
        "ios",
        ["ios", None],
        ["ios", ["nested"]],
        [{"a": "b"}],
        [math.nan],
        [math.inf],
        [2**64],
        None,
        {"a": "b"},
    ],
)
def test_list_operations_need_a_list_of_json_scalars(key: str, items: Any) -> None:
    result = trait_operations({key: {"free": items}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        (f"traits.{key}.free", "expected a list of strings, finite numbers or booleans")
    ]


@pytest.mark.parametrize(
    ("key", "verb"),
    [
        ("$union", "union into"),
        ("$union_front", "union into"),
        ("$append", "append to"),
        ("$prepend", "prepend to"),
        ("$remove", "remove from"),
    ],
)
@pytest.mark.parametrize(
    ("name", "type_"), [("plan", "enum"), ("logins", "integer"), ("city", "string")]
)
def test_list_operations_only_on_list_properties(
    key: str, verb: str, name: str, type_: str
) -> None:
    result = trait_operations({key: {name: ["a"]}}, DEFS)
    assert result.ops == []
    assert result.rejections == [(f"traits.{key}.{name}", f"cannot {verb} a {type_} property")]


# --- $union_front / $append / $prepend: JSON scalar items -----------------------------------


@pytest.mark.parametrize(
    ("key", "code"),
    [("$union", "+"), ("$union_front", "f"), ("$append", "a"), ("$prepend", "p"), ("$remove", "-")],
)
def test_list_items_are_json_scalars_sent_as_json(key: str, code: str) -> None:
    values = ["a/b", 1, 1.5, 12345678901234, 123456789012345678, 0.30000000000000004, True, False]
    (op,) = ops_of({key: {"free": values}})
    assert op["o"] == code
    assert op["items"] == [
        '"a/b"',
        "1",
        "1.5",
        "12345678901234",
        "123456789012345678",
        "0.30000000000000004",
        "true",
        "false",
    ]
    assert [orjson.loads(item) for item in op["items"]] == values


def test_an_integral_float_item_is_the_integer() -> None:
    """1.0 and 1 are one JSON number: the script compares items by their JSON text."""
    (op,) = ops_of({"$union": {"free": [1.0, -3.0, 2.0**60, 0.5]}})
    assert op["items"] == ["1", "-3", orjson.dumps(2.0**60).decode(), "0.5"]


def test_append_prepend_union_front_carry_max_and_check_items() -> None:
    assert ops_of(
        {
            "$union_front": {"devices": ["ios"]},
            "$append": {"devices": ["ios", "ios"], "free": [1]},
            "$prepend": {"labels": ["x"]},
        }
    ) == [
        {"o": "f", "k": "devices", "items": ['"ios"'], "max": 3},
        {"o": "a", "k": "devices", "items": ['"ios"', '"ios"'], "max": 3},
        {"o": "a", "k": "free", "items": ["1"], "max": MAX_LIST_ITEMS},
        {"o": "p", "k": "labels", "items": ['"x"'], "max": MAX_LIST_ITEMS},
    ]


@pytest.mark.parametrize("key", ["$union", "$union_front", "$append", "$prepend"])
def test_a_defined_list_takes_its_definition_items_only(key: str) -> None:
    result = trait_operations({key: {"devices": ["ios", 7], "labels": [True]}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        (f"traits.{key}.devices", "item 1: expected a string, got a number"),
        (f"traits.{key}.labels", "item 0: expected a string, got a boolean"),
    ]


@pytest.mark.parametrize("key", ["$union_front", "$append", "$prepend"])
def test_new_list_items_are_checked_against_the_pattern(key: str) -> None:
    result = trait_operations({key: {"devices": ["IOS"]}}, DEFS)
    assert result.ops == []
    assert result.rejections == [
        (f"traits.{key}.devices", "item 0 does not match pattern '[a-z]+'")
    ]


def test_remove_takes_any_scalar_item_even_from_a_defined_list() -> None:
    assert ops_of({"$remove": {"devices": [1, True]}}) == [
        {"o": "-", "k": "devices", "items": ["1", "true"]}
    ]


# --- $clear_all -----------------------------------------------------------------------------


def test_clear_all_keeps_the_required_properties() -> None:
    result = trait_operations({"$clear_all": True}, DEFS)
    assert result.ops == [] and result.rejections == []
    assert result.clear_keeping == ["tier"]


def test_clear_all_with_no_definitions_keeps_nothing() -> None:
    assert trait_operations({"$clear_all": True}, {}).clear_keeping == []


def test_clear_all_false_clears_nothing() -> None:
    result = trait_operations({"$clear_all": False}, DEFS)
    assert result.clear_keeping is None and result.rejections == []


@pytest.mark.parametrize("value", ["-", 1, None, {}, ["x"]])
def test_clear_all_takes_true_only(value: Any) -> None:
    result = trait_operations({"$clear_all": value, "plan": "pro"}, DEFS)
    assert result.clear_keeping is None
    assert result.ops == [{"o": "s", "k": "plan", "v": '"pro"'}]
    assert result.rejections == [("traits.$clear_all", "expected true")]


# --- profileOps: the same syntax under another field path ------------------------------------


def test_profile_ops_name_their_own_field_path() -> None:
    result = trait_operations(
        {
            "plan": "gold",
            "vip": True,
            "$set": {"user_id": "x"},
            "$append": {"devices": [1]},
            "$unset": ["tier"],
            "$bogus": 1,
            "$clear_all": "yes",
        },
        DEFS,
        "profileOps",
    )
    assert result.ops == [{"o": "s", "k": "vip", "v": "true"}]
    assert result.rejections == [
        ("profileOps.plan", "value is not one of ['free', 'pro']"),
        ("profileOps.$bogus", "unknown operation"),
        ("profileOps.$set.user_id", "user_id cannot be written"),
        ("profileOps.$unset.tier", "is required and cannot be unset"),
        ("profileOps.$append.devices", "item 0: expected a string, got a number"),
        ("profileOps.$clear_all", "expected true"),
    ]


def test_profile_ops_add_to_the_same_result_after_the_traits() -> None:
    out = trait_operations({"plan": "pro"}, DEFS)
    trait_operations({"firstName": "Ada", "$increment": {"logins": 1}}, DEFS, "profileOps", out)
    assert out.ops == [
        {"o": "s", "k": "plan", "v": '"pro"'},
        {"o": "s", "k": "first_name", "v": '"Ada"'},
        {"o": "i", "k": "logins", "d": 1, "lo": 0, "hi": 100},
    ]


# --- served_config --------------------------------------------------------------------------


def test_config_served() -> None:
    out = ProfileOps()
    event = make_event(properties={"config": "checkout", "variation": "b"})
    assert served_config(event, out) == ("checkout", "b")
    assert out.rejections == []


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({"experiment_id": "e1", "variation_name": "Blue"}, ("e1", "Blue")),
        ({"experiment_name": "Checkout", "variation_id": "v2"}, ("Checkout", "v2")),
        (
            {
                "experiment_id": "e1",
                "experiment_name": "N",
                "variation_name": "B",
                "variation_id": "v",
            },
            ("e1", "B"),
        ),
        ({"experiment_id": "", "experiment_name": "N", "variation_name": "B"}, ("N", "B")),
        ({"experiment_id": True, "experiment_name": "N", "variation_id": 7}, ("N", "7")),
        ({"experiment_id": 42, "variation_id": 1.5}, ("42", "1.5")),
    ],
)
def test_experiment_viewed(properties: dict[str, Any], expected: tuple[str, str]) -> None:
    out = ProfileOps()
    event = make_event(event="Experiment Viewed", properties=properties)
    assert served_config(event, out) == expected
    assert out.rejections == []


def test_config_served_numbers_become_strings() -> None:
    out = ProfileOps()
    assert served_config(make_event(properties={"config": 12, "variation": 0}), out) == ("12", "0")


REASON = f"missing, or not a string of 1..{MAX_CONFIG_KEY_LENGTH} characters"


@pytest.mark.parametrize(
    ("properties", "fields"),
    [
        ({}, ["properties.config", "properties.variation"]),
        ({"config": "c"}, ["properties.variation"]),
        ({"variation": "v"}, ["properties.config"]),
        ({"config": "", "variation": "v"}, ["properties.config"]),
        ({"config": "c", "variation": None}, ["properties.variation"]),
        ({"config": True, "variation": "v"}, ["properties.config"]),
        ({"config": ["c"], "variation": {"v": 1}}, ["properties.config", "properties.variation"]),
        ({"config": "c" * (MAX_CONFIG_KEY_LENGTH + 1), "variation": "v"}, ["properties.config"]),
    ],
)
def test_config_served_missing_parts_are_rejections(
    properties: dict[str, Any], fields: list[str]
) -> None:
    out = ProfileOps()
    assert served_config(make_event(properties=properties), out) is None
    assert out.rejections == [(f, REASON) for f in fields]


def test_config_key_at_the_length_limit_is_kept() -> None:
    key = "c" * MAX_CONFIG_KEY_LENGTH
    out = ProfileOps()
    assert served_config(make_event(properties={"config": key, "variation": "v"}), out) == (
        key,
        "v",
    )


@pytest.mark.parametrize(
    ("properties", "fields"),
    [
        ({}, ["properties.experiment_id", "properties.variation_name"]),
        ({"experiment_name": "N"}, ["properties.variation_name"]),
        ({"variation_id": "v"}, ["properties.experiment_id"]),
    ],
)
def test_experiment_viewed_missing_parts_are_rejections(
    properties: dict[str, Any], fields: list[str]
) -> None:
    out = ProfileOps()
    event = make_event(event="Experiment Viewed", properties=properties)
    assert served_config(event, out) is None
    assert out.rejections == [(f, REASON) for f in fields]


@pytest.mark.parametrize("event_type", ["identify", "page", "screen", "group", "alias"])
def test_served_config_ignores_non_track_events(event_type: str) -> None:
    out = ProfileOps()
    event = make_event(type=event_type, event="$config_served", previous_id="p", group_id="g")
    assert served_config(event, out) is None
    assert out.rejections == []


@pytest.mark.parametrize("name", ["Clicked", "config_served", "experiment viewed"])
def test_served_config_ignores_other_track_events(name: str) -> None:
    out = ProfileOps()
    assert served_config(make_event(event=name, properties={"config": "c"}), out) is None
    assert out.rejections == []


# --- configs_served: served_config and the event's configs ----------------------------------


@pytest.mark.parametrize("event_type", ["track", "page", "screen", "identify", "group", "alias"])
def test_an_event_of_any_type_serves_its_configs(event_type: str) -> None:
    out = ProfileOps()
    event = make_event(
        type=event_type,
        event="Clicked",
        previous_id="p",
        group_id="g",
        configs={"checkout": "B", "banner": "on"},
    )
    assert configs_served(event, out) == {"checkout": "B", "banner": "on"}
    assert out.rejections == []


def test_configs_join_a_config_served_event_and_win_for_the_same_config() -> None:
    out = ProfileOps()
    event = make_event(
        properties={"config": "checkout", "variation": "A"},
        configs={"checkout": "B", "banner": "on"},
    )
    assert configs_served(event, out) == {"checkout": "B", "banner": "on"}
    served = make_event(properties={"config": "checkout", "variation": "A"}, configs={"x": "1"})
    assert configs_served(served, out) == {"checkout": "A", "x": "1"}
    assert out.rejections == []


def test_configs_out_of_bounds_are_rejections() -> None:
    # Ingest validates configs (SegmentEvent); a message from elsewhere is checked again.
    out = ProfileOps()
    long = "c" * (MAX_CONFIG_KEY_LENGTH + 1)
    event = make_event(event="Clicked", configs={long: "v", "ok": "", "fine": "v"})
    assert configs_served(event, out) == {"fine": "v"}
    assert out.rejections == [
        ("configs", f"a config key is not a string of 1..{MAX_CONFIG_KEY_LENGTH} characters"),
        ("configs.ok", f"the variation is not a string of 1..{MAX_CONFIG_KEY_LENGTH} characters"),
    ]


# --- command_operations ---------------------------------------------------------------------


def test_command_operations_sets_then_unsets() -> None:
    command = UserCommand(
        command_id="c1",
        op="update",
        user_id="u1",
        issued_at=TS,
        set={"plan": "pro", "logins": 3, "labels": ["a"], "ok": False},
        unset=["city", "vip"],
        tags_add=["t"],
        status="disabled",
    )
    ops = command_operations(command)
    assert ops == [
        {"o": "s", "k": "plan", "v": '"pro"'},
        {"o": "s", "k": "logins", "v": "3"},
        {"o": "s", "k": "labels", "v": '["a"]'},
        {"o": "s", "k": "ok", "v": "false"},
        {"o": "u", "k": "city"},
        {"o": "u", "k": "vip"},
    ]
    assert orjson.loads(ops[2]["v"]) == ["a"]


def test_command_operations_for_a_delete_are_empty() -> None:
    command = UserCommand(command_id="c1", op="delete", user_id="u1", issued_at=TS)
    assert command_operations(command) == []
