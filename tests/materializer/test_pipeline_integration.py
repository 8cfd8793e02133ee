"""The batch protocol against real Valkey and chDB: dedup by messageId, the crash window between
the ClickHouse INSERT and the Redis apply, and replays split into different batches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from infra.warehouse import EVENTS_TABLE
from materializer.pipeline import BatchProcessor
from materializer.processing import (
    MessageMeta,
    OffsetRange,
    RawMessage,
    decode_batch,
    plan_batch,
)
from materializer.sinks.clickhouse import ClickHouseEventSink
from materializer.sinks.redis import RedisProfileSink
from profilestore.layout import applied_offsets_key, encode_applied, encode_in_flight, inflight_key
from profilestore.read import read_profile
from schemas.events import Event
from schemas.messages import DeadLetterMessage, EventMessage, events_message
from tests.support.builders import TOPIC_ID

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def message(user: str, n: int, offset: int, **fields: Any) -> RawMessage:
    event = Event(
        message_id=f"{user}-{n}",
        type=fields.pop("type", "track"),
        user_id=user,
        event=fields.pop("event", "Played"),
        timestamp=fields.pop("timestamp", T0 + timedelta(seconds=n)),
        received_at=T0,
        **fields,
    )
    value = EventMessage(event=event).model_dump_json().encode()
    return RawMessage(user.encode(), value, MessageMeta("events", 0, offset, TOPIC_ID))


def base_event_json(raw: RawMessage) -> bytes:
    """The event of a version 1 message, as ingest encoded it."""
    assert raw.value is not None
    return orjson.dumps(orjson.loads(raw.value)["event"])


@pytest.fixture
def processor(redis: aioredis.Redis, chdb_client: Any) -> BatchProcessor:
    letters: list[DeadLetterMessage] = []

    async def dead_letter(letter: DeadLetterMessage) -> None:
        letters.append(letter)

    processor = BatchProcessor(
        RedisProfileSink(redis), ClickHouseEventSink(chdb_client), dead_letter
    )
    processor.letters = letters  # type: ignore[attr-defined]
    return processor


def stored_ids(chdb_client: Any, user: str) -> list[str]:
    result = chdb_client.query(
        f"SELECT message_id FROM {EVENTS_TABLE} WHERE user_id = {{u:String}} ORDER BY message_id",
        parameters={"u": user},
    )
    return [row[0] for row in result.result_rows]


def user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


async def test_replay_of_a_batch_changes_nothing(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada = user()
    batch = [message(ada, n, n) for n in range(5)]
    first = await processor.process(batch)
    again = await processor.process(batch)
    assert (first.inserted, again.inserted) == (5, 0)
    assert len(stored_ids(chdb_client, ada)) == 5
    profile = await read_profile(redis, ada)
    assert profile is not None
    assert profile.event_count == 5 and profile.event_totals == {"Played": 5}


async def test_duplicates_inside_one_batch_count_once(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada = user()
    batch = [message(ada, 1, 0), message(ada, 1, 1), message(ada, 2, 2)]
    assert (await processor.process(batch)).inserted == 2
    assert stored_ids(chdb_client, ada) == [f"{ada}-1", f"{ada}-2"]
    profile = await read_profile(redis, ada)
    assert profile is not None and profile.event_count == 2


async def test_crash_between_insert_and_apply_is_repaired_once(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    """A worker inserted rows into ClickHouse and died before its Redis apply. The replay comes
    back split differently (first half, then the rest with new events): each event must end up
    stored once and counted once."""
    ada, bob = user(), user()
    original = [
        message(u, n, i) for i, (u, n) in enumerate((u, n) for n in range(6) for u in (ada, bob))
    ]
    consumed, _ = decode_batch(original)
    sinks_redis = RedisProfileSink(redis)
    sinks_ch = ClickHouseEventSink(chdb_client)
    plan = plan_batch(consumed, set(), {})
    await sinks_redis.mark_in_flight(plan)
    await sinks_ch.insert(plan.columns)
    # ... crash: no apply, no commit.
    assert len(stored_ids(chdb_client, ada)) == 6
    assert await read_profile(redis, ada) is None

    first_half = await processor.process(original[:6])
    rest = await processor.process([*original[6:], message(ada, 99, 12)])
    assert (first_half.inserted, rest.inserted) == (0, 1)
    assert len(stored_ids(chdb_client, ada)) == 7
    assert len(stored_ids(chdb_client, bob)) == 6
    for name, count in ((ada, 7), (bob, 6)):
        profile = await read_profile(redis, name)
        assert profile is not None and profile.event_count == count
    # The in-flight marks are cleared once applied.
    assert await redis.hlen("ps:inflight:events") == 0


async def test_traits_ordered_by_event_time_and_first_last_seen(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    ada = user()
    newer = message(
        ada,
        1,
        0,
        type="identify",
        event=None,
        traits={"plan": "pro", "n": 1},
        timestamp=T0 + timedelta(hours=2),
    )
    older = message(
        ada,
        2,
        1,
        type="identify",
        event=None,
        traits={"plan": "free", "city": "Oslo", "labels": []},
        timestamp=T0,
    )
    await processor.process([newer])
    await processor.process([older])
    profile = await read_profile(redis, ada)
    assert profile is not None
    assert profile.custom == {"plan": "pro", "n": 1, "labels": []}
    assert profile.city == "Oslo"
    assert profile.first_seen == T0
    assert profile.last_seen == T0 + timedelta(hours=2)
    assert profile.last_event is not None and profile.last_event.message_id == f"{ada}-1"


async def test_poison_goes_to_dead_letter_and_the_rest_is_written(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    ada = user()
    poison = RawMessage(b"k", b"\x00garbage", MessageMeta("events", 0, 50, TOPIC_ID))
    result = await processor.process([message(ada, 1, 49), poison, message(ada, 2, 51)])
    assert (result.consumed, result.inserted, result.dead_lettered) == (2, 2, 1)
    letters = processor.letters  # type: ignore[attr-defined]
    assert letters[-1].offset == 50 and letters[-1].reason
    assert await redis.hget("ps:applied:events", "0") == f"{TOPIC_ID}:51".encode()


async def test_marks_left_by_an_earlier_life_of_the_partition_are_ignored_and_replaced(
    processor: BatchProcessor, redis: aioredis.Redis
) -> None:
    """After the topic is created anew (or the embedded broker restarts), offsets start again
    at 0 while Valkey keeps the previous life's marks: they must neither send the new life's
    events to ClickHouse look-ups nor vouch for its positions."""
    topic = f"events-{uuid.uuid4().hex[:8]}"
    earlier = "0190a1b2c3d4e5f60718293a4b5c0000"
    sink = RedisProfileSink(redis)
    ada = user()

    def at(offset: int) -> RawMessage:
        plain = message(ada, offset, offset)
        return RawMessage(plain.key, plain.value, MessageMeta(topic, 0, offset, TOPIC_ID))

    consumed, _ = decode_batch([at(5)])
    key = (topic, 0, TOPIC_ID)
    await redis.hset(inflight_key(topic), "0", encode_in_flight(earlier, 0, 100))
    assert (await sink.lookup(consumed))[1] == {}
    await redis.hset(inflight_key(topic), "0", "0:100")  # written before marks named a life
    assert (await sink.lookup(consumed))[1] == {key: OffsetRange(0, 100)}
    await redis.hset(inflight_key(topic), "0", encode_in_flight(TOPIC_ID, 3, 9))
    assert (await sink.lookup(consumed))[1] == {key: OffsetRange(3, 9)}

    await redis.hset(inflight_key(topic), "0", encode_in_flight(earlier, 0, 100))
    await redis.hset(applied_offsets_key(topic), "0", encode_applied(earlier, 500))
    result = await processor.process([at(0), at(1)])
    assert result.inserted == 2
    assert await redis.hget(applied_offsets_key(topic), "0") == f"{TOPIC_ID}:1".encode()
    assert await redis.hget(inflight_key(topic), "0") is None


async def test_a_version_2_messages_json_objects_are_stored_as_sent(
    processor: BatchProcessor, redis: aioredis.Redis, chdb_client: Any
) -> None:
    """properties, traits and context reach the events table as the producer wrote them (the
    worker never re-encodes them), and each event of the message is stored with its position."""
    ada = user()
    properties = '{"z": 1.50, "a": [1e2, "\\u00e9", null], "m": {}}'
    traits = '{"plan":"pro", "seats":3.0}'
    context = '{"library":{"name":"analytics.js"},"ua":"Mozilla/5.0 \\"x\\""}'
    first = message(ada, 1, 0, type="identify", event=None)
    body = orjson.loads(base_event_json(first))
    for name in ("properties", "traits", "context"):
        del body[name]
    handmade = (
        orjson.dumps(body)[:-1]
        + f',"properties":{properties},"traits":{traits},"context":{context}}}'.encode()
    )
    second = base_event_json(message(ada, 2, 0))
    value = events_message([handmade, second])
    result = await processor.process(
        [RawMessage(ada.encode(), value, MessageMeta("events", 3, 77, TOPIC_ID))]
    )
    assert (result.consumed, result.inserted) == (2, 2)
    rows = chdb_client.query(
        f"SELECT message_id, properties, traits, context, kafka_partition, kafka_offset "
        f"FROM {EVENTS_TABLE} WHERE user_id = {{u:String}} ORDER BY message_id",
        parameters={"u": ada},
    ).result_rows
    assert rows[0] == (f"{ada}-1", properties, traits, context, 3, 77)
    assert (rows[1][0], rows[1][4:]) == (f"{ada}-2", (3, 77))
    profile = await read_profile(redis, ada)
    assert profile is not None and profile.custom == {"plan": "pro", "seats": 3.0}


class RefusingProfiles(RedisProfileSink):
    """The real Redis sink, whose apply refuses (a data error, retrying will not help) any
    plan holding the change of `refused`, as a script error would."""

    def __init__(self, client: aioredis.Redis, refused: str) -> None:
        super().__init__(client)
        self.refused = refused

    async def apply(self, plan: Any) -> None:
        ids = {c["m"] for changes in plan.changes_by_user.values() for c in changes}
        if self.refused in ids:
            raise ValueError("script refused the batch")
        await super().apply(plan)


async def test_an_apply_refused_after_the_insert_inside_one_message_stores_each_row_once(
    redis: aioredis.Redis, chdb_client: Any
) -> None:
    """One version 2 message of four events: the INSERT succeeds and the apply keeps failing
    because of the fourth. Isolation halves the message (its events share one offset): each
    half must leave that offset in flight, or the other half, looking unstored, would be
    inserted a second time."""
    ada, topic = user(), f"t-{uuid.uuid4().hex[:8]}"
    events = [
        Event(
            message_id=f"{ada}-{n}",
            type="track",
            user_id=ada,
            event="Played",
            timestamp=T0 + timedelta(seconds=n),
            received_at=T0,
        )
        for n in range(4)
    ]
    value = events_message([e.model_dump_json().encode() for e in events])
    letters: list[DeadLetterMessage] = []

    async def dead_letter(letter: DeadLetterMessage) -> None:
        letters.append(letter)

    processor = BatchProcessor(
        RefusingProfiles(redis, refused=f"{ada}-3"),
        ClickHouseEventSink(chdb_client),
        dead_letter,
        retry_max_s=0.001,
    )
    raw = RawMessage(ada.encode(), value, MessageMeta(topic, 0, 100, TOPIC_ID))
    result = await processor.process([raw])
    assert (result.consumed, result.dead_lettered) == (3, 1)
    assert stored_ids(chdb_client, ada) == [f"{ada}-{n}" for n in range(4)]  # once each
    profile = await read_profile(redis, ada)
    assert profile is not None and profile.event_count == 3
    # the refused event's row stays stored and in flight: a replay re-checks ClickHouse
    assert await redis.hget(inflight_key(topic), "0") is not None


async def test_a_failing_apply_script_leaves_the_marks_where_they_were(
    redis: aioredis.Redis,
) -> None:
    """The marks move only once the script succeeded: a retry after a failed script must still
    find the in-flight mark (and so ask ClickHouse) rather than insert the rows again."""
    ada, topic = user(), f"t-{uuid.uuid4().hex[:8]}"
    sink = RedisProfileSink(redis)
    consumed, _ = decode_batch(
        [
            RawMessage(m.key, m.value, MessageMeta(topic, 0, n, TOPIC_ID))
            for n, m in enumerate(message(ada, n, n) for n in range(3))
        ]
    )
    plan = plan_batch(consumed, set(), {})
    await sink.mark_in_flight(plan)
    plan.today = "never"  # type: ignore[assignment]  # the script refuses a run without a day
    with pytest.raises(Exception, match="today"):
        await sink.apply(plan)
    assert await redis.hget(inflight_key(topic), "0") == encode_in_flight(TOPIC_ID, 0, 2).encode()
    assert await redis.hget(applied_offsets_key(topic), "0") is None
