"""Generated PostHog capture bodies (hypothesis) against the routes with a recording publisher:
whatever the events and the encoding (JSON, gzip, base64, a data= form, a GET's ?data=), or
plain garbage, the answer is 200 or a 4xx in PostHog's shape naming a field, never a 5xx, and
every event produced is a valid Event."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.settings import Settings
from tests.support.fuzzing import SyncIngestClient, fuzz_settings, json_scalars, json_values
from tests.support.messages import message_events
from tests.support.publishers import RecordingPublisher

KEY = "phc_fuzz"
SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": f"{KEY}:fuzz"})
FUZZ = fuzz_settings(300)
PUBLISHER = RecordingPublisher(SETTINGS)

scalars = json_scalars(max_int=2**63)
values = json_values(scalars, max_items=3, max_leaves=8)
keys = st.sampled_from(
    [
        "$set",
        "$set_once",
        "$unset",
        "distinct_id",
        "$process_person_profile",
        "$is_identified",
        "$anon_distinct_id",
        "alias",
        "$group_key",
        "$group_set",
        "$feature_flag",
        "$feature_flag_response",
        "$feature/f",
        "$current_url",
        "title",
        "$insert_id",
        "token",
    ]
) | st.text(max_size=8)
events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(
            [
                "$identify",
                "$set",
                "$create_alias",
                "$groupidentify",
                "$pageview",
                "$screen",
                "$feature_flag_called",
                "clicked",
                "$snapshot",
                "",
            ]
        )
        | values,
        # mostly well-formed where an event needs it, so that the later steps are reached too
        "distinct_id": st.text(min_size=1, max_size=10) | st.integers() | values,
        "properties": st.dictionaries(keys, values, max_size=6)
        | st.dictionaries(keys, scalars, max_size=6)
        | values,
    },
    optional={
        "uuid": st.uuids().map(str) | values,
        "timestamp": st.datetimes().map(lambda d: d.isoformat() + "Z") | values,
        "offset": st.integers(min_value=-(10**15), max_value=10**15)
        | st.sampled_from([10**15, -(10**15), 1e300])
        | values,
        "$set": st.dictionaries(keys, values, max_size=3) | values,
    },
)
bodies = st.fixed_dictionaries(
    {"api_key": st.just(KEY), "batch": st.lists(events, min_size=1, max_size=4)},
    optional={"sent_at": st.datetimes().map(lambda d: d.isoformat()) | values},
)
encodings = st.sampled_from(["json", "gzip", "base64", "form", "get"])


@pytest.fixture(scope="module")
def client() -> Iterator[SyncIngestClient]:
    with SyncIngestClient(PUBLISHER, base_url="http://ingest/posthog") as http:
        yield http


def encoded(body: dict[str, Any], encoding: str) -> dict[str, Any]:
    raw = json.dumps(body).encode()
    if encoding == "gzip":
        return {"content": gzip.compress(raw), "headers": {"content-type": "text/plain"}}
    if encoding == "base64":
        return {"content": base64.b64encode(raw)}
    if encoding == "form":
        data = quote(base64.b64encode(raw).decode())
        return {
            "content": f"data={data}",
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        }
    if encoding == "get":
        return {"params": {"data": base64.b64encode(raw).decode()}}
    return {"content": raw}


def assert_answered_well(response: httpx.Response) -> None:
    assert response.status_code in (200, 400, 401, 413), response.text
    if response.status_code == 200:
        assert response.json() == {"status": 1}
        for topic, _, value in PUBLISHER.records:
            if topic == SETTINGS.events_topic:
                assert message_events(value)
    else:
        body = response.json()
        assert body["detail"] and body["errors"] and all(e["field"] for e in body["errors"])


@FUZZ
@given(body=bodies, encoding=encodings)
def test_generated_batches_in_every_encoding_are_200_or_a_named_4xx(
    client: SyncIngestClient, body: dict[str, Any], encoding: str
) -> None:
    method = "GET" if encoding == "get" else "POST"
    assert_answered_well(client.request(method, "/e/", **encoded(body, encoding)))


@FUZZ
@given(
    garbage=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["text/plain", "application/json", "application/x-www-form-urlencoded", ""]
    ),
)
def test_garbage_bodies_are_a_named_4xx(
    client: SyncIngestClient, garbage: bytes, content_type: str
) -> None:
    response = client.request(
        "POST", "/batch/", content=garbage, headers={"content-type": content_type}
    )
    assert_answered_well(response)
    assert response.status_code != 200 or PUBLISHER.records
