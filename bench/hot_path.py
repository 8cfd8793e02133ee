"""The worker's hot path alone, for a profiler: `BatchProcessor.process` over realistic events
as ingest produces them (bench/prepare.py), into a throwaway Valkey and chDB, no Kafka. Prints
events/s. The profile in docs/performance.md was taken with

    .venv/bin/py-spy record --idle --rate 200 -o hot_path.svg -- \\
        .venv/bin/python bench/hot_path.py --events 200000

(`--format raw` instead of the flame graph gives the folded stacks)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prepare import Spec, as_ingest  # noqa: E402

from infra.settings import Settings  # noqa: E402
from infra.topic_ids import NO_TOPIC_ID  # noqa: E402
from profilestream.embedded import free_port, start_valkey  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()

    from infra.clients import clickhouse_client, partition_for_key, redis_client
    from infra.warehouse import ensure_schema
    from materializer.pipeline import BatchProcessor
    from materializer.processing import MessageMeta, RawMessage
    from materializer.sinks.clickhouse import ClickHouseEventSink
    from materializer.sinks.redis import RedisProfileSink
    from materializer.worker import tune_garbage_collector

    with tempfile.TemporaryDirectory(prefix="ps-hot-path-") as tmp:
        env = {
            "PS_DATA_DIR": tmp,
            "PS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "PS_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # never contacted
        }
        settings = Settings.from_environment(env)
        now = datetime.now(UTC)
        spec = Spec(args.users, "hot", 7, now - timedelta(hours=1), now, settings.topic_partitions)
        partitions = list(range(settings.topic_partitions))
        offsets = [0] * settings.topic_partitions
        messages = []
        for item in as_ingest(spec, 0, args.events):
            partition = partition_for_key(item.key, partitions, partitions)
            meta = MessageMeta(settings.events_topic, partition, offsets[partition], NO_TOPIC_ID)
            offsets[partition] += 1
            messages.append(RawMessage(item.key, item.value, meta))
        valkey = start_valkey(settings, Path(tmp) / "valkey", Path(tmp) / "logs")
        try:
            clickhouse = clickhouse_client(settings)
            ensure_schema(clickhouse)

            async def no_dead_letters(_: object) -> None:
                raise AssertionError("unexpected dead letter")

            async def run() -> float:
                processor = BatchProcessor(
                    RedisProfileSink(redis_client(settings)),
                    ClickHouseEventSink(clickhouse),
                    no_dead_letters,
                    max_events=settings.batch_max_events,
                )
                tune_garbage_collector()
                per_batch = max(1, settings.batch_max_events // 25)  # ~25 events a message
                started = time.perf_counter()
                for first in range(0, len(messages), per_batch):
                    await processor.process(messages[first : first + per_batch])
                return float(args.events) / (time.perf_counter() - started)

            print(f"{round(asyncio.run(run())):,} events/s through BatchProcessor.process")
        finally:
            valkey.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
