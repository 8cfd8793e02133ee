"""The /webhooks routes with a recording publisher (no broker): who may post, what is published
under which source, and the answers. Whole-stack runs: tests/e2e/test_webhooks.py."""

from __future__ import annotations

import base64
import gzip
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from infra.settings import Settings
from ingest.app import create_app
from ingest.providers.common import DELETE_REFUSED
from ingest.providers.webhooks.routes import MAX_WEBHOOK_EVENTS
from ingest.providers.webhooks.signature import sign
from schemas.events import Event
from schemas.messages import RejectionMessage
from tests.support.messages import produced_events
from tests.support.publishers import RecordingPublisher
from tests.support.webhooks import (
    RUDDERSTACK_PATH,
    SEGMENT_PATH,
    rudderstack_event,
    segment_message,
    signed,
    signed_batch,
)

SETTINGS = Settings.from_environment(
    {
        "PS_WRITE_KEYS": "web-key:web,ios-key:ios",
        "PS_SOURCE_SECRETS": "web-secret:web,ios-secret:ios",
        "PS_SEGMENT_WEBHOOK_BATCHED_SOURCES": "web",
    }
)
NO_SECRETS = Settings.from_environment({"PS_WRITE_KEYS": "web-key:web"})


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher(SETTINGS)


@pytest.fixture
async def http(publisher: RecordingPublisher) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(SETTINGS, publisher))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield client


def published(publisher: RecordingPublisher) -> list[Event]:
    return produced_events(publisher.records, SETTINGS.events_topic)


def rejections(publisher: RecordingPublisher) -> list[RejectionMessage]:
    return [
        RejectionMessage.model_validate_json(value)
        for topic, _, value in publisher.records
        if topic == SETTINGS.rejections_topic
    ]


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return segment_message("track", message_id, userId="ada", event="Order Completed", **fields)


def assert_names(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["success"] is False and body["message"]
    assert field in [e["field"] for e in body["errors"]], body
    return body


# --- Segment ------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_a_signed_segment_message_is_published_under_the_secrets_source(
    http: httpx.AsyncClient, publisher: RecordingPublisher, method: str
) -> None:
    body, headers = signed(track("m-1"), "web-secret")
    response = await http.request(method, SEGMENT_PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 1, "rejected": []}
    [event] = published(publisher)
    assert (event.message_id, event.source, event.user_id) == ("m-1", "web", "ada")
    assert event.context["protocol"] == "segment-webhook"


async def test_another_sources_secret_publishes_under_that_source(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    body, headers = signed(track("m-2"), "ios-secret")
    assert (await http.post(SEGMENT_PATH, content=body, headers=headers)).status_code == 200
    assert [e.source for e in published(publisher)] == ["ios"]


async def test_a_batched_actions_body_signed_over_its_first_element_is_taken_whole(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    messages = [track("b-1"), segment_message("identify", "b-2", userId="ada"), track("b-3")]
    body, headers = signed_batch(messages, "web-secret")
    response = await http.post(SEGMENT_PATH, content=body, headers=headers)
    assert response.json() == {"success": True, "accepted": 3, "rejected": []}
    assert [e.message_id for e in published(publisher)] == ["b-1", "b-2", "b-3"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Signature": ""},
        {"X-Signature": "0" * 40},
        {"X-Signature": sign("not-a-configured-secret", orjson.dumps(track("m-3")))},
    ],
    ids=["missing", "empty", "bad", "wrong secret"],
)
async def test_a_missing_or_bad_signature_is_401_naming_it_and_nothing_is_published(
    http: httpx.AsyncClient, publisher: RecordingPublisher, headers: dict[str, str]
) -> None:
    response = await http.post(SEGMENT_PATH, content=orjson.dumps(track("m-3")), headers=headers)
    assert_names(response, 401, "X-Signature")
    assert publisher.records == []


async def test_a_batch_signed_over_another_element_is_401(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    messages = [track("x-1"), track("x-2")]
    body = orjson.dumps(messages)
    headers = {"X-Signature": sign("web-secret", orjson.dumps(messages[1]))}
    assert_names(await http.post(SEGMENT_PATH, content=body, headers=headers), 401, "X-Signature")
    assert publisher.records == []


async def test_without_configured_secrets_every_segment_webhook_is_401() -> None:
    publisher = RecordingPublisher(NO_SECRETS)
    transport = httpx.ASGITransport(app=create_app(NO_SECRETS, publisher))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        body, headers = signed(track("m-4"), "web-secret")
        response = await http.post(SEGMENT_PATH, content=body, headers=headers)
    body_json = assert_names(response, 401, "X-Signature")
    assert "PS_SOURCE_SECRETS" in body_json["errors"][0]["reason"]
    assert publisher.records == []


async def test_a_delete_is_refused_and_the_other_messages_kept(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    messages = [track("d-1"), {"type": "delete", "userId": "ada", "messageId": "d-2"}, track("d-3")]
    body, headers = signed_batch(messages, "web-secret")
    response = await http.post(SEGMENT_PATH, content=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["accepted"] == 2
    assert answer["rejected"] == [
        {"index": 1, "messageId": "d-2", "errors": [{"field": "type", "reason": DELETE_REFUSED}]}
    ]
    assert [e.message_id for e in published(publisher)] == ["d-1", "d-3"]
    [rejection] = rejections(publisher)
    assert (rejection.endpoint, rejection.index, rejection.source) == ("webhooks/segment", 1, "web")


async def test_a_lone_delete_is_400_naming_type(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    body, headers = signed({"type": "delete", "userId": "ada", "messageId": "d-4"}, "web-secret")
    answer = assert_names(await http.post(SEGMENT_PATH, content=body, headers=headers), 400, "type")
    assert answer["errors"][0]["reason"] == DELETE_REFUSED
    assert published(publisher) == [] and len(rejections(publisher)) == 1


async def test_a_gzipped_signed_body_is_read(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    body, headers = signed(track("g-1"), "web-secret")
    headers["Content-Encoding"] = "gzip"
    response = await http.post(SEGMENT_PATH, content=gzip.compress(body), headers=headers)
    assert response.status_code == 200, response.text
    assert [e.message_id for e in published(publisher)] == ["g-1"]


async def test_broker_not_acknowledging_is_503_with_retry_after() -> None:
    transport = httpx.ASGITransport(app=create_app(SETTINGS, RecordingPublisher(SETTINGS, True)))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        body, headers = signed(track("f-1"), "web-secret")
        segment = await http.post(SEGMENT_PATH, content=body, headers=headers)
        rudder = await http.post(
            RUDDERSTACK_PATH, json=track("f-2"), headers={"Authorization": "Bearer web-key"}
        )
    for response in (segment, rudder):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == str(SETTINGS.retry_after_s)


async def test_signed_but_not_json_is_400_naming_the_body(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    body = b'{"type": "track",'
    response = await http.post(
        SEGMENT_PATH, content=body, headers={"X-Signature": sign("web-secret", body)}
    )
    assert_names(response, 400, "body")
    assert publisher.records == []


async def test_too_many_events_is_413_naming_the_batch(http: httpx.AsyncClient) -> None:
    messages = [{"type": "track", "userId": "u", "event": "E"}] * (MAX_WEBHOOK_EVENTS + 1)
    body, headers = signed_batch(messages, "web-secret")
    assert_names(await http.post(SEGMENT_PATH, content=body, headers=headers), 413, "batch")


async def test_other_methods_are_405_naming_the_method(http: httpx.AsyncClient) -> None:
    for path in (SEGMENT_PATH, RUDDERSTACK_PATH):
        assert_names(await http.get(path), 405, "method")
        assert_names(await http.delete(path), 405, "method")
    assert_names(await http.post("/webhooks/zapier", json={}), 404, "path")


# --- RudderStack --------------------------------------------------------------------------------

RUDDER_EVENT = rudderstack_event("track", "r-1", userId="ada", event="Product Viewed")


@pytest.mark.parametrize(
    ("auth", "params"),
    [
        ({"Authorization": "Basic " + base64.b64encode(b"web-key:").decode()}, {}),
        ({"Authorization": "Bearer web-key"}, {}),
        ({}, {"writeKey": "web-key"}),
    ],
    ids=["basic", "bearer", "query"],
)
async def test_rudderstack_takes_the_write_key_in_each_place(
    http: httpx.AsyncClient,
    publisher: RecordingPublisher,
    auth: dict[str, str],
    params: dict[str, str],
) -> None:
    response = await http.post(RUDDERSTACK_PATH, json=RUDDER_EVENT, headers=auth, params=params)
    assert response.json() == {"success": True, "accepted": 1, "rejected": []}
    [event] = published(publisher)
    assert (event.source, event.message_id) == ("web", "r-1")
    assert event.context["protocol"] == "rudderstack-webhook"
    assert event.context["ip"] == "198.51.100.23"


@pytest.mark.parametrize(
    "body",
    [
        [RUDDER_EVENT, {**RUDDER_EVENT, "messageId": "r-2"}],
        {"batch": orjson.dumps([RUDDER_EVENT, {**RUDDER_EVENT, "messageId": "r-2"}]).decode()},
        {"batch": [RUDDER_EVENT, {**RUDDER_EVENT, "messageId": "r-2"}]},
    ],
    ids=["array", "batch string", "batch array"],
)
async def test_rudderstack_batches_in_each_form(
    http: httpx.AsyncClient, publisher: RecordingPublisher, body: Any
) -> None:
    response = await http.put(RUDDERSTACK_PATH, json=body, params={"writeKey": "ios-key"})
    assert response.json() == {"success": True, "accepted": 2, "rejected": []}
    assert [(e.message_id, e.source) for e in published(publisher)] == [
        ("r-1", "ios"),
        ("r-2", "ios"),
    ]


@pytest.mark.parametrize(
    ("auth", "params", "field"),
    [
        ({}, {}, "writeKey"),
        ({}, {"writeKey": "nope"}, "writeKey"),
        ({"Authorization": "Bearer nope"}, {}, "Authorization"),
        ({"Authorization": "Basic !!!"}, {}, "Authorization"),
        ({"Authorization": "Token web-key"}, {}, "Authorization"),
        # a secret of PS_SOURCE_SECRETS is not a write key
        ({"Authorization": "Bearer web-secret"}, {}, "Authorization"),
    ],
    ids=["none", "unknown query key", "unknown bearer", "bad basic", "other scheme", "secret"],
)
async def test_rudderstack_without_a_known_write_key_is_401(
    http: httpx.AsyncClient,
    publisher: RecordingPublisher,
    auth: dict[str, str],
    params: dict[str, str],
    field: str,
) -> None:
    response = await http.post(RUDDERSTACK_PATH, json=RUDDER_EVENT, headers=auth, params=params)
    assert_names(response, 401, field)
    assert publisher.records == []


async def test_rudderstack_invalid_events_are_listed_and_the_valid_kept(
    http: httpx.AsyncClient, publisher: RecordingPublisher
) -> None:
    bad = {**RUDDER_EVENT, "messageId": "r-bad", "event": None}
    body = [RUDDER_EVENT, bad, {"type": "delete", "userId": "ada"}]
    response = await http.post(RUDDERSTACK_PATH, json=body, params={"writeKey": "web-key"})
    answer = response.json()
    assert (answer["accepted"], [r["index"] for r in answer["rejected"]]) == (1, [1, 2])
    assert answer["rejected"][0]["errors"][0]["field"] == "event"
    assert [e.message_id for e in published(publisher)] == ["r-1"]
