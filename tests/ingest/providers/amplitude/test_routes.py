"""The /amplitude routes with a recording publisher (no broker): what is published, and that every
reply is what the Amplitude SDKs read (JSON whose `code` is the HTTP status, failing indices,
`missing_field` for request-level problems) with our `errors` list beside."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from infra.settings import Settings
from tests.support.ingest_app import ingest_client, published_events, published_rejections
from tests.support.publishers import RecordingPublisher

KEY = "amp-key"
SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": f"{KEY}:web"})
CAPTURES = Path(__file__).parent / "captures"
HTTP_API = "/amplitude/2/httpapi"


def capture(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((CAPTURES / name).read_text().splitlines()[0])["json"]
    return {**body, "api_key": KEY}


def assert_amplitude_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert body["errors"] and all(e["field"] and e["reason"] for e in body["errors"])
    return body


@pytest.mark.parametrize("path", [HTTP_API, "/amplitude/batch"])
async def test_the_python_sdk_batch_is_published_and_answered_with_code_200(path: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = capture("amp_py.jsonl")
    raw = json.dumps(body).encode()
    async with ingest_client(publisher) as http:
        response = await http.post(
            path, content=raw, headers={"Content-Type": "application/json; charset=UTF-8"}
        )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["code"] == 200
    assert reply["events_ingested"] == 5
    assert reply["payload_size_bytes"] == len(raw)
    assert isinstance(reply["server_upload_time"], int)
    events = published_events(publisher)
    assert [e.type for e in events] == ["track", "identify", "group", "identify", "track"]
    assert {e.source for e in events} == {"web"}
    assert {e.context["protocol"] for e in events} == {"amplitude"}
    # one user: one message holding its five events, in order, keyed by the user
    assert [k for t, k, _ in publisher.records if t == SETTINGS.events_topic] == [b"user-1"]


async def test_the_browser_sdk_batch_gzipped_by_content_encoding_is_taken() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(
            HTTP_API,
            content=gzip.compress(json.dumps(capture("ampjs.jsonl")).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert response.json()["code"] == 200, response.text
    assert response.json()["events_ingested"] == 8
    assert len(published_events(publisher)) == 8


async def test_some_invalid_events_are_named_and_the_valid_ones_published() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {
        "api_key": KEY,
        "events": [
            {"event_type": "Good", "user_id": "u1", "insert_id": "i-0"},
            {"event_type": "No Ids", "insert_id": "i-1"},
            {"event_type": "Good", "user_id": "u1", "insert_id": "i-2"},
            {"user_id": "u1", "insert_id": "i-3"},
            {"event_type": "Bad Time", "user_id": "u1", "time": "soon", "insert_id": "i-4"},
        ],
    }
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body)
    reply = assert_amplitude_error(response, 400)
    assert reply["events_with_missing_fields"] == {"user_id": [1], "event_type": [3]}
    assert reply["events_with_invalid_fields"] == {"time": [4]}
    assert reply["events_ingested"] == 2
    assert "missing_field" not in reply  # so the SDKs drop only the named events
    assert {e["field"] for e in reply["errors"]} == {
        "events.1.user_id",
        "events.3.event_type",
        "events.4.time",
    }
    assert [e.message_id for e in published_events(publisher)] == ["i-0", "i-2"]
    recorded = published_rejections(publisher)
    assert [(r.index, r.message_id, r.errors[0].field) for r in recorded] == [
        (1, "i-1", "user_id"),
        (3, "i-3", "event_type"),
        (4, "i-4", "time"),
    ]
    assert {r.endpoint for r in recorded} == {"amplitude/2/httpapi"}


async def test_a_normalize_refusal_is_named_by_its_amplitude_field() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {
        "api_key": KEY,
        "events": [
            {"event_type": "Old", "user_id": "u1", "time": 1000},  # 1970: refused by normalize
            {"event_type": "Fine", "user_id": "u1"},
        ],
    }
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body)
    reply = assert_amplitude_error(response, 400)
    assert reply["events_with_invalid_fields"] == {"time": [0]}
    assert len(published_events(publisher)) == 1


async def test_no_valid_event_is_a_400_naming_them_all_and_publishing_none() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {"api_key": KEY, "events": [{"event_type": "E"}, "x"]}
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body)
    reply = assert_amplitude_error(response, 400)
    assert reply["events_with_missing_fields"] == {"user_id": [0]}
    assert reply["events_with_invalid_fields"] == {"event": [1]}
    assert reply["events_ingested"] == 0
    assert published_events(publisher) == []
    assert len(published_rejections(publisher)) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [{"event_type": "E", "user_id": "u"}]}, "api_key"),
        ({"api_key": KEY}, "events"),
        ({"api_key": KEY, "events": {}}, "events"),
        ({"api_key": KEY, "events": []}, "events"),
        ([1, 2], "body"),
        (
            {
                "api_key": KEY,
                "events": [{"event_type": "E", "user_id": "u"}],
                "client_upload_time": "x",
            },
            "client_upload_time",
        ),
    ],
)
async def test_request_level_problems_name_the_missing_field(body: Any, field: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body)
    reply = assert_amplitude_error(response, 400)
    assert reply["missing_field"] == field
    assert reply["errors"][0]["field"] == field
    assert publisher.records == []


async def test_an_unknown_api_key_is_amplitudes_invalid_api_key_without_the_key() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {"api_key": "not-our-key", "events": [{"event_type": "E", "user_id": "u"}]}
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body)
    reply = assert_amplitude_error(response, 400)
    # the SDKs recognise this prefix and drop the batch (python raises InvalidAPIKeyError)
    assert reply["error"].startswith("Invalid API key:")
    assert "missing_field" not in reply
    assert "not-our-key" not in response.text
    assert reply["errors"] == [{"field": "api_key", "reason": "not a known write key"}]
    assert publisher.records == []


@pytest.mark.parametrize(
    ("content", "headers", "field"),
    [
        (b'{"api_key": "amp-key", "events": [', {}, "body"),
        (b"", {}, "body"),
        (gzip.compress(b'{"api_key": "amp-key"}')[:-6], {"Content-Encoding": "gzip"}, "body"),
        (gzip.compress(b'{"api_key": "amp-key"}')[:-6], {}, "body"),  # gzip by its magic bytes
        (b"{}", {"Content-Encoding": "br"}, "Content-Encoding"),
    ],
)
async def test_bad_bodies_are_request_level_4xx(
    content: bytes, headers: dict[str, str], field: str
) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, content=content, headers=headers)
    assert 400 <= response.status_code < 500
    reply = assert_amplitude_error(response, response.status_code)
    assert reply["missing_field"] == field
    assert publisher.records == []


async def test_over_one_megabyte_is_413_on_httpapi_and_taken_by_batch() -> None:
    publisher = RecordingPublisher(SETTINGS)
    events = [
        {"event_type": "E", "user_id": "u", "event_properties": {"pad": "x" * 20_000}}
        for _ in range(60)
    ]
    content = json.dumps({"api_key": KEY, "events": events}).encode()
    assert 1024 * 1024 < len(content) < 20 * 1024 * 1024
    async with ingest_client(publisher) as http:
        too_large = await http.post(HTTP_API, content=content)
        batch = await http.post("/amplitude/batch", content=content)
    reply = assert_amplitude_error(too_large, 413)
    assert "missing_field" not in reply  # the SDKs halve their batch and resend
    assert batch.json()["code"] == 200, batch.text
    assert len(published_events(publisher)) == 60


async def test_more_than_2000_events_is_413() -> None:
    publisher = RecordingPublisher(SETTINGS)
    events = [{"event_type": "E", "user_id": "u"}] * 2001
    async with ingest_client(publisher) as http:
        response = await http.post("/amplitude/batch", json={"api_key": KEY, "events": events})
    reply = assert_amplitude_error(response, 413)
    assert reply["errors"][0]["field"] == "events"
    assert publisher.records == []


async def test_broker_not_acknowledging_is_code_503_with_retry_after() -> None:
    publisher = RecordingPublisher(SETTINGS, fail=True)
    body = {"api_key": KEY, "events": [{"event_type": "E", "user_id": "u"}]}
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body)
    assert_amplitude_error(response, 503)
    assert response.headers["Retry-After"] == str(SETTINGS.retry_after_s)


async def test_rate_limited_is_code_429_throttling_every_event() -> None:
    settings = Settings.from_environment(
        {"PS_WRITE_KEYS": f"{KEY}:web", "PS_INGEST_RATE_LIMIT_EVENTS_PER_S": "1"}
    )
    publisher = RecordingPublisher(settings)
    body = {"api_key": KEY, "events": [{"event_type": "E", "user_id": "u"}] * 3}
    async with ingest_client(publisher) as http:
        first = await http.post(HTTP_API, json=body)  # larger than the burst: leaves a debt
        response = await http.post(HTTP_API, json=body)
    assert first.json()["code"] == 200
    reply = assert_amplitude_error(response, 429)
    assert reply["throttled_events"] == [0, 1, 2]
    assert int(response.headers["Retry-After"]) >= 1
    assert len(published_events(publisher)) == 3  # the first request's


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/amplitude/nope", 404),
        ("GET", HTTP_API, 405),
        ("POST", "/amplitude/groupidentify", 404),
    ],
)
async def test_unknown_paths_and_methods_answer_in_amplitudes_shape(
    method: str, path: str, status: int
) -> None:
    async with ingest_client(RecordingPublisher(SETTINGS)) as http:
        response = await http.request(method, path)
    assert_amplitude_error(response, status)


# --- /identify ---------------------------------------------------------------------------------


def identify_form(identification: Any, api_key: str = KEY) -> dict[str, Any]:
    return {
        "content": urlencode({"api_key": api_key, "identification": json.dumps(identification)}),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


async def test_identify_form_with_one_object_and_with_an_array_answers_success() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        one = await http.post(
            "/amplitude/identify",
            **identify_form({"user_id": "u1", "user_properties": {"$set": {"plan": "pro"}}}),
        )
        many = await http.post(
            "/amplitude/identify",
            **identify_form(
                [
                    {"user_id": "u1", "user_properties": {"Age": "35"}, "country": "Norway"},
                    {"device_id": "d1", "user_properties": {"$add": {"visits": 1}}},
                ]
            ),
        )
    assert (one.status_code, one.text) == (200, "success")
    assert (many.status_code, many.text) == (200, "success")
    events = published_events(publisher)
    assert [e.type for e in events] == ["identify"] * 3
    assert events[0].traits == {"$set": {"plan": "pro"}}
    assert events[1].traits == {"$set": {"Age": "35"}}
    assert events[2].anonymous_id == "d1" and events[2].traits == {"$increment": {"visits": 1}}


async def test_identify_takes_a_json_body_too() -> None:
    publisher = RecordingPublisher(SETTINGS)
    body = {"api_key": KEY, "identification": [{"user_id": "u1", "user_properties": {"a": 1}}]}
    async with ingest_client(publisher) as http:
        response = await http.post("/amplitude/identify", json=body)
    assert response.text == "success"
    assert len(published_events(publisher)) == 1


async def test_identify_with_an_invalid_identification_names_its_index() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(
            "/amplitude/identify",
            **identify_form(
                [{"user_id": "u1", "user_properties": {"a": 1}}, {"user_properties": {}}]
            ),
        )
    reply = assert_amplitude_error(response, 400)
    assert reply["events_with_missing_fields"] == {"user_id": [1]}
    assert len(published_events(publisher)) == 1


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (urlencode({"identification": "{}"}), "api_key"),
        (urlencode({"api_key": KEY}), "identification"),
        (urlencode({"api_key": KEY, "identification": "{not json"}), "identification"),
        (urlencode({"api_key": KEY, "identification": "[]"}), "identification"),
    ],
)
async def test_identify_request_level_problems_name_the_field(content: str, field: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(
            "/amplitude/identify",
            content=content,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    reply = assert_amplitude_error(response, 400)
    assert reply["missing_field"] == field
    assert publisher.records == []


async def test_identify_with_an_unknown_key_is_invalid_api_key() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with ingest_client(publisher) as http:
        response = await http.post(
            "/amplitude/identify", **identify_form({"user_id": "u1"}, api_key="nope")
        )
    reply = assert_amplitude_error(response, 400)
    assert reply["error"].startswith("Invalid API key:")
    assert publisher.records == []


async def test_a_key_limited_to_other_origins_is_403_dropping_the_batch() -> None:
    settings = Settings.from_environment(
        {"PS_WRITE_KEYS": f"{KEY}:web", "PS_WRITE_KEY_ORIGINS": f"{KEY}=https://shop.example"}
    )
    publisher = RecordingPublisher(settings)
    body = {"api_key": KEY, "events": [{"event_type": "E", "user_id": "u"}]}
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, json=body, headers={"Origin": "https://evil.example"})
    reply = assert_amplitude_error(response, 403)
    assert reply["missing_field"] == "Origin"
    assert response.headers["access-control-allow-origin"] == "https://evil.example"
    assert publisher.records == []


async def test_a_gzip_bomb_stops_at_the_limit_with_413() -> None:
    publisher = RecordingPublisher(SETTINGS)
    bomb = gzip.compress(b'{"api_key": "amp-key", "events": [' + b" " * (50 * 1024 * 1024) + b"]}")
    assert len(bomb) < 100 * 1024
    async with ingest_client(publisher) as http:
        response = await http.post(HTTP_API, content=bomb, headers={"Content-Encoding": "gzip"})
    assert_amplitude_error(response, 413)
    assert publisher.records == []
