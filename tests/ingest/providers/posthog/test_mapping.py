"""ingest/providers/posthog/mapping.py: the requests posthog (PyPI) 7.91.1 and posthog-js
1.449.2 sent (captures/), mapped and then normalized as the routes do; and each rule on its
own (ids, aliases' direction, person operations, flags, timestamps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.normalize import InvalidEvent, Limits
from ingest.providers.common import Received, map_items
from ingest.providers.posthog.mapping import (
    PROTOCOL,
    Envelope,
    map_event,
    sent_at_from,
)
from schemas.events import Event
from tests.ingest.providers.posthog.captures import (
    JS_SDK,
    PYTHON_SDK,
    batches,
    event_named,
    events,
)

RECEIVED = datetime(2026, 12, 1, 21, 41, 23, tzinfo=UTC)
ENVELOPE = Envelope(received_at=RECEIVED, sent_at=datetime(2026, 12, 1, 21, 41, 22, tzinfo=UTC))
DEVICE = "01a23390-166d-7ef7-b447-c0f93a79c5b7"


def nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def mapped(item: Any, envelope: Envelope = ENVELOPE) -> dict[str, Any]:
    (event,) = map_event(item, envelope)
    return event


def normalized(items: list[Any], envelope: Envelope = ENVELOPE) -> list[Event | InvalidEvent]:
    received = Received(envelope.received_at, "web", PROTOCOL, Limits())
    results = map_items(items, lambda item: map_event(item, envelope), received)
    return [r if isinstance(r, InvalidEvent) else r[0] for r in results]


# --- the captured requests --------------------------------------------------------------------


@pytest.mark.parametrize("sdk", [PYTHON_SDK, JS_SDK])
def test_every_captured_event_becomes_one_valid_event_with_its_uuid(sdk: str) -> None:
    for batch in batches(sdk):
        envelope = Envelope(RECEIVED, sent_at_from(batch["sent_at"], None))
        results = normalized(batch["batch"], envelope)
        assert all(isinstance(r, Event) for r in results), results
        assert [r.message_id for r in results if isinstance(r, Event)] == [
            e["uuid"] for e in batch["batch"]
        ]
        assert all(r.context["protocol"] == "posthog" for r in results if isinstance(r, Event))


def test_python_capture_with_set_and_set_once_is_a_track_with_profile_ops() -> None:
    event = mapped(event_named("signed_up", PYTHON_SDK))
    assert event["type"] == "track" and event["event"] == "signed_up"
    assert event["userId"] == "user-1" and "anonymousId" not in event
    assert event["profileOps"] == {"$set": {"email": "a@b.c"}, "$set_once": {"first": "x"}}
    assert event["properties"]["plan"] == "pro"
    assert "$set" not in event["properties"] and "$set_once" not in event["properties"]
    assert event["properties"]["$lib"] == "posthog-python"  # PostHog's own kept for analysts
    assert event["context"]["library"] == {"name": "posthog-python", "version": "7.91.1"}
    assert event["timestamp"] == "2024-01-02T03:04:05+00:00"
    assert event["sentAt"] == "2026-12-01T21:41:22Z"


def test_python_set_and_set_once_calls_are_identifies() -> None:
    assert mapped(event_named("$set", PYTHON_SDK))["traits"] == {"$set": {"name": "Max"}}
    once = mapped(event_named("$set_once", PYTHON_SDK))
    assert once["type"] == "identify" and once["userId"] == "user-1"
    assert once["traits"] == {"$set_once": {"first_seen": "2024"}}


def test_python_alias_makes_the_new_id_the_user_and_the_previous_id_merge_into_it() -> None:
    # alias(previous_id="anon-1", distinct_id="user-1")
    event = mapped(event_named("$create_alias", PYTHON_SDK))
    assert (event["type"], event["userId"], event["previousId"]) == ("alias", "user-1", "anon-1")
    assert "anonymousId" not in event


def test_js_alias_while_identified_folds_the_alias_into_the_current_user() -> None:
    event = mapped(event_named("$create_alias", JS_SDK))
    assert (event["type"], event["userId"], event["previousId"]) == ("alias", "user-1", "alias-9")


def test_an_alias_longer_than_a_distinct_id_may_be_is_truncated_like_one() -> None:
    item = event_named("$create_alias", JS_SDK)
    item = {**item, "properties": {**item["properties"], "alias": "a" * 300}}
    event = mapped(item)
    assert event["previousId"] == "a" * 200  # the id its own events are stored under


def test_js_alias_while_anonymous_links_the_anonymous_id_to_the_alias() -> None:
    item = event_named("$create_alias", JS_SDK)
    item = {**item, "properties": {**item["properties"], "distinct_id": DEVICE}}
    item["properties"]["$is_identified"] = False
    event = mapped(item)
    assert (event["userId"], event["previousId"]) == ("alias-9", DEVICE)


@pytest.mark.parametrize("sdk", [PYTHON_SDK, JS_SDK])
def test_group_identify_is_a_group_event(sdk: str) -> None:
    event = mapped(event_named("$groupidentify", sdk))
    assert event["type"] == "group" and event["groupId"] == "acme"
    assert event["traits"] == {"employees": 11}
    assert event["properties"]["group_type"] == "company"
    assert not any(k.startswith("$group_") for k in event["properties"])


def test_feature_flag_called_is_a_track_with_the_variation_served() -> None:
    event = mapped(event_named("$feature_flag_called", PYTHON_SDK))
    assert event["type"] == "track" and event["event"] == "$feature_flag_called"
    assert event["configs"] == {"my-exp": "test"}


def test_python_purchase_keeps_its_groups_in_context() -> None:
    event = mapped(event_named("purchase", PYTHON_SDK))
    assert event["context"]["groups"] == {"company": "acme"}
    assert "profileOps" not in event and "configs" not in event


def test_js_pageview_is_a_page_of_the_anonymous_device() -> None:
    event = mapped(event_named("$pageview", JS_SDK))
    assert event["type"] == "page" and event["name"] == "Test Page"
    assert event["anonymousId"] == DEVICE and "userId" not in event
    page = {
        "url": "http://localhost:3000/pricing?utm_source=news",
        "path": "/pricing",
        "referrer": "https://google.com/",
        "title": "Test Page",
        "search": "?utm_source=news",
    }
    assert {k: event["properties"][k] for k in page} == page
    assert event["context"]["page"] == page
    assert "token" not in event["properties"] and "distinct_id" not in event["properties"]
    assert event["context"]["userAgent"].endswith("jsdom/29.1.1")


def test_js_identify_links_the_anonymous_id_and_keeps_only_our_property_names() -> None:
    event = mapped(event_named("$identify", JS_SDK))
    assert event["type"] == "identify"
    assert (event["userId"], event["anonymousId"]) == ("user-1", DEVICE)
    # $initial_* and the other $-names are PostHog's bookkeeping; nulls in set_once mean nothing
    assert event["traits"] == {
        "$set": {"name": "Max"},
        "$set_once": {"utm_source": "news", "first_seen": "2024"},
    }


def test_js_set_person_properties_inside_properties() -> None:
    event = mapped(event_named("$set", JS_SDK))
    assert event["type"] == "identify" and event["userId"] == "user-1"
    assert event["traits"] == {"$set": {"tier": "gold"}, "$set_once": {"initial": "y"}}


def test_js_personless_event_is_stored_but_changes_no_profile() -> None:
    # sent before identify, with person_profiles "identified_only": no person in PostHog
    event = mapped(event_named("signed_up", JS_SDK))
    assert event["type"] == "track" and event["anonymousId"] == DEVICE
    assert "profileOps" not in event


def test_js_identified_event_is_the_users() -> None:
    event = mapped(event_named("purchase", JS_SDK))
    assert event["userId"] == "user-1" and "anonymousId" not in event


def test_js_event_after_reset_is_the_new_anonymous_ids() -> None:
    event = mapped(event_named("after_reset", JS_SDK))
    assert event["anonymousId"] == "01a23390-2041-7971-9810-9852bd7e1ead"


def test_captured_events_count_per_sdk() -> None:
    assert len(events(PYTHON_SDK)) == 7 and len(events(JS_SDK)) == 8


# --- rules ------------------------------------------------------------------------------------


def test_server_sdk_personless_event_is_anonymous_and_changes_nothing() -> None:
    event = mapped(
        {
            "event": "e",
            "distinct_id": "generated",
            "properties": {"$process_person_profile": False, "$set": {"a": 1}},
        }
    )
    assert event["anonymousId"] == "generated" and "userId" not in event
    assert "profileOps" not in event


def test_personless_identify_links_nothing() -> None:
    event = mapped(
        {
            "event": "$identify",
            "distinct_id": "u",
            "properties": {"$anon_distinct_id": "a", "$process_person_profile": False},
        }
    )
    assert event["userId"] == "u" and "anonymousId" not in event and event["traits"] == {}


def test_posthog_node_identify_with_everything_inside_properties() -> None:
    event = mapped(
        {
            "event": "$identify",
            "distinct_id": "u",
            "properties": {
                "$set": {"$email": "u@example.com", "plan": "pro"},
                "$set_once": {"first": 1, "$initial_os": "Mac"},
                "$anon_distinct_id": "a",
            },
        }
    )
    assert event["anonymousId"] == "a"
    assert event["traits"] == {
        "$set": {"email": "u@example.com", "plan": "pro"},
        "$set_once": {"first": 1},
    }


def test_unset_anywhere_with_postHog_names_mapped_or_dropped() -> None:
    event = mapped(
        {
            "event": "clicked",
            "distinct_id": "u",
            "$unset": ["coupon", "$initial_os"],
            "properties": {"$unset": ["$first_name", "coupon"]},
        }
    )
    assert event["profileOps"] == {"$unset": ["first_name", "coupon"]}


def test_top_level_set_wins_over_the_one_in_properties() -> None:
    event = mapped(
        {"event": "e", "distinct_id": "u", "$set": {"a": 2}, "properties": {"$set": {"a": 1}}}
    )
    assert event["profileOps"] == {"$set": {"a": 2}}


def test_distinct_id_locations_and_numbers() -> None:
    assert mapped({"event": "e", "$distinct_id": 42})["userId"] == "42"
    assert mapped({"event": "e", "properties": {"distinct_id": "p"}})["userId"] == "p"
    assert len(mapped({"event": "e", "distinct_id": "x" * 300})["userId"]) == 200


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        ({"event": "e"}, "distinct_id", "missing"),
        ({"distinct_id": "u"}, "event", "missing"),
        ({"event": "e", "distinct_id": {"a": 1}}, "distinct_id", "missing"),
        ({"event": "e", "distinct_id": "u", "properties": [1]}, "properties", "object"),
        ({"event": "$snapshot", "distinct_id": "u"}, "event", "session replay"),
        ({"event": "$delete_person", "distinct_id": "u"}, "event", "admin API"),
        ({"event": "$create_alias", "distinct_id": "u"}, "properties.alias", "missing"),
        ({"event": "$groupidentify", "distinct_id": "u"}, "properties.$group_key", "missing"),
        ("not an event", "event", "JSON object"),
        ({"event": "e", "distinct_id": "u", "properties": {"deep": nest(300)}}, "event", "deeper"),
        ({"event": "e", "distinct_id": "u", "offset": 1e300}, "offset", "range"),
        ({"event": "e", "distinct_id": "u", "offset": 10**15}, "offset", "range"),
    ],
)
def test_items_that_cannot_be_events_are_refused_naming_the_field(
    item: Any, field: str, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        map_event(item, ENVELOPE)
    (error,) = caught.value.errors
    assert error.field == field and reason in error.reason


def test_refusal_keeps_the_events_uuid() -> None:
    with pytest.raises(InvalidEvent) as caught:
        map_event({"event": "$snapshot", "distinct_id": "u", "uuid": "id-1"}, ENVELOPE)
    assert caught.value.message_id == "id-1"


def test_message_id_is_uuid_then_insert_id_then_a_hash_that_ignores_offset() -> None:
    assert mapped({"event": "e", "distinct_id": "u", "uuid": "x"})["messageId"] == "x"
    insert = {"event": "e", "distinct_id": "u", "properties": {"$insert_id": "ins"}}
    assert mapped(insert)["messageId"] == "ins"
    first = mapped({"event": "e", "distinct_id": "u", "offset": 10})["messageId"]
    resent = mapped({"event": "e", "distinct_id": "u", "offset": 5000})["messageId"]
    other = mapped({"event": "f", "distinct_id": "u", "offset": 10})["messageId"]
    assert first == resent != other


def test_legacy_offset_counts_back_from_the_time_received() -> None:
    event = mapped({"event": "e", "distinct_id": "u", "offset": 1500})
    assert event["timestamp"] == (RECEIVED - timedelta(milliseconds=1500)).isoformat().replace(
        "+00:00", "Z"
    )
    assert "sentAt" not in event


def test_skew_correction_from_sent_at_unless_ignore_sent_at() -> None:
    sent_one_hour_fast = Envelope(RECEIVED, RECEIVED + timedelta(hours=1))
    item: dict[str, Any] = {"event": "e", "distinct_id": "u", "timestamp": "2026-12-01T22:41:20Z"}
    (event,) = normalized([item], sent_one_hour_fast)
    assert isinstance(event, Event)
    assert event.timestamp == RECEIVED - timedelta(seconds=3)
    item["properties"] = {"$ignore_sent_at": True}
    (kept,) = normalized([item], sent_one_hour_fast)
    assert isinstance(kept, Event)
    assert kept.timestamp == datetime(2026, 12, 1, 22, 41, 20, tzinfo=UTC)


def test_no_timestamp_is_the_time_received() -> None:
    (event,) = normalized([{"event": "e", "distinct_id": "u"}])
    assert isinstance(event, Event) and event.timestamp == RECEIVED


def test_sent_at_from_body_then_query_milliseconds_and_never_before_2021() -> None:
    assert sent_at_from("2026-12-01T21:41:22.016167+00:00", None) == datetime(
        2026, 12, 1, 21, 41, 22, 16167, tzinfo=UTC
    )
    assert sent_at_from(None, "1796161410702") == datetime(
        2026, 12, 1, 21, 43, 30, 702000, tzinfo=UTC
    )
    assert sent_at_from("2026-12-01T21:41:22", None) == datetime(
        2026, 12, 1, 21, 41, 22, tzinfo=UTC
    )
    assert sent_at_from(None, "1000") is None  # 1970
    assert sent_at_from("yesterday", None) is None
    assert sent_at_from(None, "nan") is None
    # a send time no event could be corrected by: no correction, and the events are kept
    assert sent_at_from("9999-12-31T23:59:59-01:00", None) is None
    assert sent_at_from("2400-01-01T00:00:00Z", None) is None


@pytest.mark.parametrize(
    ("response", "served"),
    [(True, "true"), (False, "false"), ("control", "control"), (3, "3"), (None, None)],
)
def test_flag_responses_as_config_text(response: Any, served: str | None) -> None:
    event = mapped(
        {
            "event": "$feature_flag_called",
            "distinct_id": "u",
            "properties": {"$feature_flag": "beta", "$feature_flag_response": response},
        }
    )
    assert event.get("configs") == ({"beta": served} if served else None)


def test_experiment_exposure_and_feature_properties_on_any_event() -> None:
    exposure = mapped(
        {
            "event": "$experiment_exposure",
            "distinct_id": "u",
            "properties": {"$feature_flag": "exp", "$feature_flag_variant_key": "b"},
        }
    )
    assert exposure["configs"] == {"exp": "b"}
    event = mapped(
        {
            "event": "clicked",
            "distinct_id": "u",
            "properties": {
                "$feature/checkout": "v2",
                "$feature/dark": False,
                "$feature/": "x",
                "$feature/unknown": None,
                "$feature/" + "k" * 300: "y",
            },
        }
    )
    assert event["configs"] == {"checkout": "v2", "dark": "false"}
    assert event["properties"]["$feature/checkout"] == "v2"  # kept for analysts too


def test_screen_and_direct_referrer() -> None:
    screen = mapped(
        {"event": "$screen", "distinct_id": "u", "properties": {"$screen_name": "Home"}}
    )
    assert (screen["type"], screen["name"]) == ("screen", "Home")
    page = mapped(
        {
            "event": "$pageview",
            "distinct_id": "u",
            "properties": {"$current_url": "https://a.example/x", "$referrer": "$direct"},
        }
    )
    assert page["properties"]["url"] == "https://a.example/x" and page["name"] is None
    assert "referrer" not in page["properties"] and "search" not in page["properties"]


def test_mapping_the_same_item_twice_gives_the_same_events() -> None:
    for item in events(JS_SDK) + events(PYTHON_SDK):
        assert map_event(item, ENVELOPE) == map_event(item, ENVELOPE)
