"""The materializer's two halves measured apart, to see which one limits it:
- faust: events/s that `stream.take_events` alone delivers from a preloaded topic (the agent does
  nothing with them);
- processor: events/s that `BatchProcessor` alone (decode, dedup look-up, ClickHouse INSERT, Redis
  apply) writes into real Valkey and chDB, fed in memory.
Each runs in a child process of its own (Faust owns its event loop; chDB one directory per
process). Prints one JSON object per measurement."""

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.embedded import free_port, start_tansu, start_valkey  # noqa: E402
from infra.settings import Settings  # noqa: E402
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

    from materializer.agents import declare_events_topic
    from materializer.app import create_faust_app

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


def processor_child(settings: Settings, events: int, users: int, result: Path) -> None:
    from infra.clients import clickhouse_client, redis_client
    from infra.warehouse import ensure_schema
    from materializer.pipeline import BatchProcessor
    from materializer.processing import MessageMeta, RawMessage
    from materializer.sinks.clickhouse import ClickHouseEventSink
    from materializer.sinks.redis import RedisProfileSink

    clickhouse = clickhouse_client(settings)
    ensure_schema(clickhouse)
    messages = [
        RawMessage(*sample_value(i, users), MessageMeta(settings.events_topic, i % 4, i))
        for i in range(events)
    ]

    async def run() -> float:
        async def no_dead_letters(_: object) -> None:
            raise AssertionError("unexpected dead letter")

        processor = BatchProcessor(
            RedisProfileSink(redis_client(settings)),
            ClickHouseEventSink(clickhouse),
            no_dead_letters,
        )
        started = time.perf_counter()
        for first in range(0, events, settings.batch_max_events):
            await processor.process(messages[first : first + settings.batch_max_events])
        return events / (time.perf_counter() - started)

    result.write_text(json.dumps({"processor_events_per_s": round(asyncio.run(run()))}))


def measure(events: int, users: int) -> dict[str, int]:
    results: dict[str, int] = {}
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
            asyncio.run(preload(settings, events, users))
            for part in ("faust", "processor"):
                result_file = Path(tmp) / f"{part}.json"
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
                    env={**os.environ, **env},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=600,
                    check=False,  # Faust's worker exits through os._exit
                )
                results.update(json.loads(result_file.read_text()))
        finally:
            valkey.stop()
            tansu.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--child", choices=["faust", "processor"])
    parser.add_argument("--result", type=Path, help="where a child writes its figure")
    args = parser.parse_args()
    if args.child:
        settings = Settings()
        if args.child == "faust":
            faust_child(settings, args.events, args.result)
        else:
            processor_child(settings, args.events, args.users, args.result)
        return 0
    print(json.dumps(measure(args.events, args.users)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
