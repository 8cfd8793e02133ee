"""Valkey's memory, in a Valkey of its own:
- size: realistic events (default 3,000,000 over 1,000,000 users, bench/workload.py) planned by
  `plan_batch` and applied through RedisProfileSink.apply, in chunks of PS_BATCH_MAX_EVENTS;
  INFO's used_memory before and after gives the bytes per user and per event, and MEMORY USAGE
  on a sample of users splits a user's bytes between the profile hash and the ids hash.
- dedup: the ids hashes stay bounded. Events over 60 simulated days (default 10,000 a day over
  10,000 users) go through the BatchProcessor, whose clock says which day it is, with the
  30-day window (PS_DEDUP_WINDOW_DAYS); the ids hashes' entries and bytes are read after days
  10, 30, 45 and 60. Then a sample of the events is sent again, some inside the window (Redis
  knows them) and some older (the events table knows them: here an in-memory stand-in that
  keeps every stored messageId): the users' event counts must not move.

The events are built as the worker decodes them (materializer.decode.WireEvent), straight from
the workload, without ingest's normalization: what is measured is the store, and the
normalization would cost minutes here. The simulated days start today: Valkey expires an ids
hash at the end of its expiry day by its own clock, so days in the past would expire at once.

Run alone, prints one JSON object."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from progress import ChildProgress, Phases, run_child  # noqa: E402
from workload import Workload  # noqa: E402

from infra.settings import Settings  # noqa: E402
from materializer.decode import WireEvent  # noqa: E402
from profilestream.embedded import free_port, start_valkey  # noqa: E402

DAY_S = 86_400
CHECK_DAYS = (10, 30, 45, 60)
CHUNK_EVENTS = 20_000  # events per task of the generating pool

_encode = msgspec.json.Encoder()
_decode = msgspec.json.Decoder(list[WireEvent])


def wire_event(raw: dict[str, Any], received_at: datetime, at: datetime | None = None) -> WireEvent:
    """A workload event as the worker decodes it; `at` replaces its timestamp."""
    timestamp = at or datetime.fromisoformat(raw["timestamp"])
    return WireEvent(
        message_id=raw["messageId"],
        type=raw["type"],
        timestamp=timestamp,
        received_at=received_at,
        user_id=raw.get("userId"),
        anonymous_id=raw.get("anonymousId"),
        event=raw.get("event"),
        name=raw.get("name"),
        properties=msgspec.Raw(orjson.dumps(raw.get("properties") or {})),
        traits=msgspec.Raw(orjson.dumps(raw.get("traits") or {})),
        context=msgspec.Raw(orjson.dumps(raw.get("context") or {})),
        source="bench",
    )


def _generate(args: tuple[int, int, int, datetime]) -> bytes:
    """Events first..first+count-1 of the workload over `users`, encoded (crosses processes)."""
    users, first, count, start = args
    workload = Workload(users, run="m", start=start, every_user_first=True)
    received = start + timedelta(hours=1)
    return _encode.encode(
        [wire_event(workload.event(i), received) for i in range(first, first + count)]
    )


def generated(users: int, events: int, start: datetime) -> Iterator[list[WireEvent]]:
    """The workload's events in chunks, built on both cores while the caller applies them."""
    tasks = [
        (users, first, min(CHUNK_EVENTS, events - first), start)
        for first in range(0, events, CHUNK_EVENTS)
    ]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for encoded in pool.imap(_generate, tasks):
            yield _decode.decode(encoded)


def consumed_of(events: Sequence[WireEvent], topic: str, first_offset: int) -> list[Any]:
    from infra.topic_ids import NO_TOPIC_ID
    from materializer.processing import Consumed, MessageMeta

    return [
        Consumed(event, MessageMeta(topic, 0, first_offset + n, NO_TOPIC_ID))
        for n, event in enumerate(events)
    ]


async def used_memory(client: Any) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


async def sampled_bytes(client: Any, users: Sequence[str]) -> tuple[float, float]:
    """Mean MEMORY USAGE of the profile hash and of the ids hash over these users."""
    from profilestore.layout import profile_keys

    async with client.pipeline(transaction=False) as pipe:
        for user in users:
            keys = profile_keys(user)
            pipe.memory_usage(keys.profile, samples=0)
            pipe.memory_usage(keys.ids, samples=0)
        sizes = await pipe.execute()
    profiles = [s or 0 for s in sizes[0::2]]
    ids = [s or 0 for s in sizes[1::2]]
    return sum(profiles) / len(users), sum(ids) / len(users)


def size_child(settings: Settings, users: int, events: int, result: Path) -> None:
    from infra.clients import redis_client
    from materializer.processing import DedupWindow, chunks, plan_batch
    from materializer.sinks.redis import RedisProfileSink
    from profilestore.layout import USERS_INDEX

    progress = ChildProgress()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    window = DedupWindow.at(int(time.time() * 1000), settings.dedup_window_days)

    async def run() -> dict[str, Any]:
        client = redis_client(settings)
        sink = RedisProfileSink(client)
        before = await used_memory(client)
        done = 0
        for events_chunk in generated(users, events, start):
            consumed = consumed_of(events_chunk, settings.events_topic, done)
            for chunk in chunks(consumed, settings.batch_max_events):
                await sink.apply(plan_batch(chunk, set(), {}, None, None, window))
            done += len(events_chunk)
            progress.report(done)
        progress.finish(done)
        after = await used_memory(client)
        profiles = int(await client.zcard(USERS_INDEX))
        members: list[bytes] = await client.zrandmember(USERS_INDEX, 2000)  # type: ignore[assignment]
        sample = [m.decode() for m in members]
        profile_bytes, ids_bytes = await sampled_bytes(client, sample)
        await client.aclose()
        grown = after - before
        return {
            "memory_events": done,
            "memory_users": profiles,
            "memory_used_mb": round(grown / 1e6),
            "memory_bytes_per_user": round(grown / profiles),
            "memory_bytes_per_event": round(grown / done),
            "memory_profile_hash_bytes_mean": round(profile_bytes),
            "memory_ids_hash_bytes_mean": round(ids_bytes),
        }

    from materializer.worker import tune_garbage_collector

    tune_garbage_collector()
    result.write_text(json.dumps(asyncio.run(run())))


class StoredEvents:
    """The events table as the dedup needs it: messageId -> (partition, offset) of its row."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int]] = {}

    async def stored(
        self, user_ids: Sequence[str], message_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        return {m: self.rows[m] for m in message_ids if m in self.rows}

    async def insert(self, columns: Any) -> None:
        for event, meta in zip(columns.events, columns.metas, strict=True):
            self.rows[event.message_id] = (meta.partition, meta.offset)

    async def delete_users(self, user_ids: Sequence[str]) -> None:
        raise AssertionError("no deletion in this benchmark")


async def ids_state(client: Any) -> tuple[int, int, int]:
    """(ids hashes, their entries, their bytes by MEMORY USAGE)."""
    keys = [key async for key in client.scan_iter(match="ps:*:ids", count=1000)]
    async with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hlen(key)
            pipe.memory_usage(key, samples=0)
        replies = await pipe.execute()
    return len(keys), sum(replies[0::2]), sum(r or 0 for r in replies[1::2])


async def event_counts(client: Any, users: Sequence[str]) -> dict[str, int]:
    from profilestore.layout import profile_keys

    async with client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.hget(profile_keys(user).profile, "event_count")
        replies = await pipe.execute()
    return {user: int(count or 0) for user, count in zip(users, replies, strict=True)}


def dedup_child(
    settings: Settings, users: int, per_day: int, days: int, resend: int, result: Path
) -> None:
    """The ids hashes over `days` simulated days, then a resend of `resend` events."""
    from infra.clients import redis_client
    from infra.topic_ids import NO_TOPIC_ID
    from materializer.pipeline import BatchProcessor
    from materializer.processing import MessageMeta, RawMessage
    from materializer.sinks.redis import RedisProfileSink

    progress = ChildProgress()
    workload = Workload(users, run="d")
    day0 = int(time.time()) // DAY_S
    clock = {"now": 0.0}
    offsets = [0]

    def message(events: Sequence[WireEvent]) -> RawMessage:
        # one version 2 message per request of 100 events, on one partition
        value = b'{"v":2,"kind":"events","events":[' + b",".join(map(_encode.encode, events))
        meta = MessageMeta(settings.events_topic, 0, offsets[0], NO_TOPIC_ID)
        offsets[0] += 1
        return RawMessage(events[0].profile_key.encode(), value + b"]}", meta)

    def day_events(day: int) -> list[WireEvent]:
        noon = datetime.fromtimestamp((day0 + day) * DAY_S + DAY_S // 2, UTC)
        first = day * per_day
        return [
            wire_event(workload.event(i), noon, noon + timedelta(milliseconds=i - first))
            for i in range(first, first + per_day)
        ]

    async def run() -> dict[str, Any]:
        client = redis_client(settings)
        stored = StoredEvents()

        async def no_dead_letters(letter: object) -> None:
            raise AssertionError(f"unexpected dead letter: {letter}")

        processor = BatchProcessor(
            RedisProfileSink(client),
            stored,
            no_dead_letters,
            max_events=settings.batch_max_events,
            dedup_window_days=settings.dedup_window_days,
            clock=lambda: clock["now"],
        )
        figures: dict[str, Any] = {
            "dedup_users": users,
            "dedup_events_per_day": per_day,
            "dedup_window_days": settings.dedup_window_days,
        }
        sent: list[list[WireEvent]] = []
        for day in range(1, days + 1):
            clock["now"] = float((day0 + day) * DAY_S + DAY_S // 2 + 60)
            events = day_events(day)
            sent.append(events)
            batch = [message(events[i : i + 100]) for i in range(0, len(events), 100)]
            for first in range(0, len(batch), settings.batch_max_events // 100):
                await processor.process(batch[first : first + settings.batch_max_events // 100])
            progress.report(day * per_day)
            if day in CHECK_DAYS or day == days:
                hashes, entries, size = await ids_state(client)
                figures[f"dedup_day_{day}_events_total"] = day * per_day
                figures[f"dedup_day_{day}_ids_entries"] = entries
                figures[f"dedup_day_{day}_ids_mb"] = round(size / 1e6, 2)
                figures[f"dedup_day_{day}_ids_hashes"] = hashes
        progress.finish(days * per_day)
        # Resend: half from the last ten days (inside the window), half from the first ten.
        rng = random.Random(5)
        recent = [e for day in sent[-10:] for e in day]
        old = [e for day in sent[:10] for e in day]
        again = rng.sample(recent, resend // 2) + rng.sample(old, resend // 2)
        touched = sorted({e.profile_key for e in again})
        counts = await event_counts(client, touched)
        rows = len(stored.rows)
        await processor.process([message(again[i : i + 100]) for i in range(0, len(again), 100)])
        moved = sum(
            1
            for user, count in (await event_counts(client, touched)).items()
            if count != counts[user]
        )
        figures["dedup_resent_events"] = len(again)
        figures["dedup_resent_users_whose_count_moved"] = moved
        figures["dedup_resent_rows_added"] = len(stored.rows) - rows
        await client.aclose()
        assert moved == 0 and len(stored.rows) == rows, "a resent event was counted again"
        return figures

    from materializer.worker import tune_garbage_collector

    tune_garbage_collector()
    result.write_text(json.dumps(asyncio.run(run())))


def measure(args: argparse.Namespace, phases: Phases, parts: Sequence[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ps-memory-") as tmp:
        url = f"redis://127.0.0.1:{free_port()}"
        env = {"PS_DATA_DIR": tmp, "PS_REDIS_URL": f"{url}/0", "PS_LOG_LEVEL": "WARNING"}
        settings = Settings.from_environment(env)
        logs = Path(tmp) / "logs"
        valkey = start_valkey(settings, Path(tmp) / "valkey", logs)
        try:
            for db, part in enumerate(("size", "dedup"), 1):
                if part not in parts:
                    continue
                result_file = Path(tmp) / f"{part}.json"
                command = [
                    sys.executable,
                    __file__,
                    *("--child", part, "--result", str(result_file)),
                    *("--users", str(args.memory_users), "--events", str(args.memory_events)),
                    *("--dedup-users", str(args.dedup_users), "--per-day", str(args.per_day)),
                    *("--days", str(args.days), "--resend", str(args.resend)),
                ]
                if part == "size":
                    name, total = "memory: apply to Valkey", args.memory_events
                else:
                    name, total = f"dedup: {args.days} simulated days", args.days * args.per_day
                child_env = {**os.environ, **env, "PS_REDIS_URL": f"{url}/{db}"}
                status = run_child(command, child_env, phases, name, total, logs / f"{part}.log")
                if result_file.exists():
                    results.update(json.loads(result_file.read_text()))
                else:
                    results[f"memory_{part}_failed"] = f"exit {status}"
        finally:
            valkey.stop()
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-users", type=int, default=1_000_000)
    # every user gets one event, the other half million follow the skew
    parser.add_argument("--memory-events", type=int, default=1_500_000)
    parser.add_argument("--dedup-users", type=int, default=10_000)
    parser.add_argument("--per-day", type=int, default=10_000, help="events per simulated day")
    parser.add_argument("--days", type=int, default=60, help="simulated days")
    parser.add_argument("--resend", type=int, default=2_000, help="events sent again")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--parts", default="size,dedup")
    parser.add_argument("--child", choices=["size", "dedup"])
    parser.add_argument("--result", type=Path)
    # the child's own names for the sizes
    parser.add_argument("--users", type=int)
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    if args.child:
        settings = Settings()
        if args.child == "size":
            size_child(settings, args.users, args.events, args.result)
        else:
            dedup_child(
                settings, args.dedup_users, args.per_day, args.days, args.resend, args.result
            )
        return 0
    with Phases() as phases:
        figures = measure(args, phases, args.parts.split(","))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
