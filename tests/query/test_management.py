"""Unit tests for query/management.py: management bodies -> checked `UserCommand`s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from query.management import (
    MAX_TAGS_PER_REQUEST,
    UserCreate,
    UserUpdate,
    create_command,
    delete_command,
    update_command,
)
from schemas.commands import UserCommand
from schemas.messages import FieldError
from schemas.properties import PropertyDefinition

NOW = datetime(2026, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)

DEFS: dict[str, PropertyDefinition] = {
    d.name: d
    for d in (
        PropertyDefinition(name="plan", type="enum", allowed_values=["free", "pro"]),
        PropertyDefinition(name="seats", type="integer", min=1, max=50),
        PropertyDefinition(name="labels", type="list", max_items=2),
        PropertyDefinition(name="note", type="string"),
    )
}
REQUIRED = {**DEFS, "tier": PropertyDefinition(name="tier", type="string", required=True)}


def create(
    body: dict[str, Any], defs: dict[str, PropertyDefinition] | None = None
) -> tuple[UserCommand | None, list[FieldError]]:
    return create_command(UserCreate.model_validate(body), DEFS if defs is None else defs, NOW)


def created(body: dict[str, Any], defs: dict[str, PropertyDefinition] | None = None) -> UserCommand:
    command, errors = create(body, defs)
    assert errors == []
    assert command is not None
    return command


def create_errors(
    body: dict[str, Any], defs: dict[str, PropertyDefinition] | None = None
) -> list[FieldError]:
    command, errors = create(body, defs)
    assert command is None
    assert errors
    return list(errors)


def update(
    body: dict[str, Any],
    current: dict[str, Any] | None = None,
    defs: dict[str, PropertyDefinition] | None = None,
) -> tuple[UserCommand | None, list[FieldError]]:
    return update_command(
        "u1",
        UserUpdate.model_validate(body),
        {"email": "a@b.co"} if current is None else current,
        DEFS if defs is None else defs,
        NOW,
    )


def updated(
    body: dict[str, Any],
    current: dict[str, Any] | None = None,
    defs: dict[str, PropertyDefinition] | None = None,
) -> UserCommand:
    command, errors = update(body, current, defs)
    assert errors == []
    assert command is not None
    return command


def update_errors(
    body: dict[str, Any],
    current: dict[str, Any] | None = None,
    defs: dict[str, PropertyDefinition] | None = None,
) -> list[FieldError]:
    command, errors = update(body, current, defs)
    assert command is None
    assert errors
    return list(errors)


def fields(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


# --- create_command -------------------------------------------------------------------------


def test_create_minimal() -> None:
    command = created({"email": "a@b.co"})
    assert command.op == "create"
    assert command.set == {"email": "a@b.co"}
    assert command.unset == []
    assert command.status == "active"
    assert command.tags_add == []
    assert command.issued_at == NOW
    assert command.command_id.startswith("cmd-")
    assert command.message_id == command.command_id


@pytest.mark.parametrize("identity", ["customer_id", "email", "phone"])
def test_create_with_any_one_identity_property(identity: str) -> None:
    value = {"customer_id": "c-1", "email": "a@b.co", "phone": "+47 12345678"}[identity]
    assert created({identity: value}).set == {identity: value}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"first_name": "Ada"},
        {"custom": {"plan": "pro"}},
        {"customer_id": None},
        {"customer_id": ""},
        {"email": None, "phone": None},
    ],
)
def test_create_needs_an_identity_property(body: dict[str, Any]) -> None:
    errors = create_errors(body)
    assert errors == [
        FieldError(
            field="customer_id", reason="at least one of customer_id, email, phone is required"
        )
    ]


def test_create_with_an_invalid_identity_value_names_it() -> None:
    errors = create_errors({"email": "nope"})
    assert "email" in fields(errors)
    assert errors[fields(errors).index("email")].reason == "is not an email address"


def test_create_generates_a_user_id_when_absent() -> None:
    first, second = created({"email": "a@b.co"}), created({"email": "a@b.co"})
    assert first.user_id
    assert first.user_id != second.user_id
    assert first.command_id != second.command_id
    assert created({"email": "a@b.co", "user_id": "mine"}).user_id == "mine"


def test_create_full_body() -> None:
    command = created(
        {
            "user_id": "u-9",
            "customer_id": "c-9",
            "first_name": "Ada",
            "birthday": "1815-12-10",
            "city": "London",
            "custom": {"plan": "pro", "seats": 3, "labels": ["a", "b"]},
            "tags": ["beta", "vip"],
            "status": "disabled",
        }
    )
    assert command.user_id == "u-9"
    assert command.set == {
        "customer_id": "c-9",
        "first_name": "Ada",
        "birthday": "1815-12-10",
        "city": "London",
        "plan": "pro",
        "seats": 3,
        "labels": ["a", "b"],
    }
    assert command.tags_add == ["beta", "vip"]
    assert command.status == "disabled"


def test_create_drops_nulls() -> None:
    command = created({"email": "a@b.co", "city": None, "custom": {"note": None}})
    assert command.set == {"email": "a@b.co"}
    assert command.unset == []


def test_create_reports_every_error_at_once_each_naming_its_field() -> None:
    errors = create_errors(
        {
            "phone": "call me",
            "birthday": "10/12/1815",
            "custom": {"plan": "gold", "seats": 0, "labels": ["a", "b", "c"], "ghost": 1},
        }
    )
    assert sorted(fields(errors)) == sorted(
        [
            "phone",
            "birthday",
            "custom.plan",
            "custom.seats",
            "custom.labels",
            "custom.ghost",
            "customer_id",
        ]
    )
    by_field = {e.field: e.reason for e in errors}
    assert by_field["custom.ghost"] == "no such custom property; define it first"
    assert by_field["custom.seats"] == "is less than min 1"
    assert by_field["birthday"] == "expected a date (YYYY-MM-DD)"


def test_create_error_reasons_never_contain_the_value() -> None:
    secret = "Zq9secretVALUE"
    errors = create_errors({"email": secret, "custom": {"plan": secret, "seats": secret}})
    assert len(errors) == 4
    assert not any(secret in e.reason for e in errors)


def test_create_refuses_an_undefined_custom_property() -> None:
    errors = create_errors({"email": "a@b.co", "custom": {"nope": "x"}})
    assert errors == [
        FieldError(field="custom.nope", reason="no such custom property; define it first")
    ]


@pytest.mark.parametrize("name", ["email", "first_name", "birthday"])
def test_create_refuses_a_default_property_under_custom(name: str) -> None:
    errors = create_errors({"email": "a@b.co", "custom": {name: "x"}})
    assert errors == [
        FieldError(field=f"custom.{name}", reason="a default property: send it top-level")
    ]


def test_create_needs_required_custom_properties() -> None:
    errors = create_errors({"email": "a@b.co"}, REQUIRED)
    assert errors == [FieldError(field="custom.tier", reason="is required")]
    assert created({"email": "a@b.co", "custom": {"tier": "gold"}}, REQUIRED).set["tier"] == "gold"


def test_create_required_custom_property_sent_as_null() -> None:
    errors = create_errors({"email": "a@b.co", "custom": {"tier": None}}, REQUIRED)
    assert set(fields(errors)) == {"custom.tier"}


def test_create_required_but_invalid_is_one_value_error() -> None:
    defs = {"tier": PropertyDefinition(name="tier", type="string", required=True, max_length=2)}
    errors = create_errors({"email": "a@b.co", "custom": {"tier": "gold"}}, defs)
    assert errors == [FieldError(field="custom.tier", reason="value is longer than max_length 2")]


def test_create_issued_at_is_utc_milliseconds() -> None:
    oslo = datetime(2026, 3, 4, 6, 6, 7, 890123, tzinfo=timezone(timedelta(hours=1)))
    command, _ = create_command(UserCreate.model_validate({"email": "a@b.co"}), {}, oslo)
    assert command is not None
    assert command.issued_at == NOW
    assert command.issued_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@b.co", "unknown": 1},
        {"email": "a@b.co", "created_at": "2026-01-01"},
        {"email": "a@b.co", "status": "deleted"},
        {"email": "a@b.co", "user_id": ""},
        {"email": "a@b.co", "tags": ["a:b"]},
        {"email": "a@b.co", "tags": [" lead"]},
        {"email": "a@b.co", "tags": [""]},
        {"email": "a@b.co", "tags": ["t" * 65]},
        {"email": "a@b.co", "tags": ["t"] * (MAX_TAGS_PER_REQUEST + 1)},
    ],
)
def test_create_body_shape_is_checked_by_the_model(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UserCreate.model_validate(body)


def test_given_names_only_the_default_properties_sent() -> None:
    body = UserCreate.model_validate({"email": "a@b.co", "city": None, "tags": ["x"]})
    assert body.given() == {"email": "a@b.co", "city": None}


# --- update_command -------------------------------------------------------------------------


def test_update_sets_and_unsets() -> None:
    command = updated({"city": "Oslo", "first_name": None, "custom": {"plan": "pro", "note": None}})
    assert command.op == "update"
    assert command.user_id == "u1"
    assert command.issued_at == NOW
    assert command.set == {"city": "Oslo", "plan": "pro"}
    assert command.unset == ["first_name", "note"]
    assert command.status is None
    assert command.tags_add == []
    assert command.tags_remove == []


def test_update_empty_body_is_a_no_op_command() -> None:
    command = updated({})
    assert command.set == {}
    assert command.unset == []


def test_update_passes_tags_and_status_through() -> None:
    command = updated({"tags_add": ["a", "b"], "tags_remove": ["c"], "status": "disabled"})
    assert command.tags_add == ["a", "b"]
    assert command.tags_remove == ["c"]
    assert command.status == "disabled"
    assert updated({"status": "active"}).status == "active"


def test_update_values_are_checked() -> None:
    errors = update_errors({"email": "nope", "custom": {"seats": 51, "ghost": 1, "city": "x"}})
    assert sorted(fields(errors)) == ["custom.city", "custom.ghost", "custom.seats", "email"]


def test_update_required_custom_property_cannot_be_unset() -> None:
    errors = update_errors({"custom": {"tier": None}}, defs=REQUIRED)
    assert errors == [FieldError(field="custom.tier", reason="is required and cannot be unset")]


def test_update_need_not_name_required_custom_properties() -> None:
    assert updated({"city": "Oslo"}, defs=REQUIRED).set == {"city": "Oslo"}


@pytest.mark.parametrize(
    ("current", "body"),
    [
        ({"email": "a@b.co"}, {"email": None}),
        ({"email": "a@b.co", "phone": "+4712345678"}, {"email": None, "phone": None}),
        ({"customer_id": "c-1", "city": "Oslo"}, {"customer_id": None, "city": "Bergen"}),
        ({"customer_id": "c-1"}, {"customer_id": ""}),
    ],
)
def test_update_cannot_remove_the_last_identity_property(
    current: dict[str, Any], body: dict[str, Any]
) -> None:
    errors = update_errors(body, current)
    assert errors == [
        FieldError(
            field="customer_id", reason="the user would have none of customer_id, email, phone left"
        )
    ]


@pytest.mark.parametrize(
    ("current", "body"),
    [
        ({"email": "a@b.co", "phone": "+4712345678"}, {"email": None}),
        ({"email": "a@b.co"}, {"email": None, "customer_id": "c-1"}),
        ({"email": "a@b.co"}, {"email": "b@c.de"}),
        ({}, {"city": "Oslo"}),
        ({"city": "Oslo"}, {"city": None}),
    ],
)
def test_update_keeping_or_never_having_an_identity_property(
    current: dict[str, Any], body: dict[str, Any]
) -> None:
    assert updated(body, current).op == "update"


def test_update_with_an_invalid_replacement_reports_both() -> None:
    errors = update_errors({"email": None, "phone": "call me"}, {"email": "a@b.co"})
    assert fields(errors) == ["phone", "customer_id"]


@pytest.mark.parametrize(
    "body",
    [
        {"tags": ["a"]},
        {"user_id": "u2"},
        {"status": "gone"},
        {"tags_add": ["a:b"]},
        {"tags_remove": ["\tx"]},
    ],
)
def test_update_body_shape_is_checked_by_the_model(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        UserUpdate.model_validate(body)


# --- delete_command -------------------------------------------------------------------------


def test_delete_command() -> None:
    command = delete_command("u1", NOW)
    assert command.op == "delete"
    assert command.user_id == "u1"
    assert command.profile_key == "u1"
    assert command.issued_at == NOW
    assert command.command_id.startswith("cmd-")
    assert (command.set, command.unset, command.tags_add, command.tags_remove) == ({}, [], [], [])
    assert command.status is None
    assert delete_command("u1", NOW).command_id != command.command_id


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1])
def test_create_refuses_integers_the_materializer_cannot_encode(value: int) -> None:
    defs = {"n": PropertyDefinition(name="n", type="integer")}
    errors = create_errors({"email": "a@b.co", "custom": {"n": value}}, defs)
    assert fields(errors) == ["custom.n"]
