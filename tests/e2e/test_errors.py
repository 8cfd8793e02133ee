"""Every error code of ingest and query, against the running stack; and a poison message that goes
to the dead-letter topic without stopping the worker."""

from __future__ import annotations

import asyncio
import base64
import gzip
import uuid
from typing import Any

import httpx
import orjson
import pytest

from tests.support.polling import eventually
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def assert_error(response: httpx.Response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["code"] and body["message"]
    if field is not None:
        assert field in [e["field"] for e in body["errors"]], body
    return dict(body)


def test_missing_and_unknown_write_key(running_stack: RunningStack) -> None:
    event = {"userId": "u", "event": "E"}
    with httpx.Client(base_url=running_stack.ingest_url) as anonymous:
        body = assert_error(anonymous.post("/v1/track", json=event), 401)
        assert body["code"] == "unauthorized"
        assert_error(anonymous.post("/v1/track", json=event, auth=("wrong-key", "")), 401)
        assert_error(anonymous.post("/v1/track", json={**event, "writeKey": "nope"}), 401)
        # A wrong Basic-auth key is refused before the body is even read.
        refused = anonymous.post(
            "/v1/batch",
            content=b"{not json",
            auth=("wrong-key", ""),
            headers={"Content-Type": "application/json"},
        )
        assert_error(refused, 401)
        # A body writeKey is accepted, as Segment's API does.
        ok = anonymous.post("/v1/track", json={**event, "writeKey": "second-key"})
        assert ok.status_code == 200, ok.text


def test_request_and_event_size_limits(ingest: httpx.Client) -> None:
    big = "x" * (600 * 1024)
    assert_error(ingest.post("/v1/track", json={"userId": "u", "event": big}), 413)
    # Under the request limit but over the 32 KB event limit.
    fat = {"userId": "u", "event": "E", "properties": {"blob": "y" * (40 * 1024)}}
    assert_error(ingest.post("/v1/track", json=fat), 413, "event")
    too_many = {"batch": [{"type": "track", "userId": "u", "event": "E"}] * 2501}
    assert_error(ingest.post("/v1/batch", json=too_many), 413, "batch")
    bomb = gzip.compress(b'{"batch": [' + b" " * (20 * 1024 * 1024) + b"]}")
    assert_error(ingest.post("/v1/batch", content=bomb, headers={"Content-Encoding": "gzip"}), 413)


def test_oversized_event_in_batch_is_rejected_alone(ingest: httpx.Client) -> None:
    fat = {"type": "track", "userId": "u", "event": "E", "properties": {"b": "y" * 40_000}}
    body = {"batch": [fat, {"type": "track", "userId": "u", "event": "Small"}]}
    response = ingest.post("/v1/batch", json=body)
    assert response.status_code == 200
    assert response.json()["accepted"] == 1
    assert response.json()["rejected"][0]["index"] == 0


def test_bad_bodies(ingest: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(ingest.post("/v1/track", content=b"{not json", headers=headers), 400)
    assert_error(ingest.post("/v1/track", content=b"\xff\xfe{}", headers=headers), 400)
    assert_error(ingest.post("/v1/track", content=b"[1, 2]", headers=headers), 400)
    assert_error(ingest.post("/v1/track", content=b"", headers=headers), 400)
    assert_error(ingest.post("/v1/track", content=b"xx", headers={"Content-Encoding": "gzip"}), 400)
    assert_error(ingest.post("/v1/track", content=b"{}", headers={"Content-Encoding": "br"}), 415)
    assert_error(ingest.post("/v1/batch", json={"batch": "nope"}), 400, "batch")
    assert_error(ingest.post("/v1/batch", json={"batch": []}), 400, "batch")
    assert_error(ingest.post("/v1/track", json={"event": "E"}), 400, "userId")
    assert_error(ingest.post("/v1/alias", json={"userId": "u"}), 400, "previousId")
    body = assert_error(
        ingest.post("/v1/batch", json={"batch": [{"type": "track", "userId": "u"}]}), 400
    )
    assert body["errors"] == [{"field": "batch.0.event", "reason": "event is required for track"}]
    far_future = {"userId": "u", "event": "E", "timestamp": "2199-01-01T00:00:00Z"}
    assert_error(ingest.post("/v1/track", json=far_future), 400, "timestamp")
    long_id = {"userId": "u", "event": "E", "messageId": "m" * 101}
    assert_error(ingest.post("/v1/track", json=long_id), 400, "messageId")


def test_query_errors(running_stack: RunningStack, query: httpx.Client) -> None:
    with httpx.Client(base_url=running_stack.query_url) as anonymous:
        assert_error(anonymous.get("/v1/users/anyone"), 401)
        assert_error(
            anonymous.get("/v1/events/daily", headers={"Authorization": "Bearer wrong"}), 401
        )
    assert_error(query.get(f"/v1/users/nobody-{uuid.uuid4().hex}"), 404)
    assert_error(query.get("/v1/events/daily", params={"days": 0}), 400, "days")
    assert_error(query.get("/v1/events/daily", params={"days": 366}), 400, "days")
    assert_error(query.get("/v1/users/u/events/daily", params={"days": "x"}), 400, "days")
    assert_error(query.get("/v1/events/daily", params={"tz": "Mars/Olympus"}), 400, "tz")
    assert_error(query.get("/v1/users/u/events", params={"before": "garbage"}), 400, "before")
    assert_error(query.get("/v1/users/u/events", params={"limit": 0}), 400, "limit")
    # A user with no profile (never seen, or deleted) has no events to read.
    assert_error(query.get("/v1/users/nobody/events/daily", params={"days": 30}), 404)
    assert_error(query.get("/v1/users/nobody/events"), 404)
    assert_error(query.get("/v1/users/nobody/configs"), 404)
    # The days are zero-filled: exactly `days` rows.
    everyone = query.get("/v1/events/daily", params={"days": 30, "event": "never-sent"}).json()
    assert len(everyone) == 30 and all(r["count"] == 0 for r in everyone)


def test_poison_message_goes_to_dead_letter_and_worker_continues(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client
) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    settings = running_stack.settings
    user = f"poison-{uuid.uuid4().hex[:8]}"
    poison = [b"not json at all", orjson.dumps({"v": 99, "kind": "event", "event": {}})]

    async def produce_poison() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=False
        )
        await producer.start()
        try:
            for value in poison:
                await producer.send_and_wait(settings.events_topic, value, key=user.encode())
        finally:
            await producer.stop()

    asyncio.run(produce_poison())
    # A good event for the same user (same partition, after the poison) still gets applied.
    ingest.post("/v1/track", json={"userId": user, "event": "After Poison"}).raise_for_status()
    eventually(lambda: query.get(f"/v1/users/{user}").status_code == 200)

    async def dead_letters() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            settings.dead_letter_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            for _ in range(20):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    found += [orjson.loads(r.value) for r in records if r.key == user.encode()]
                if len(found) >= 2:
                    break
        finally:
            await consumer.stop()
        return found

    letters = asyncio.run(dead_letters())
    assert len(letters) == 2, letters
    assert all(letter["topic"] == settings.events_topic and letter["reason"] for letter in letters)
    assert "validation error" in letters[0]["reason"]
    assert {letter["value_b64"] for letter in letters} == {
        base64.b64encode(v).decode() for v in poison
    }
