"""The forwarded events' mapping, from the documented payloads (tests/support/webhooks.py):
pure, then through the Segment API's validation (ingest.providers.common.normalized)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
import pytest

from infra.http import ApiError
from ingest.normalize import InvalidEvent, Limits
from ingest.providers.common import DELETE_REFUSED, Received, map_items, normalized
from ingest.providers.webhooks.mapping import (
    event_time,
    rudderstack_event,
    rudderstack_items,
    segment_event,
    segment_items,
)
from schemas.events import Event
from tests.support import webhooks

AT = datetime(2026, 11, 30, 9, 15, 0, tzinfo=UTC)
segment_message = partial(webhooks.segment_message, at=AT)
rudderstack_payload = partial(webhooks.rudderstack_event, at=AT)
# Our receipt: a Segment retry, two hours after the event happened.
RECEIVED = Received(AT + timedelta(hours=2), "web", "segment-webhook", Limits())


def one(mapped: list[dict[str, Any]], received: Received = RECEIVED) -> Event:
    events = normalized(mapped, received)
    assert len(events) == 1
    return events[0]


def test_a_segment_track_keeps_its_ids_properties_and_messageid() -> None:
    message = segment_message(
        "track", "ajs-1", at=AT, userId="ada", event="Order Completed", properties={"total": 25.5}
    )
    event = one(segment_event(message))
    assert (event.type, event.event, event.user_id) == ("track", "Order Completed", "ada")
    assert event.anonymous_id == "507f191e810c19729de860ea"
    assert event.message_id == "ajs-1"
    assert event.properties == {"total": 25.5}
    assert event.source == "web"
    assert event.context["protocol"] == "segment-webhook"
    assert event.context["library"]["name"] == "analytics.js"


def test_the_event_time_is_the_forwarders_corrected_timestamp_not_our_receipt() -> None:
    """Segment already corrected the device's clock (7 minutes slow here) against its own
    receipt; correcting again against ours would move a retried event to the retry's time."""
    message = segment_message("track", "ajs-2", at=AT, userId="ada", event="E")
    assert message["originalTimestamp"] != message["timestamp"]
    event = one(segment_event(message))
    assert event.timestamp == AT
    assert event.sent_at is None  # the forwarder's send time is not the device's
    assert event.received_at == RECEIVED.received_at


def test_without_timestamp_the_forwarders_correction_is_redone_from_its_receipt() -> None:
    message = segment_message("track", "ajs-3", at=AT, userId="ada", event="E", timestamp=None)
    assert event_time(message) == "2026-11-30T09:15:00Z"
    assert one(segment_event(message)).timestamp == AT


def test_with_only_an_original_timestamp_it_is_the_event_time() -> None:
    message = {"type": "track", "userId": "ada", "event": "E", "originalTimestamp": "2026-11-30"}
    assert event_time(message) == "2026-11-30"
    assert event_time({"type": "track"}) is None
    bad = {"originalTimestamp": "yesterday", "sentAt": "2026-11-30T00:00:00Z", "receivedAt": 1}
    assert event_time(bad) == "yesterday"  # passed on: validation names it


def test_an_unparseable_timestamp_is_refused_naming_it() -> None:
    message = segment_message("track", "ajs-4", userId="ada", event="E", timestamp="soon")
    with pytest.raises(InvalidEvent) as refused:
        one(segment_event(message))
    assert [e.field for e in refused.value.errors] == ["timestamp"]
    assert refused.value.message_id == "ajs-4"


@pytest.mark.parametrize("mapping", [segment_event, rudderstack_event])
def test_a_delete_is_refused_with_the_reason(mapping: Any) -> None:
    message = {"type": "delete", "userId": "ada", "messageId": "del-1"}
    with pytest.raises(InvalidEvent) as refused:
        mapping(message)
    assert [(e.field, e.reason) for e in refused.value.errors] == [("type", DELETE_REFUSED)]
    assert refused.value.message_id == "del-1"


def test_a_message_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidEvent) as refused:
        segment_event(["track"])
    assert refused.value.errors[0].field == "event"


def test_identify_group_page_screen_and_alias_map_one_to_one() -> None:
    messages = [
        segment_message("identify", "i", userId="ada", traits={"email": "ada@example.com"}),
        segment_message("group", "g", userId="ada", groupId="acme", traits={"plan": "team"}),
        segment_message("page", "p", userId="ada", name="Pricing", properties={"path": "/p"}),
        segment_message("screen", "s", userId="ada", name="Home"),
        segment_message("alias", "a", userId="ada", previousId="anon-1", anonymousId=None),
    ]
    events = [one(segment_event(m)) for m in messages]
    assert [e.type for e in events] == ["identify", "group", "page", "screen", "alias"]
    assert events[0].traits == {"email": "ada@example.com"}
    assert (events[1].group_id, events[1].traits) == ("acme", {"plan": "team"})
    assert (events[2].name, events[3].name) == ("Pricing", "Home")
    assert events[4].previous_id == "anon-1"


def test_an_alias_spelled_as_in_segments_classic_docs_is_read() -> None:
    """segment-docs' Classic alias example has "Previous ID" and "User ID" keys."""
    documented = {"version": 1, "type": "alias", "Previous ID": "anon-7", "User ID": "ada",
                  "timestamp": "2026-11-30T09:15:00.000Z", "messageId": "al-1"}  # fmt: skip
    event = one(segment_event(documented))
    assert (event.type, event.previous_id, event.user_id) == ("alias", "anon-7", "ada")
    spec = segment_message("alias", "al-2", userId="ada", previousId="anon-8", anonymousId=None)
    assert one(segment_event({**spec, "Previous ID": "ignored"})).previous_id == "anon-8"


def test_without_messageid_a_stable_one_is_derived_so_a_resend_counts_once() -> None:
    message = {"type": "track", "userId": "ada", "event": "E", "timestamp": "2026-11-30T09:00:00Z"}
    first, again = segment_event(message)[0], segment_event(dict(message))[0]
    assert first["messageId"] == again["messageId"]
    other = segment_event({**message, "event": "F"})[0]
    assert other["messageId"] != first["messageId"]


def test_rudderstack_request_ip_fills_a_missing_context_ip() -> None:
    event = one(rudderstack_event(rudderstack_payload("track", "r-1", userId="u", event="E")))
    assert event.context["ip"] == "198.51.100.23"
    own_ip = rudderstack_payload("track", "r-2", userId="u", event="E")
    own_ip["context"]["ip"] = "192.0.2.1"
    assert one(rudderstack_event(own_ip)).context["ip"] == "192.0.2.1"
    no_context = {"type": "track", "userId": "u", "event": "E", "request_ip": "192.0.2.9"}
    assert one(rudderstack_event(no_context)).context["ip"] == "192.0.2.9"


def test_rudderstack_identify_takes_its_traits_from_context_traits() -> None:
    payload = rudderstack_payload("identify", "r-3", at=AT, userId="u", traits=None)
    payload["context"]["traits"] = {"email": "u@example.com", "plan": "pro"}
    event = one(rudderstack_event(payload))
    assert event.traits == {"email": "u@example.com", "plan": "pro"}
    assert event.timestamp == AT
    # A track's context.traits are RudderStack's cached traits, not a change to the profile.
    track = one(rudderstack_event(rudderstack_payload("track", "r-4", userId="u", event="E")))
    assert track.traits == {}


def test_rudderstack_own_fields_are_not_kept() -> None:
    event = one(rudderstack_event(rudderstack_payload("track", "r-5", userId="u", event="E")))
    dumped = event.model_dump_json()
    assert "rudderId" not in dumped and "request_ip" not in dumped


def test_a_refused_item_keeps_its_index_and_costs_no_other() -> None:
    items = [
        segment_message("track", "ok-1", userId="ada", event="E"),
        {"type": "delete", "userId": "ada", "messageId": "del"},
        segment_message("track", "bad", userId="ada"),  # no event name
        segment_message("page", "ok-2", userId="ada"),
    ]
    results = map_items(items, segment_event, RECEIVED)
    kept = [r[0].message_id for r in results if isinstance(r, list)]
    assert kept == ["ok-1", "ok-2"]
    refused = [(n, r.errors[0].field) for n, r in enumerate(results) if isinstance(r, InvalidEvent)]
    assert refused == [(1, "type"), (2, "event")]


# --- body forms ---------------------------------------------------------------------------------

EVENT = {"type": "track", "userId": "u", "event": "E"}


def test_segment_bodies_are_one_object_or_an_array() -> None:
    assert segment_items(EVENT, 10) == ([EVENT], True)
    assert segment_items([EVENT, EVENT], 10) == ([EVENT, EVENT], False)


@pytest.mark.parametrize(
    "body",
    [EVENT, [EVENT, EVENT], {"batch": orjson.dumps([EVENT, EVENT]).decode()}, {"batch": [EVENT]}],
    ids=["object", "array", "batch string", "batch array"],
)
def test_rudderstack_bodies_in_every_form(body: Any) -> None:
    items, single = rudderstack_items(body, 10)
    assert items and all(item == EVENT for item in items)
    assert single is (isinstance(body, dict) and "batch" not in body)


def test_an_event_with_a_batch_property_is_still_one_event() -> None:
    event = {**EVENT, "batch": "not a batch"}
    assert rudderstack_items(event, 10) == ([event], True)


@pytest.mark.parametrize(
    ("parse", "body", "status", "field"),
    [
        (segment_items, "track", 400, "body"),
        (segment_items, [], 400, "batch"),
        (segment_items, [EVENT] * 11, 413, "batch"),
        (rudderstack_items, 7, 400, "body"),
        (rudderstack_items, {"batch": "[{"}, 400, "batch"),
        (rudderstack_items, {"batch": '{"type": "track"}'}, 400, "batch"),
        (rudderstack_items, {"batch": 3}, 400, "batch"),
        (rudderstack_items, {"batch": "[]"}, 400, "batch"),
        (rudderstack_items, {"batch": [EVENT] * 11}, 413, "batch"),
    ],
)
def test_bad_bodies_are_4xx_naming_the_field(
    parse: Any, body: Any, status: int, field: str
) -> None:
    with pytest.raises(ApiError) as refused:
        parse(body, 10)
    assert refused.value.status == status
    assert [e.field for e in refused.value.errors] == [field]
