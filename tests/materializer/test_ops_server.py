"""The worker's ops server (materializer.ops_server): the /readyz rule and body, the three
routes, and the worker's checks against a real Valkey and addresses where no broker and no
ClickHouse listen (bounded in time by infra.health.Readiness, tested in tests/infra). Served by
the running worker, and checked with a store down, in tests/e2e/test_health.py."""

from __future__ import annotations

import asyncio

import httpx

from infra.settings import Settings
from materializer.metrics import Progress
from materializer.ops_server import WorkerChecks, create_ops_app, readiness
from profilestream.embedded import free_port

ALL_OK = {
    "broker": "ok",
    "redis": "ok",
    "clickhouse": "ok",
    "partitions": "assigned",
    "progress": "ok",
}


def test_ready_only_when_every_check_is_ok_or_assigned() -> None:
    assert readiness(ALL_OK) == (200, {"status": "ready", "checks": ALL_OK})
    for name, word in [("redis", "down"), ("partitions", "none"), ("progress", "stuck")]:
        status, body = readiness({**ALL_OK, name: word})
        assert status == 503
        assert body == {"status": "not ready", "checks": {**ALL_OK, name: word}}


class FixedChecks:
    def __init__(self, results: dict[str, str]) -> None:
        self._results = results

    async def results(self) -> dict[str, str]:
        return self._results


def ops_client(results: dict[str, str]) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_ops_app(FixedChecks(results)))
    return httpx.AsyncClient(transport=transport, base_url="http://worker")


async def test_routes_serve_metrics_health_and_readiness_and_nothing_else() -> None:
    async with ops_client({**ALL_OK, "redis": "down"}) as client:
        healthz = await client.get("/healthz")
        assert (healthz.status_code, healthz.json()) == (200, {"status": "ok"})

        readyz = await client.get("/readyz")
        assert readyz.status_code == 503
        assert readyz.json() == {"status": "not ready", "checks": {**ALL_OK, "redis": "down"}}
        assert readyz.headers["cache-control"] == "no-store"

        scraped = await client.get("/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain; version=")
        assert "profilestream_worker_batches_total" in scraped.text
        assert "profilestream_worker_end_to_end_delay_seconds_bucket" in scraped.text
        # the worker's registry only: not the HTTP metrics of the query API sharing its process
        assert "profilestream_http_requests_total" not in scraped.text

        for path in ("/docs", "/openapi.json", "/"):
            assert (await client.get(path)).status_code == 404
        assert (await client.post("/readyz")).status_code == 405

    async with ops_client(ALL_OK) as client:
        readyz = await client.get("/readyz")
        assert (readyz.status_code, readyz.json()) == (200, {"status": "ready", "checks": ALL_OK})


async def test_worker_checks_against_a_real_valkey_and_no_broker_nor_clickhouse(
    valkey_url: str,
) -> None:
    settings = Settings.from_environment(
        {
            # nothing listens on these (chDB answers in tests/e2e/test_health.py)
            "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "PS_CLICKHOUSE_DSN": f"http://user:password@127.0.0.1:{free_port()}/default",
            "PS_REDIS_URL": valkey_url,
            "PS_WORKER_STUCK_AFTER_S": "60",
        }
    )
    progress = Progress(started_at=1000.0, last_batch_at=1000.0)
    now = [1010.0]
    checks = WorkerChecks(settings, progress, clock=lambda: now[0], timeout_s=2.0)
    try:
        results = await asyncio.wait_for(checks.results(), timeout=10)
        assert results == {
            "broker": "down",
            "redis": "ok",
            "clickhouse": "down",
            "partitions": "none",
            "progress": "ok",
        }
        checks.held_partitions = lambda: [0, 3]
        assert checks.partitions() == "assigned"
        progress.unprocessed, progress.waiting_since = 12, 1005.0
        now[0] = 1066.0
        assert checks.progress() == "stuck"
        progress.last_batch_at = 1060.0
        assert checks.progress() == "ok"
    finally:
        await checks.close()
