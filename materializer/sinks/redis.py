"""Redis writer: looks up which messageIds are already applied and which offsets are in flight,
and applies profile changes atomically per user, skipping messageIds already applied.

A batch costs three round trips whatever its size (look-up, in-flight mark, apply), and few
command arguments per event: redis-py packs arguments in Python, which is the cost that matters
here. Scripts take the keys of many users at once; on Redis Cluster the users are grouped by
hash slot, one script call per slot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from string import Template
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from infra.profile_keys import (
    ANONYMOUS_ID_PREFIX,
    PROPERTY_PREFIX,
    PROPERTY_TIME_PREFIX,
    TOTAL_PREFIX,
    applied_offsets_key,
    inflight_key,
    profile_keys,
)
from materializer.processing import BatchPlan, Consumed, OffsetRange

# KEYS: the `seen` set of each user. ARGV[1]: JSON list, per key, of messageIds to look up.
# Returns the messageIds already applied.
APPLIED_IDS_LUA = """
local ids = cjson.decode(ARGV[1])
local found = {}
for i, key in ipairs(KEYS) do
  for _, id in ipairs(ids[i]) do
    if redis.call('SISMEMBER', key, id) == 1 then
      found[#found + 1] = id
    end
  end
end
return found
"""

# KEYS: per user, the profile hash then the seen set. ARGV[1]: JSON list, per user, of changes.
# A change whose messageId is already in the user's `seen` set is skipped: replays change nothing.
APPLY_CHANGES_LUA = Template("""
local users = cjson.decode(ARGV[1])
for u, changes in ipairs(users) do
  local profile, seen = KEYS[2 * u - 1], KEYS[2 * u]
  for _, c in ipairs(changes) do
    if redis.call('SADD', seen, c.m) == 1 then
      local ts = tonumber(c.ts)
      local span = redis.call('HMGET', profile, 'first_seen', 'last_seen')
      if (not span[1]) or tonumber(span[1]) > ts then
        redis.call('HSET', profile, 'first_seen', c.ts)
      end
      if (not span[2]) or tonumber(span[2]) <= ts then
        redis.call('HSET', profile, 'last_seen', c.ts, 'last_event', c.le)
      end
      redis.call('HINCRBY', profile, 'event_count', 1)
      redis.call('HINCRBY', profile, '$totals' .. c.n, 1)
      if c.tr then
        for name, value in pairs(c.tr) do
          local prev = redis.call('HGET', profile, '$property_times' .. name)
          if (not prev) or tonumber(prev) <= ts then
            redis.call('HSET', profile, '$properties' .. name, value,
                       '$property_times' .. name, c.ts)
          end
        end
      end
      if c.a then
        redis.call('HSET', profile, '$anonymous_ids' .. c.a, 1)
      end
    end
  end
end
return 1
""").substitute(
    totals=TOTAL_PREFIX,
    properties=PROPERTY_PREFIX,
    property_times=PROPERTY_TIME_PREFIX,
    anonymous_ids=ANONYMOUS_ID_PREFIX,
)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_range(value: bytes | str | None) -> OffsetRange | None:
    if value is None:
        return None
    first, _, last = _text(value).partition(":")
    return OffsetRange(int(first), int(last))


class RedisProfileSink:
    def __init__(self, client: aioredis.Redis | RedisCluster) -> None:
        self._client = client
        self._applied_ids = client.register_script(APPLIED_IDS_LUA)
        self._apply_changes = client.register_script(APPLY_CHANGES_LUA)

    def _slot_groups(self, users: Iterable[str]) -> list[list[str]]:
        """Users whose keys may go to one script call: all of them, or one group per slot."""
        users = list(users)
        if not isinstance(self._client, RedisCluster):
            return [users] if users else []
        groups: dict[int, list[str]] = defaultdict(list)
        for user in users:
            groups[self._client.keyslot(profile_keys(user).seen)].append(user)
        return list(groups.values())

    async def lookup(
        self, consumed: Sequence[Consumed]
    ) -> tuple[set[str], dict[tuple[str, int], OffsetRange]]:
        """(messageIds already applied, in-flight offset range per (topic, partition))."""
        ids_by_user: dict[str, list[str]] = defaultdict(list)
        partitions_by_topic: dict[str, set[int]] = defaultdict(set)
        for item in consumed:
            ids_by_user[item.event.profile_key].append(item.event.message_id)
            partitions_by_topic[item.meta.topic].add(item.meta.partition)
        pipe = self._client.pipeline(transaction=False)
        groups = self._slot_groups(ids_by_user)
        for users in groups:
            await self._applied_ids(
                keys=[profile_keys(u).seen for u in users],
                args=[orjson.dumps([ids_by_user[u] for u in users])],
                client=pipe,  # type: ignore[arg-type]  # redis-py runs scripts in pipelines
            )
        asked: list[tuple[str, list[int]]] = []
        for topic, partition_set in partitions_by_topic.items():
            ordered = sorted(partition_set)
            pipe.hmget(inflight_key(topic), [str(p) for p in ordered])
            asked.append((topic, ordered))
        results = await pipe.execute()
        applied = {_text(i) for found in results[: len(groups)] for i in found}
        in_flight: dict[tuple[str, int], OffsetRange] = {}
        for (topic, partitions), values in zip(asked, results[len(groups) :], strict=True):
            for partition, value in zip(partitions, values, strict=True):
                marked = parse_range(value)
                if marked is not None:
                    in_flight[(topic, partition)] = marked
        return applied, in_flight

    async def mark_in_flight(self, plan: BatchPlan) -> None:
        pipe = self._client.pipeline(transaction=False)
        for (topic, partition), marked in plan.in_flight.items():
            pipe.hset(inflight_key(topic), str(partition), f"{marked.first}:{marked.last}")
        await pipe.execute()

    async def apply(self, plan: BatchPlan) -> None:
        pipe = self._client.pipeline(transaction=False)
        for users in self._slot_groups(plan.changes_by_user):
            keys: list[Any] = []
            for user in users:
                user_keys = profile_keys(user)
                keys += (user_keys.profile, user_keys.seen)
            args = [orjson.dumps([plan.changes_by_user[u] for u in users])]
            await self._apply_changes(keys=keys, args=args, client=pipe)  # type: ignore[arg-type]
        for (topic, partition), remaining in plan.in_flight_after.items():
            if remaining is None:
                pipe.hdel(inflight_key(topic), str(partition))
            else:
                pipe.hset(
                    inflight_key(topic), str(partition), f"{remaining.first}:{remaining.last}"
                )
        for (topic, partition), offset in plan.last_offsets.items():
            pipe.hset(applied_offsets_key(topic), str(partition), str(offset))
        await pipe.execute()
