"""The materializer's Redis adapter: turns a batch plan into calls of the profile store's writer
(profilestore.writer) and keeps the per-topic offset marks (applied, in flight) beside them.

A batch costs four round trips whatever its size (look-up, in-flight mark, apply, marks), and
few command arguments per event: redis-py packs arguments in Python, which is the cost that matters
here. The look-up goes into the same pipeline as the marks' reads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import redis.asyncio as aioredis

from materializer.processing import BatchPlan, Consumed, OffsetRange, PartitionKey
from profilestore.definitions import parse_definitions, queue_all_definitions
from profilestore.layout import (
    applied_offsets_key,
    encode_applied,
    encode_in_flight,
    inflight_key,
    parse_in_flight,
)
from profilestore.read import own_stored_ids
from profilestore.writer import ProfileWriter, applied_ids_from_reply
from schemas.properties import PropertyDefinition


def in_flight_range(value: bytes | str | None, key: PartitionKey) -> OffsetRange | None:
    """The offsets a stored in-flight mark covers in the life of the partition `key` names;
    None for a mark left by another life (its offsets mean nothing in this one)."""
    marked = parse_in_flight(value)
    if marked is None or marked.topic_id not in (None, key[2]):
        return None
    return OffsetRange(marked.first, marked.last)


class RedisProfileSink:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._profiles = ProfileWriter(client)

    async def lookup(
        self, consumed: Sequence[Consumed]
    ) -> tuple[set[str], dict[PartitionKey, OffsetRange], dict[str, PropertyDefinition]]:
        """(messageIds already applied, in-flight offset range per partition, the custom
        property definitions)."""
        ids_by_user: dict[str, list[str]] = defaultdict(list)
        partitions_by_topic: dict[str, set[PartitionKey]] = defaultdict(set)
        for item in consumed:
            event = item.event
            ids_by_user[event.profile_key].append(event.message_id)
            partitions_by_topic[item.meta.topic].add(item.meta.partition_key)
        async with self._client.pipeline(transaction=False) as pipe:
            looked_up = await self._profiles.queue_applied_ids(pipe, ids_by_user)
            asked: list[list[PartitionKey]] = []
            for topic, partition_set in partitions_by_topic.items():
                ordered = sorted(partition_set)
                pipe.hmget(inflight_key(topic), [str(key[1]) for key in ordered])
                asked.append(ordered)
            queue_all_definitions(pipe)
            results = await pipe.execute()
        definitions = parse_definitions(results.pop())
        applied = applied_ids_from_reply(results.pop(0)) if looked_up else set()
        in_flight: dict[PartitionKey, OffsetRange] = {}
        for keys, values in zip(asked, results, strict=True):
            for key, value in zip(keys, values, strict=True):
                marked = in_flight_range(value, key)
                if marked is not None:
                    in_flight[key] = marked
        return applied, in_flight, definitions

    async def stored_ids(self, user: str) -> list[str]:
        return await own_stored_ids(self._client, user)

    async def mark_in_flight(self, plan: BatchPlan) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for (topic, partition, topic_id), marked in plan.in_flight.items():
                pipe.hset(
                    inflight_key(topic),
                    str(partition),
                    encode_in_flight(topic_id, marked.first, marked.last),
                )
            await pipe.execute()

    async def apply(self, plan: BatchPlan) -> None:
        """The script first, on its own: only once it has succeeded do the marks move. (In one
        pipeline without a transaction, a failing script left the marks moved anyway, and the
        retry, finding no in-flight mark, inserted the rows a second time.)"""
        await self._profiles.apply_changes(plan.changes_by_user, today=plan.today)
        async with self._client.pipeline(transaction=False) as pipe:
            for (topic, partition, topic_id), remaining in plan.in_flight_after.items():
                if remaining is None:
                    pipe.hdel(inflight_key(topic), str(partition))
                else:
                    pipe.hset(
                        inflight_key(topic),
                        str(partition),
                        encode_in_flight(topic_id, remaining.first, remaining.last),
                    )
            for (topic, partition, topic_id), offset in plan.last_offsets.items():
                pipe.hset(
                    applied_offsets_key(topic), str(partition), encode_applied(topic_id, offset)
                )
            await pipe.execute()
