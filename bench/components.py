"""The materializer against a plain baseline, on one preloaded topic (default 1,000,000 events
over 100,000 users), each in a child process of its own with its own consumer group, Redis
database and chDB directory:
- materializer: the real Faust agent and batch processor, from the topic into Valkey and chDB;
- baseline: no framework: aiokafka `getmany` -> the same `BatchProcessor` (the same rows and
  profile changes: one Redis look-up pipeline, one ClickHouse INSERT, one Redis apply per
  batch) -> commit;
- faust: what `stream.take_events` alone delivers (the agent does nothing with it);
- processor: `BatchProcessor` alone, fed in memory (no Kafka at all).
Prints one JSON object with every figure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.settings import Settings  # noqa: E402
from profilestream.embedded import free_port, start_tansu, start_valkey  # noqa: E402
from schemas.events import Event  # noqa: E402
from schemas.messages import EventMessage  # noqa: E402


def sample_value(i: int, users: int) -> tuple[bytes, bytes]:
    user = f"u{i % users}"
    event = Event(
        message_id=f"m{i}",
        type="track",
        user_id=user,
        event="Played",
        timestamp=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(milliseconds=i),
        received_at=datetime(2026, 11, 1, tzinfo=UTC),
        properties={"i": i, "plan": "pro", "path": "/pricing"},
        context={"library": {"name": "bench"}},
    )
    return user.encode(), EventMessage(event=event).model_dump_json().encode()


async def preload(settings: Settings, events: int, users: int) -> None:
    from aiokafka import AIOKafkaProducer

    from infra.clients import ensure_topics

    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1 << 20,
    )
    await producer.start()
    try:
        futures = []
        for i in range(events):
            key, value = sample_value(i, users)
            futures.append(await producer.send(settings.events_topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def faust_child(settings: Settings, events: int, result: Path) -> None:
    """Runs in its own process: count what take_events delivers, print the rate, exit."""
    import faust

    from materializer.faust_source import create_faust_app, declare_events_topic

    app = create_faust_app(settings)
    topic = declare_events_topic(app, settings)
    state: dict[str, float] = {"n": 0}

    async def count(stream: object) -> None:
        async for batch in stream.take_events(  # type: ignore[attr-defined]
            settings.batch_max_events, within=settings.batch_within_s
        ):
            state.setdefault("t0", time.perf_counter())
            state["n"] += len(batch)
            if state["n"] >= events:
                rate = state["n"] / (time.perf_counter() - state["t0"])
                result.write_text(json.dumps({"faust_take_events_per_s": round(rate)}))
                os._exit(0)

    app.agent(topic, name="count")(count)
    faust.Worker(app, loglevel="warning").execute_from_commandline()


def _processor(settings: Settings) -> Any:
    from infra.clients import clickhouse_client, redis_client
    from infra.warehouse import ensure_schema
    from materializer.pipeline import BatchProcessor
    from materializer.sinks.clickhouse import ClickHouseEventSink
    from materializer.sinks.redis import RedisProfileSink

    clickhouse = clickhouse_client(settings)
    ensure_schema(clickhouse)

    async def no_dead_letters(_: object) -> None:
        raise AssertionError("unexpected dead letter")

    return BatchProcessor(
        RedisProfileSink(redis_client(settings)), ClickHouseEventSink(clickhouse), no_dead_letters
    )


def materializer_child(settings: Settings, events: int, result: Path) -> None:
    """The worker as it runs: Faust consumer, batch conductor, BatchProcessor, acknowledgements."""
    from infra.clients import kafka_metadata_client
    from infra.topic_ids import TopicIds
    from materializer.faust_source import FaustBatchSource
    from materializer.worker import materialize

    source = FaustBatchSource(settings, TopicIds(kafka_metadata_client(settings)))
    processor = _processor(settings)
    state: dict[str, float] = {"n": 0}
    process = processor.process

    async def counting(messages: Any) -> Any:
        state.setdefault("t0", time.perf_counter())
        outcome = await process(messages)
        state["n"] += len(messages)
        if state["n"] >= events:
            rate = state["n"] / (time.perf_counter() - state["t0"])
            result.write_text(json.dumps({"preloaded_materializer_events_per_s": round(rate)}))
            os._exit(0)
        return outcome

    source.run([lambda: materialize(source, counting)], loglevel="warning")


def baseline_child(settings: Settings, events: int, result: Path) -> None:
    """No framework: aiokafka getmany -> the batch processor -> commit."""
    from aiokafka import AIOKafkaConsumer

    from infra.clients import kafka_metadata_client
    from infra.topic_ids import TopicIds
    from materializer.processing import MessageMeta, RawMessage

    async def run() -> float:
        processor = _processor(settings)
        # the same stamping as the worker: asked once, the topic is not re-created meanwhile
        topic_id = (await TopicIds(kafka_metadata_client(settings)).of([settings.events_topic]))[
            settings.events_topic
        ]
        consumer = AIOKafkaConsumer(
            settings.events_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.app_id,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            max_poll_records=settings.batch_max_events,
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            done = 0
            started = 0.0
            while done < events:
                fetched = await consumer.getmany(
                    timeout_ms=100, max_records=settings.batch_max_events
                )
                batch = [
                    RawMessage(
                        m.key, m.value, MessageMeta(tp.topic, tp.partition, m.offset, topic_id)
                    )
                    for tp, records in fetched.items()
                    for m in records
                ]
                if not batch:
                    continue
                started = started or time.perf_counter()
                await processor.process(batch)
                await consumer.commit()
                done += len(batch)
            return done / (time.perf_counter() - started)
        finally:
            await consumer.stop()

    result.write_text(json.dumps({"preloaded_baseline_events_per_s": round(asyncio.run(run()))}))


def processor_child(settings: Settings, events: int, users: int, result: Path) -> None:
    from infra.topic_ids import NO_TOPIC_ID
    from materializer.processing import MessageMeta, RawMessage

    messages = [
        RawMessage(
            *sample_value(i, users), MessageMeta(settings.events_topic, i % 4, i, NO_TOPIC_ID)
        )
        for i in range(events)
    ]

    async def run() -> float:
        processor = _processor(settings)
        started = time.perf_counter()
        for first in range(0, events, settings.batch_max_events):
            await processor.process(messages[first : first + settings.batch_max_events])
        return events / (time.perf_counter() - started)

    result.write_text(json.dumps({"processor_events_per_s": round(asyncio.run(run()))}))


def measure(events: int, users: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ps-components-") as tmp:
        env = {
            "PS_DATA_DIR": tmp,
            "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "PS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "PS_LOG_LEVEL": "WARNING",
        }
        settings = Settings.from_environment(env)
        logs = Path(tmp) / "logs"
        tansu = start_tansu(settings, logs)
        valkey = start_valkey(settings, Path(tmp) / "valkey", logs)
        try:
            started = time.perf_counter()
            asyncio.run(preload(settings, events, users))
            results["preload_s"] = round(time.perf_counter() - started)
            for db, part in enumerate(("materializer", "baseline", "faust", "processor"), 1):
                result_file = Path(tmp) / f"{part}.json"
                # own group, Redis database and chDB directory: nobody finds the work done
                own = {
                    "PS_APP_ID": f"bench-{part}",
                    "PS_REDIS_URL": f"{env['PS_REDIS_URL'].rsplit('/', 1)[0]}/{db}",
                    "PS_CLICKHOUSE_DSN": f"chdb://{Path(tmp) / f'clickhouse-{part}'}",
                }
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        part,
                        "--result",
                        str(result_file),
                        "--events",
                        str(events),
                        "--users",
                        str(users),
                    ],
                    env={**os.environ, **env, **own},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=3600,
                    check=False,  # Faust's worker exits through os._exit
                )
                results.update(json.loads(result_file.read_text()))
        finally:
            valkey.stop()
            tansu.stop()
    if results.get("preloaded_baseline_events_per_s"):
        ratio = (
            results["preloaded_materializer_events_per_s"]
            / results["preloaded_baseline_events_per_s"]
        )
        results["materializer_to_baseline"] = round(ratio, 2)
    results["preloaded_events"] = events
    results["preloaded_users"] = users
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--child", choices=["materializer", "baseline", "faust", "processor"])
    parser.add_argument("--result", type=Path, help="where a child writes its figure")
    args = parser.parse_args()
    if args.child:
        settings = Settings()
        if args.child == "materializer":
            materializer_child(settings, args.events, args.result)
        elif args.child == "baseline":
            baseline_child(settings, args.events, args.result)
        elif args.child == "faust":
            faust_child(settings, args.events, args.result)
        else:
            processor_child(settings, args.events, args.users, args.result)
        return 0
    print(json.dumps(measure(args.events, args.users)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
