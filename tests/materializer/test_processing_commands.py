"""Unit tests for materializer/processing.py around management commands, merges and served
configs: decoding a CommandMessage, command_change, profile_change's "mg"/"cfg"/"x",
split_at_deletes and plan_batch's `deleted` map."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from materializer.decode import UndecodableMessage, decode_message
from materializer.processing import (
    NO_WINDOW,
    Consumed,
    RawMessage,
    as_message,
    command_change,
    decode_batch,
    is_delete,
    plan_batch,
    profile_change,
    split_at_deletes,
)
from schemas.commands import UserCommand
from schemas.messages import CommandMessage
from schemas.properties import PropertyDefinition
from tests.support.builders import TOPIC_ID, TS, TS_MS, make_event, meta


def make_command(**fields: Any) -> UserCommand:
    values: dict[str, Any] = {
        "command_id": "c1",
        "op": "update",
        "user_id": "u1",
        "issued_at": TS,
    }
    values.update(fields)
    return UserCommand(**values)


def wire(command: UserCommand) -> bytes:
    return CommandMessage(command=command).model_dump_json().encode()


def ev(message_id: str, offset: int, **fields: Any) -> Consumed:
    return Consumed(make_event(message_id=message_id, **fields), meta(offset))


def cmd(command_id: str, offset: int, **fields: Any) -> Consumed:
    return Consumed(make_command(command_id=command_id, **fields), meta(offset))


def decode_event(value: bytes) -> object:
    """The one item of a version 1 message."""
    [item] = decode_message(value)
    return item


# What Redis remembers a command id until when no window is given (plan_batch's default).
KP = NO_WINDOW.keep_until(TS_MS)


# --- decode_event: commands -----------------------------------------------------------------


def test_decode_command_round_trip() -> None:
    command = make_command(
        set={"plan": "pro", "seats": 3, "labels": ["a"]},
        unset=["city"],
        tags_add=["vip"],
        tags_remove=["lead"],
        status="disabled",
    )
    decoded = decode_event(wire(command))
    assert isinstance(decoded, UserCommand)
    assert decoded == command
    assert decoded.message_id == "c1"
    assert decoded.profile_key == "u1"


@pytest.mark.parametrize("op", ["create", "update", "delete"])
def test_decode_command_ops(op: str) -> None:
    decoded = decode_event(wire(make_command(op=op)))
    assert isinstance(decoded, UserCommand)
    assert decoded.op == op


def test_decode_command_normalizes_issued_at_to_utc_ms() -> None:
    body = orjson.loads(wire(make_command()))
    body["command"]["issued_at"] = "2026-03-04T06:06:07.890999+01:00"
    decoded = decode_event(orjson.dumps(body))
    assert isinstance(decoded, UserCommand)
    assert decoded.issued_at == TS


@pytest.mark.parametrize("missing", ["command_id", "op", "user_id", "issued_at"])
def test_decode_command_rejects_missing_fields(missing: str) -> None:
    body = orjson.loads(wire(make_command()))
    del body["command"][missing]
    with pytest.raises(UndecodableMessage) as info:
        decode_event(orjson.dumps(body))
    # The reason names the missing field (decode.py validates commands with the pydantic
    # model and keeps the first error's location).
    assert f"first at command.{missing}" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("op", "merge"), ("status", "deleted"), ("user_id", ""), ("command_id", "c" * 101)],
)
def test_decode_command_rejects_bad_fields(field: str, value: Any) -> None:
    body = orjson.loads(wire(make_command()))
    body["command"][field] = value
    with pytest.raises(UndecodableMessage) as info:
        decode_event(orjson.dumps(body))
    assert f"first at command.{field}" in str(info.value)
    assert not value or value not in str(info.value)  # a reason never quotes the value


def test_decode_command_rejects_a_missing_command() -> None:
    with pytest.raises(UndecodableMessage) as info:
        decode_event(b'{"v": 1, "kind": "command"}')
    assert "missing required field `command`" in str(info.value)


def test_decode_command_rejects_unknown_version() -> None:
    body = orjson.loads(wire(make_command()))
    body["v"] = 2
    with pytest.raises(UndecodableMessage) as info:
        decode_event(orjson.dumps(body))
    assert "`$.v`" in str(info.value)


def test_decode_command_body_under_the_event_kind_is_refused() -> None:
    body = orjson.loads(wire(make_command()))
    body["kind"] = "event"
    body["event"] = body.pop("command")
    with pytest.raises(UndecodableMessage):
        decode_event(orjson.dumps(body))


def test_decode_batch_keeps_commands_and_their_dead_letter_bytes() -> None:
    raw = wire(make_command(op="delete"))
    consumed, dead = decode_batch([RawMessage(b"u1", raw, meta(7))])
    assert dead == []
    assert len(consumed) == 1
    assert isinstance(consumed[0].event, UserCommand)
    assert consumed[0].meta.offset == 7
    assert as_message(consumed[0].event) == raw  # what a dead letter of it would keep
    assert is_delete(consumed[0])


# --- command_change -------------------------------------------------------------------------


def test_command_change_for_an_update() -> None:
    change = command_change(
        make_command(
            set={"plan": "pro"},
            unset=["city"],
            tags_add=["a"],
            tags_remove=["b"],
            status="disabled",
        )
    )
    assert change == {
        "m": "c1",
        "ts": str(TS_MS),
        "kp": KP,
        "cmd": "update",
        "ops": [{"o": "s", "k": "plan", "v": '"pro"'}, {"o": "u", "k": "city"}],
        "ta": ["a"],
        "tr": ["b"],
        "st": "disabled",
    }


def test_command_change_leaves_out_empty_parts() -> None:
    change = command_change(make_command(op="create", set={"email": "a@b.co"}))
    assert change == {
        "m": "c1",
        "ts": str(TS_MS),
        "kp": KP,
        "cmd": "create",
        "ops": [{"o": "s", "k": "email", "v": '"a@b.co"'}],
    }


def test_command_change_for_a_delete_is_only_the_command() -> None:
    change = command_change(
        make_command(op="delete", set={"plan": "pro"}, tags_add=["a"], status="active")
    )
    assert change == {"m": "c1", "ts": str(TS_MS), "kp": KP, "cmd": "delete"}


def test_command_change_counts_no_event() -> None:
    change = command_change(make_command())
    assert "n" not in change
    assert "le" not in change
    assert "kn" not in change


# --- profile_change: mg, cfg, x -------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["identify", "track", "page", "screen", "group"])
def test_profile_change_merges_the_anonymous_id(event_type: str) -> None:
    event = make_event(type=event_type, anonymous_id="a1", group_id="g1")
    change = profile_change(event)
    assert change["mg"] == "a1"
    assert change["kn"] == 1


def test_profile_change_alias_merges_the_previous_id() -> None:
    change = profile_change(make_event(type="alias", event=None, previous_id="p1"))
    assert change["mg"] == "p1"
    assert change["n"] == "$alias"


def test_profile_change_alias_ignores_the_anonymous_id() -> None:
    event = make_event(type="alias", event=None, previous_id="p1", anonymous_id="a1")
    assert profile_change(event)["mg"] == "p1"
    event = make_event(type="alias", event=None, previous_id=None, anonymous_id="a1")
    assert "mg" not in profile_change(event)


def test_profile_change_alias_to_itself_does_not_merge() -> None:
    assert "mg" not in profile_change(make_event(type="alias", event=None, previous_id="u1"))


def test_profile_change_anonymous_only_is_not_known_and_not_merged() -> None:
    change = profile_change(make_event(user_id=None, anonymous_id="a1"))
    assert "kn" not in change
    assert "mg" not in change


def test_profile_change_config_served() -> None:
    event = make_event(event="$config_served", properties={"config": "checkout", "variation": 2})
    change = profile_change(event)
    assert change["cfg"] == ["checkout", "2"]
    assert "x" not in change


def test_profile_change_experiment_viewed() -> None:
    event = make_event(
        event="Experiment Viewed", properties={"experiment_name": "E", "variation_id": "v1"}
    )
    assert profile_change(event)["cfg"] == ["E", "v1"]


def test_profile_change_config_served_incomplete_is_a_rejection() -> None:
    change = profile_change(make_event(event="$config_served", properties={"config": "c"}))
    assert "cfg" not in change
    assert change["x"] == [
        {"f": "properties.variation", "r": "missing, or not a string of 1..255 characters"}
    ]


def test_profile_change_no_cfg_for_other_events() -> None:
    change = profile_change(make_event(properties={"config": "c", "variation": "v"}))
    assert "cfg" not in change
    assert "x" not in change


def test_profile_change_trait_rejections() -> None:
    defs = {"seats": PropertyDefinition(name="seats", type="integer", max=5)}
    event = make_event(
        type="identify", event=None, traits={"seats": 9, "plan": "pro", "user_id": "x"}
    )
    change = profile_change(event, defs)
    assert change["ops"] == [{"o": "s", "k": "plan", "v": '"pro"'}]
    assert change["x"] == [
        {"f": "traits.seats", "r": "is greater than max 5"},
        {"f": "traits.user_id", "r": "user_id cannot be written"},
    ]


def test_profile_change_only_rejections_has_no_ops() -> None:
    event = make_event(type="identify", event=None, traits={"email": "nope"})
    change = profile_change(event)
    assert "ops" not in change
    assert [x["f"] for x in change["x"]] == ["traits.email"]


def test_profile_change_without_definitions_still_checks_default_properties() -> None:
    event = make_event(type="identify", event=None, traits={"birthday": 19900101})
    assert profile_change(event, None)["x"] == [
        {"f": "traits.birthday", "r": "expected a date (YYYY-MM-DD), got a number"}
    ]


def test_profile_change_identify_with_both_ids_merges_and_sets() -> None:
    event = make_event(type="identify", event=None, anonymous_id="a1", traits={"plan": "pro"})
    change = profile_change(event)
    assert change["mg"] == "a1"
    assert change["ops"] == [{"o": "s", "k": "plan", "v": '"pro"'}]


# --- split_at_deletes -----------------------------------------------------------------------


def offsets(segments: list[list[Consumed]]) -> list[list[int]]:
    return [[c.meta.offset for c in s] for s in segments]


def test_split_without_deletes_is_one_segment() -> None:
    items = [ev("a", 0), cmd("c", 1), ev("b", 2)]
    assert offsets(split_at_deletes(items)) == [[0, 1, 2]]


def test_split_puts_each_delete_alone_between_what_came_before_and_after() -> None:
    items = [
        ev("a", 0),
        cmd("d1", 1, op="delete"),
        ev("b", 2),
        cmd("u", 3),
        cmd("d2", 4, op="delete", user_id="u2"),
        ev("c", 5),
    ]
    assert offsets(split_at_deletes(items)) == [[0], [1], [2, 3], [4], [5]]


def test_split_trailing_and_consecutive_deletes() -> None:
    items = [cmd("d1", 0, op="delete"), cmd("d2", 1, op="delete"), ev("a", 2)]
    assert offsets(split_at_deletes(items)) == [[0], [1], [2]]
    assert offsets(split_at_deletes([ev("a", 0), cmd("d", 1, op="delete")])) == [[0], [1]]


def test_split_empty() -> None:
    assert split_at_deletes([]) == []


@pytest.mark.parametrize("op", ["create", "update"])
def test_split_only_at_delete_commands(op: str) -> None:
    items = [cmd("c", 0, op=op), ev("a", 1, type="alias", event=None, previous_id="p")]
    assert offsets(split_at_deletes(items)) == [[0, 1]]


# --- plan_batch: commands and deletes -------------------------------------------------------


def test_plan_batch_command_has_a_change_but_no_row() -> None:
    plan = plan_batch([cmd("c1", 0, set={"plan": "pro"})], set(), {})
    assert plan.rows == []
    assert plan.changes_by_user == {"u1": [command_change(make_command(set={"plan": "pro"}))]}
    assert plan.deleted == []
    assert plan.last_offsets == {("events", 0, TOPIC_ID): 0}


def test_plan_batch_events_and_commands_share_the_users_order() -> None:
    items = [ev("e1", 0), cmd("c1", 1), ev("e2", 2), cmd("c2", 3, user_id="u2")]
    plan = plan_batch(items, set(), {})
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["e1", "c1", "e2"]
    assert [c["m"] for c in plan.changes_by_user["u2"]] == ["c2"]
    assert [row[0] for row in plan.rows] == ["e1", "e2"]


def test_plan_batch_delete_alone() -> None:
    plan = plan_batch([cmd("d", 0, op="delete")], set(), {})
    assert plan.deleted == ["u1"]
    assert plan.rows == []
    assert plan.changes_by_user["u1"] == [{"m": "d", "ts": str(TS_MS), "kp": KP, "cmd": "delete"}]


def test_plan_batch_already_applied_delete_is_skipped() -> None:
    items = [ev("e1", 0, anonymous_id="a1"), cmd("d", 1, op="delete")]
    plan = plan_batch(items, {"d"}, {})
    assert plan.deleted == []
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["e1"]


def test_plan_batch_repeated_delete_is_planned_once() -> None:
    items = [cmd("d", 0, op="delete"), cmd("d", 1, op="delete")]
    plan = plan_batch(items, set(), {})
    assert plan.deleted == ["u1"]
    assert len(plan.changes_by_user["u1"]) == 1
    assert plan.last_offsets == {("events", 0, TOPIC_ID): 1}


def test_plan_batch_commands_are_never_rows_even_if_not_stored() -> None:
    items = [cmd("c1", 0, op="create"), cmd("c2", 1), cmd("d", 2, op="delete")]
    plan = plan_batch(items, set(), {})
    assert plan.rows == []
    assert [c["cmd"] for c in plan.changes_by_user["u1"]] == ["create", "update", "delete"]


def test_plan_batch_passes_definitions_to_event_changes() -> None:
    defs = {"seats": PropertyDefinition(name="seats", type="integer", max=5)}
    items = [ev("e1", 0, type="identify", event=None, traits={"seats": 9})]
    change = plan_batch(items, set(), {}, definitions=defs).changes_by_user["u1"][0]
    assert change["x"] == [{"f": "traits.seats", "r": "is greater than max 5"}]
    assert "ops" not in change
