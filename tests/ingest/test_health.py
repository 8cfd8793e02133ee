"""Ingest's /healthz and /readyz (ingest/health.py): ready while the broker answers, "down"
as soon as it stops, although the publisher's producer was started before (it keeps its
state), and back once the broker is; outside the OpenAPI document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from infra.clients import ensure_topics
from infra.publisher import BrokerUnavailable
from infra.settings import Settings
from infra.topic_ids import TopicId
from ingest.app import create_app
from profilestream.embedded import free_port, start_tansu
from tests.support.publishers import RecordingPublisher

SETTINGS = Settings.from_environment({"PS_WRITE_KEYS": "k1:web"})


class BrokerGone(RecordingPublisher):
    async def current_topic_id(self, topic: str) -> TopicId:
        raise BrokerUnavailable("the broker did not acknowledge: KafkaConnectionError")


async def answers(publisher: RecordingPublisher, *paths: str) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=create_app(SETTINGS, publisher))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        return [await client.get(path) for path in paths]


async def test_ready_while_the_broker_answers() -> None:
    healthz, readyz = await answers(RecordingPublisher(SETTINGS), "/healthz", "/readyz")
    assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})
    assert (readyz.status_code, readyz.json()) == (
        200,
        {"status": "ready", "checks": {"broker": "ok"}},
    )


async def test_not_ready_without_the_broker_and_alive_all_the_same() -> None:
    healthz, readyz = await answers(BrokerGone(SETTINGS), "/healthz", "/readyz")
    assert healthz.status_code == 200
    assert (readyz.status_code, readyz.json()) == (
        503,
        {"status": "not ready", "checks": {"broker": "down"}},
    )
    assert "Kafka" not in readyz.text


def test_health_is_not_in_the_api_document() -> None:
    paths = create_app(SETTINGS, RecordingPublisher(SETTINGS)).openapi()["paths"]
    assert not {"/healthz", "/readyz", "/metrics", "/docs", "/redoc"} & set(paths)


async def ready_within(client: httpx.AsyncClient, timeout_s: float) -> bool:
    """Poll /readyz until it answers 200 (a check still running from before may answer first)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        if (await client.get("/readyz")).status_code == 200:
            return True
        await asyncio.sleep(0.2)
    return False


@pytest.fixture
async def broker_settings(tmp_path: Path) -> AsyncIterator[Settings]:
    yield Settings.from_environment(
        {
            "PS_WRITE_KEYS": "k1:web",
            "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "PS_DATA_DIR": str(tmp_path),
            "PS_KAFKA_REQUEST_TIMEOUT_MS": "1000",
            "PS_PUBLISH_TIMEOUT_S": "1",
        }
    )


@pytest.mark.integration
async def test_a_stopped_broker_is_down_though_the_producer_was_started(
    broker_settings: Settings, tmp_path: Path
) -> None:
    broker = start_tansu(broker_settings, tmp_path / "logs")
    app = create_app(broker_settings)  # the real publisher
    transport = httpx.ASGITransport(app=app)
    try:
        await ensure_topics(broker_settings)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ingest", auth=("k1", "")
        ) as client:
            sent = await client.post("/v1/track", json={"userId": "ada", "event": "E"})
            assert sent.status_code == 200, sent.text  # the producer is started now
            assert (await client.get("/readyz")).json()["checks"] == {"broker": "ok"}
            broker.stop()
            readyz = await client.get("/readyz")
            assert (readyz.status_code, readyz.json()["checks"]) == (503, {"broker": "down"})
            assert (await client.get("/healthz")).status_code == 200
            broker = start_tansu(broker_settings, tmp_path / "logs")
            await ensure_topics(broker_settings)
            assert await ready_within(client, 30.0)
    finally:
        await app.state.publisher.close()
        broker.stop()
