"""The Mixpanel mapping (ingest/providers/mixpanel/mapping.py) on what the official SDKs sent:
mixpanel (PyPI) 5.4.1 and mixpanel-browser 2.83.0, captured unchanged but for the host
(captures/, copied from the protocol research). Each mapped event also goes through
normalization, as the routes do, so what is asserted is what would be published."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ingest.normalize import InvalidEvent, Limits
from ingest.providers.common import DELETE_REFUSED, Received, map_items
from ingest.providers.mixpanel.mapping import (
    engage_events,
    event_events,
    group_anonymous_id,
    group_events,
    renamed_fields,
    sent_at_of,
)
from schemas.events import Event

CAPTURES = Path(__file__).parent / "captures"
RECEIVED = Received(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), "web", "mixpanel", Limits())


def python_requests() -> list[dict[str, Any]]:
    """mixpanel-python's requests: path and decoded `data`, one a line."""
    lines = (CAPTURES / "mp_py.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def js_requests() -> list[tuple[str, dict[str, list[str]], list[dict[str, Any]]]]:
    """mixpanel-browser's requests: (path, query, decoded records)."""
    blocks = (CAPTURES / "mpjs.txt").read_text().split("===== ")[1:]
    requests = []
    for block in blocks:
        head, _, rest = block.partition("\n")
        _method, path, query_text = head.split(" ", 2)
        query = ast.literal_eval(
            query_text[: query_text.index("}") + 1]
        )  # the recorder's repr of a dict
        records = json.loads(rest.split("data_b64json", 1)[1])
        requests.append((path, query, records))
    return requests


def py_data(path: str, index: int = 0) -> Any:
    return [r["data_json"] for r in python_requests() if r["path"] == path][index]


def normalized(mapping: Any, record: Any, **kwargs: Any) -> list[Event]:
    (result,) = map_items([record], lambda r: mapping(r, **kwargs), RECEIVED)
    assert not isinstance(result, InvalidEvent), result.errors
    return result


def refused(mapping: Any, record: Any, **kwargs: Any) -> InvalidEvent:
    (result,) = map_items([record], lambda r: mapping(r, **kwargs), RECEIVED)
    assert isinstance(result, InvalidEvent), result
    return result


# --- mixpanel-python ----------------------------------------------------------------------


def test_python_track_keeps_the_user_the_device_the_insert_id_and_the_time() -> None:
    (event,) = normalized(event_events, py_data("/track"))
    assert (event.type, event.event) == ("track", "Signed Up")
    assert (event.user_id, event.anonymous_id) == ("user-1", "dev-1")  # both: a merge
    assert event.message_id == "2145d1849d59460195da0f4766a08e7d"
    assert event.timestamp == datetime.fromtimestamp(1796161546.010, UTC)
    assert event.properties == {"plan": "pro"}  # token, ids, time, mp_lib taken out
    assert event.context["library"] == {"name": "mixpanel-python", "version": "5.4.1"}
    assert event.context["protocol"] == "mixpanel"


def test_python_engage_set_maps_mixpanel_names_and_becomes_identify_traits() -> None:
    (event,) = normalized(engage_events, py_data("/engage", 0))
    assert (event.type, event.user_id, event.anonymous_id) == ("identify", "user-1", None)
    assert event.traits == {"$set": {"email": "a@b.c", "name": "Max"}}
    assert event.timestamp == datetime.fromtimestamp(1796161546.015, UTC)


@pytest.mark.parametrize(
    ("index", "traits"),
    [
        (1, {"$set_once": {"first": "x"}}),
        (2, {"$increment": {"logins": 1}}),
        (3, {"$append": {"tags": ["a"]}}),
        (4, {"$union": {"tags": ["b"]}}),
        (5, {"$remove": {"tags": ["a"]}}),
        (6, {"$unset": ["old"]}),
    ],
)
def test_python_engage_operators_become_profile_operations(
    index: int, traits: dict[str, Any]
) -> None:
    (event,) = normalized(engage_events, py_data("/engage", index))
    assert event.traits == traits


def test_engage_delete_is_refused_naming_the_admin_api() -> None:
    error = refused(engage_events, py_data("/engage", 7))
    assert [(e.field, e.reason) for e in error.errors] == [("$delete", DELETE_REFUSED)]


def test_records_touching_only_mixpanel_properties_are_accepted_with_nothing_to_do() -> None:
    assert engage_events(py_data("/engage", 8)) == []  # track_charge: $append $transactions
    js_initial = {"$distinct_id": "u", "$set_once": {"$initial_referrer": "$direct"}}
    assert engage_events(js_initial) == []


def test_engage_records_without_insert_id_get_a_stable_id_from_their_time() -> None:
    record = py_data("/engage", 2)
    first = normalized(engage_events, record)[0].message_id
    assert normalized(engage_events, dict(record))[0].message_id == first  # a resend dedups
    later = {**record, "$time": record["$time"] + 1}
    assert normalized(engage_events, later)[0].message_id != first  # the next increment counts


def test_events_without_insert_id_get_a_stable_id_from_the_whole_event() -> None:
    def purchase(amount: int) -> dict[str, Any]:
        properties = {"token": "t", "distinct_id": "ada", "time": 1796161546, "amount": amount}
        return {"event": "Purchase", "properties": properties}

    first = normalized(event_events, purchase(5))[0].message_id
    assert normalized(event_events, purchase(5))[0].message_id == first  # a resend dedups
    # the same second, user and name, another amount: another purchase, not a duplicate
    assert normalized(event_events, purchase(7))[0].message_id != first


def test_python_groups_become_group_events_of_the_group() -> None:
    (event,) = normalized(group_events, py_data("/groups", 0))
    assert (event.type, event.group_id) == ("group", "acme")
    assert event.anonymous_id == group_anonymous_id("company", "acme") == "$group:company:acme"
    assert event.traits == {"employees": 11}
    assert event.properties == {"group_type": "company"}
    (unset,) = normalized(group_events, py_data("/groups", 1))
    assert unset.traits == {"$unset": ["old"]}


def test_python_import_keeps_the_historic_time() -> None:
    (event,) = normalized(event_events, py_data("/import", 0), historical=True)
    assert event.timestamp == datetime.fromtimestamp(1795297546, UTC)
    assert event.message_id == "61423803d002408388a2fbf5e4256153"
    assert event.properties == {"a": 1}


def test_buffered_batches_map_each_record() -> None:
    events = [normalized(event_events, r)[0] for r in py_data("/track", 1)]
    assert [(e.event, e.user_id) for e in events] == [("E1", "u2"), ("E2", "u2")]


def test_merge_on_import_is_an_alias_and_refused_on_track() -> None:
    merge = {"event": "$merge", "properties": {"$distinct_ids": ["u1", "$device:d1"], "token": "t"}}
    (event,) = normalized(event_events, merge, historical=True)
    assert (event.type, event.user_id, event.previous_id) == ("alias", "u1", "d1")
    error = refused(event_events, merge)
    assert error.errors[0].field == "event" and "/import" in error.errors[0].reason


def test_import_requires_a_time() -> None:
    record = {"event": "Old", "properties": {"distinct_id": "u1", "$insert_id": "abc"}}
    error = refused(event_events, record, historical=True)
    assert error.errors[0].field == "properties.time"
    assert normalized(event_events, record)[0].event == "Old"  # /track: the time received


def test_experiment_started_feeds_the_configs() -> None:
    record: dict[str, Any] = {
        "event": "$experiment_started",
        "properties": {
            "distinct_id": "u1",
            "time": 1796161546.5,
            "$insert_id": "x1",
            "Experiment name": "checkout",
            "Variant name": "B",
            "$experiment_type": "feature_flag",
        },
    }
    (event,) = normalized(event_events, record)
    assert (event.type, event.event, event.configs) == (
        "track",
        "$experiment_started",
        {"checkout": "B"},
    )
    boolean = {**record, "properties": {**record["properties"], "Variant name": True}}
    assert normalized(event_events, boolean)[0].configs == {"checkout": "true"}
    missing = {**record, "properties": {"distinct_id": "u1", "Experiment name": "checkout"}}
    assert (
        normalized(event_events, missing)[0].configs is None
    )  # none served: left out of the message


# --- mixpanel-browser ---------------------------------------------------------------------


def js_track_batch() -> list[dict[str, Any]]:
    return js_requests()[0][2]


def test_js_page_view_is_a_page_of_the_device() -> None:
    (page,) = normalized(event_events, js_track_batch()[0])
    assert page.type == "page"
    assert page.name == "Test Page"
    assert (page.user_id, page.anonymous_id) == (None, "3986c08c-a3d7-498a-89ec-f3c1bca2cda6")
    props = page.properties
    assert props["url"] == "http://localhost:3000/pricing?utm_source=news"
    assert (props["path"], props["search"], props["title"]) == (
        "/pricing",
        "?utm_source=news",
        "Test Page",
    )
    assert props["referrer"] == "https://google.com/"
    assert "token" not in props and "distinct_id" not in props and "time" not in props
    assert page.message_id == "19dhl142kat50g4k"


def test_js_anonymous_track_uses_the_device_id() -> None:
    (event,) = normalized(event_events, js_track_batch()[1])
    assert (event.event, event.user_id, event.anonymous_id) == (
        "Signed Up",
        None,
        "3986c08c-a3d7-498a-89ec-f3c1bca2cda6",
    )


def test_js_identify_links_the_device_to_the_user() -> None:
    (identify,) = normalized(event_events, js_track_batch()[4])
    assert (identify.type, identify.user_id, identify.anonymous_id) == (
        "identify",
        "user-1",
        "3986c08c-a3d7-498a-89ec-f3c1bca2cda6",
    )
    assert "$anon_distinct_id" not in identify.properties


def test_js_alias_folds_the_current_id_into_the_alias() -> None:
    (alias,) = normalized(event_events, js_track_batch()[2])
    assert (alias.type, alias.user_id, alias.previous_id) == ("alias", "alias-9", "user-1")


def test_js_engage_records_link_device_and_user_and_drop_mixpanel_properties() -> None:
    _, _, records = js_requests()[1]
    set_once, set_, add = (normalized(engage_events, r)[0] for r in records)
    assert (set_.user_id, set_.anonymous_id) == ("user-1", "3986c08c-a3d7-498a-89ec-f3c1bca2cda6")
    assert set_.traits == {"$set": {"company": ["acme"]}}  # $browser, $browser_version dropped
    assert set_once.traits == {"$set_once": {"initial_utm_source": "news"}}  # nulls dropped
    assert add.traits == {"$increment": {"logins": 1}}
    assert set_.message_id != add.message_id  # no $time, no $insert_id: fresh ids


def test_js_groups_record() -> None:
    _, _, records = js_requests()[2]
    (event,) = normalized(group_events, records[0])
    assert (event.group_id, event.traits) == ("acme", {"employees": 11})


def test_js_send_time_corrects_the_clock_skew() -> None:
    _, query, records = js_requests()[0]
    sent_at = sent_at_of(query["_"][0])
    assert sent_at == "2026-12-01T21:47:37.335000Z"
    (event,) = normalized(event_events, records[1], sent_at=sent_at)
    # the event was tracked 0.203 s before the request left the browser: it happened 0.203 s
    # before ingest received it, whatever the browser's clock said
    assert RECEIVED.received_at - event.timestamp == timedelta(milliseconds=203)
    assert sent_at_of("not-a-number") is None and sent_at_of(None) is None


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("placeholder", ["anon", "null", "0", "-1", "undefined", "Unknown"])
def test_placeholder_distinct_ids_are_refused_naming_distinct_id(placeholder: str) -> None:
    record = {"event": "E", "properties": {"distinct_id": placeholder, "time": 1796161546}}
    error = refused(event_events, record)
    assert error.errors[0].field == "properties.distinct_id"
    engage = {"$distinct_id": placeholder, "$set": {"a": 1}}
    assert refused(engage_events, engage).errors[0].field == "$distinct_id"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"properties": {"distinct_id": "u"}}, "event"),
        ({"event": "E", "properties": "x"}, "properties"),
        ({"event": "E", "properties": {"distinct_id": "u", "time": "soon"}}, "properties.time"),
        ({"event": "E", "properties": {"time": 1796161546}}, "userId"),
        ("just text", "event"),
    ],
)
def test_bad_events_are_refused_naming_the_field(record: Any, field: str) -> None:
    assert refused(event_events, record).errors[0].field == field


def test_normalization_refusals_are_renamed_to_mixpanel_fields() -> None:
    error = refused(event_events, {"event": "E", "properties": {"time": 1796161546}})
    renamed = renamed_fields(error, "track")
    assert renamed.errors[0].field == "properties.distinct_id"
    engage = refused(engage_events, {"$set": {"a": 1}})
    assert renamed_fields(engage, "engage").errors[0].field == "$distinct_id"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"$distinct_id": "u"}, "$set"),
        ({"$distinct_id": "u", "$set": ["a"]}, "$set"),
        ({"$distinct_id": "u", "$unset": "a"}, "$unset"),
    ],
)
def test_bad_engage_records_are_refused_naming_the_operator(record: Any, field: str) -> None:
    assert refused(engage_events, record).errors[0].field == field


def test_group_records_need_key_and_id_and_may_not_delete() -> None:
    assert refused(group_events, {"$group_id": "a", "$set": {"x": 1}}).errors[0].field == (
        "$group_key"
    )
    assert refused(group_events, {"$group_key": "c", "$set": {"x": 1}}).errors[0].field == (
        "$group_id"
    )
    deleting = {"$group_key": "c", "$group_id": "a", "$delete": ""}
    assert refused(group_events, deleting).errors[0].field == "$delete"


def test_mapping_is_deterministic() -> None:
    for record in [py_data("/track"), *js_track_batch()]:
        assert event_events(record) == event_events(json.loads(json.dumps(record)))


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_values_are_refused_not_crashed() -> None:
    event = {"event": "E", "properties": {"distinct_id": nested(300), "time": 1796161546}}
    assert refused(event_events, event).errors
    record = {"$distinct_id": "u", "$time": 1796161546, "$set": {"a": nested(300)}}
    assert refused(engage_events, record).errors[0].field == "record"
    group = {"$group_key": "c", "$group_id": "a", "$time": 1796161546, "$set": {"a": nested(300)}}
    assert refused(group_events, group).errors
