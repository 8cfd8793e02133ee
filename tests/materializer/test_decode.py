"""Unit tests for materializer/decode.py: Kafka bytes -> the worker's events. Both versions of
the events topic (1: one event or command per message; 2: a request's events for one partition)
decode to the same events; whatever is not one of them is a dead letter with the reason, and an
event of a version 2 message that fails alone is dead-lettered alone."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from materializer.decode import (
    Consumed,
    RawMessage,
    UndecodableMessage,
    WireEvent,
    as_message,
    decode_batch,
    decode_message,
)
from schemas.commands import UserCommand
from schemas.events import Event
from schemas.messages import (
    CommandMessage,
    DeadLetterMessage,
    EventMessage,
    EventsMessage,
    events_message,
)
from tests.support.builders import TS, as_wire, make_model_event, meta


def v1(event: Event) -> bytes:
    return EventMessage(event=event).model_dump_json().encode()


def v2(*events: Event) -> bytes:
    """A version 2 message as ingest builds it (schemas.messages.events_message)."""
    return events_message([e.model_dump_json().encode() for e in events])


def command(**fields: Any) -> UserCommand:
    values: dict[str, Any] = {"command_id": "c1", "op": "update", "user_id": "u1", "issued_at": TS}
    return UserCommand(**{**values, **fields})


def full_event(message_id: str = "m1", **fields: Any) -> Event:
    """An event with every field the wire carries, the skipped ones included."""
    values: dict[str, Any] = {
        "message_id": message_id,
        "anonymous_id": "a1",
        "properties": {"price": 9.99, "tags": ["x"], "nested": {"n": 1}, "text": "é"},
        "traits": {"plan": "pro"},
        "context": {"ip": "1.2.3.4", "library": {"name": "analytics.js"}},
        "integrations": {"All": True},
        "original_timestamp": TS,
        "sent_at": TS,
        "profile_ops": {"$increment": {"n": 1}},
        "configs": {"checkout": "B"},
        "name": "Home",
        "group_id": "g1",
    }
    return make_model_event(**{**values, **fields})


def events_of(consumed: list[Consumed]) -> list[WireEvent | UserCommand]:
    return [c.event for c in consumed]


def decoded_wire(value: bytes) -> dict[str, Any]:
    """The JSON a dead letter keeps."""
    parsed: dict[str, Any] = orjson.loads(value)
    return parsed


# --- both versions decode to the same events --------------------------------------------------


def test_a_version_1_event_round_trips() -> None:
    event = full_event()
    [decoded] = decode_message(v1(event))
    assert decoded == as_wire(event)
    assert isinstance(decoded, WireEvent)
    assert decoded.properties_dict() == event.properties
    assert decoded.traits_dict() == event.traits
    assert orjson.loads(bytes(decoded.context)) == event.context
    assert (decoded.profile_ops, decoded.configs) == (event.profile_ops, event.configs)
    assert (decoded.profile_key, decoded.event_name) == ("u1", "Clicked")


def test_version_1_and_version_2_messages_decode_to_the_same_events() -> None:
    events = [full_event("a"), full_event("b", type="identify", event=None), full_event("c")]
    one_by_one, dead_1 = decode_batch(
        [RawMessage(b"u1", v1(e), meta(n)) for n, e in enumerate(events)]
    )
    together, dead_2 = decode_batch([RawMessage(b"u1", v2(*events), meta(7))])
    assert dead_1 == dead_2 == []
    assert events_of(together) == events_of(one_by_one) == [as_wire(e) for e in events]
    # the events of a version 2 message share its position
    assert [c.meta for c in together] == [meta(7)] * 3
    # what ingest builds by hand is the pydantic model's own JSON
    modelled = EventsMessage(events=events).model_dump_json().encode()
    assert modelled == v2(*events)
    assert decode_message(modelled) == decode_message(v2(*events))


def test_a_version_1_command_decodes_to_the_command() -> None:
    sent = command(set={"plan": "pro", "seats": 3}, unset=["city"], tags_add=["vip"])
    [decoded] = decode_message(CommandMessage(command=sent).model_dump_json().encode())
    assert decoded == sent


def test_commands_and_both_event_versions_keep_log_order_in_one_batch() -> None:
    a, b, c = full_event("a"), full_event("b"), full_event("c")
    consumed, dead = decode_batch(
        [
            RawMessage(b"u1", v2(a, b), meta(1)),
            RawMessage(
                b"u1", CommandMessage(command=command()).model_dump_json().encode(), meta(2)
            ),
            RawMessage(b"u1", v1(c), meta(3)),
        ]
    )
    assert dead == []
    assert events_of(consumed) == [as_wire(a), as_wire(b), command(), as_wire(c)]
    assert [c.meta.offset for c in consumed] == [1, 1, 2, 3]


def test_an_empty_version_2_message_holds_no_event() -> None:
    assert decode_message(events_message([])) == []


# --- what is not a message of a known version -------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"garbage", b"", b"\xff\xfe\xfd", b"[]", b"null", b"{}", b'{"v": 1, "kind": "event"}'],
)
def test_garbage_is_undecodable_with_a_reason(value: bytes) -> None:
    with pytest.raises(UndecodableMessage) as info:
        decode_message(value)
    assert str(info.value).startswith("validation error: ")


def test_a_tombstone_is_undecodable() -> None:
    with pytest.raises(UndecodableMessage, match="tombstone"):
        decode_message(None)


@pytest.mark.parametrize(
    ("kind", "version"),
    [("event", 2), ("event", 0), ("command", 2), ("events", 1), ("events", 3)],
)
def test_an_unknown_version_of_a_kind_is_a_dead_letter_naming_v(kind: str, version: int) -> None:
    body: dict[str, Any] = {
        "event": {"kind": "event", "event": orjson.loads(make_model_event().model_dump_json())},
        "command": {"kind": "command", "command": orjson.loads(command().model_dump_json())},
        "events": {
            "kind": "events",
            "events": [orjson.loads(make_model_event().model_dump_json())],
        },
    }[kind]
    original = orjson.dumps({"v": version, **body})
    consumed, [letter] = decode_batch([RawMessage(b"k", original, meta(5, 1, topic="ev"))])
    assert consumed == []
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("ev", 1, 5, "k")
    assert "$.v" in letter.reason
    assert base64.b64decode(letter.value_b64) == original


@pytest.mark.parametrize("kind", ["rejection", "Event", None])
def test_an_unknown_kind_is_a_dead_letter_naming_kind(kind: str | None) -> None:
    body = orjson.loads(v1(make_model_event()))
    body["kind"] = kind
    original = orjson.dumps(body)
    consumed, [letter] = decode_batch([RawMessage(b"k", original, meta(3))])
    assert consumed == []
    assert "kind" in letter.reason
    assert base64.b64decode(letter.value_b64) == original


@pytest.mark.parametrize("missing", ["message_id", "type", "timestamp", "received_at"])
def test_a_missing_event_field_is_named(missing: str) -> None:
    body = orjson.loads(v1(make_model_event()))
    del body["event"][missing]
    with pytest.raises(UndecodableMessage) as info:
        decode_message(orjson.dumps(body))
    assert f"`{missing}`" in str(info.value) and "$.event" in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("user_id", None),  # and no anonymous_id: nothing to key the profile by
        ("timestamp", "1800-01-01T00:00:00Z"),  # before what ClickHouse can hold
        ("received_at", "2026-03-04T05:06:07"),  # no time zone
        ("properties", []),
        ("traits", "plan"),
        ("context", 1),
        ("type", "click"),
        ("message_id", 7),
    ],
)
def test_an_event_the_stores_cannot_take_is_undecodable(field: str, value: Any) -> None:
    body = orjson.loads(v1(make_model_event()))
    body["event"][field] = value
    with pytest.raises(UndecodableMessage) as info:
        decode_message(orjson.dumps(body))
    assert "$.event" in str(info.value)


def test_an_invalid_command_is_undecodable() -> None:
    body = orjson.loads(CommandMessage(command=command()).model_dump_json())
    body["command"]["op"] = "merge"
    with pytest.raises(UndecodableMessage, match=r"first at command\.op") as info:
        decode_message(orjson.dumps(body))
    assert "merge" not in str(info.value)  # names the field, never quotes the value


# --- a version 2 message with bad events ------------------------------------------------------


def test_a_bad_event_of_a_version_2_message_is_dead_lettered_alone() -> None:
    good = [make_model_event(message_id=m) for m in ("a", "b", "c")]
    encoded = [e.model_dump_json().encode() for e in good]
    bad = orjson.loads(encoded[1])
    del bad["message_id"]
    bad_bytes = orjson.dumps(bad)
    value = events_message([encoded[0], bad_bytes, encoded[2]])
    before = RawMessage(b"u1", v1(make_model_event(message_id="z")), meta(8, 2))
    after = RawMessage(b"u1", v1(make_model_event(message_id="y")), meta(10, 2))
    consumed, dead = decode_batch([before, RawMessage(b"u1", value, meta(9, 2)), after])

    # its neighbours are kept, in order, at the message's position
    assert [(c.event.message_id, c.meta.offset) for c in consumed] == [
        ("z", 8),
        ("a", 9),
        ("c", 9),
        ("y", 10),
    ]
    [letter] = dead
    assert isinstance(letter, DeadLetterMessage)
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("events", 2, 9, "u1")
    assert letter.reason.startswith("event 1 of the message: ")
    assert "`message_id`" in letter.reason
    # the letter holds that event alone, as a version 1 message (replayable alone)
    kept = base64.b64decode(letter.value_b64)
    assert decoded_wire(kept) == {"v": 1, "kind": "event", "event": bad}
    with pytest.raises(UndecodableMessage, match="message_id"):
        decode_message(kept)  # still bad: a replay would dead-letter it again, not store it
    fixed = orjson.loads(kept)
    fixed["event"]["message_id"] = "b"
    assert decode_message(orjson.dumps(fixed)) == [as_wire(good[1])]


def test_every_bad_event_of_a_version_2_message_gets_its_own_letter() -> None:
    good = orjson.loads(make_model_event(message_id="g").model_dump_json())
    events = [b'"not an object"', orjson.dumps(good), orjson.dumps({**good, "type": "?"}), b"{}"]
    consumed, dead = decode_batch([RawMessage(None, events_message(events), meta(4))])
    assert [c.event.message_id for c in consumed] == ["g"]
    assert [letter.reason.split(":")[0] for letter in dead] == [
        "event 0 of the message",
        "event 2 of the message",
        "event 3 of the message",
    ]
    assert [decoded_wire(base64.b64decode(d.value_b64))["event"] for d in dead] == [
        "not an object",
        {**good, "type": "?"},
        {},
    ]
    assert {(d.offset, d.key) for d in dead} == {(4, None)}


def test_a_version_2_message_broken_as_a_whole_is_one_dead_letter() -> None:
    event = orjson.loads(make_model_event().model_dump_json())
    for value in (
        orjson.dumps({"v": 2, "kind": "events", "events": event}),  # not a list
        orjson.dumps({"v": 2, "kind": "events"}),
        events_message([make_model_event().model_dump_json().encode()])[:-2],  # truncated
    ):
        consumed, [letter] = decode_batch([RawMessage(b"k", value, meta(6))])
        assert consumed == []
        assert base64.b64decode(letter.value_b64) == value
        assert not letter.reason.startswith("event ")


# --- decode_batch ---------------------------------------------------------------------------


def test_decode_batch_splits_good_and_dead() -> None:
    good_a = make_model_event(message_id="a")
    good_b = make_model_event(message_id="b")
    bad_value = b"\x00not json"
    messages = [
        RawMessage(b"u1", v1(good_a), meta(10, 2)),
        RawMessage(b"u1", bad_value, meta(11, 2)),
        RawMessage(None, None, meta(12, 2)),
        RawMessage(b"u1", v1(good_b), meta(13, 2)),
    ]
    good, dead = decode_batch(messages)

    assert [c.event.message_id for c in good] == ["a", "b"]
    assert [c.meta.offset for c in good] == [10, 13]
    assert good[0].event == as_wire(good_a)

    first, second = dead
    assert (first.topic, first.partition, first.offset) == ("events", 2, 11)
    assert first.key == "u1"
    assert first.reason
    assert base64.b64decode(first.value_b64) == bad_value
    assert (second.offset, second.key, second.value_b64) == (12, None, "")
    assert "tombstone" in second.reason


def test_decode_batch_non_utf8_key_does_not_crash() -> None:
    _, dead = decode_batch([RawMessage(b"\xff\xfe", b"junk", meta(1))])
    assert dead[0].key is not None


def test_decode_batch_empty() -> None:
    assert decode_batch([]) == ([], [])


# --- as_message: what a dead letter of one decoded event keeps --------------------------------


def test_as_message_is_a_version_1_message_of_the_event() -> None:
    event = full_event()
    value = as_message(as_wire(event))
    assert decode_message(value) == [as_wire(event)]
    # ingest's own model reads it back as the same event (the skipped fields aside)
    again = EventMessage.model_validate_json(value).event
    skipped = {"integrations", "original_timestamp", "sent_at"}
    assert again.model_dump(exclude=skipped) == event.model_dump(exclude=skipped)


def test_as_message_keeps_the_json_objects_byte_for_byte() -> None:
    body = orjson.loads(v1(make_model_event()))
    body["event"]["properties"] = {"b": 1, "a": [1.5, "é"]}
    text = orjson.dumps(body).replace(b'"b":1', b'"b":1.0')
    [event] = decode_message(text)
    assert isinstance(event, WireEvent)
    assert b'{"b":1.0,"a":[1.5,"\xc3\xa9"]}' in as_message(event)


def test_as_message_of_a_command_is_a_command_message() -> None:
    sent = command(op="delete")
    assert CommandMessage.model_validate_json(as_message(sent)).command == sent
    assert decode_message(as_message(sent)) == [sent]


def test_a_wire_event_compares_by_value() -> None:
    first = as_wire(make_model_event(timestamp=datetime(2026, 1, 1, tzinfo=UTC)))
    assert first == as_wire(make_model_event(timestamp=datetime(2026, 1, 1, tzinfo=UTC)))
    assert first != as_wire(make_model_event(properties={"a": 1}))
