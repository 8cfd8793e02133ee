"""Exact dedup with a bounded memory, against real Valkey and chDB, on a clock the test moves.

Redis remembers a messageId (the user's ids hash) until `dedup_window_days` after its event's
day; an event older than that (an import) is checked against ClickHouse instead, and its id is
remembered only until tomorrow ends. Whatever path a resend takes, every event is stored once
and counted once, and the ids hash loses its entries once they are past (when the user is next
touched)."""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from infra.warehouse import EVENTS_TABLE
from materializer.pipeline import BatchProcessor
from materializer.processing import DedupWindow, MessageMeta, RawMessage, decode_batch, plan_batch
from materializer.sinks.clickhouse import ClickHouseEventSink
from materializer.sinks.redis import RedisProfileSink
from profilestore.layout import profile_keys
from profilestore.read import read_profile
from schemas.events import Event
from schemas.messages import DeadLetterMessage, events_message
from tests.support.builders import TOPIC_ID
from tests.support.profiles import event_count, remembered

pytestmark = pytest.mark.integration

DAY_S = 86_400
WINDOW_DAYS = 30


class Clock:
    """The worker's clock (seconds since the epoch), moved by whole days. It starts at noon of
    the real today: the ids hash expires (EXPIREAT) at the end of its largest day, which must
    stay in Valkey's real future for the test to see what the pruning did."""

    def __init__(self) -> None:
        self.now = float((int(time.time()) // DAY_S) * DAY_S + DAY_S // 2)

    def __call__(self) -> float:
        return self.now

    @property
    def today(self) -> int:
        return int(self.now // DAY_S)

    @property
    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    def move_days(self, days: int) -> None:
        self.now += days * DAY_S


class Stream:
    """One user's messages on a topic of their own (no other test's offset marks)."""

    def __init__(self) -> None:
        self.user = f"u-{uuid.uuid4().hex[:10]}"
        self.topic = f"events-{uuid.uuid4().hex[:8]}"
        self._offsets = itertools.count()

    def events(self, prefix: str, count: int, at: datetime) -> list[Event]:
        return [
            Event(
                message_id=f"{self.user}-{prefix}-{n}",
                type="track",
                user_id=self.user,
                event="Imported" if prefix.startswith("old") else "Played",
                timestamp=at + timedelta(seconds=n),
                received_at=at,
                properties={"n": n},
            )
            for n in range(count)
        ]

    def messages(self, events: list[Event], per_message: int = 3) -> list[RawMessage]:
        """Version 2 messages (as ingest sends them) at the next offsets."""
        return [
            RawMessage(
                self.user.encode(),
                events_message([e.model_dump_json().encode() for e in events[i : i + per_message]]),
                MessageMeta(self.topic, 0, next(self._offsets), TOPIC_ID),
            )
            for i in range(0, len(events), per_message)
        ]

    def ids(self, events: list[Event]) -> set[str]:
        return {e.message_id for e in events}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def processor(redis: aioredis.Redis, chdb_client: Any, clock: Clock) -> BatchProcessor:
    async def dead_letter(letter: DeadLetterMessage) -> None:
        raise AssertionError(f"unexpected dead letter: {letter.reason}")

    return BatchProcessor(
        RedisProfileSink(redis),
        ClickHouseEventSink(chdb_client),
        dead_letter,
        dedup_window_days=WINDOW_DAYS,
        clock=clock,
    )


def stored(chdb_client: Any, user: str) -> Counter[str]:
    """messageId -> how many rows the events table has of it."""
    result = chdb_client.query(
        f"SELECT message_id, count() FROM {EVENTS_TABLE} WHERE user_id = {{u:String}} "
        "GROUP BY message_id",
        parameters={"u": user},
    )
    return Counter({row[0]: int(row[1]) for row in result.result_rows})


async def memory(redis: aioredis.Redis, key: str) -> int:
    """MEMORY USAGE of the key, every element counted (not sampled)."""
    used = await redis.memory_usage(key, samples=0)
    assert used is not None, f"{key} does not exist"
    return int(used)


async def assert_once(
    redis: aioredis.Redis, chdb_client: Any, stream: Stream, ids: set[str]
) -> None:
    """Every id stored once, nothing else stored, and each counted once."""
    assert stored(chdb_client, stream.user) == Counter(dict.fromkeys(ids, 1))
    assert await event_count(redis, stream.user) == len(ids)


async def test_a_live_batch_processed_twice_is_stored_and_counted_once(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any, clock: Clock
) -> None:
    stream = Stream()
    live = stream.events("live", 8, clock.datetime)
    batch = stream.messages(live)
    first = await processor.process(batch)
    again = await processor.process(batch)  # a replay (a crash before the commit)
    resent = await processor.process(stream.messages(live))  # a client's retry: new offsets
    assert (first.inserted, again.inserted, resent.inserted) == (8, 0, 0)
    await assert_once(redis, chdb_client, stream, stream.ids(live))
    assert set((await remembered(redis, stream.user)).values()) == {clock.today + WINDOW_DAYS}


async def test_an_old_import_processed_twice_is_stored_and_counted_once(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any, clock: Clock
) -> None:
    stream = Stream()
    old = stream.events("old", 8, clock.datetime - timedelta(days=400))
    first = await processor.process(stream.messages(old))
    again = await processor.process(stream.messages(old))  # imported again: new offsets
    assert (first.inserted, again.inserted) == (8, 0)
    await assert_once(redis, chdb_client, stream, stream.ids(old))
    # remembered until tomorrow ends, not for 30 days after a day long gone
    assert await remembered(redis, stream.user) == dict.fromkeys(stream.ids(old), clock.today + 1)


async def test_after_the_window_clickhouse_answers_for_what_redis_forgot(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any, clock: Clock
) -> None:
    stream = Stream()
    old = stream.events("old", 7, clock.datetime - timedelta(days=400))
    live = stream.events("live", 7, clock.datetime)
    old_messages, live_messages = stream.messages(old), stream.messages(live)
    await processor.process([*old_messages, *live_messages])

    clock.move_days(40)
    later = stream.events("later", 1, clock.datetime)
    await processor.process(stream.messages(later))  # touches the user: the past is pruned
    assert set(await remembered(redis, stream.user)) == stream.ids(later)  # Redis forgot

    # the same events again, as new messages (a re-import, a client's late retry) ...
    resent = await processor.process(stream.messages([*old, *live]))
    # ... and as the same messages (a consumer group reset to an old offset)
    replayed = await processor.process([*old_messages, *live_messages])
    assert (resent.inserted, replayed.inserted) == (0, 0)
    await assert_once(
        redis, chdb_client, stream, stream.ids(old) | stream.ids(live) | {later[0].message_id}
    )


async def test_an_old_import_that_crashed_between_insert_and_apply_is_applied_once(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any, clock: Clock
) -> None:
    """Its rows came from these very messages, which are in flight: ClickHouse has them, Redis
    never applied them, so the replay applies them without inserting them again."""
    stream = Stream()
    old = stream.events("old", 6, clock.datetime - timedelta(days=400))
    messages = stream.messages(old)
    consumed, _ = decode_batch(messages)
    window = DedupWindow.at(int(clock() * 1000), WINDOW_DAYS)
    plan = plan_batch(consumed, set(), {}, None, None, window)
    sink = RedisProfileSink(redis)
    await sink.mark_in_flight(plan)
    await ClickHouseEventSink(chdb_client).insert(plan.columns)
    # ... crash: no apply, no commit.
    assert await read_profile(redis, stream.user) is None

    first_half = await processor.process(messages[:1])  # the replay, split differently
    rest = await processor.process(messages[1:])
    assert (first_half.inserted, rest.inserted) == (0, 0)
    await assert_once(redis, chdb_client, stream, stream.ids(old))
    assert await redis.hget(f"ps:inflight:{stream.topic}", "0") is None


async def test_the_ids_hash_forgets_an_import_after_tomorrow_and_live_ids_after_the_window(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any, clock: Clock
) -> None:
    stream = Stream()
    key = profile_keys(stream.user).ids
    t0 = clock.today
    old = stream.events("old", 40, clock.datetime - timedelta(days=400))
    live = stream.events("live", 40, clock.datetime)
    await processor.process(stream.messages([*old, *live], per_message=10))
    assert await remembered(redis, stream.user) == {
        **dict.fromkeys(stream.ids(old), t0 + 1),
        **dict.fromkeys(stream.ids(live), t0 + WINDOW_DAYS),
    }
    full = await memory(redis, key)

    touched: list[Event] = []

    async def touch() -> None:
        """A later event of the user (the pruning runs when the user is touched)."""
        event = stream.events(f"touch{len(touched)}", 1, clock.datetime)
        touched.extend(event)
        await processor.process(stream.messages(event))

    clock.move_days(1)  # tomorrow: the import's ids are still remembered
    await touch()
    assert set(await remembered(redis, stream.user)) == stream.ids([*old, *live, *touched])

    clock.move_days(1)  # past tomorrow: forgotten, but only once the user is touched
    assert set(await remembered(redis, stream.user)) == stream.ids([*old, *live, *touched])
    await touch()
    assert set(await remembered(redis, stream.user)) == stream.ids([*live, *touched])
    without_import = await memory(redis, key)
    assert without_import < full

    clock.move_days(WINDOW_DAYS - 2)  # the last day of the live ids' window
    await touch()
    assert set(await remembered(redis, stream.user)) == stream.ids([*live, *touched])
    clock.move_days(1)  # past it
    await touch()
    assert set(await remembered(redis, stream.user)) == stream.ids(touched)
    assert await memory(redis, key) < without_import
    # the key itself expires at the end of the largest day it remembers an id until
    assert await redis.expiretime(key) == (clock.today + WINDOW_DAYS + 1) * DAY_S
    # and none of this changed what is stored and counted
    await assert_once(redis, chdb_client, stream, stream.ids([*old, *live, *touched]))
