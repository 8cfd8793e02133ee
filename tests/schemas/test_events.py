"""Unit tests for schemas/events.py and the Kafka wire models in schemas/messages.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from schemas.events import (
    EVENT_TYPES,
    TYPE_EVENT_NAMES,
    Event,
    EventType,
    SegmentEvent,
    to_utc_ms,
)
from schemas.messages import (
    SCHEMA_VERSION,
    DeadLetterMessage,
    EventMessage,
    FieldError,
    RejectionMessage,
)

TS = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def segment(**fields: Any) -> SegmentEvent:
    return SegmentEvent.model_validate(fields)


def event(**fields: Any) -> Event:
    values: dict[str, Any] = {
        "message_id": "m",
        "type": "track",
        "timestamp": TS,
        "received_at": TS,
        "user_id": "u",
    }
    values.update(fields)
    return Event(**values)


# --- to_utc_ms ------------------------------------------------------------------------------


def test_to_utc_ms_truncates_microseconds() -> None:
    value = datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)
    assert to_utc_ms(value) == datetime(2026, 1, 1, 0, 0, 0, 999000, tzinfo=UTC)
    assert to_utc_ms(datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=UTC)).microsecond == 0


def test_to_utc_ms_naive_is_utc() -> None:
    result = to_utc_ms(datetime(2026, 1, 1, 10, 0, 0, 123456))
    assert result == datetime(2026, 1, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)


def test_to_utc_ms_converts_offsets() -> None:
    value = datetime(2026, 1, 1, 1, 0, 0, 500500, tzinfo=timezone(timedelta(hours=2)))
    result = to_utc_ms(value)
    assert result.tzinfo == UTC
    assert (result.year, result.month, result.day, result.hour) == (2025, 12, 31, 23)
    assert result.microsecond == 500000


def test_to_utc_ms_is_idempotent() -> None:
    once = to_utc_ms(datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC))
    assert to_utc_ms(once) == once


# --- SegmentEvent.missing_fields ------------------------------------------------------------


def fields_of(model: SegmentEvent) -> list[str]:
    return [f for f, _ in model.missing_fields()]


def test_complete_events_have_no_missing_fields() -> None:
    assert segment(type="track", event="E", userId="u").missing_fields() == []
    assert segment(type="identify", anonymousId="a").missing_fields() == []
    assert segment(type="page", userId="u").missing_fields() == []
    assert segment(type="screen", anonymousId="a").missing_fields() == []
    assert segment(type="group", userId="u", groupId="g").missing_fields() == []
    assert segment(type="alias", userId="u", previousId="p").missing_fields() == []


def test_missing_ids() -> None:
    missing = segment(type="identify").missing_fields()
    assert [f for f, _ in missing] == ["userId"]
    assert "anonymousId" in missing[0][1]


def test_track_missing_event() -> None:
    assert fields_of(segment(type="track", userId="u")) == ["event"]


def test_group_missing_group_id() -> None:
    assert fields_of(segment(type="group", userId="u")) == ["groupId"]


def test_alias_missing_fields() -> None:
    assert fields_of(segment(type="alias", anonymousId="a")) == ["previousId", "userId"]
    assert fields_of(segment(type="alias", userId="u")) == ["previousId"]
    # userId reported twice when both ids are absent: once generally, once for alias
    assert fields_of(segment(type="alias", previousId="p")).count("userId") == 2


def test_type_specific_fields_not_required_for_other_types() -> None:
    assert fields_of(segment(type="page", userId="u")) == []
    assert fields_of(segment(type="identify", userId="u")) == []


def test_segment_event_ids_numbers_become_strings() -> None:
    model = segment(type="alias", userId=42, previousId=7, anonymousId=1.5, groupId=0)
    assert (model.userId, model.previousId, model.anonymousId, model.groupId) == (
        "42",
        "7",
        "1.5",
        "0",
    )


def test_segment_event_rejects_bool_id() -> None:
    with pytest.raises(ValidationError) as info:
        segment(type="identify", userId=False)
    assert info.value.errors()[0]["loc"] == ("userId",)


def test_segment_event_ignores_unknown_fields_and_nulls_become_empty() -> None:
    model = segment(type="track", event="E", userId="u", bogus=1, properties=None, context=None)
    assert model.properties == {}
    assert model.context == {}
    assert "bogus" not in model.model_dump()


def test_segment_event_rejects_empty_and_overlong_strings() -> None:
    with pytest.raises(ValidationError) as info:
        segment(type="track", event="E", userId="")
    assert info.value.errors()[0]["loc"] == ("userId",)
    with pytest.raises(ValidationError) as info:
        segment(type="track", event="E" * 256, userId="u")
    assert info.value.errors()[0]["loc"] == ("event",)


def test_segment_event_nested_path_in_errors() -> None:
    with pytest.raises(ValidationError) as info:
        segment(type="track", event="E", userId="u", properties={"a": 1}, timestamp=[1])
    assert [e["loc"] for e in info.value.errors()] == [("timestamp",)]


# --- Event.profile_key / event_name ---------------------------------------------------------


def test_profile_key_prefers_user_id() -> None:
    assert event(user_id="u", anonymous_id="a").profile_key == "u"
    assert event(user_id=None, anonymous_id="a").profile_key == "a"


def test_event_name_for_track_is_event() -> None:
    assert event(type="track", event="Order Completed").event_name == "Order Completed"


@pytest.mark.parametrize("event_type", [t for t in EVENT_TYPES if t != "track"])
def test_event_name_for_other_types(event_type: EventType) -> None:
    assert event(type=event_type, event="ignored").event_name == f"${event_type}"
    assert TYPE_EVENT_NAMES[event_type] == f"${event_type}"


def test_track_without_event_name_falls_back() -> None:
    assert event(type="track", event=None).event_name == "$track"


def test_event_is_frozen() -> None:
    with pytest.raises(ValidationError):
        event().message_id = "other"  # type: ignore[misc]


# --- messages round trips -------------------------------------------------------------------


def full_event() -> Event:
    return Event(
        message_id="m-1",
        type="identify",
        user_id="u1",
        anonymous_id="a1",
        traits={"plan": "pro", "n": 1, "f": 1.5, "l": [1, "x"], "d": {"k": None}},
        properties={},
        context={"ip": "1.2.3.4"},
        integrations={"All": True},
        timestamp=TS,
        original_timestamp=TS - timedelta(seconds=3),
        sent_at=TS - timedelta(seconds=1),
        received_at=TS + timedelta(seconds=1),
        source="web",
    )


def test_event_message_round_trip() -> None:
    message = EventMessage(event=full_event())
    data = message.model_dump_json()
    decoded = EventMessage.model_validate_json(data)
    assert decoded == message
    assert decoded.event.timestamp == TS
    assert decoded.event.timestamp.utcoffset() == timedelta(0)
    assert decoded.event.traits["n"] == 1
    assert isinstance(decoded.event.traits["n"], int)


def test_event_message_carries_version_and_kind() -> None:
    body = orjson.loads(EventMessage(event=full_event()).model_dump_json())
    assert body["v"] == SCHEMA_VERSION == 1
    assert body["kind"] == "event"
    assert body["event"]["message_id"] == "m-1"


def test_event_message_refuses_other_versions() -> None:
    body = orjson.loads(EventMessage(event=full_event()).model_dump_json())
    body["v"] = 2
    with pytest.raises(ValidationError):
        EventMessage.model_validate_json(orjson.dumps(body))


def test_rejection_message_round_trip() -> None:
    message = RejectionMessage(
        source="web",
        endpoint="/v1/batch",
        index=3,
        message_id="m-9",
        errors=[FieldError(field="properties", reason="bad")],
        received_at=TS,
    )
    decoded = RejectionMessage.model_validate_json(message.model_dump_json())
    assert decoded == message
    assert decoded.kind == "rejection"
    assert decoded.errors[0].field == "properties"


def test_dead_letter_message_round_trip() -> None:
    message = DeadLetterMessage(
        topic="events", partition=1, offset=99, reason="bad", key=None, value_b64="AAE="
    )
    decoded = DeadLetterMessage.model_validate_json(message.model_dump_json())
    assert decoded == message
    assert decoded.kind == "dead-letter"
    assert decoded.v == 1


def test_event_outside_what_clickhouse_stores_is_refused() -> None:
    fields: dict[str, object] = {
        "message_id": "m",
        "type": "track",
        "user_id": "u",
        "event": "E",
        "received_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    for year in (1899, 2300):
        with pytest.raises(ValidationError, match=r"than or equal to (1900|2299)-"):
            Event(**fields, timestamp=datetime(year, 6, 1, tzinfo=UTC))
    ok = Event(**fields, timestamp=datetime(1900, 1, 1, tzinfo=UTC))
    assert ok.timestamp.year == 1900
    with pytest.raises(ValidationError, match="timezone"):
        Event(**fields, timestamp=datetime(2026, 6, 1))


def test_profile_ops_and_configs_travel_only_when_there_are_some() -> None:
    at = datetime(2026, 5, 6, tzinfo=UTC)
    base = {"message_id": "m", "type": "track", "user_id": "u", "event": "E"}
    plain = Event(**base, timestamp=at, received_at=at)
    wire = EventMessage(event=plain).model_dump_json()
    # left out when empty: the message is what it was before the fields existed
    assert "profile_ops" not in wire and "configs" not in wire
    assert EventMessage.model_validate_json(wire).event == plain
    rich = Event(
        **base,
        timestamp=at,
        received_at=at,
        profile_ops={"$append": {"visits": ["home"]}},
        configs={"checkout": "B"},
    )
    decoded = EventMessage.model_validate_json(EventMessage(event=rich).model_dump_json()).event
    assert decoded.profile_ops == {"$append": {"visits": ["home"]}}
    assert decoded.configs == {"checkout": "B"}
