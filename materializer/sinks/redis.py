"""Redis writer: looks up which messageIds are already applied or in flight, and applies profile
changes with one atomic script per user (dedup by messageId inside the script)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis

from infra.profile_keys import applied_offsets_key, inflight_key, profile_keys
from materializer.processing import BatchPlan, Consumed

# KEYS: profile, totals, props, props_ts, seen, anonymous_ids. ARGV[1]: JSON list of changes.
# A change whose messageId is already in `seen` is skipped, so replays change nothing.
APPLY_CHANGES_LUA = """
local changes = cjson.decode(ARGV[1])
local applied = 0
for _, c in ipairs(changes) do
  if redis.call('SADD', KEYS[5], c.m) == 1 then
    applied = applied + 1
    local ts = tonumber(c.ts)
    local first = redis.call('HGET', KEYS[1], 'first_seen')
    if (not first) or tonumber(first) > ts then
      redis.call('HSET', KEYS[1], 'first_seen', c.ts)
    end
    local last = redis.call('HGET', KEYS[1], 'last_seen')
    if (not last) or tonumber(last) <= ts then
      redis.call('HSET', KEYS[1], 'last_seen', c.ts, 'last_event', c.le)
    end
    redis.call('HINCRBY', KEYS[1], 'event_count', 1)
    redis.call('HINCRBY', KEYS[2], c.n, 1)
    if c.tr then
      for name, value in pairs(c.tr) do
        local prev = redis.call('HGET', KEYS[4], name)
        if (not prev) or tonumber(prev) <= ts then
          redis.call('HSET', KEYS[3], name, value)
          redis.call('HSET', KEYS[4], name, c.ts)
        end
      end
    end
    if c.a then
      redis.call('SADD', KEYS[6], c.a)
    end
  end
end
return applied
"""


class RedisProfileSink:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._apply = client.register_script(APPLY_CHANGES_LUA)

    async def already_applied(self, consumed: Sequence[Consumed]) -> set[str]:
        ids_by_user: dict[str, list[str]] = defaultdict(list)
        for item in consumed:
            ids_by_user[item.event.profile_key].append(item.event.message_id)
        return await self._members(
            {profile_keys(user).seen: ids for user, ids in ids_by_user.items()}
        )

    async def in_flight(self, consumed: Sequence[Consumed]) -> set[str]:
        ids_by_partition: dict[str, list[str]] = defaultdict(list)
        for item in consumed:
            key = inflight_key(item.meta.topic, item.meta.partition)
            ids_by_partition[key].append(item.event.message_id)
        return await self._members(ids_by_partition)

    async def _members(self, ids_by_key: dict[str, list[str]]) -> set[str]:
        pipe = self._client.pipeline(transaction=False)
        for key, ids in ids_by_key.items():
            pipe.smismember(key, ids)
        found: set[str] = set()
        for ids, flags in zip(ids_by_key.values(), await pipe.execute(), strict=True):
            found.update(i for i, flag in zip(ids, flags, strict=True) if flag)
        return found

    async def mark_in_flight(self, consumed: Sequence[Consumed], plan: BatchPlan) -> None:
        inserting = set(plan.message_ids)
        ids_by_partition: dict[str, list[str]] = defaultdict(list)
        for item in consumed:
            if item.event.message_id in inserting:
                key = inflight_key(item.meta.topic, item.meta.partition)
                ids_by_partition[key].append(item.event.message_id)
        if ids_by_partition:
            pipe = self._client.pipeline(transaction=False)
            for key, ids in ids_by_partition.items():
                pipe.sadd(key, *ids)
            await pipe.execute()

    async def apply(self, consumed: Sequence[Consumed], plan: BatchPlan) -> None:
        pipe = self._client.pipeline(transaction=False)
        for user, changes in plan.changes_by_user.items():
            keys: list[Any] = profile_keys(user).all()
            await self._apply(keys=keys, args=[orjson.dumps(changes)], client=pipe)
        ids_by_partition: dict[str, list[str]] = defaultdict(list)
        for item in consumed:
            ids_by_partition[inflight_key(item.meta.topic, item.meta.partition)].append(
                item.event.message_id
            )
        for key, ids in ids_by_partition.items():
            pipe.srem(key, *ids)
        for (topic, partition), offset in plan.last_offsets.items():
            pipe.hset(applied_offsets_key(topic), str(partition), str(offset))
        await pipe.execute()
