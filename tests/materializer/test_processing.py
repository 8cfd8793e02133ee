"""Unit tests for materializer/processing.py: the INSERT's columns, profile changes, chunks, the
dedup window and batch plans (decoding is test_decode.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infra.warehouse import EVENT_COLUMN_TYPES, EVENT_COLUMNS
from materializer.decode import WireEvent, as_message, decode_message
from materializer.processing import (
    DAY_MS,
    NO_WINDOW,
    Consumed,
    DedupWindow,
    EventColumns,
    MessageMeta,
    OffsetRange,
    chunks,
    command_change,
    first_of_each_message_id,
    ms,
    plan_batch,
    possibly_stored,
    profile_change,
)
from schemas.commands import UserCommand
from schemas.messages import events_message
from schemas.properties import MAX_LIST_ITEMS, PropertyDefinition
from tests.support.builders import (
    RECEIVED,
    TOPIC_ID,
    TS,
    TS_MS,
    consumed,
    make_event,
    make_model_event,
    meta,
)


def event_row(event: WireEvent, at: MessageMeta) -> tuple[Any, ...]:
    """The one row of an EventColumns holding this event."""
    columns = EventColumns()
    columns.append(event, at)
    [row] = columns.rows()
    return row


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
        assert isinstance(value, bytes)  # the JSON text ingest wrote
        assert orjson.loads(value) == expected
    empty = event_row(make_event(), meta())
    assert [column(empty, n) for n in ("properties", "traits", "context")] == [b"{}"] * 3


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
    event = make_event(properties={"a": [1, 2, {"b": 3}]}, profile_ops={"$set": {"x": 1}})
    [again] = decode_message(as_message(event))  # a dead letter replayed
    assert isinstance(again, WireEvent)
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
    plan = plan_batch(items, set(), {})
    assert [row[0] for row in plan.rows] == ["a", "b"]
    assert [column(r, "kafka_offset") for r in plan.rows] == [1, 3]
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["a", "b"]


def test_plan_batch_skips_already_applied() -> None:
    items = [consumed("a", 1), consumed("b", 2)]
    plan = plan_batch(items, already_applied={"a"}, already_stored={"a": (0, 1)})
    assert [row[0] for row in plan.rows] == ["b"]
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["b"]


def test_plan_batch_applied_only_batch_has_no_rows_or_changes() -> None:
    plan = plan_batch([consumed("a", 1)], already_applied={"a"}, already_stored={})
    assert plan.rows == []
    assert plan.changes_by_user == {}
    assert plan.last_offsets == {("events", 0, TOPIC_ID): 1}


def test_plan_batch_already_stored_gives_change_but_no_row() -> None:
    items = [consumed("a", 1), consumed("b", 2)]
    plan = plan_batch(items, already_applied=set(), already_stored={"a": (0, 1)})
    assert [row[0] for row in plan.rows] == ["b"]
    assert [c["m"] for c in plan.changes_by_user["u1"]] == ["a", "b"]


def test_plan_batch_groups_changes_by_profile_key_in_order() -> None:
    items = [
        consumed("a", 1, user_id="u1"),
        consumed("b", 2, user_id=None, anonymous_id="anon"),
        consumed("c", 3, user_id="u1"),
    ]
    plan = plan_batch(items, set(), {})
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
    plan = plan_batch(items, already_applied={"b"}, already_stored={})
    assert plan.last_offsets == {
        ("events", 0, TOPIC_ID): 11,
        ("events", 1, TOPIC_ID): 3,
        ("other", 0, TOPIC_ID): 100,
    }
    assert [row[0] for row in plan.rows] == ["a", "c", "d", "e", "f"]


def test_plan_batch_rows_match_event_row() -> None:
    item = consumed("a", 4, anonymous_id="x")
    plan = plan_batch([item], set(), {})
    assert isinstance(item.event, WireEvent)
    assert plan.rows == [event_row(item.event, item.meta)]
    assert plan.changes_by_user == {"u1": [profile_change(item.event)]}


def test_plan_batch_empty() -> None:
    plan = plan_batch([], set(), {})
    assert (plan.rows, plan.changes_by_user, plan.last_offsets) == ([], {}, {})


# --- in-flight offset marks (the crash window between the ClickHouse INSERT and Redis) -------


def _consumed_at(offsets: list[int], partition: int = 0) -> list[Consumed]:
    return [
        Consumed(
            make_event(
                message_id=f"m{o}",
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
    plan = plan_batch(_consumed_at([10, 11, 12]), set(), {})
    assert plan.in_flight == {("events", 0, TOPIC_ID): OffsetRange(10, 12)}
    assert plan.in_flight_after == {("events", 0, TOPIC_ID): None}


def test_replay_shorter_than_the_crashed_attempt_keeps_the_rest_marked() -> None:
    crashed = {("events", 0, TOPIC_ID): OffsetRange(10, 20)}
    plan = plan_batch(_consumed_at([10, 11, 12]), set(), {}, crashed)
    assert plan.in_flight[("events", 0, TOPIC_ID)] == OffsetRange(10, 20)
    assert plan.in_flight_after[("events", 0, TOPIC_ID)] == OffsetRange(13, 20)
    longer = plan_batch(_consumed_at(list(range(10, 25))), set(), {}, crashed)
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


# --- EventColumns: what the INSERT takes ----------------------------------------------------

# The Python type each ClickHouse type of the events table is given as.
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "String": (str, bytes),
    "LowCardinality(String)": (str,),
    "DateTime64(3, 'UTC')": (datetime,),
    "UInt32": (int,),
    "UInt64": (int,),
}


def test_columns_are_in_the_tables_order_with_its_types() -> None:
    columns = EventColumns()
    columns.append(make_event(message_id="a", anonymous_id="x", name="n"), meta(3, 1))
    columns.append(make_event(message_id="b", user_id=None, anonymous_id="y"), meta(4, 2))
    assert len(columns) == 2
    assert len(columns.columns) == len(EVENT_COLUMNS) == len(EVENT_COLUMN_TYPES)
    for name, values in zip(EVENT_COLUMNS, columns.columns, strict=True):
        assert len(values) == 2, name
        assert all(isinstance(v, PYTHON_TYPES[EVENT_COLUMN_TYPES[name]]) for v in values), name
    by_name = dict(zip(EVENT_COLUMNS, columns.columns, strict=True))
    assert by_name["message_id"] == ["a", "b"]
    assert by_name["user_id"] == ["u1", "y"]
    assert by_name["anonymous_id"] == ["x", "y"]
    assert by_name["name"] == ["n", ""]
    assert (by_name["kafka_partition"], by_name["kafka_offset"]) == ([1, 2], [3, 4])
    assert columns.rows() == [
        tuple(c[0] for c in columns.columns),
        tuple(c[1] for c in columns.columns),
    ]


def test_an_empty_columns_has_every_column_empty() -> None:
    assert len(EventColumns()) == 0
    assert EventColumns().columns == [[] for _ in EVENT_COLUMNS]
    assert EventColumns().rows() == []


def test_properties_traits_and_context_reach_the_columns_byte_for_byte() -> None:
    # JSON as a producer may have written it: spacing, escapes, 1.50, keys out of order; the
    # worker stores the text it got, never a re-encoding of it.
    properties = b'{"z": 1.50, "a": [1e2, "\\u00e9", null], "m": {}}'
    traits = b'{"plan":"pro", "seats":3.0}'
    context = b'{"library":{"name":"analytics.js","version":"2.1"},"ua":"Mozilla/5.0 \\"x\\""}'
    body = orjson.loads(make_model_event(type="identify", event=None).model_dump_json())
    event_json = orjson.dumps(
        {k: v for k, v in body.items() if k not in ("properties", "traits", "context")}
    )
    event_json = (
        event_json[:-1]
        + b',"properties":'
        + properties
        + b',"traits":'
        + traits
        + b',"context":'
        + context
        + b"}"
    )
    [event] = decode_message(events_message([event_json]))
    assert isinstance(event, WireEvent)
    row = event_row(event, meta())
    assert column(row, "properties") == properties
    assert column(row, "traits") == traits
    assert column(row, "context") == context
    # and the profile reads the same values
    assert event.traits_dict() == {"plan": "pro", "seats": 3.0}


# --- chunks: a batch written in bounded pieces, cut between messages -------------------------


def batch_of(sizes: list[int]) -> list[Consumed]:
    """Messages of these many events each (a version 2 message's events share its position)."""
    return [
        consumed(f"m{offset}-{n}", offset) for offset, size in enumerate(sizes) for n in range(size)
    ]


def chunk_shapes(sizes: list[int], max_events: int) -> list[list[int]]:
    """Each chunk as the offsets of its events."""
    return [[c.meta.offset for c in chunk] for chunk in chunks(batch_of(sizes), max_events)]


def test_a_batch_within_the_limit_is_one_chunk() -> None:
    items = batch_of([3, 1, 2])
    assert chunks(items, 6) == [items]
    assert chunks([], 5) == [[]]


def test_chunks_are_cut_between_messages() -> None:
    assert chunk_shapes([3, 3, 3, 3], 5) == [[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]]
    assert chunk_shapes([3, 3, 3, 3], 6) == [[0, 0, 0, 1, 1, 1], [2, 2, 2, 3, 3, 3]]
    assert chunk_shapes([1, 1, 1, 1, 1], 2) == [[0, 1], [2, 3], [4]]


def test_a_message_larger_than_the_limit_is_a_chunk_of_its_own() -> None:
    assert chunk_shapes([2, 7, 2], 5) == [[0, 0], [1] * 7, [2, 2]]
    assert chunk_shapes([7], 5) == [[0] * 7]


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=8), max_size=30),
    max_events=st.integers(min_value=1, max_value=12),
)
def test_chunks_keep_every_event_in_order_never_split_a_message_and_stay_bounded(
    sizes: list[int], max_events: int
) -> None:
    items = batch_of(sizes)
    pieces = chunks(items, max_events)
    assert [c for piece in pieces for c in piece] == items
    assert all(piece for piece in pieces) or items == []
    for piece in pieces:
        messages = {c.meta for c in piece}
        assert len(piece) <= max_events or len(messages) == 1
    for before, after in itertools.pairwise(pieces):
        assert before[-1].meta != after[0].meta  # no message in two chunks


# --- DedupWindow ---------------------------------------------------------------------------

TODAY = 20_500  # a day number: 2026-02-16
WINDOW = DedupWindow(today=TODAY, days=30)


def at_day(day: int, ms_into_it: int = 0) -> int:
    return day * DAY_MS + ms_into_it


def test_the_window_is_built_from_the_clock() -> None:
    assert DedupWindow.at(at_day(TODAY), 30) == WINDOW
    assert DedupWindow.at(at_day(TODAY, DAY_MS - 1), 30) == WINDOW
    assert DedupWindow.at(at_day(TODAY + 1), 30).today == TODAY + 1


def test_the_last_day_inside_the_window_and_the_first_outside() -> None:
    last_inside = TODAY - 30
    for moment in (at_day(last_inside), at_day(last_inside, DAY_MS - 1)):
        assert not WINDOW.is_old(moment)
        assert WINDOW.keep_until(moment) == TODAY  # remembered until today ends
    first_outside = TODAY - 31
    for moment in (at_day(first_outside), at_day(first_outside, DAY_MS - 1)):
        assert WINDOW.is_old(moment)
        assert WINDOW.keep_until(moment) == TODAY + 1  # until tomorrow ends, for a replay


@pytest.mark.parametrize(
    ("day", "keep_until"),
    [
        (TODAY, TODAY + 30),
        (TODAY - 1, TODAY + 29),
        (TODAY + 1, TODAY + 31),
        (TODAY + 400, TODAY + 430),
    ],
)
def test_a_live_or_future_event_is_kept_days_after_its_own_day(day: int, keep_until: int) -> None:
    assert not WINDOW.is_old(at_day(day, 1234))
    assert WINDOW.keep_until(at_day(day, 1234)) == keep_until


def test_an_event_of_1900_is_old_and_kept_until_tomorrow() -> None:
    moment = ms(datetime(1900, 1, 1, tzinfo=UTC))
    assert moment < 0
    assert WINDOW.is_old(moment) and WINDOW.keep_until(moment) == TODAY + 1


def test_no_window_never_calls_an_event_old() -> None:
    for moment in (ms(datetime(1900, 1, 1, tzinfo=UTC)), 0, TS_MS):
        assert not NO_WINDOW.is_old(moment)
        assert NO_WINDOW.keep_until(moment) >= moment // DAY_MS + 10**6


# --- kp: how long Redis remembers each change's id ------------------------------------------


def test_profile_change_carries_the_keep_until_day_and_the_event_time() -> None:
    event = make_event()
    assert profile_change(event)["kp"] == NO_WINDOW.keep_until(TS_MS)
    change = profile_change(event, None, 12_345)
    assert (change["kp"], change["ts"]) == (12_345, str(TS_MS))
    # the caller may pass the event time it computed already
    assert profile_change(event, None, 7, TS_MS + 1)["ts"] == str(TS_MS + 1)


def test_command_change_carries_the_keep_until_day() -> None:
    command = UserCommand(command_id="c1", op="update", user_id="u1", issued_at=TS)
    assert command_change(command)["kp"] == NO_WINDOW.keep_until(TS_MS)
    assert command_change(command, 99)["kp"] == 99


# --- plan_batch and the dedup window -------------------------------------------------------

# A window in which events at TS (2026-03-04) are 400 days old.
LATER = DedupWindow.at(TS_MS + 400 * DAY_MS, 30)
LIVE = TS + timedelta(days=395)  # 5 days before LATER.today: inside its window


def plan_one(
    item: Consumed,
    stored: dict[str, tuple[int, int]],
    in_flight: dict[tuple[str, int, str], OffsetRange] | None = None,
) -> tuple[list[str], list[str]]:
    """(ids of the rows, ids of the changes) planned for one item under LATER."""
    plan = plan_batch([item], set(), stored, in_flight or {}, None, LATER)
    changes = [c["m"] for user in plan.changes_by_user.values() for c in user]
    return [row[0] for row in plan.rows], changes


def test_an_old_event_clickhouse_does_not_have_is_stored_and_applied() -> None:
    assert LATER.is_old(TS_MS)
    item = consumed("old", 5)
    assert plan_one(item, {}) == (["old"], ["old"])
    plan = plan_batch([item], set(), {}, None, None, LATER)
    assert plan.changes_by_user["u1"][0]["kp"] == LATER.today + 1
    assert plan.today == LATER.today


def test_an_old_event_stored_by_another_message_is_a_resend_and_skipped() -> None:
    item = consumed("old", 5)
    assert plan_one(item, {"old": (0, 99)}) == ([], [])
    assert plan_one(item, {"old": (1, 5)}) == ([], [])  # same offset, another partition
    # even when its own offset is in flight: the row is another message's
    marked = {item.meta.partition_key: OffsetRange(0, 10)}
    assert plan_one(item, {"old": (0, 4)}, marked) == ([], [])
    # its position still counts as done
    plan = plan_batch([item], set(), {"old": (0, 99)}, None, None, LATER)
    assert plan.last_offsets == {item.meta.partition_key: 5}


def test_an_old_event_stored_by_this_message_while_in_flight_is_applied_without_a_row() -> None:
    item = consumed("old", 5)
    marked = {item.meta.partition_key: OffsetRange(3, 8)}
    assert plan_one(item, {"old": (0, 5)}, marked) == ([], ["old"])


def test_an_old_event_stored_by_this_message_not_in_flight_is_skipped() -> None:
    # an offset reset replays a message applied long ago: Redis forgot it, its row is there
    item = consumed("old", 5)
    assert plan_one(item, {"old": (0, 5)}) == ([], [])
    elsewhere = {item.meta.partition_key: OffsetRange(6, 9)}
    assert plan_one(item, {"old": (0, 5)}, elsewhere) == ([], [])


def test_a_live_event_clickhouse_has_is_applied_without_a_row_wherever_its_row_came_from() -> None:
    item = consumed("live", 5, timestamp=LIVE)
    assert not LATER.is_old(ms(LIVE))
    assert plan_one(item, {"live": (0, 99)}) == ([], ["live"])
    assert plan_one(item, {}) == (["live"], ["live"])


def test_every_change_carries_its_keep_until_day() -> None:
    items = [
        consumed("old", 1),
        consumed("live", 2, timestamp=LIVE),
        Consumed(UserCommand(command_id="c", op="update", user_id="u1", issued_at=LIVE), meta(3)),
        Consumed(UserCommand(command_id="c-old", op="update", user_id="u1", issued_at=TS), meta(4)),
    ]
    plan = plan_batch(items, set(), {}, None, None, LATER)
    live_until = ms(LIVE) // DAY_MS + 30
    assert [(c["m"], c["kp"]) for c in plan.changes_by_user["u1"]] == [
        ("old", LATER.today + 1),
        ("live", live_until),
        ("c", live_until),
        ("c-old", LATER.today + 1),
    ]


def test_possibly_stored_includes_the_events_outside_the_window() -> None:
    old, live = consumed("old", 1), consumed("live", 2, timestamp=LIVE)
    command = Consumed(
        UserCommand(command_id="c", op="update", user_id="u1", issued_at=TS), meta(3)
    )
    items = [old, live, command]
    assert possibly_stored(items, {}, set(), LATER) == [old]
    assert possibly_stored(items, {}, {"old"}, LATER) == []  # applied: Redis remembers it
    assert possibly_stored(items, {}, set()) == []  # no window: nothing is old
    marked = {old.meta.partition_key: OffsetRange(0, 9)}
    assert possibly_stored(items, marked, set(), LATER) == [old, live]
