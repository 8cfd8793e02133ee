"""The materializer: batches from the source, written by the processor, committed only after the
write. `run_worker` starts its ops server (/metrics, /healthz, /readyz), prepares topics and the
ClickHouse schema, then runs it on Faust's worker with the consumer-lag reporter (and optional
companion coroutines on the same event loop, e.g. the embedded query API)."""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from infra.clients import clickhouse_client, ensure_topics, kafka_metadata_client, redis_client
from infra.settings import Settings
from infra.topic_ids import TopicIds
from infra.warehouse import ensure_schema
from materializer import metrics
from materializer.faust_source import FaustBatchSource
from materializer.ops_server import WorkerChecks, serve_ops
from materializer.pipeline import BatchProcessor, retrying
from materializer.processing import RawMessage
from materializer.sinks.clickhouse import ClickHouseEventSink
from materializer.sinks.redis import RedisProfileSink
from materializer.source import BatchSource

Companion = Callable[[], Awaitable[None]]
Process = Callable[[Sequence[RawMessage]], Awaitable[object]]  # BatchProcessor.process

log = logging.getLogger(__name__)

# How often the consumer lag is asked from the broker (one ListOffsets request per refresh).
LAG_REFRESH_S = 5.0


async def materialize(source: BatchSource, process: Process) -> None:
    """The processor retries unreachable stores and dead-letters bad events itself; anything
    else escaping it is a bug, and the batch is retried rather than skipped (it is not yet
    committed, and every write is idempotent)."""
    async for batch in source.batches():
        written = partial(process, batch.messages)
        await retrying(
            "batch processing",
            written,
            delay_s=1,
            level=logging.ERROR,
            on_retry=metrics.WRITE_RETRIES.labels("batch").inc,
        )
        await source.commit(batch)


async def report_consumer_lag(
    source: FaustBatchSource, topic: str, every_s: float = LAG_REFRESH_S
) -> None:
    """The lag of the partitions this worker holds, into the metrics, every `every_s`."""
    while True:
        try:
            lag = await source.partition_lag()
        except Exception as exc:  # the broker away or a rebalance: the next round asks again
            log.debug("consumer lag not refreshed: %s", type(exc).__name__)
        else:
            metrics.record_lag(topic, lag, time.time())
        await asyncio.sleep(every_s)


async def wait_for_topics(settings: Settings, attempts: int = 60) -> None:
    failures = itertools.count(1)
    await retrying(
        "creating the topics (Kafka not ready?)",
        partial(ensure_topics, settings),
        delay_s=1,
        give_up=lambda _: next(failures) >= attempts,
    )


def tune_garbage_collector() -> None:
    """The batch loop allocates many short-lived containers (changes, columns); with CPython's
    default thresholds (a young-generation pass every 700 allocations) the collector ran
    thousands of times per second, scanning the long-lived objects of the libraries each time.
    Freeze what start-up built (never collected again) and collect the young generation less
    often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def run_worker(settings: Settings, companions: Sequence[Companion] = ()) -> None:
    """Blocks until the worker is stopped (SIGINT/SIGTERM)."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    checks = WorkerChecks(settings)
    # Served before the broker answers, so /readyz can say what the worker waits for. Faust's
    # worker cancels it with every other task of the loop when it stops.
    ops = loop.create_task(serve_ops(settings, checks))
    try:
        loop.run_until_complete(wait_for_topics(settings))
        ensure_schema(clickhouse_client(settings))
    except BaseException:
        ops.cancel()
        loop.run_until_complete(asyncio.gather(ops, return_exceptions=True))
        raise
    source = FaustBatchSource(settings, TopicIds(kafka_metadata_client(settings)))
    checks.held_partitions = source.held_partitions
    processor = BatchProcessor(
        RedisProfileSink(redis_client(settings)),
        ClickHouseEventSink(clickhouse_client(settings)),
        source.send_dead_letter,
        retry_max_s=settings.sink_retry_max_s,
        max_events=settings.batch_max_events,
        dedup_window_days=settings.dedup_window_days,
    )
    tune_garbage_collector()
    tasks: list[Companion] = [
        partial(materialize, source, processor.process),
        partial(report_consumer_lag, source, settings.events_topic),
        *companions,
    ]
    source.run(tasks, loop=loop, loglevel=settings.log_level.lower())
