"""The query service's /healthz and /readyz (query/health.py): broker, Redis and ClickHouse each
checked, concurrently and bounded in time; a store that is down or hangs makes it "not ready"
without saying more; the running stack's query service is ready."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from infra.settings import Settings
from profilestream.embedded import free_port
from query.app import create_app
from tests.support.publishers import RecordingPublisher
from tests.support.stack import RunningStack

SETTINGS = Settings.from_environment({"PS_ADMIN_TOKEN": "the-token"})


class FakeRedis:
    def __init__(self, hangs: bool = False) -> None:
        self.hangs = hangs

    async def ping(self) -> bool:
        if self.hangs:
            await asyncio.Event().wait()
        return True


class FakeClickHouse:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.commands: list[str] = []

    def command(self, sql: str) -> Any:
        self.commands.append(sql)
        if self.error is not None:
            raise self.error
        return 1


async def readyz(redis: Any, clickhouse: Any) -> httpx.Response:
    app = create_app(SETTINGS, redis, clickhouse, RecordingPublisher(SETTINGS))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://query") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        # bounded so that a check without its timeout fails the test instead of hanging it
        return await asyncio.wait_for(client.get("/readyz"), 30)


async def test_ready_when_every_dependency_answers() -> None:
    clickhouse = FakeClickHouse()
    response = await readyz(FakeRedis(), clickhouse)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"broker": "ok", "redis": "ok", "clickhouse": "ok"},
    }
    assert clickhouse.commands == ["SELECT 1"]


async def test_a_hanging_redis_and_a_failing_clickhouse_are_down() -> None:
    error = ConnectionError("http://default:secret@clickhouse:8123 refused")
    response = await readyz(FakeRedis(hangs=True), FakeClickHouse(error))
    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"broker": "ok", "redis": "down", "clickhouse": "down"},
    }
    assert "8123" not in response.text and "secret" not in response.text


@pytest.mark.integration
async def test_redis_down_for_real_and_chdb_up(chdb_client: Any) -> None:
    closed = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = await readyz(closed, chdb_client)
    finally:
        await closed.aclose()
    assert response.status_code == 503
    assert response.json()["checks"] == {"broker": "ok", "redis": "down", "clickhouse": "ok"}


@pytest.mark.integration
async def test_real_redis_and_chdb_are_ready(redis: aioredis.Redis, chdb_client: Any) -> None:
    response = await readyz(redis, chdb_client)
    assert response.json()["checks"] == {"broker": "ok", "redis": "ok", "clickhouse": "ok"}


@pytest.mark.e2e
def test_the_running_query_service_is_ready(running_stack: RunningStack) -> None:
    with httpx.Client(base_url=running_stack.query_url, timeout=30) as anonymous:
        response = anonymous.get("/readyz")
        assert anonymous.get("/healthz").status_code == 200
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"broker": "ok", "redis": "ok", "clickhouse": "ok"},
    }
    assert "no-store" in response.headers["Cache-Control"]
