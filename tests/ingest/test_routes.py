"""Ingest routes with a fake publisher (unit level: no broker). The real broker is exercised in
tests/e2e; here: what is produced, with which key and topic, and the 503 path."""

from __future__ import annotations

import httpx
import pytest

from infra.settings import Settings
from ingest.app import create_app
from schemas.messages import RejectionMessage
from tests.support.messages import grouping_problems, keyed_events, partition_of
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web"})


def client(publisher: RecordingPublisher) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(SETTINGS, publisher))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest", auth=("k1", ""))


async def test_events_are_keyed_by_user_then_anonymous_id() -> None:
    publisher = RecordingPublisher(SETTINGS)
    async with client(publisher) as http:
        body = {
            "batch": [
                {"type": "track", "userId": "ada", "anonymousId": "a1", "event": "E"},
                {"type": "page", "anonymousId": "a2"},
                {"type": "track", "userId": "ada"},  # no event name: rejected
            ]
        }
        response = await http.post("/v1/batch", json=body)
    assert response.status_code == 200
    pairs = keyed_events(publisher.records, SETTINGS.events_topic)
    assert [e.profile_key for _, e in pairs] == ["ada", "a2"]
    # ada and a2 hash to one partition: one message, keyed by its first event's user
    assert partition_of("ada", 4) == partition_of("a2", 4)
    assert [key for topic, key, _ in publisher.records if topic == SETTINGS.events_topic] == [
        b"ada"
    ]
    assert grouping_problems(publisher.records, SETTINGS.events_topic, 4) == []
    decoded = [e for _, e in pairs]
    assert [e.source for e in decoded] == ["web", "web"]
    assert decoded[0].anonymous_id == "a1"
    rejections = [r for r in publisher.records if r[0] == SETTINGS.rejections_topic]
    assert len(rejections) == 1
    rejection = RejectionMessage.model_validate_json(rejections[0][2])
    assert (rejection.index, rejection.endpoint, rejection.errors[0].field) == (2, "batch", "event")


async def test_broker_not_acknowledging_is_503_never_2xx() -> None:
    async with client(RecordingPublisher(SETTINGS, fail=True)) as http:
        response = await http.post("/v1/track", json={"userId": "u", "event": "E"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(SETTINGS.retry_after_s)
    body = response.json()
    assert body["code"] == "service_unavailable" and "retry" in body["message"]


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
async def test_missing_write_key_is_401_before_anything_is_produced(path: str) -> None:
    publisher = RecordingPublisher(SETTINGS)
    transport = httpx.ASGITransport(app=create_app(SETTINGS, publisher))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        response = await http.post(path, json={"userId": "u", "event": "E", "batch": []})
    assert response.status_code == 401
    assert publisher.records == []


async def test_openapi_documents_every_route_and_no_cdn_docs() -> None:
    async with client(RecordingPublisher(SETTINGS)) as http:
        schema = (await http.get("/openapi.json")).json()
        docs = await http.get("/docs")  # served from ingest's own assets (infra/api_docs.py)
        assert docs.status_code == 200 and "cdn" not in docs.text.lower()
    expected = {f"/v1/{t}" for t in ("track", "identify", "page", "screen", "group", "alias")}
    others = {"/v1/batch", "/beacon/v1/batch", "/v1/projects/{write_key}/settings"}
    assert set(schema["paths"]) - {p for p in schema["paths"] if p.startswith("/sdk/")} == (
        expected | others
    )
    batch = schema["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert batch["schema"]["properties"]["batch"]["maxItems"] == 2500
