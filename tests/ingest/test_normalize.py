"""Unit tests for ingest/normalize.py: Segment-spec validation and clock-skew correction."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from ingest.limits import MAX_NESTING
from ingest.normalize import (
    BatchDefaults,
    EventTooLarge,
    InvalidEvent,
    Limits,
    anonymous_id_from_header,
    corrected_timestamp,
    normalize_event,
)
from schemas.events import Event
from schemas.messages import EventMessage, FieldError

RECEIVED = datetime(2026, 5, 10, 12, 0, 0, tzinfo=UTC)


def normalize(raw: Any, **kwargs: Any):
    kwargs.setdefault("received_at", RECEIVED)
    kwargs.setdefault("source", "web")
    return normalize_event(raw, **kwargs)


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Clicked", "userId": "u1", **fields}


def error_fields(exc: InvalidEvent) -> list[str]:
    return [e.field for e in exc.errors]


def assert_utc_ms(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    assert value.microsecond % 1000 == 0


# --- corrected_timestamp -------------------------------------------------------------------


def test_corrected_timestamp_applies_skew_correction() -> None:
    received = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    sent = datetime(2026, 1, 1, 11, 0, 0, tzinfo=UTC)  # client clock one hour behind
    original = datetime(2026, 1, 1, 10, 59, 30, tzinfo=UTC)  # 30 s before sending
    assert corrected_timestamp(received, sent, original) == datetime(
        2026, 1, 1, 11, 59, 30, tzinfo=UTC
    )


def test_a_client_clock_within_the_tolerance_is_taken_as_right() -> None:
    received = datetime(2026, 1, 1, 12, 0, 0, 300000, tzinfo=UTC)
    sent = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)  # 300 ms in transit, or a clock 300 ms off
    original = datetime(2026, 1, 1, 11, 59, 59, tzinfo=UTC)
    tolerance = timedelta(seconds=10)
    assert corrected_timestamp(received, sent, original, tolerance) == original
    assert corrected_timestamp(received, sent, original) == original + timedelta(milliseconds=300)
    far = datetime(2026, 1, 1, 11, 59, 49, tzinfo=UTC)  # 11.3 s off: corrected
    assert corrected_timestamp(received, far, original, tolerance) == original + (received - far)


def test_two_requests_in_flight_keep_the_order_their_events_were_made_in() -> None:
    # an identify sent at once (slow: its CORS preflight first) and a set made 10 ms later,
    # sent in the next request: corrected each by its own transit time they would swap
    made = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    first = normalize_event(
        {
            "type": "identify",
            "userId": "u",
            "timestamp": made.isoformat(),
            "sentAt": made.isoformat(),
        },
        received_at=made + timedelta(milliseconds=250),
        source="web",
    )
    later = made + timedelta(milliseconds=10)
    second = normalize_event(
        {
            "type": "identify",
            "userId": "u",
            "timestamp": later.isoformat(),
            "sentAt": later.isoformat(),
        },
        received_at=later + timedelta(milliseconds=20),
        source="web",
    )
    assert first.timestamp < second.timestamp


def test_corrected_timestamp_without_sent_at_uses_original() -> None:
    original = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert corrected_timestamp(RECEIVED, None, original) == original


def test_corrected_timestamp_without_original_uses_received() -> None:
    sent = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert corrected_timestamp(RECEIVED, sent, None) == RECEIVED
    assert corrected_timestamp(RECEIVED, None, None) == RECEIVED


# --- timestamps in normalize_event ---------------------------------------------------------


def test_skew_correction_in_normalize_event() -> None:
    event = normalize(
        track(
            timestamp="2026-05-10T09:00:00Z",  # client clock is 3 hours behind
            sentAt="2026-05-10T09:00:05Z",
        )
    )
    # receivedAt - (sentAt - originalTimestamp) = 12:00:00 - 5 s
    assert event.timestamp == datetime(2026, 5, 10, 11, 59, 55, tzinfo=UTC)
    assert event.original_timestamp == datetime(2026, 5, 10, 9, 0, 0, tzinfo=UTC)
    assert event.sent_at == datetime(2026, 5, 10, 9, 0, 5, tzinfo=UTC)
    assert event.received_at == RECEIVED


def test_client_timestamp_becomes_original_timestamp() -> None:
    event = normalize(track(timestamp="2026-05-09T08:07:06.543Z"))
    expected = datetime(2026, 5, 9, 8, 7, 6, 543000, tzinfo=UTC)
    assert event.original_timestamp == expected
    # no sentAt: the client's timestamp is used as is
    assert event.timestamp == expected
    assert event.sent_at is None


def test_original_timestamp_field_is_used_for_correction() -> None:
    event = normalize(
        track(originalTimestamp="2026-05-10T10:00:00Z", sentAt="2026-05-10T10:00:10Z")
    )
    assert event.original_timestamp == datetime(2026, 5, 10, 10, 0, 0, tzinfo=UTC)
    assert event.timestamp == RECEIVED - timedelta(seconds=10)


def test_without_any_client_time_timestamp_is_received_at() -> None:
    event = normalize(track())
    assert event.timestamp == RECEIVED
    assert event.original_timestamp is None
    assert event.sent_at is None


def test_sent_at_without_timestamp_gives_received_at() -> None:
    event = normalize(track(sentAt="2026-05-10T01:00:00Z"))
    assert event.timestamp == RECEIVED
    assert event.sent_at == datetime(2026, 5, 10, 1, 0, tzinfo=UTC)


def test_all_times_are_utc_truncated_to_milliseconds() -> None:
    received = datetime(2026, 5, 10, 12, 0, 0, 123999, tzinfo=UTC)
    event = normalize(
        track(
            timestamp="2026-05-10T11:00:00.987654Z",
            sentAt="2026-05-10T11:00:01.000999Z",
        ),
        received_at=received,
    )
    for value in (event.timestamp, event.original_timestamp, event.sent_at, event.received_at):
        assert value is not None
        assert_utc_ms(value)
    assert event.received_at == datetime(2026, 5, 10, 12, 0, 0, 123000, tzinfo=UTC)
    assert event.original_timestamp == datetime(2026, 5, 10, 11, 0, 0, 987000, tzinfo=UTC)
    assert event.sent_at == datetime(2026, 5, 10, 11, 0, 1, 0, tzinfo=UTC)
    # 12:00:00.123 - (11:00:01.000 - 11:00:00.987) = 12:00:00.110
    assert event.timestamp == datetime(2026, 5, 10, 12, 0, 0, 110000, tzinfo=UTC)


def test_naive_datetimes_are_treated_as_utc() -> None:
    event = normalize(
        track(timestamp="2026-05-10T08:00:00"),
        received_at=datetime(2026, 5, 10, 12, 0, 0),  # naive
    )
    assert event.received_at == RECEIVED
    assert event.received_at.utcoffset() == timedelta(0)
    assert event.timestamp == datetime(2026, 5, 10, 8, 0, 0, tzinfo=UTC)
    assert event.timestamp.utcoffset() == timedelta(0)


def test_non_utc_offsets_are_converted() -> None:
    received = datetime(2026, 5, 10, 17, 30, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    event = normalize(track(timestamp="2026-05-10T07:00:00-04:00"), received_at=received)
    assert event.received_at == RECEIVED
    assert event.received_at.utcoffset() == timedelta(0)
    assert event.timestamp == datetime(2026, 5, 10, 11, 0, 0, tzinfo=UTC)
    assert event.timestamp.utcoffset() == timedelta(0)
    assert event.original_timestamp is not None
    assert event.original_timestamp.utcoffset() == timedelta(0)


def test_far_future_timestamp_is_rejected() -> None:
    future = RECEIVED + Limits().max_future_skew + timedelta(seconds=1)
    with pytest.raises(InvalidEvent) as info:
        normalize(track(timestamp=future.isoformat()))
    assert error_fields(info.value) == ["timestamp"]


def test_far_future_after_correction_is_rejected() -> None:
    # The client's own clock says the event is two days after it was sent.
    with pytest.raises(InvalidEvent) as info:
        normalize(track(timestamp="2026-05-12T00:00:00Z", sentAt="2026-05-10T00:00:00Z"))
    assert error_fields(info.value) == ["timestamp"]


def test_skewed_client_clock_is_not_far_future_after_correction() -> None:
    # The client clock is a week ahead, but the event was sent right after it happened.
    event = normalize(track(timestamp="2026-05-17T12:00:00Z", sentAt="2026-05-17T12:00:01Z"))
    assert event.timestamp == RECEIVED - timedelta(seconds=1)


def test_timestamp_within_future_skew_is_accepted() -> None:
    near = RECEIVED + Limits().max_future_skew - timedelta(seconds=1)
    event = normalize(track(timestamp=near.isoformat()))
    assert event.timestamp == near


def test_custom_future_skew_limit() -> None:
    limits = Limits(max_future_skew=timedelta(minutes=5))
    with pytest.raises(InvalidEvent) as info:
        normalize(track(timestamp="2026-05-10T12:06:00Z"), limits=limits)
    assert error_fields(info.value) == ["timestamp"]


def test_timestamp_before_2000_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(timestamp="1999-12-31T23:59:59Z"))
    assert error_fields(info.value) == ["timestamp"]


def test_timestamp_at_2000_is_accepted() -> None:
    event = normalize(track(timestamp="2000-01-01T00:00:00Z"))
    assert event.timestamp == datetime(2000, 1, 1, tzinfo=UTC)


# --- messageId ------------------------------------------------------------------------------


def test_message_id_generated_when_absent() -> None:
    first = normalize(track())
    second = normalize(track())
    assert str(uuid.UUID(first.message_id)) == first.message_id
    assert first.message_id != second.message_id


def test_message_id_kept_when_present() -> None:
    assert normalize(track(messageId="abc-123")).message_id == "abc-123"


def test_message_id_at_length_limit_is_accepted() -> None:
    message_id = "m" * Limits().max_message_id_length
    assert normalize(track(messageId=message_id)).message_id == message_id


def test_message_id_over_length_limit_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(messageId="m" * (Limits().max_message_id_length + 1)))
    assert error_fields(info.value) == ["messageId"]
    assert info.value.message_id is None  # an invalid id is not echoed back


def test_message_id_over_custom_limit_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(messageId="abcdef"), limits=Limits(max_message_id_length=5))
    assert error_fields(info.value) == ["messageId"]


def test_very_long_message_id_is_rejected_on_message_id() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(messageId="m" * 1000))
    assert error_fields(info.value) == ["messageId"]


def test_invalid_event_carries_its_message_id() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "track", "userId": "u1", "messageId": "keep-me"})
    assert info.value.message_id == "keep-me"
    with pytest.raises(InvalidEvent) as info:
        normalize(
            {"type": "track", "event": "x", "userId": "u", "messageId": "id-2", "properties": []}
        )
    assert info.value.message_id == "id-2"


# --- required fields per type ---------------------------------------------------------------


def test_track_requires_event() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "track", "userId": "u1"})
    assert error_fields(info.value) == ["event"]


def test_track_with_empty_event_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "track", "userId": "u1", "event": ""})
    assert error_fields(info.value) == ["event"]


def test_group_requires_group_id() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "group", "userId": "u1"})
    assert error_fields(info.value) == ["groupId"]
    event = normalize({"type": "group", "userId": "u1", "groupId": "g1"})
    assert event.group_id == "g1"


def test_alias_requires_previous_id_and_user_id() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "alias", "anonymousId": "anon"})
    assert sorted(error_fields(info.value)) == ["previousId", "userId"]

    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "alias", "userId": "u1"})
    assert error_fields(info.value) == ["previousId"]

    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "alias", "previousId": "old", "anonymousId": "anon"})
    assert error_fields(info.value) == ["userId"]

    event = normalize({"type": "alias", "userId": "u1", "previousId": "old"})
    assert (event.user_id, event.previous_id) == ("u1", "old")


@pytest.mark.parametrize("event_type", ["track", "identify", "page", "screen", "group"])
def test_every_event_needs_user_id_or_anonymous_id(event_type: str) -> None:
    raw = {"type": event_type, "event": "E", "groupId": "g"}
    with pytest.raises(InvalidEvent) as info:
        normalize(raw)
    assert error_fields(info.value) == ["userId"]
    assert normalize({**raw, "anonymousId": "a1"}).anonymous_id == "a1"
    assert normalize({**raw, "userId": "u1"}).user_id == "u1"


def test_all_missing_fields_are_reported_together() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "track", "messageId": "m" * 101})
    assert sorted(error_fields(info.value)) == ["event", "messageId", "userId"]
    assert "userId" in str(info.value)


def test_missing_type_is_reported() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"event": "E", "userId": "u1"})
    assert error_fields(info.value) == ["type"]


def test_unknown_type_is_reported() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "purchase", "event": "E", "userId": "u1"})
    assert error_fields(info.value) == ["type"]


def test_numeric_user_id_becomes_string() -> None:
    event = normalize({"type": "identify", "userId": 12345, "anonymousId": 7})
    assert event.user_id == "12345"
    assert event.anonymous_id == "7"


def test_boolean_user_id_is_rejected() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "identify", "userId": True})
    assert "userId" in error_fields(info.value)


def test_properties_as_list_names_the_field() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(properties=[1, 2]))
    assert error_fields(info.value) == ["properties"]
    assert info.value.errors[0].reason


def test_unparseable_timestamp_names_the_field() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(timestamp="yesterday"))
    assert error_fields(info.value) == ["timestamp"]


def test_several_type_errors_are_all_named() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(properties="x", sentAt="soon", context=5))
    assert sorted(error_fields(info.value)) == ["context", "properties", "sentAt"]


def test_null_objects_become_empty() -> None:
    event = normalize(track(properties=None, traits=None, context=None, integrations=None))
    assert event.properties == {}
    assert event.traits == {}
    assert event.context == {}
    assert event.integrations == {}


@pytest.mark.parametrize("raw", [[], "track", 42, None, [{"type": "track"}]])
def test_non_object_event_is_invalid(raw: Any) -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(raw)
    assert not isinstance(info.value, EventTooLarge)
    assert error_fields(info.value) == ["event"]


def test_oversized_event_is_too_large() -> None:
    raw = track(messageId="big-1", properties={"blob": "x" * (Limits().max_event_bytes + 1)})
    with pytest.raises(EventTooLarge) as info:
        normalize(raw)
    assert isinstance(info.value, InvalidEvent)
    assert error_fields(info.value) == ["event"]
    assert info.value.message_id == "big-1"
    assert str(Limits().max_event_bytes) in info.value.errors[0].reason


def test_size_limit_is_configurable() -> None:
    raw = track(properties={"blob": "x" * 200})
    assert normalize(raw).properties["blob"] == "x" * 200
    with pytest.raises(EventTooLarge):
        normalize(raw, limits=Limits(max_event_bytes=100))


def test_invalid_event_message_joins_errors() -> None:
    exc = InvalidEvent(
        [FieldError(field="a", reason="bad"), FieldError(field="b.c", reason="worse")], "m1"
    )
    assert str(exc) == "a: bad; b.c: worse"
    assert exc.message_id == "m1"


# --- event_type, defaults, output -----------------------------------------------------------


def test_event_type_argument_overrides_body_type() -> None:
    event = normalize({"type": "track", "userId": "u1", "name": "Home"}, event_type="page")
    assert event.type == "page"
    assert event.name == "Home"


def test_event_type_argument_applies_type_rules() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize({"type": "identify", "userId": "u1"}, event_type="track")
    assert error_fields(info.value) == ["event"]


def test_event_type_argument_fills_missing_type() -> None:
    assert normalize({"userId": "u1", "traits": {"a": 1}}, event_type="identify").type == (
        "identify"
    )


def test_normalize_does_not_mutate_raw() -> None:
    raw: dict[str, Any] = {
        "type": "track",
        "event": "E",
        "userId": "u1",
        "context": {"ip": "1.2.3.4"},
    }
    before = {**raw, "context": dict(raw["context"])}
    normalize(raw, event_type="track", defaults=BatchDefaults(context={"library": "x"}))
    assert raw == before


def test_batch_context_merges_under_event_context() -> None:
    defaults = BatchDefaults(context={"library": {"name": "batch"}, "ip": "10.0.0.1"})
    event = normalize(track(context={"ip": "1.2.3.4", "locale": "en-GB"}), defaults=defaults)
    assert event.context == {
        "library": {"name": "batch"},
        "ip": "1.2.3.4",
        "locale": "en-GB",
    }


def test_batch_context_used_when_event_has_none() -> None:
    defaults = BatchDefaults(context={"library": {"name": "batch"}})
    assert normalize(track(), defaults=defaults).context == {"library": {"name": "batch"}}


def test_batch_context_used_when_event_context_is_null() -> None:
    # `context: null` means "no context" (it normalizes to {}), so the batch context applies.
    defaults = BatchDefaults(context={"library": {"name": "batch"}})
    assert normalize(track(context=None), defaults=defaults).context == {
        "library": {"name": "batch"}
    }


def test_batch_integrations_merge_under_event_integrations() -> None:
    defaults = BatchDefaults(integrations={"All": False, "Mixpanel": True})
    event = normalize(track(integrations={"All": True}), defaults=defaults)
    assert event.integrations == {"All": True, "Mixpanel": True}


def test_batch_sent_at_used_when_event_has_none() -> None:
    defaults = BatchDefaults(sent_at="2026-05-10T09:00:10Z")
    event = normalize(track(timestamp="2026-05-10T09:00:00Z"), defaults=defaults)
    assert event.sent_at == datetime(2026, 5, 10, 9, 0, 10, tzinfo=UTC)
    assert event.timestamp == RECEIVED - timedelta(seconds=10)


def test_event_sent_at_wins_over_batch_sent_at() -> None:
    defaults = BatchDefaults(sent_at="2026-05-10T09:00:10Z")
    event = normalize(
        track(timestamp="2026-05-10T09:00:00Z", sentAt="2026-05-10T09:00:02Z"),
        defaults=defaults,
    )
    assert event.sent_at == datetime(2026, 5, 10, 9, 0, 2, tzinfo=UTC)
    assert event.timestamp == RECEIVED - timedelta(seconds=2)


def test_invalid_batch_sent_at_is_reported_on_sent_at() -> None:
    with pytest.raises(InvalidEvent) as info:
        normalize(track(), defaults=BatchDefaults(sent_at="not a time"))
    assert error_fields(info.value) == ["sentAt"]


def test_normalized_event_carries_every_field() -> None:
    event = normalize(
        {
            "type": "identify",
            "messageId": "m-1",
            "userId": "u1",
            "anonymousId": "a1",
            "traits": {"plan": "pro", "seats": 3},
            "properties": {"ignored": False},
            "context": {"ip": "1.2.3.4"},
            "integrations": {"All": True},
            "unknownTopLevel": "dropped",
        },
        source="ios",
    )
    assert event.message_id == "m-1"
    assert event.type == "identify"
    assert event.user_id == "u1"
    assert event.anonymous_id == "a1"
    assert event.traits == {"plan": "pro", "seats": 3}
    assert event.properties == {"ignored": False}
    assert event.context == {"ip": "1.2.3.4"}
    assert event.integrations == {"All": True}
    assert event.source == "ios"
    assert not hasattr(event, "unknownTopLevel")


def test_rejection_echoes_only_the_clients_own_message_id() -> None:
    with pytest.raises(InvalidEvent) as without_id:
        normalize({"type": "track", "userId": "u1"})  # no event name, no messageId
    assert without_id.value.message_id is None
    with pytest.raises(InvalidEvent) as with_id:
        normalize({"type": "track", "userId": "u1", "messageId": "client-7"})
    assert with_id.value.message_id == "client-7"


# --- RudderStack's dialect ---------------------------------------------------------------------


def identify(**fields: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": "ada", **fields}


def test_identify_traits_from_context_traits() -> None:
    # RudderStack's SDKs send identify traits only in context.traits.
    event = normalize(identify(context={"traits": {"email": "a@example.com", "plan": "pro"}}))
    assert event.traits == {"email": "a@example.com", "plan": "pro"}


def test_top_level_traits_win_over_context_traits() -> None:
    event = normalize(
        identify(traits={"plan": "team"}, context={"traits": {"plan": "pro", "name": "Ada"}})
    )
    assert event.traits == {"plan": "team", "name": "Ada"}


def test_context_traits_of_a_batch_reach_its_identifies() -> None:
    defaults = BatchDefaults(context={"traits": {"email": "a@example.com"}})
    assert normalize(identify(), defaults=defaults).traits == {"email": "a@example.com"}


def test_context_traits_do_not_become_traits_of_other_types() -> None:
    event = normalize(track(context={"traits": {"email": "a@example.com"}}))
    assert event.traits == {}
    assert event.context["traits"] == {"email": "a@example.com"}


def test_anonymous_id_header_fills_in_a_missing_anonymous_id() -> None:
    header = base64.b64encode(b"anon-7").decode()
    event = normalize(
        {"type": "page"}, defaults=BatchDefaults(anonymous_id=anonymous_id_from_header(header))
    )
    assert event.anonymous_id == "anon-7"
    own = normalize(
        {"type": "page", "anonymousId": "own"},
        defaults=BatchDefaults(anonymous_id=anonymous_id_from_header(header)),
    )
    assert own.anonymous_id == "own"


@pytest.mark.parametrize("header", [None, "", "not base64!", base64.b64encode(b"\xff").decode()])
def test_an_unreadable_anonymous_id_header_is_ignored(header: str | None) -> None:
    assert anonymous_id_from_header(header) is None


def test_a_batch_context_that_makes_an_event_too_large_is_refused() -> None:
    # 2,500 tiny events sharing a 30 KB batch context must not each become 30 KB.
    defaults = BatchDefaults(context={"blob": "x" * 30_000})
    with pytest.raises(EventTooLarge) as caught:
        normalize(track(properties={"pad": "y" * 3_000}), defaults=defaults)
    assert error_fields(caught.value) == ["event"]
    assert "with the batch's context" in caught.value.errors[0].reason
    assert normalize(track(), defaults=defaults).context["blob"]  # under the limit: kept


def test_identify_traits_merged_from_context_count_toward_the_size_limit() -> None:
    traits = {"bio": "z" * 20_000}
    with pytest.raises(EventTooLarge):
        normalize(identify(context={"traits": traits}))


def test_context_protocol_is_ingests_to_say_never_the_clients() -> None:
    raw = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "context": {"protocol": "posthog", "ip": "x"},
    }
    assert normalize_event(raw, received_at=RECEIVED, source="web").context == {"ip": "x"}
    tagged = normalize_event(raw, received_at=RECEIVED, source="web", protocol="mixpanel")
    assert tagged.context == {"ip": "x", "protocol": "mixpanel"}
    bare = {"type": "track", "userId": "u", "event": "E"}
    assert normalize_event(
        bare, received_at=RECEIVED, source="web", protocol="amplitude"
    ).context == {"protocol": "amplitude"}


# --- nesting and size, checked on the event's encoding --------------------------------------


def nested(levels: int) -> Any:
    """A value nesting `levels` lists and objects (alternating), innermost a scalar."""
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


def test_an_event_nesting_exactly_the_limit_is_kept_and_one_more_is_refused() -> None:
    # the event object is the first level, its properties the second
    kept = normalize(track(properties={"deep": nested(MAX_NESTING - 2)}))
    assert kept.properties["deep"]
    with pytest.raises(InvalidEvent) as info:
        normalize(track(messageId="deep-1", properties={"deep": nested(MAX_NESTING - 1)}))
    assert not isinstance(info.value, EventTooLarge)
    assert error_fields(info.value) == ["event"]
    assert "nests deeper" in info.value.errors[0].reason
    assert info.value.message_id == "deep-1"


def test_an_event_too_deep_for_orjson_is_refused_as_too_deep() -> None:
    # orjson cannot encode it at all (255 levels): still a field error, not a 500
    with pytest.raises(InvalidEvent) as info:
        normalize(track(properties={"deep": nested(400)}))
    assert "nests deeper" in info.value.errors[0].reason


def test_many_shallow_lists_and_objects_are_not_too_deep() -> None:
    # More brackets than the nesting limit, two levels deep: the exact walk says it is fine.
    items = [{"sku": i, "tags": []} for i in range(MAX_NESTING)]
    assert len(normalize(track(properties={"items": items})).properties["items"]) == MAX_NESTING


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = "[{" * (2 * MAX_NESTING)
    assert normalize(track(properties={"text": text})).properties["text"] == text


def test_an_identify_with_nothing_merged_is_measured_as_sent() -> None:
    # exactly at the limit as sent; nothing the server adds (an absent `traits`) counts
    raw = identify(messageId="edge-1", properties={"pad": ""})
    raw["properties"]["pad"] = "p" * (Limits().max_event_bytes - len(orjson.dumps(raw)))
    assert len(orjson.dumps(raw)) == Limits().max_event_bytes
    assert normalize(raw).message_id == "edge-1"
    raw["properties"]["pad"] += "p"
    with pytest.raises(EventTooLarge):
        normalize(raw)


# --- the normalized Event -------------------------------------------------------------------


REALISTIC_CONTEXT: dict[str, Any] = {
    "library": {"name": "analytics.js", "version": "npm:next-1.81.1"},
    "page": {"path": "/pricing", "referrer": "https://www.google.com/", "title": "Pricing"},
    "userAgentData": {"brands": [{"brand": "Chromium", "version": "131"}], "mobile": False},
    "locale": "en-US",
    "screen": {"width": 1512, "height": 982, "density": 2},
}


@pytest.mark.parametrize(
    "raw",
    [
        track(messageId="m-1", context=REALISTIC_CONTEXT, properties={"price": 9.5, "n": None}),
        identify(
            anonymousId=7,
            timestamp="2026-05-10T11:59:58.123456+02:00",
            sentAt="2026-05-10T12:00:00Z",
            traits={"plan": "pro"},
            context={"traits": {"email": "a@example.com"}},
        ),
        {"type": "page", "anonymousId": "a", "name": "Home", "originalTimestamp": "2026-05-09"},
        {"type": "group", "userId": 5, "groupId": 1.5, "integrations": {"All": False}},
        {"type": "alias", "userId": "u", "previousId": "p", "context": None},
        track(profileOps={"$set": {"plan": "pro"}}, configs={"flow": "B"}),
    ],
)
def test_the_event_is_what_validating_its_fields_gives(raw: dict[str, Any]) -> None:
    # normalize_event builds the Event from values it validated itself (Event.trusted): the
    # same Event, and the same JSON, as validating every field again would give.
    event = normalize(raw)
    validated = Event(**{name: getattr(event, name) for name in Event.model_fields})
    assert Event.model_validate_json(event.model_dump_json()) == event
    assert event == validated
    assert event.model_fields_set == validated.model_fields_set
    assert event.model_dump_json() == validated.model_dump_json()
    assert (
        EventMessage(event=event).model_dump_json()
        == EventMessage(event=validated).model_dump_json()
    )


def test_null_objects_are_each_an_empty_dict_of_their_own() -> None:
    event = normalize(track(properties=None, traits=None, anonymousId=None, profileOps=None))
    assert event.properties == event.traits == {}
    assert event.properties is not event.traits
    assert event.profile_ops is None
    assert event.anonymous_id is None
    assert event.user_id == "u1"
