"""A rejection carries the refused item's body (for the dashboard's debugger), secrets
removed, cut to PS_MAX_EVENT_BYTES: through ingest's routes over a recording publisher."""

from __future__ import annotations

import base64

import orjson

from infra.settings import Settings
from ingest.rejection_bodies import rejected_body
from schemas.redaction import REDACTED
from tests.support.ingest_app import ingest_client, published_rejections
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web", "PS_MAX_EVENT_BYTES": "2048"})


async def test_a_refused_batch_item_carries_its_body_without_the_write_key() -> None:
    publisher = RecordingPublisher(SETTINGS)
    refused = {"type": "track", "userId": "ada", "properties": {"plan": "pro", "copy": "k1"}}
    body = {"writeKey": "k1", "batch": [{"type": "track", "userId": "ada", "event": "E"}, refused]}
    async with ingest_client(publisher) as http:
        response = await http.post("/v1/batch", json=body)
    assert response.status_code == 200, response.text
    (rejection,) = published_rejections(publisher)
    assert rejection.body is not None and not rejection.body_truncated
    assert orjson.loads(rejection.body) == {
        "type": "track",
        "userId": "ada",
        "properties": {"plan": "pro", "copy": REDACTED},  # a write key's value, anywhere
    }


async def test_a_single_event_keeps_no_write_key_nor_authorization() -> None:
    publisher = RecordingPublisher(SETTINGS)
    event = {"writeKey": "k1", "userId": "ada", "event": "x" * 300}  # name too long
    auth = "Basic " + base64.b64encode(b"k1:").decode()
    async with ingest_client(publisher, headers={"Authorization": auth}) as http:
        response = await http.post("/v1/track", json=event)
    assert response.status_code == 400
    (rejection,) = published_rejections(publisher)
    assert rejection.body is not None
    assert orjson.loads(rejection.body) == {"userId": "ada", "event": "x" * 300}
    assert "k1" not in rejection.model_dump_json() and "Basic" not in rejection.model_dump_json()


async def test_a_large_body_is_cut_to_the_event_bound() -> None:
    publisher = RecordingPublisher(SETTINGS)
    # two items: the batch is accepted in part, the huge one refused as too large
    huge = {"type": "track", "userId": "ada", "event": "E", "properties": {"text": "é" * 3000}}
    body = {"batch": [{"type": "track", "userId": "ada", "event": "E"}, huge]}
    async with ingest_client(publisher, auth=("k1", "")) as http:
        response = await http.post("/v1/batch", json=body)
    assert response.status_code == 200, response.text
    (rejection,) = published_rejections(publisher)
    assert rejection.body is not None and rejection.body_truncated
    assert len(rejection.body.encode()) <= SETTINGS.max_event_bytes
    assert rejection.body.startswith('{"type":"track"')


def test_rejected_body_bounds_and_describes() -> None:
    assert rejected_body({"a": 1, "writeKey": "s"}, ["s"], 100) == ('{"a":1}', False)
    assert rejected_body(["s", {"k": "s"}], ["s"], 100) == (
        f'["{REDACTED}",{{"k":"{REDACTED}"}}]',
        False,
    )
    text, cut = rejected_body({"a": "xyz"}, [], 5)
    assert (text, cut) == ('{"a":', True)
    deep: list[object] = []
    for _ in range(300):
        deep = [deep]
    assert rejected_body(deep, [], 100) == ('"(not representable as JSON)"', False)


async def test_a_provider_item_keeps_no_key_wherever_the_sdk_put_it() -> None:
    key = "phc_testkey123"
    settings = Settings.from_environment({"PS_WRITE_KEYS": f"{key}:web"})
    publisher = RecordingPublisher(settings)
    refused = {"event": "clicked", "properties": {"$token": key, "plan": "pro"}}  # no distinct_id
    async with ingest_client(publisher, base_url="http://ingest/posthog") as http:
        response = await http.post("/capture/", json={**refused, "token": key})
    assert response.status_code == 400, response.text  # all refused
    (rejection,) = published_rejections(publisher)
    assert rejection.body is not None
    assert orjson.loads(rejection.body) == {
        "event": "clicked",
        "properties": {"$token": REDACTED, "plan": "pro"},
        "token": REDACTED,
    }
