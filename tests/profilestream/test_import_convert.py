"""Converting a record: the live validation, the providers' own mappings, and a stable
messageId for every event (same input, same id; another record, another id)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ingest.normalize import InvalidEvent, Limits
from ingest.providers.mixpanel.mapping import event_events
from profilestream.importing.convert import Conversion, amplitude_upload, convert
from profilestream.importing.formats import Format
from profilestream.importing.records import Record
from schemas.events import Event
from tests.support.import_files import amplitude_events, at, mixpanel_events, segment_events

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LATER = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def converted(format_: Format, value: Any, *, received_at: datetime = NOW, **extra: Any) -> Any:
    conversion = Conversion(format_, "imports", received_at, Limits())
    return convert(Record("line 1", value, **extra), conversion)


def one_event(format_: Format, value: Any, **extra: Any) -> Event:
    result = converted(format_, value, **extra)
    assert not isinstance(result, InvalidEvent), result
    assert len(result) == 1
    event: Event = result[0]
    return event


def refusal(format_: Format, value: Any) -> list[tuple[str, str]]:
    result = converted(format_, value)
    assert isinstance(result, InvalidEvent)
    return [(e.field, e.reason) for e in result.errors]


# --- Segment ------------------------------------------------------------------------------------


def test_segment_event_keeps_its_message_id_and_its_own_time() -> None:
    raw = segment_events("s", 1)[0]
    event = one_event(Format.SEGMENT, raw)
    assert event.message_id == "s-m0"
    assert event.timestamp == at(0)
    assert event.source == "imports"
    assert event.received_at == NOW


def test_segment_ids_are_stable_across_runs_and_differ_between_lines() -> None:
    first, second = segment_events("s", 2, ids=False)
    one = one_event(Format.SEGMENT, first).message_id
    again = converted(Format.SEGMENT, dict(first), received_at=LATER)[0].message_id
    other = one_event(Format.SEGMENT, second).message_id
    assert one == again
    assert one != other
    # and another format's hash of the same content is another id
    assert one != one_event(Format.USERS, {"userId": "x"}).message_id


def test_segment_time_is_its_timestamp_and_sent_at_moves_nothing() -> None:
    raw = {
        "type": "track",
        "userId": "u",
        "event": "Old",
        "messageId": "m",
        "timestamp": "2025-03-01T12:00:05Z",  # Segment's corrected time
        "originalTimestamp": "2025-03-01T12:00:00Z",  # the client's clock
        "sentAt": "2025-03-01T12:00:01Z",
    }
    assert one_event(Format.SEGMENT, raw).timestamp == datetime(2025, 3, 1, 12, 0, 5, tzinfo=UTC)
    del raw["timestamp"]
    assert one_event(Format.SEGMENT, raw).timestamp == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_segment_batch_envelope_context_applies() -> None:
    raw = segment_events("s", 1)[0]
    event = one_event(Format.SEGMENT, raw, envelope={"context": {"app": {"name": "shop"}}})
    assert event.context["app"] == {"name": "shop"}


def test_segment_refusals_name_the_field() -> None:
    assert refusal(Format.SEGMENT, {"type": "track", "event": "x", "messageId": "m"})[0][0] == (
        "userId"
    )
    assert refusal(Format.SEGMENT, [1, 2]) == [("event", "an event must be a JSON object")]
    old = {"type": "track", "userId": "u", "event": "x", "timestamp": "1999-12-31T00:00:00Z"}
    assert refusal(Format.SEGMENT, old) == [("timestamp", "before 2000-01-01T00:00:00Z")]


# --- Mixpanel -----------------------------------------------------------------------------------


def test_mixpanel_export_line_mapped_as_ingest_maps_import() -> None:
    raw = mixpanel_events("mp", 1)[0]
    event = one_event(Format.MIXPANEL, raw)
    assert event.message_id == "mpmp0"  # its $insert_id
    assert event.user_id == "mp-mp"
    assert event.event == "mp Mixpanel Import"
    assert event.timestamp == at(0)
    assert event.context["protocol"] == "mixpanel"
    assert "time" not in event.properties and event.properties["seq"] == 0


def test_mixpanel_without_insert_id_gets_the_live_routes_hash() -> None:
    raw = mixpanel_events("mp", 1, insert_ids=False)[0]
    event = one_event(Format.MIXPANEL, raw)
    live = event_events(raw, historical=True)[0]["messageId"]
    assert event.message_id == live  # the same event sent live and imported dedups
    assert converted(Format.MIXPANEL, raw, received_at=LATER)[0].message_id == live


def test_mixpanel_refusals_are_in_mixpanel_terms() -> None:
    assert refusal(Format.MIXPANEL, {"event": "x", "properties": {"distinct_id": "u"}}) == [
        ("properties.time", "is required (epoch seconds or milliseconds)")
    ]


# --- Amplitude ----------------------------------------------------------------------------------


def test_amplitude_export_event_mapped_as_ingest_maps_one() -> None:
    raw = amplitude_events("am", 1)[0]
    event = one_event(Format.AMPLITUDE, raw)
    assert event.message_id == "am-amp-0"  # its $insert_id
    assert event.user_id == "am-amp" and event.anonymous_id == "am-device"
    assert event.event == "am Amplitude Import"
    assert event.timestamp == at(0)
    assert event.context["protocol"] == "amplitude"
    assert event.context["ip"] == "203.0.113.9"
    assert event.profile_ops == {"$set": {"plan": "pro"}}


def test_amplitude_id_falls_back_to_uuid_then_to_a_hash() -> None:
    raw = amplitude_events("am", 1)[0]
    del raw["$insert_id"]
    assert one_event(Format.AMPLITUDE, raw).message_id == raw["uuid"]
    del raw["uuid"]
    hashed = one_event(Format.AMPLITUDE, raw).message_id
    assert hashed == converted(Format.AMPLITUDE, dict(raw), received_at=LATER)[0].message_id


def test_amplitude_upload_keeps_an_http_api_event_as_it_is() -> None:
    event = {"event_type": "x", "user_id": "u", "time": 1740830400000, "insert_id": "i"}
    assert amplitude_upload(event) == event


def test_amplitude_refusals_are_in_amplitude_terms() -> None:
    assert refusal(Format.AMPLITUDE, {"user_id": "u", "event_time": "2025-03-01 00:00:00"}) == [
        ("event_type", "is required (a non-empty string)")
    ]
    bad_time = {"event_type": "x", "user_id": "u", "event_time": "yesterday"}
    assert refusal(Format.AMPLITUDE, bad_time)[0][0] == "time"


# --- users CSV ----------------------------------------------------------------------------------


def test_user_row_becomes_an_identify_with_its_traits() -> None:
    event = one_event(Format.USERS, {"user_id": "ada", "plan": "pro", "email": "", "city": "  "})
    assert event.type == "identify"
    assert event.user_id == "ada"
    assert event.traits == {"plan": "pro"}  # empty cells are skipped


def test_user_row_ids_are_stable_and_follow_the_content() -> None:
    row = {"userId": "ada", "plan": "pro"}
    same = one_event(Format.USERS, dict(row)).message_id
    assert one_event(Format.USERS, row).message_id == same
    assert one_event(Format.USERS, {**row, "plan": "team"}).message_id != same


def test_user_row_without_an_id_is_refused_naming_the_column() -> None:
    assert refusal(Format.USERS, {"id": " ", "plan": "pro"}) == [
        ("id", "is empty: every row needs a user id")
    ]
