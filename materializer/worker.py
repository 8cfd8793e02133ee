"""Starting the materializer: prepare topics and the ClickHouse schema, then run the Faust worker
(with optional companion coroutines on the same event loop, e.g. the embedded query API)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import faust

from infra.clients import clickhouse_client, ensure_topics, kafka_metadata_client, redis_client
from infra.settings import Settings
from infra.topic_ids import TopicIds
from infra.warehouse import ensure_schema
from materializer.agents import create_materializer_app, register_materializer
from materializer.pipeline import BatchProcessor
from materializer.sinks.clickhouse import ClickHouseEventSink
from materializer.sinks.redis import RedisProfileSink

log = logging.getLogger(__name__)

Companion = Callable[[], Awaitable[None]]


async def wait_for_topics(settings: Settings, attempts: int = 60) -> None:
    for attempt in range(attempts):
        try:
            await ensure_topics(settings)
            return
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            log.warning("Kafka not ready (%s); retrying", type(exc).__name__)
            await asyncio.sleep(1)


def build_worker_app(settings: Settings) -> faust.App:
    app = create_materializer_app(settings)
    processor = BatchProcessor(
        RedisProfileSink(redis_client(settings)),
        ClickHouseEventSink(clickhouse_client(settings)),
        retry_max_s=settings.sink_retry_max_s,
    )
    register_materializer(app, settings, processor, TopicIds(kafka_metadata_client(settings)))
    return app


def _as_task(companion: Companion) -> Callable[[], Awaitable[None]]:
    # Faust passes the app to a task that takes an argument: take none.
    async def run_companion() -> None:
        await companion()

    return run_companion


def run_worker(settings: Settings, companions: Sequence[Companion] = ()) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(wait_for_topics(settings))
    ensure_schema(clickhouse_client(settings))
    app = build_worker_app(settings)
    for companion in companions:
        app.task(_as_task(companion))
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level.lower())
    worker.execute_from_commandline()
