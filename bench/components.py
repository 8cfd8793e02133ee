"""The materializer and the floor of each of its parts, on one topic preloaded with realistic
events (default 1,000,000 over 100,000 users, bench/workload.py) produced as ingest would
(bench/prepare.py: version 2 messages, a request's events for one partition per message). Each
runs in a child process of its own, with its own consumer group, Redis database and chDB
directory, so none finds the work of another done:
- materializer: the worker as it runs (Faust consumer, batch source, BatchProcessor);
- baseline: no framework: aiokafka `getmany` -> the same BatchProcessor -> commit;
- processor: the BatchProcessor alone, fed the same messages in memory (no Kafka);
- broker: the broker read alone: `getmany` over the whole topic, decoding nothing;
- floors: the same events decoded and planned beforehand (chunks of PS_BATCH_MAX_EVENTS, as
  the processor writes them), then timed apart: every INSERT through ClickHouseEventSink.insert
  into a fresh chDB directory, and every apply through RedisProfileSink.apply into a fresh
  Redis database.
Returns (and, run alone, prints) one JSON object with every figure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from prepare import Spec, read_prepared, write_prepared  # noqa: E402
from progress import ChildProgress, Phases, run_child  # noqa: E402

from infra.settings import Settings  # noqa: E402
from profilestream.embedded import free_port, start_tansu, start_valkey  # noqa: E402

CHILDREN = ("materializer", "baseline", "processor", "broker", "floors")


def tune_gc() -> None:
    """What the worker does at start-up (materializer.worker), so the children compare."""
    try:
        from materializer.worker import tune_garbage_collector
    except ImportError:  # an older worker
        return
    tune_garbage_collector()


async def preload(settings: Settings, prepared: Path, on_progress: Callable[[int], None]) -> None:
    from aiokafka import AIOKafkaProducer

    from infra.clients import ensure_topics

    await ensure_topics(settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=1 << 20,
        max_request_size=1 << 20,
    )
    await producer.start()
    try:
        futures = []
        done = 0
        for n, item in enumerate(read_prepared(prepared)):
            # the default partitioner on the key: the partition ingest's producer chooses
            futures.append(await producer.send(settings.events_topic, item.value, key=item.key))
            done += item.events
            if n % 500 == 0:
                on_progress(done)
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        on_progress(done)
    finally:
        await producer.stop()


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
        RedisProfileSink(redis_client(settings)),
        ClickHouseEventSink(clickhouse),
        no_dead_letters,
        retry_max_s=settings.sink_retry_max_s,
        max_events=settings.batch_max_events,
        dedup_window_days=settings.dedup_window_days,
    )


class Counter:
    """Counts the messages a child has handled; reports events (messages times the topic's
    events per message, for the display) and the rate over all the events once done."""

    def __init__(self, messages: int, events: int) -> None:
        self.messages = messages
        self.events = events
        self.done = 0
        self.started = 0.0
        self.progress = ChildProgress()

    def start(self) -> None:
        self.started = self.started or time.perf_counter()

    def add(self, messages: int) -> bool:
        """True once every message is handled."""
        self.done += messages
        self.progress.report(self.done * self.events // self.messages)
        return self.done >= self.messages

    def rate(self) -> float:
        self.progress.finish(self.events)
        return self.events / (time.perf_counter() - self.started)


def materializer_child(settings: Settings, counter: Counter, result: Path) -> None:
    """The worker as it runs: Faust consumer, batch source, BatchProcessor, acknowledgements.
    Timed from its first batch (Faust's start-up and group join excluded) to its last."""
    from infra.clients import kafka_metadata_client
    from infra.topic_ids import TopicIds
    from materializer.faust_source import FaustBatchSource
    from materializer.worker import materialize

    source = FaustBatchSource(settings, TopicIds(kafka_metadata_client(settings)))
    processor = _processor(settings)
    process = processor.process

    async def counting(messages: Any) -> Any:
        counter.start()
        outcome = await process(messages)
        if counter.add(len(messages)):
            rate = counter.rate()
            result.write_text(json.dumps({"materializer_events_per_s": round(rate)}))
            os._exit(0)
        return outcome

    tune_gc()
    source.run([lambda: materialize(source, counting)], loglevel="warning")


def _consumer(settings: Settings) -> Any:
    from aiokafka import AIOKafkaConsumer

    from materializer.faust_source import FETCH_MAX_WAIT_MS

    return AIOKafkaConsumer(
        settings.events_topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.app_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=settings.batch_max_events,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


def baseline_child(settings: Settings, counter: Counter, result: Path) -> None:
    """No framework: aiokafka getmany -> the batch processor -> commit."""
    from infra.clients import kafka_metadata_client
    from infra.topic_ids import TopicIds
    from materializer.processing import MessageMeta, RawMessage

    async def run() -> float:
        processor = _processor(settings)
        # the same stamping as the worker: asked once, the topic is not re-created meanwhile
        topic_id = (await TopicIds(kafka_metadata_client(settings)).of([settings.events_topic]))[
            settings.events_topic
        ]
        consumer = _consumer(settings)
        await consumer.start()
        try:
            while True:
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
                counter.start()
                await processor.process(batch)
                await consumer.commit()
                if counter.add(len(batch)):
                    return counter.rate()
        finally:
            await consumer.stop()

    tune_gc()
    rate = asyncio.run(run())
    result.write_text(json.dumps({"baseline_events_per_s": round(rate)}))


def broker_child(settings: Settings, counter: Counter, result: Path) -> None:
    """The broker read alone: getmany over the whole topic, nothing decoded, no commit."""

    async def run() -> tuple[float, int]:
        consumer = _consumer(settings)
        await consumer.start()
        size = 0
        try:
            while True:
                fetched = await consumer.getmany(
                    timeout_ms=100, max_records=settings.batch_max_events
                )
                count = 0
                for records in fetched.values():
                    count += len(records)
                    size += sum(len(m.value or b"") for m in records)
                if not count:
                    continue
                counter.start()
                if counter.add(count):
                    return counter.rate(), size
        finally:
            await consumer.stop()

    rate, size = asyncio.run(run())
    seconds = counter.events / rate
    result.write_text(
        json.dumps(
            {
                "broker_read_events_per_s": round(rate),
                "broker_read_mb_per_s": round(size / seconds / 1e6, 1),
            }
        )
    )


def _raw_messages(settings: Settings, prepared: Path) -> list[Any]:
    """The prepared messages as the worker would receive them: per partition, offsets from 0."""
    from infra.clients import partition_for_key
    from infra.topic_ids import NO_TOPIC_ID
    from materializer.processing import MessageMeta, RawMessage

    partitions = list(range(settings.topic_partitions))
    offsets = [0] * len(partitions)
    messages = []
    for item in read_prepared(prepared):
        partition = partition_for_key(item.key, partitions, partitions)
        meta = MessageMeta(settings.events_topic, partition, offsets[partition], NO_TOPIC_ID)
        offsets[partition] += 1
        messages.append(RawMessage(item.key, item.value, meta))
    return messages


def processor_child(settings: Settings, counter: Counter, prepared: Path, result: Path) -> None:
    """The BatchProcessor alone, fed in memory; a batch is what the worker takes from one fetch
    at most (PS_BATCH_MAX_EVENTS messages)."""
    messages = _raw_messages(settings, prepared)
    size = settings.batch_max_events

    async def run() -> float:
        processor = _processor(settings)
        counter.start()
        for first in range(0, len(messages), size):
            batch = messages[first : first + size]
            await processor.process(batch)
            counter.add(len(batch))
        return counter.rate()

    tune_gc()
    rate = asyncio.run(run())
    result.write_text(json.dumps({"processor_events_per_s": round(rate)}))


def planned(settings: Settings, messages: Sequence[Any], progress: ChildProgress) -> list[Any]:
    """The plans the processor would write for these messages on a fresh store, one per chunk
    of PS_BATCH_MAX_EVENTS events."""
    from materializer.processing import DedupWindow, chunks, decode_batch, plan_batch

    window = DedupWindow.at(int(time.time() * 1000), settings.dedup_window_days)
    plans = []
    done = 0
    for first in range(0, len(messages), settings.batch_max_events):
        consumed, dead = decode_batch(messages[first : first + settings.batch_max_events])
        assert not dead, dead[0].reason
        for chunk in chunks(consumed, settings.batch_max_events):
            plans.append(plan_batch(chunk, set(), {}, None, None, window))
            done += len(chunk)
        progress.report(done)
    return plans


def floors_child(settings: Settings, counter: Counter, prepared: Path, result: Path) -> None:
    from infra.clients import clickhouse_client, redis_client
    from infra.warehouse import ensure_schema
    from materializer.sinks.clickhouse import ClickHouseEventSink
    from materializer.sinks.redis import RedisProfileSink

    progress = ChildProgress()
    messages = _raw_messages(settings, prepared)
    started = time.perf_counter()
    plans = planned(settings, messages, progress)
    plan_rate = len(messages) and counter.events / (time.perf_counter() - started)
    events = sum(len(plan.columns) for plan in plans)
    assert events == counter.events, (events, counter.events)
    del messages  # the plans keep what they need
    clickhouse = clickhouse_client(settings)
    ensure_schema(clickhouse)
    events_sink = ClickHouseEventSink(clickhouse)
    profiles_sink = RedisProfileSink(redis_client(settings))
    tune_gc()

    async def timed(step: Callable[[Any], Any]) -> float:
        done = 0
        started = time.perf_counter()
        for plan in plans:
            await step(plan)
            done += len(plan.columns)
            progress.report(done)
        progress.finish(done)
        return events / (time.perf_counter() - started)

    async def run() -> dict[str, int]:
        progress.phase("floor: ClickHouse insert", events)
        insert = await timed(lambda plan: events_sink.insert(plan.columns))
        progress.phase("floor: Redis apply", events)
        apply = await timed(profiles_sink.apply)
        return {
            "decode_plan_events_per_s": round(plan_rate),
            "clickhouse_insert_events_per_s": round(insert),
            "redis_apply_events_per_s": round(apply),
        }

    result.write_text(json.dumps(asyncio.run(run())))


def measure(
    events: int,
    users: int,
    phases: Phases,
    children: Sequence[str] = CHILDREN,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    results: dict[str, Any] = {"preloaded_events": events, "preloaded_users": users}
    with tempfile.TemporaryDirectory(prefix="ps-components-", dir=work_dir) as tmp:
        env = {
            "PS_DATA_DIR": tmp,
            "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "PS_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "PS_LOG_LEVEL": "WARNING",
        }
        settings = Settings.from_environment(env)
        logs = Path(tmp) / "logs"
        prepared = Path(tmp) / "prepared.bin"
        now = datetime.now(UTC).replace(microsecond=0)
        # events stamped from an hour ago, a millisecond apart: inside the dedup window
        spec = Spec(users, "c", 7, now - timedelta(hours=1), now, settings.topic_partitions)
        with phases.phase("prepare: normalize + event_records", events) as phase:
            started = time.perf_counter()
            messages, size = write_prepared(prepared, spec, events, on_progress=phase.update)
            results["prepare_s"] = round(time.perf_counter() - started, 1)
        results["preloaded_messages"] = messages
        results["preloaded_mb"] = round(size / 1e6)
        results["event_bytes_mean"] = round(size / events)
        tansu = start_tansu(settings, logs)
        valkey = start_valkey(settings, Path(tmp) / "valkey", logs)
        try:
            if set(children) & {"materializer", "baseline", "broker"}:
                with phases.phase("preload: produce to the broker", events) as phase:
                    started = time.perf_counter()
                    asyncio.run(preload(settings, prepared, phase.update))
                    results["preload_s"] = round(time.perf_counter() - started, 1)
            for db, part in enumerate(CHILDREN, 1):
                if part not in children:
                    continue
                result_file = Path(tmp) / f"{part}.json"
                # own group, Redis database and chDB directory: nobody finds the work done
                own = {
                    "PS_APP_ID": f"bench-{part}",
                    "PS_REDIS_URL": f"{env['PS_REDIS_URL'].rsplit('/', 1)[0]}/{db}",
                    "PS_CLICKHOUSE_DSN": f"chdb://{Path(tmp) / f'clickhouse-{part}'}",
                }
                command = [
                    sys.executable,
                    __file__,
                    *("--child", part, "--result", str(result_file), "--prepared", str(prepared)),
                    *("--events", str(events), "--messages", str(messages)),
                ]
                name = "floors: decode + plan" if part == "floors" else part
                child_env = {**os.environ, **env, **own}
                log = logs / f"{part}.log"
                status = run_child(command, child_env, phases, name, events, log)
                if result_file.exists():
                    results.update(json.loads(result_file.read_text()))
                else:
                    results[f"{part}_failed"] = f"exit {status}"
                # The next child starts on an empty Valkey: a big one would slow it (its
                # append-only file is rewritten in a fork that grows with the data).
                flush_all(own["PS_REDIS_URL"])
        finally:
            valkey.stop()
            tansu.stop()
    return with_ratios(results)


def flush_all(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushall()
    finally:
        client.close()


def with_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """The materializer against the baseline and against the slowest floor."""
    out = dict(results)
    materializer = results.get("materializer_events_per_s")
    if materializer and results.get("baseline_events_per_s"):
        out["materializer_to_baseline"] = round(materializer / results["baseline_events_per_s"], 2)
    floors = {
        name: results[key]
        for name, key in (
            ("broker read", "broker_read_events_per_s"),
            ("ClickHouse insert", "clickhouse_insert_events_per_s"),
            ("Redis apply", "redis_apply_events_per_s"),
        )
        if results.get(key)
    }
    if floors:
        if len(floors) == 3 and results.get("decode_plan_events_per_s"):
            # The worker runs its parts one after the other: its floor is their costs summed.
            parts = [*floors.values(), results["decode_plan_events_per_s"]]
            out["serial_floor_events_per_s"] = round(1 / sum(1 / rate for rate in parts))
            if materializer:
                out["materializer_to_serial_floor"] = round(
                    materializer / out["serial_floor_events_per_s"], 2
                )
        slowest = min(floors, key=floors.__getitem__)
        out["slowest_floor"] = slowest
        out["slowest_floor_events_per_s"] = floors[slowest]
        if materializer:
            out["materializer_to_slowest_floor"] = round(materializer / floors[slowest], 2)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--children", default=",".join(CHILDREN), help="comma-separated")
    parser.add_argument("--child", choices=CHILDREN)
    parser.add_argument("--result", type=Path, help="where a child writes its figures")
    parser.add_argument("--prepared", type=Path, help="the prepared messages (a child's input)")
    parser.add_argument("--messages", type=int, help="messages in the prepared file")
    args = parser.parse_args()
    if args.child:
        settings = Settings()
        counter = Counter(args.messages, args.events)
        if args.child == "materializer":
            materializer_child(settings, counter, args.result)
        elif args.child == "baseline":
            baseline_child(settings, counter, args.result)
        elif args.child == "broker":
            broker_child(settings, counter, args.result)
        elif args.child == "processor":
            processor_child(settings, counter, args.prepared, args.result)
        else:
            floors_child(settings, counter, args.prepared, args.result)
        return 0
    with Phases() as phases:
        figures = measure(args.events, args.users, phases, args.children.split(","))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
