"""The Amplitude mapping, from what the official SDKs sent (captures/): each event's Segment-spec
form, the user-property operations, served variants, ids, times and the refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.normalize import InvalidEvent, Limits
from ingest.providers.amplitude.mapping import (
    OPERATIONS,
    PROTOCOL,
    Upload,
    amplitude_field,
    in_amplitude_terms,
    map_event,
    profile_operations,
    upload_time,
)
from ingest.providers.common import Received, map_items, stable_message_id
from schemas.events import Event
from schemas.messages import FieldError
from tests.support.fuzzing import json_scalars, json_values

CAPTURES = Path(__file__).parent / "captures"
RECEIVED_AT = datetime(2026, 12, 1, 21, 50, tzinfo=UTC)
RECEIVED = Received(RECEIVED_AT, "web", PROTOCOL, Limits())


def capture(name: str) -> dict[str, Any]:
    """The first request body of a capture file."""
    line = (CAPTURES / name).read_text().splitlines()[0]
    body: dict[str, Any] = json.loads(line)["json"]
    return body


PYTHON = capture("amp_py.jsonl")
BROWSER = capture("ampjs.jsonl")
BROWSER_UPLOAD = Upload(sent_at=BROWSER["client_upload_time"])


def mapped(raw: Any, upload: Upload | None = None) -> dict[str, Any]:
    (event,) = map_event(raw, upload)
    return event


def python_event(event_type: str, n: int = 0) -> dict[str, Any]:
    return [e for e in PYTHON["events"] if e["event_type"] == event_type][n]


def browser_event(event_type: str, n: int = 0) -> dict[str, Any]:
    return [e for e in BROWSER["events"] if e["event_type"] == event_type][n]


# --- the Python SDK (amplitude-analytics 1.3.0) ------------------------------------------------


def test_python_track_with_user_properties_links_the_ids_and_sets_the_profile() -> None:
    event = mapped(python_event("Signed Up"))
    assert event["type"] == "track" and event["event"] == "Signed Up"
    assert (event["userId"], event["anonymousId"]) == ("user-1", "dev-1")
    assert event["messageId"] == "8d20d26b-cdc2-450c-8a40-2d74528e6ffb"
    assert event["properties"] == {"plan": "pro"}
    assert event["profileOps"] == {"$set": {"tier": "gold"}}
    assert event["originalTimestamp"] == "2026-12-01T21:49:04.046000Z"
    assert "sentAt" not in event  # the Python SDK sends no upload time
    assert event["context"]["library"] == {"name": "amplitude-python", "version": "1.3.0"}


def test_python_identify_translates_every_operation() -> None:
    event = mapped(python_event("$identify"))
    assert event["type"] == "identify"
    assert event["traits"] == {
        "$set": {"name": "Max"},
        "$set_once": {"first": "x"},
        "$increment": {"logins": 1},
        "$append": {"tags": ["a"]},
        "$unset": ["old"],
        "$union_front": {"l": [1]},
    }
    assert "profileOps" not in event  # an identify's operations are its traits


def test_python_group_identify_is_a_group_event() -> None:
    event = mapped(python_event("$groupidentify"))
    assert event["type"] == "group"
    assert event["groupId"] == "acme"
    assert event["properties"] == {"group_type": "company"}
    assert event["traits"] == {"employees": 11}
    assert event["userId"] == "user-1"
    assert "groups" not in event["context"] and "amplitude" not in event["context"]


def test_python_set_group_is_an_identify_that_keeps_its_groups() -> None:
    event = mapped(python_event("$identify", 1))
    assert event["type"] == "identify"
    assert event["traits"] == {"$set": {"company": "acme"}}
    assert event["context"]["groups"] == {"company": "acme"}


def test_python_revenue_is_a_track_keeping_the_revenue_properties() -> None:
    event = mapped(python_event("revenue_amount"))
    assert event["type"] == "track" and event["event"] == "revenue_amount"
    assert event["properties"] == {"$price": 9.99, "$productId": "sku-1", "$quantity": 1}


# --- the browser SDK (@amplitude/analytics-browser 2.48.1) -------------------------------------


def test_browser_attribution_identify_is_anonymous_with_set_once_unset_and_set() -> None:
    event = mapped(BROWSER["events"][0], BROWSER_UPLOAD)
    assert event["type"] == "identify"
    assert event["userId"] is None
    assert event["anonymousId"] == "103ed45d-e7f7-4357-83f9-30c490763008"
    traits = event["traits"]
    assert traits["$set_once"]["initial_utm_source"] == "news"
    assert "utm_campaign" in traits["$unset"] and isinstance(traits["$unset"], list)
    assert traits["$set"] == {
        "utm_source": "news",
        "referrer": "https://google.com/",
        "referring_domain": "google.com",
    }


def test_browser_page_viewed_is_a_page_with_segment_page_properties() -> None:
    event = mapped(browser_event("[Amplitude] Page Viewed"), BROWSER_UPLOAD)
    assert event["type"] == "page"
    assert event["name"] == "Test Page"
    props = event["properties"]
    assert props["url"] == "http://localhost:3000/pricing?utm_source=news"
    assert props["path"] == "/pricing"
    assert props["title"] == "Test Page"
    assert props["search"] == "?utm_source=news"
    assert props["referrer"] == "https://google.com/"
    assert props["[Amplitude] Page Counter"] == 1  # Amplitude's own are kept


def test_browser_fields_go_to_context_and_remote_ip_is_dropped() -> None:
    event = mapped(browser_event("Signed Up"), BROWSER_UPLOAD)
    context = event["context"]
    assert "ip" not in context  # "$remote": use the request's address, which we do not store
    assert context["locale"] == "en-US"
    assert context["device"]["type"] == "Web"
    assert context["userAgent"].startswith("Mozilla/5.0")
    assert context["library"] == {"name": "amplitude-ts", "version": "2.48.1"}
    assert context["amplitude"] == {"session_id": 1796161781720, "event_id": 3}
    assert event["sentAt"] == "2026-12-01T21:49:42.238Z"


def test_every_captured_event_normalizes_with_skew_correction_and_protocol() -> None:
    results = map_items(BROWSER["events"], lambda e: map_event(e, BROWSER_UPLOAD), RECEIVED)
    assert [r for r in results if isinstance(r, InvalidEvent)] == []
    events: list[Event] = [e for r in results if not isinstance(r, InvalidEvent) for e in r]
    assert [e.type for e in events] == [
        "identify",
        "track",
        "page",
        "track",
        "identify",
        "identify",
        "group",
        "track",
    ]
    assert {e.context["protocol"] for e in events} == {"amplitude"}
    page = events[2]
    sent = datetime(2026, 12, 1, 21, 49, 42, 238000, tzinfo=UTC)
    original = datetime(2026, 12, 1, 21, 49, 41, 740000, tzinfo=UTC)
    assert page.timestamp == RECEIVED_AT - (sent - original)
    assert page.message_id == "8c71e08d-953d-4051-8f74-517452881149"
    python = map_items(PYTHON["events"], map_event, RECEIVED)
    assert [r for r in python if isinstance(r, InvalidEvent)] == []


def test_mapping_is_deterministic() -> None:
    for event in PYTHON["events"] + BROWSER["events"]:
        assert map_event(event, BROWSER_UPLOAD) == map_event(event, BROWSER_UPLOAD)


# --- operations ---------------------------------------------------------------------------------


def test_every_amplitude_operation_has_its_profile_operation() -> None:
    ops, configs = profile_operations(
        {
            "$set": {"a": 1},
            "$setOnce": {"b": 2},
            "$add": {"c": 3},
            "$append": {"d": ["x", "y"]},
            "$prepend": {"e": "x"},
            "$preInsert": {"f": "x"},
            "$postInsert": {"g": ["x"]},
            "$remove": {"h": "x"},
            "$unset": {"i": "-"},
            "$clearAll": "-",
        }
    )
    assert ops == {
        "$set": {"a": 1},
        "$set_once": {"b": 2},
        "$increment": {"c": 3},
        "$append": {"d": ["x", "y"]},
        "$prepend": {"e": ["x"]},
        "$union_front": {"f": ["x"]},
        "$union": {"g": ["x"]},
        "$remove": {"h": ["x"]},
        "$unset": ["i"],
        "$clear_all": True,
    }
    assert configs == {}


def test_a_bare_object_is_a_set_and_bare_keys_join_the_set() -> None:
    assert profile_operations({"plan": "pro"}) == ({"$set": {"plan": "pro"}}, {})
    ops, _ = profile_operations({"plan": "pro", "$set": {"tier": "gold"}, "$add": {"n": 1}})
    assert ops == {"$set": {"plan": "pro", "tier": "gold"}, "$increment": {"n": 1}}


def test_user_properties_on_a_track_become_profile_ops() -> None:
    event = mapped({"event_type": "Bought", "user_id": "u1", "user_properties": {"vip": True}})
    assert event["profileOps"] == {"$set": {"vip": True}}


@pytest.mark.parametrize(
    ("user_properties", "field"),
    [
        ({"$merge": {"a": 1}}, "user_properties.$merge"),
        ({"$set": ["a"]}, "user_properties.$set"),
        ("plan=pro", "user_properties"),
    ],
)
def test_a_malformed_operation_refuses_the_event_naming_it(
    user_properties: Any, field: str
) -> None:
    raw = {"event_type": "E", "user_id": "u1", "insert_id": "i-1"}
    with pytest.raises(InvalidEvent) as refused:
        map_event({**raw, "user_properties": user_properties})
    assert refused.value.errors[0].field == field
    assert refused.value.message_id == "i-1"


# --- served variants ----------------------------------------------------------------------------


def test_client_exposure_is_a_track_with_its_config() -> None:
    event = mapped(
        {
            "event_type": "$exposure",
            "user_id": "u1",
            "event_properties": {"flag_key": "checkout", "variant": "B", "experiment_key": "x"},
        }
    )
    assert event["type"] == "track" and event["event"] == "$exposure"
    assert event["configs"] == {"checkout": "B"}
    assert event["properties"]["flag_key"] == "checkout"


def test_exposure_without_a_variant_records_no_config() -> None:
    event = mapped(
        {"event_type": "$exposure", "user_id": "u1", "event_properties": {"flag_key": "f"}}
    )
    assert "configs" not in event


def test_experiment_exposure_sets_the_config_and_not_the_bracketed_property() -> None:
    # what amplitude-experiment (Python) sends (exposure_service.py)
    event = mapped(
        {
            "event_type": "[Experiment] Exposure",
            "user_id": "u1",
            "event_properties": {
                "[Experiment] Flag Key": "onboarding",
                "[Experiment] Variant": "on",
            },
            "user_properties": {"$set": {"[Experiment] onboarding": "on"}, "$unset": {}},
        }
    )
    assert event["configs"] == {"onboarding": "on"}
    assert "profileOps" not in event


def test_a_boolean_flag_served_is_a_config_not_lost() -> None:
    event = mapped(
        {
            "event_type": "Checkout",
            "user_id": "u1",
            "user_properties": {"$set": {"[Experiment] dark-mode": True}},
        }
    )
    assert event["configs"] == {"dark-mode": "true"}
    assert "profileOps" not in event


def test_experiment_assignment_sets_a_config_per_flag() -> None:
    event = mapped(
        {
            "event_type": "[Experiment] Assignment",
            "user_id": "u1",
            "event_properties": {"a.variant": "on", "a.details": "v1", "b.variant": "control"},
            "user_properties": {
                "$set": {"[Experiment] a": "on", "[Experiment] b": "control"},
                "$unset": {"[Experiment] c": "-"},
            },
        }
    )
    assert event["configs"] == {"a": "on", "b": "control"}
    assert "profileOps" not in event


def test_experiment_property_in_an_identify_is_a_config() -> None:
    event = mapped(
        {
            "event_type": "$identify",
            "user_id": "u1",
            "user_properties": {"$set": {"[Experiment] f": "B", "plan": "pro"}},
        }
    )
    assert event["traits"] == {"$set": {"plan": "pro"}}
    assert event["configs"] == {"f": "B"}


# --- ids, times and refusals --------------------------------------------------------------------


def test_an_event_without_user_or_device_id_is_refused_naming_user_id() -> None:
    with pytest.raises(InvalidEvent) as refused:
        map_event({"event_type": "E", "insert_id": "i-2"})
    assert refused.value.errors == [
        FieldError(field="user_id", reason="user_id or device_id is required")
    ]
    assert refused.value.message_id == "i-2"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"user_id": "u"}, "event_type"),
        ({"user_id": "u", "event_type": ""}, "event_type"),
        ({"user_id": "u", "event_type": "x" * 256}, "event_type"),
        ({"user_id": "u", "event_type": "E", "time": "yesterday"}, "time"),
        ({"user_id": "u", "event_type": "E", "time": True}, "time"),
        ({"user_id": "u", "event_type": "E", "event_properties": [1]}, "event_properties"),
        ({"user_id": "u", "event_type": "$groupidentify", "groups": {}}, "groups"),
        ({"user_id": "u", "event_type": "$groupidentify", "groups": {"a": ["x", "y"]}}, "groups"),
        ("not an event", "event"),
    ],
)
def test_refusals_name_the_amplitude_field(raw: Any, field: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        map_event(raw)
    assert refused.value.errors[0].field == field


def test_one_char_ids_are_accepted_whatever_min_id_length_says() -> None:
    event = mapped({"event_type": "E", "user_id": "a", "device_id": "b"})
    assert (event["userId"], event["anonymousId"]) == ("a", "b")


def test_a_long_insert_id_is_hashed_stably() -> None:
    long_id = "user-1 device-1 " + "h" * 120 + " 20261201"
    event = mapped({"event_type": "E", "user_id": "u", "insert_id": long_id})
    assert event["messageId"] == stable_message_id("amplitude", "insert_id", long_id)
    assert len(event["messageId"]) <= 100


def test_without_insert_id_the_id_is_a_hash_of_the_event_or_none_without_time() -> None:
    raw = {"event_type": "E", "user_id": "u", "time": 1796161744046}
    assert mapped(raw)["messageId"] == mapped(dict(raw))["messageId"]
    assert mapped(raw)["messageId"] != mapped({**raw, "time": 1796161744047})["messageId"]
    assert "messageId" not in mapped({"event_type": "E", "user_id": "u"})


def test_identify_only_makes_an_identification_an_identify() -> None:
    event = mapped(
        {"user_id": "u", "user_properties": {"Age": "35"}, "country": "United States"},
        Upload(identify_only=True),
    )
    assert event["type"] == "identify"
    assert event["traits"] == {"$set": {"Age": "35"}}
    assert event["context"]["location"] == {"country": "United States"}


def test_seconds_are_not_milliseconds_and_are_refused_by_normalize() -> None:
    (result,) = map_items(
        [{"event_type": "E", "user_id": "u", "time": 1796161744}], map_event, RECEIVED
    )
    assert isinstance(result, InvalidEvent)
    assert result.errors[0].field == "timestamp"
    assert in_amplitude_terms(result).errors[0].field == "time"


@pytest.mark.parametrize(
    ("segment", "amplitude"),
    [
        ("userId", "user_id"),
        ("anonymousId", "device_id"),
        ("timestamp", "time"),
        ("messageId", "insert_id"),
        ("properties.x", "event_properties.x"),
        ("traits.$set.email", "user_properties.$set.email"),
        ("profileOps", "user_properties"),
        ("event", "event"),
        ("user_id", "user_id"),
    ],
)
def test_segment_fields_are_named_as_amplitude_fields(segment: str, amplitude: str) -> None:
    assert amplitude_field(segment) == amplitude


def test_upload_time_is_utc_iso_when_the_clock_is_off_or_refused() -> None:
    assert upload_time("2026-12-01T22:49:42.238Z") == "2026-12-01T22:49:42.238000Z"
    assert upload_time("2026-12-01T23:49:42+01:00") == "2026-12-01T22:49:42Z"
    assert upload_time(None) is None
    for unusable in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        assert upload_time(unusable) is None  # no skew correction, not a 500
    for bad in ("yesterday", 1796161744046):
        with pytest.raises(ValueError):
            upload_time(bad)


@pytest.mark.parametrize("seconds", [-10, -0.3, 0, 0.3, 10])
def test_an_upload_time_within_latency_is_no_clock_skew(seconds: float) -> None:
    # within the default PS_CLOCK_SKEW_TOLERANCE_S (10 s) the client's time is kept as sent
    sent = RECEIVED_AT + timedelta(seconds=seconds)
    at = sent - timedelta(milliseconds=700)
    raw = {"event_type": "E", "user_id": "u", "time": int(at.timestamp() * 1000)}
    upload = Upload(sent_at=upload_time(sent.isoformat()))
    (result,) = map_items([raw], lambda e: map_event(e, upload), RECEIVED)
    assert not isinstance(result, InvalidEvent)
    assert result[0].timestamp == at.replace(microsecond=at.microsecond // 1000 * 1000)


def test_a_clock_ahead_is_corrected_by_the_upload_time() -> None:
    ahead = RECEIVED_AT + timedelta(hours=3)
    raw = {"event_type": "E", "user_id": "u", "time": int(ahead.timestamp() * 1000) - 500}
    upload = Upload(sent_at=upload_time(ahead.isoformat()))
    (result,) = map_items([raw], lambda e: map_event(e, upload), RECEIVED)
    assert not isinstance(result, InvalidEvent)
    assert result[0].timestamp == RECEIVED_AT - timedelta(milliseconds=500)


# --- fuzzing: any JSON is an event or a refusal, never an exception of another kind ------------

JSON_SCALARS = json_scalars()
JSON_VALUES = json_values(JSON_SCALARS, max_items=4, max_leaves=12)
AMPLITUDE_KEYS = st.sampled_from(
    [
        "event_type",
        "user_id",
        "device_id",
        "time",
        "insert_id",
        "event_properties",
        "user_properties",
        "groups",
        "group_properties",
        "ip",
        "library",
        "platform",
    ]
)
OPERATORS = st.sampled_from([*OPERATIONS, "$bogus", "plain"])
EVENT_TYPES = st.sampled_from(
    [
        "$identify",
        "$groupidentify",
        "[Amplitude] Page Viewed",
        "$exposure",
        "[Experiment] Assignment",
        "Song Played",
        "",
    ]
)
EVENTS = (
    st.fixed_dictionaries(
        {"event_type": EVENT_TYPES | JSON_SCALARS, "user_id": st.text(max_size=6) | JSON_SCALARS},
        optional={
            "user_properties": st.dictionaries(OPERATORS, JSON_VALUES, max_size=4) | JSON_VALUES,
            "groups": st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=2),
            "event_properties": st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4),
            "time": JSON_SCALARS,
        },
    )
    | st.dictionaries(AMPLITUDE_KEYS, JSON_VALUES, max_size=6)
    | JSON_VALUES
)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(EVENTS)
def test_any_json_maps_to_normalized_events_or_a_named_refusal(raw: Any) -> None:
    (result,) = map_items([raw], lambda e: map_event(e, BROWSER_UPLOAD), RECEIVED)
    if isinstance(result, InvalidEvent):
        assert result.errors and all(e.field and e.reason for e in result.errors)
        assert all(e.field for e in in_amplitude_terms(result).errors)
    else:
        assert all(isinstance(e, Event) for e in result)
