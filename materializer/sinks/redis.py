"""Redis writer: looks up which messageIds are already applied or in flight, and applies profile
changes atomically per user, skipping messageIds a user's profile has already applied.

A batch costs three round trips whatever its size: one look-up, one in-flight mark, one apply.
Scripts take the keys of many users at once; on Redis Cluster the users are grouped by hash slot
(a user's keys share one through the `{user}` hash tag), one script call per slot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from infra.profile_keys import applied_offsets_key, inflight_key, profile_keys
from materializer.processing import BatchPlan, Consumed

KEYS_PER_USER = 6

# KEYS: the `seen` set of each user. ARGV[i]: JSON list of messageIds of KEYS[i].
# Returns the messageIds already applied.
APPLIED_IDS_LUA = """
local found = {}
for i, key in ipairs(KEYS) do
  for _, id in ipairs(cjson.decode(ARGV[i])) do
    if redis.call('SISMEMBER', key, id) == 1 then
      found[#found + 1] = id
    end
  end
end
return found
"""

# KEYS: per user, in order: profile, totals, props, props_ts, seen, anonymous_ids.
# ARGV[i]: JSON list of the changes of the i-th user. A change whose messageId is already in the
# user's `seen` set is skipped, so a replay changes nothing.
APPLY_CHANGES_LUA = """
for u = 1, #ARGV do
  local base = (u - 1) * 6
  local profile, totals, props, props_ts, seen, anon =
    KEYS[base + 1], KEYS[base + 2], KEYS[base + 3], KEYS[base + 4], KEYS[base + 5], KEYS[base + 6]
  for _, c in ipairs(cjson.decode(ARGV[u])) do
    if redis.call('SADD', seen, c.m) == 1 then
      local ts = tonumber(c.ts)
      local first = redis.call('HGET', profile, 'first_seen')
      if (not first) or tonumber(first) > ts then
        redis.call('HSET', profile, 'first_seen', c.ts)
      end
      local last = redis.call('HGET', profile, 'last_seen')
      if (not last) or tonumber(last) <= ts then
        redis.call('HSET', profile, 'last_seen', c.ts, 'last_event', c.le)
      end
      redis.call('HINCRBY', profile, 'event_count', 1)
      redis.call('HINCRBY', totals, c.n, 1)
      if c.tr then
        for name, value in pairs(c.tr) do
          local prev = redis.call('HGET', props_ts, name)
          if (not prev) or tonumber(prev) <= ts then
            redis.call('HSET', props, name, value)
            redis.call('HSET', props_ts, name, c.ts)
          end
        end
      end
      if c.a then
        redis.call('SADD', anon, c.a)
      end
    end
  end
end
return 1
"""


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

    async def lookup(self, consumed: Sequence[Consumed]) -> tuple[set[str], set[str]]:
        """(messageIds already applied, messageIds marked in flight), in one round trip."""
        ids_by_user: dict[str, list[str]] = defaultdict(list)
        ids_by_partition: dict[str, list[str]] = defaultdict(list)
        for item in consumed:
            ids_by_user[item.event.profile_key].append(item.event.message_id)
            ids_by_partition[inflight_key(item.meta.topic, item.meta.partition)].append(
                item.event.message_id
            )
        pipe = self._client.pipeline(transaction=False)
        groups = self._slot_groups(ids_by_user)
        for users in groups:
            await self._applied_ids(
                keys=[profile_keys(u).seen for u in users],
                args=[orjson.dumps(ids_by_user[u]) for u in users],
                client=pipe,  # type: ignore[arg-type]  # redis-py runs scripts in pipelines; its hint omits them
            )
        for key, ids in ids_by_partition.items():
            pipe.smismember(key, ids)
        results = await pipe.execute()
        applied = {_text(i) for found in results[: len(groups)] for i in found}
        in_flight: set[str] = set()
        for ids, flags in zip(ids_by_partition.values(), results[len(groups) :], strict=True):
            in_flight.update(i for i, flag in zip(ids, flags, strict=True) if flag)
        return applied, in_flight

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
        for users in self._slot_groups(plan.changes_by_user):
            keys: list[Any] = [key for u in users for key in profile_keys(u).all()]
            args = [orjson.dumps(plan.changes_by_user[u]) for u in users]
            await self._apply_changes(keys=keys, args=args, client=pipe)  # type: ignore[arg-type]
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
