"""Unit tests for materializer/processing.py: decoding, rows, profile changes, batch plans."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from infra.warehouse import EVENT_COLUMNS
from materializer.processing import (
    Consumed,
    MessageMeta,
    OffsetRange,
    RawMessage,
    UndecodableMessage,
    decode_batch,
    decode_event,
    event_row,
    first_of_each_message_id,
    plan_batch,
    possibly_stored,
    profile_change,
)
from schemas.events import Event
from schemas.messages import DeadLetterMessage, EventMessage
from schemas.properties import MAX_LIST_ITEMS, PropertyDefinition
from tests.support.builders import RECEIVED, TOPIC_ID, TS, TS_MS, consumed, make_event, meta


def wire(event: Event) -> bytes:
    return EventMessage(event=event).model_dump_json().encode()


# --- decode_event ---------------------------------------------------------------------------


def test_decode_event_round_trip() -> None:
    event = make_event(
        anonymous_id="a1",
        properties={"price": 9.99, "tags": ["x"], "nested": {"n": 1}},
        context={"ip": "1.2.3.4"},
        original_timestamp=TS,
        sent_at=TS,
    )
    assert decode_event(wire(event)) == event


@pytest.mark.parametrize(
    "value",
    [
        b"garbage",
        b"",
        b"\xff\xfe\xfd",
        b"[]",
        b'{"v": 1, "kind": "event"}',
        b"null",
    ],
)
def test_decode_event_rejects_garbage(value: bytes) -> None:
    with pytest.raises(UndecodableMessage) as info:
        decode_event(value)
    assert str(info.value)


def test_decode_event_rejects_none() -> None:
    with pytest.raises(UndecodableMessage) as info:
        decode_event(None)
    assert "tombstone" in str(info.value)


def test_decode_event_rejects_unknown_version() -> None:
    body = orjson.loads(wire(make_event()))
    body["v"] = 2
    with pytest.raises(UndecodableMessage) as info:
        decode_event(orjson.dumps(body))
    assert "first at v:" in str(info.value)


def test_decode_event_rejects_wrong_kind() -> None:
    body = orjson.loads(wire(make_event()))
    body["kind"] = "rejection"
    with pytest.raises(UndecodableMessage) as info:
        decode_event(orjson.dumps(body))
    assert "kind" in str(info.value)


@pytest.mark.parametrize("missing", ["message_id", "type", "timestamp", "received_at"])
def test_decode_event_rejects_missing_event_fields(missing: str) -> None:
    body = orjson.loads(wire(make_event()))
    del body["event"][missing]
    with pytest.raises(UndecodableMessage) as info:
        decode_event(orjson.dumps(body))
    assert f"event.{missing}" in str(info.value)


def test_decode_event_rejects_missing_event() -> None:
    with pytest.raises(UndecodableMessage) as info:
        decode_event(b'{"v": 1, "kind": "event"}')
    assert "first at event:" in str(info.value)


# --- decode_batch ---------------------------------------------------------------------------


def test_decode_batch_splits_good_and_dead() -> None:
    good_a = make_event(message_id="a")
    good_b = make_event(message_id="b")
    bad_value = b"\x00not json"
    messages = [
        RawMessage(b"u1", wire(good_a), meta(10, 2)),
        RawMessage(b"u1", bad_value, meta(11, 2)),
        RawMessage(None, None, meta(12, 2)),
        RawMessage(b"u1", wire(good_b), meta(13, 2)),
    ]
    good, dead = decode_batch(messages)

    assert [c.event.message_id for c in good] == ["a", "b"]
    assert [c.meta.offset for c in good] == [10, 13]
    assert good[0].event == good_a

    assert len(dead) == 2
    first, second = dead
    assert isinstance(first, DeadLetterMessage)
    assert (first.topic, first.partition, first.offset) == ("events", 2, 11)
    assert first.key == "u1"
    assert first.reason
    assert base64.b64decode(first.value_b64) == bad_value
    assert (second.offset, second.key, second.value_b64) == (12, None, "")
    assert "tombstone" in second.reason


def test_decode_batch_dead_letter_keeps_reason_and_bytes_of_unknown_version() -> None:
    body = orjson.loads(wire(make_event()))
    body["v"] = 2
    original = orjson.dumps(body)
    _, dead = decode_batch([RawMessage(b"k", original, meta(5, 1, topic="ev"))])
    assert len(dead) == 1
    assert (dead[0].topic, dead[0].partition, dead[0].offset) == ("ev", 1, 5)
    assert "first at v:" in dead[0].reason
    assert base64.b64decode(dead[0].value_b64) == original


def test_decode_batch_non_utf8_key_does_not_crash() -> None:
    _, dead = decode_batch([RawMessage(b"\xff\xfe", b"junk", meta(1))])
    assert dead[0].key is not None


def test_decode_batch_empty() -> None:
    assert decode_batch([]) == ([], [])


# --- event_row ------------------------------------------------------------------------------


def column(row: tuple[Any, ...], name: str) -> Any:
    return row[EVENT_COLUMNS.index(name)]


def test_event_row_matches_columns() -> None:
    event = make_event(anonymous_id="a1", name="n")
    row = event_row(event, meta(offset=42, partition=3))
    assert len(row) == len(EVENT_COLUMNS)
    assert EVENT_COLUMNS.index("message_id") == 0
    assert column(row, "message_id") == "m1"
    assert column(row, "user_id") == "u1"
    assert column(row, "anonymous_id") == "a1"
    assert column(row, "type") == "track"
    assert column(row, "event") == "Clicked"
    assert column(row, "name") == "n"
    assert column(row, "timestamp") == TS
    assert column(row, "received_at") == RECEIVED
    assert column(row, "source") == "web"
    assert column(row, "kafka_partition") == 3
    assert column(row, "kafka_offset") == 42


def test_event_row_user_id_falls_back_to_anonymous_id() -> None:
    row = event_row(make_event(user_id=None, anonymous_id="anon-9"), meta())
    assert column(row, "user_id") == "anon-9"
    assert column(row, "anonymous_id") == "anon-9"


def test_event_row_empty_strings_for_missing_optional_text() -> None:
    row = event_row(make_event(), meta())
    assert column(row, "anonymous_id") == ""
    assert column(row, "name") == ""


@pytest.mark.parametrize("event_type", ["page", "screen", "identify", "group", "alias"])
def test_event_row_non_track_event_name(event_type: str) -> None:
    row = event_row(make_event(type=event_type, event=None), meta())
    assert column(row, "event") == f"${event_type}"
    assert column(row, "type") == event_type


def test_event_row_json_columns() -> None:
    properties = {"price": 1, "list": [], "obj": {}, "text": "é", "none": None}
    traits = {"plan": "pro"}
    context = {"library": {"name": "analytics-python"}}
    row = event_row(make_event(properties=properties, traits=traits, context=context), meta())
    for name, expected in (("properties", properties), ("traits", traits), ("context", context)):
        value = column(row, name)
        assert isinstance(value, str)
        assert orjson.loads(value) == expected
    empty = event_row(make_event(), meta())
    assert [column(empty, n) for n in ("properties", "traits", "context")] == ["{}"] * 3


@pytest.mark.parametrize("event_type", ["track", "page", "screen", "group", "alias", "identify"])
def test_event_row_without_traits_stores_the_profile_ops_as_traits(event_type: str) -> None:
    profile_ops = {"$set": {"plan": "pro"}, "$append": {"visits": [1]}}
    event = make_event(type=event_type, previous_id="p", group_id="g", profile_ops=profile_ops)
    assert orjson.loads(column(event_row(event, meta()), "traits")) == profile_ops


@pytest.mark.parametrize("event_type", ["group", "identify", "track"])
def test_event_row_keeps_an_events_own_traits(event_type: str) -> None:
    traits = {"name": "Acme"}
    event = make_event(type=event_type, group_id="g", traits=traits, profile_ops={"a": 1})
    assert orjson.loads(column(event_row(event, meta()), "traits")) == traits


def test_event_row_is_idempotent() -> None:
    event = make_event(properties={"a": [1, 2, {"b": 3}]})
    again = decode_event(wire(event))
    assert isinstance(again, Event)
    assert event_row(event, meta(7, 1)) == event_row(again, meta(7, 1))


# --- profile_change -------------------------------------------------------------------------


def test_profile_change_for_track() -> None:
    change = profile_change(make_event(traits={"ignored": True}))
    assert change["m"] == "m1"
    assert change["ts"] == str(TS_MS)
    assert change["n"] == "Clicked"
    assert "tr" not in change
    assert "a" not in change
    assert orjson.loads(change["le"]) == {
        "message_id": "m1",
        "type": "track",
        "name": "Clicked",
        "timestamp": str(TS_MS),
    }


def test_profile_change_ts_is_event_time_in_ms() -> None:
    change = profile_change(make_event(timestamp=datetime(2000, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)))
    assert change["ts"] == "946684800001"


def test_profile_change_traits_only_for_identify() -> None:
    traits = {"plan": "pro", "seats": 1, "labels": [], "meta": {}, "gone": None, "ok": True}
    change = profile_change(make_event(type="identify", event=None, traits=traits))
    assert change["n"] == "$identify"
    sets = {op["k"]: op["v"] for op in change["ops"] if op["o"] == "s"}
    # values travel as JSON text so Lua never re-encodes them
    assert sets == {
        "plan": '"pro"',
        "seats": "1",
        "labels": "[]",
        "meta": "{}",
        "ok": "true",
    }
    assert {"o": "u", "k": "gone"} in change["ops"]  # null unsets

    for other in ("group", "page", "track"):
        assert "ops" not in profile_change(make_event(type=other, traits=traits))


@pytest.mark.parametrize("event_type", ["track", "page", "screen", "group", "alias"])
def test_profile_change_applies_profile_ops_on_any_event(event_type: str) -> None:
    profile_ops = {
        "plan": "pro",
        "$set_once": {"source": "ads"},
        "$increment": {"logins": 1},
        "$union_front": {"devices": ["ios"]},
        "$append": {"visits": ["home", 2]},
        "$prepend": {"visits": [True]},
    }
    event = make_event(type=event_type, previous_id="p", group_id="g", profile_ops=profile_ops)
    change = profile_change(event)
    assert change["ops"] == [
        {"o": "s", "k": "plan", "v": '"pro"'},
        {"o": "o", "k": "source", "v": '"ads"'},
        {"o": "i", "k": "logins", "d": 1},
        {"o": "f", "k": "devices", "items": ['"ios"'], "max": MAX_LIST_ITEMS},
        {"o": "a", "k": "visits", "items": ['"home"', "2"], "max": MAX_LIST_ITEMS},
        {"o": "p", "k": "visits", "items": ["true"], "max": MAX_LIST_ITEMS},
    ]
    assert "x" not in change and "ca" not in change


def test_profile_change_identify_applies_profile_ops_after_its_traits() -> None:
    event = make_event(
        type="identify",
        event=None,
        traits={"plan": "pro", "$unset": ["coupon"]},
        profile_ops={"plan": "free", "$remove": {"devices": [1]}},
    )
    assert profile_change(event)["ops"] == [
        {"o": "s", "k": "plan", "v": '"pro"'},
        {"o": "u", "k": "coupon"},
        {"o": "s", "k": "plan", "v": '"free"'},
        {"o": "-", "k": "devices", "items": ["1"]},
    ]


def test_profile_change_profile_ops_rejections_name_profile_ops() -> None:
    defs = {
        "seats": PropertyDefinition(name="seats", type="integer", max=5),
        "devices": PropertyDefinition(name="devices", type="list"),
    }
    profile_ops = {"seats": 9, "$append": {"devices": [1]}, "$set": {"user_id": "x"}}
    change = profile_change(make_event(type="page", profile_ops=profile_ops), defs)
    assert "ops" not in change
    assert change["x"] == [
        {"f": "profileOps.seats", "r": "is greater than max 5"},
        {"f": "profileOps.$set.user_id", "r": "user_id cannot be written"},
        {"f": "profileOps.$append.devices", "r": "item 0: expected a string, got a number"},
    ]


@pytest.mark.parametrize(
    ("fields", "keeps"),
    [
        ({"type": "identify", "event": None, "traits": {"$clear_all": True}}, ["tier"]),
        ({"type": "track", "profile_ops": {"$clear_all": True, "plan": "pro"}}, ["tier"]),
    ],
)
def test_profile_change_clear_all_keeps_the_required_properties(
    fields: dict[str, Any], keeps: list[str]
) -> None:
    defs = {
        "tier": PropertyDefinition(name="tier", type="string", required=True),
        "plan": PropertyDefinition(name="plan", type="string"),
    }
    change = profile_change(make_event(**fields), defs)
    assert change["ca"] == keeps


def test_profile_change_traits_clear_all_only_on_identify() -> None:
    assert "ca" not in profile_change(make_event(traits={"$clear_all": True}))


def test_profile_change_serves_every_config_of_the_event() -> None:
    event = make_event(type="page", configs={"checkout": "B", "banner": "on"})
    assert profile_change(event)["cfg"] == ["checkout", "B", "banner", "on"]
    served = make_event(
        event="$config_served", properties={"config": "c", "variation": "1"}, configs={"d": "2"}
    )
    assert profile_change(served)["cfg"] == ["c", "1", "d", "2"]


def test_profile_change_identify_without_traits_has_no_ops() -> None:
    assert "ops" not in profile_change(make_event(type="identify", event=None))


def test_profile_change_merges_only_when_both_ids() -> None:
    assert profile_change(make_event(user_id="u1", anonymous_id="a1"))["mg"] == "a1"
    assert "mg" not in profile_change(make_event(user_id="u1", anonymous_id=None))
    assert "mg" not in profile_change(make_event(user_id=None, anonymous_id="a1"))
    assert "mg" not in profile_change(make_event(user_id="u1", anonymous_id="u1"))


# --- first_of_each_message_id / plan_batch --------------------------------------------------


def test_first_of_each_message_id_keeps_first_in_order() -> None:
    items = [consumed("a", 1), consumed("b", 2), consumed("a", 3), consumed("c", 4)]
    unique = first_of_each_message_id(items)
    assert [(c.event.message_id, c.meta.offset) for c in unique] == [
        ("a", 1),
        ("b", 2),
        ("c", 4),
    ]
    assert first_of_each_message_id([]) == []


def test_plan_batch_applies_duplicates_once() -> None:
    items = [consumed("a", 1), consumed("a", 2), consumed("b", 3)]
    plan = plan_batch(items, set(), set())
    assert [row[0] for row in plan.rows] == ["a", "b"]
    assert [column(r, "kafka_offset") for r in plan.rows] == [1, 3]
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["a", "b"]


def test_plan_batch_skips_already_applied() -> None:
    items = [consumed("a", 1), consumed("b", 2)]
    plan = plan_batch(items, already_applied={"a"}, already_stored={"a"})
    assert [row[0] for row in plan.rows] == ["b"]
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["b"]


def test_plan_batch_applied_only_batch_has_no_rows_or_changes() -> None:
    plan = plan_batch([consumed("a", 1)], already_applied={"a"}, already_stored=set())
    assert plan.rows == []
    assert plan.changes_by_user == {}
    assert plan.last_offsets == {("events", 0, TOPIC_ID): 1}


def test_plan_batch_already_stored_gives_change_but_no_row() -> None:
    items = [consumed("a", 1), consumed("b", 2)]
    plan = plan_batch(items, already_applied=set(), already_stored={"a"})
    assert [row[0] for row in plan.rows] == ["b"]
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["a", "b"]


def test_plan_batch_groups_changes_by_profile_key_in_order() -> None:
    items = [
        consumed("a", 1, user_id="u1"),
        consumed("b", 2, user_id=None, anonymous_id="anon"),
        consumed("c", 3, user_id="u1"),
    ]
    plan = plan_batch(items, set(), set())
    assert {k: [c["m"] for c in v] for k, v in plan.changes_by_user.items()} == {
        "u1": ["a", "c"],
        "anon": ["b"],
    }


def test_plan_batch_last_offsets_per_topic_partition_include_skipped() -> None:
    items = [
        Consumed(make_event(message_id="a"), meta(5, 0)),
        Consumed(make_event(message_id="b"), meta(9, 0)),  # applied: skipped, still counted
        Consumed(make_event(message_id="a"), meta(11, 0)),  # duplicate: skipped, still counted
        Consumed(make_event(message_id="c"), meta(7, 0)),
        Consumed(make_event(message_id="d"), meta(3, 1)),
        Consumed(make_event(message_id="e"), meta(2, 1)),
        Consumed(make_event(message_id="f"), meta(100, 0, topic="other")),
    ]
    plan = plan_batch(items, already_applied={"b"}, already_stored=set())
    assert plan.last_offsets == {
        ("events", 0, TOPIC_ID): 11,
        ("events", 1, TOPIC_ID): 3,
        ("other", 0, TOPIC_ID): 100,
    }
    assert [row[0] for row in plan.rows] == ["a", "c", "d", "e", "f"]


def test_plan_batch_rows_match_event_row() -> None:
    item = consumed("a", 4, anonymous_id="x")
    plan = plan_batch([item], set(), set())
    assert isinstance(item.event, Event)
    assert plan.rows == [event_row(item.event, item.meta)]
    assert plan.changes_by_user == {"u1": [profile_change(item.event)]}


def test_plan_batch_empty() -> None:
    plan = plan_batch([], set(), set())
    assert (plan.rows, plan.changes_by_user, plan.last_offsets) == ([], {}, {})


# --- in-flight offset marks (the crash window between the ClickHouse INSERT and Redis) -------


def _consumed_at(offsets: list[int], partition: int = 0) -> list[Consumed]:
    return [
        Consumed(
            Event(
                message_id=f"m{o}",
                type="track",
                user_id=f"u{o % 3}",
                event="E",
                timestamp=datetime(2026, 11, 1, tzinfo=UTC),
                received_at=datetime(2026, 11, 1, tzinfo=UTC),
            ),
            MessageMeta("events", partition, o, TOPIC_ID),
        )
        for o in offsets
    ]


def test_plan_marks_the_batch_offsets_in_flight_and_clears_them_after() -> None:
    plan = plan_batch(_consumed_at([10, 11, 12]), set(), set())
    assert plan.in_flight == {("events", 0, TOPIC_ID): OffsetRange(10, 12)}
    assert plan.in_flight_after == {("events", 0, TOPIC_ID): None}


def test_replay_shorter_than_the_crashed_attempt_keeps_the_rest_marked() -> None:
    crashed = {("events", 0, TOPIC_ID): OffsetRange(10, 20)}
    plan = plan_batch(_consumed_at([10, 11, 12]), set(), set(), crashed)
    assert plan.in_flight[("events", 0, TOPIC_ID)] == OffsetRange(10, 20)
    assert plan.in_flight_after[("events", 0, TOPIC_ID)] == OffsetRange(13, 20)
    longer = plan_batch(_consumed_at(list(range(10, 25))), set(), set(), crashed)
    assert longer.in_flight[("events", 0, TOPIC_ID)] == OffsetRange(10, 24)
    assert longer.in_flight_after[("events", 0, TOPIC_ID)] is None


def test_possibly_stored_is_the_unapplied_events_inside_a_mark() -> None:
    consumed = _consumed_at([8, 9, 10, 11, 12])
    marks = {("events", 0, TOPIC_ID): OffsetRange(9, 11)}
    suspects = possibly_stored(consumed, marks, already_applied={"m10"})
    assert [c.event.message_id for c in suspects] == ["m9", "m11"]
    assert possibly_stored(consumed, {}, set()) == []
    other_partition = {("events", 1, TOPIC_ID): OffsetRange(0, 100)}
    assert possibly_stored(consumed, other_partition, set()) == []
