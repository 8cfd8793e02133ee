"""The worker's small HTTP server on PS_WORKER_METRICS_HOST:PORT, run on the worker's event loop:
- GET /metrics: the worker's registry (materializer.metrics), Prometheus text format;
- GET /healthz: 200 {"status": "ok"} while the process serves;
- GET /readyz: 200 {"status": "ready", "checks": {...}} or 503 {"status": "not ready", ...}:
  broker, redis and clickhouse reachable ("ok" | "down"), partitions of the events topic
  assigned ("assigned" | "none"), progress ("ok" | "stuck": it holds unprocessed messages and
  finished no batch for PS_WORKER_STUCK_AFTER_S).
Unauthenticated, so the bodies say nothing more than that: no address, version or error text.
Each store check is bounded (infra.health.CHECK_TIMEOUT_S), so /readyz answers within about that
whatever is down; it is served from the start, before the broker answers, so it can say what
the worker waits for. The same shape as ingest's and query's (infra.health)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import uvicorn
from aiokafka import AIOKafkaClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infra.clients import clickhouse_client, redis_client
from infra.health import CHECK_TIMEOUT_S, Readiness, readiness_body
from infra.settings import Settings
from materializer import metrics

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 2.0
NO_STORE = {"Cache-Control": "no-store"}
# The words of a check that leave the worker ready; anything else ("down", "none", "stuck") not.
READY_WORDS = frozenset({"ok", "assigned"})


def readiness(results: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    """The status code and body of /readyz for these check results."""
    return readiness_body(results, READY_WORDS)


class Checks(Protocol):
    async def results(self) -> dict[str, str]:
        """Each check's name and word."""
        ...


def create_ops_app(checks: Checks) -> Starlette:
    async def serve_metrics(_: Request) -> Response:
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def readyz(_: Request) -> JSONResponse:
        status, body = readiness(await checks.results())
        return JSONResponse(body, status_code=status, headers=NO_STORE)

    return Starlette(
        routes=[
            Route("/metrics", serve_metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


class WorkerChecks:
    """The worker's readiness checks: the stores through infra.health.Readiness (bounded, one
    run at a time each), with clients of their own (a check never waits behind, or interrupts,
    a write of the worker's), closed by `close`; then the worker's own state. `held_partitions`
    is given the source's once the worker has one."""

    def __init__(
        self,
        settings: Settings,
        progress: metrics.Progress = metrics.PROGRESS,
        clock: Callable[[], float] = time.time,
        timeout_s: float = CHECK_TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._progress = progress
        self._clock = clock
        self._kafka: AIOKafkaClient | None = None
        self._kafka_lock = asyncio.Lock()
        self._redis = redis_client(settings)
        self._clickhouse: Any = None
        self._stores = Readiness(
            {"broker": self.broker, "redis": self.redis, "clickhouse": self.clickhouse},
            timeout_s=timeout_s,
        )
        self.held_partitions: Callable[[], Sequence[int]] = list

    async def results(self) -> dict[str, str]:
        stores = await self._stores.states()
        return {**stores, "partitions": self.partitions(), "progress": self.progress()}

    async def broker(self) -> None:
        client = await self._kafka_client()
        await client.fetch_all_metadata()  # raises when no broker answers

    async def redis(self) -> None:
        await self._redis.ping()

    async def clickhouse(self) -> None:
        await asyncio.to_thread(self._select_one)

    def partitions(self) -> str:
        return "assigned" if self.held_partitions() else "none"

    def progress(self) -> str:
        stuck_after_s = self._settings.worker_stuck_after_s
        return "stuck" if metrics.is_stuck(self._progress, self._clock(), stuck_after_s) else "ok"

    async def _kafka_client(self) -> AIOKafkaClient:
        async with self._kafka_lock:
            if self._kafka is None:
                client = AIOKafkaClient(
                    bootstrap_servers=self._settings.kafka_bootstrap,
                    client_id="profilestream-readyz",
                    request_timeout_ms=self._settings.kafka_request_timeout_ms,
                )
                try:
                    await client.bootstrap()
                except BaseException:
                    await client.close()
                    raise
                self._kafka = client
            return self._kafka

    def _select_one(self) -> None:
        """In a thread. chDB (embedded) has one client per process, the worker's; a ClickHouse
        server gets a client of the check's own without a session (a session runs one query
        at a time: a check must never collide with the worker's INSERT)."""
        if self._clickhouse is None:
            dsn = self._settings.clickhouse_dsn
            if dsn.startswith("chdb://"):
                self._clickhouse = clickhouse_client(self._settings)
            else:
                import clickhouse_connect

                self._clickhouse = clickhouse_connect.get_client(
                    dsn=dsn,
                    autogenerate_session_id=False,
                    connect_timeout=CHECK_TIMEOUT_S,
                    send_receive_timeout=CHECK_TIMEOUT_S,
                )
        self._clickhouse.command("SELECT 1")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._redis.aclose()
        if self._kafka is not None:
            with contextlib.suppress(Exception):
                await self._kafka.close()


class _EmbeddedServer(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host process (the Faust worker) owns SIGINT/SIGTERM.
        yield


async def serve_ops(settings: Settings, checks: WorkerChecks) -> None:
    """Serve on the running loop until cancelled, then stop listening and close the checks'
    clients."""
    config = uvicorn.Config(
        create_ops_app(checks),
        host=settings.worker_metrics_host,
        port=settings.worker_metrics_port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        limit_concurrency=20,
    )
    server = _EmbeddedServer(config)
    log.info(
        "worker metrics and health on http://%s:%d (/metrics, /healthz, /readyz)",
        settings.worker_metrics_host,
        settings.worker_metrics_port,
    )
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=GRACEFUL_SHUTDOWN_S)
        await checks.close()
