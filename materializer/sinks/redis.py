"""Redis writer: looks up which messageIds are already applied and which offsets are in flight,
and applies profile changes atomically per user, skipping messageIds already applied.

A batch costs three round trips whatever its size (look-up, in-flight mark, apply), and few
command arguments per event: redis-py packs arguments in Python, which is the cost that matters
here. Scripts take the keys of many users at once; on Redis Cluster the users are grouped by
hash slot, one script call per slot."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

import profilestore
from materializer.processing import BatchPlan, Consumed, OffsetRange, PartitionKey
from profilestore.layout import (
    ANONYMOUS_ID_PREFIX,
    CUSTOMER_IDS,
    PREFIX,
    PROPERTY_DEFINITIONS,
    USERS_INDEX,
    applied_offsets_key,
    encode_applied,
    encode_in_flight,
    inflight_key,
    parse_in_flight,
    profile_keys,
    text,
)
from schemas.properties import PropertyDefinition

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

SCRIPT_NAMES = {
    "prefix": PREFIX,
    "users_index": USERS_INDEX,
    "customer_ids": CUSTOMER_IDS,
}


def load_apply_script() -> str:
    """apply_changes.lua with the shared key names filled in."""
    script = (Path(profilestore.__file__).parent / "lua" / "apply_changes.lua").read_text()
    for name, value in SCRIPT_NAMES.items():
        script = script.replace("${" + name + "}", value)
    assert "${" not in script, "apply_changes.lua names a key this module does not fill in"
    return script


APPLY_CHANGES_LUA = load_apply_script()


def in_flight_range(value: bytes | str | None, key: PartitionKey) -> OffsetRange | None:
    """The offsets a stored in-flight mark covers in the life of the partition `key` names;
    None for a mark left by another life (its offsets mean nothing in this one)."""
    marked = parse_in_flight(value)
    if marked is None or marked.topic_id not in (None, key[2]):
        return None
    return OffsetRange(marked.first, marked.last)


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
    ) -> tuple[set[str], dict[PartitionKey, OffsetRange], dict[str, PropertyDefinition]]:
        """(messageIds already applied, in-flight offset range per partition, the custom
        property definitions)."""
        ids_by_user: dict[str, list[str]] = defaultdict(list)
        partitions_by_topic: dict[str, set[PartitionKey]] = defaultdict(set)
        for item in consumed:
            ids_by_user[item.event.profile_key].append(item.event.message_id)
            partitions_by_topic[item.meta.topic].add(item.meta.partition_key)
        async with self._client.pipeline(transaction=False) as pipe:
            groups = self._slot_groups(ids_by_user)
            for users in groups:
                await self._applied_ids(
                    keys=[profile_keys(u).seen for u in users],
                    args=[orjson.dumps([ids_by_user[u] for u in users])],
                    client=pipe,  # type: ignore[arg-type]  # redis-py runs scripts in pipelines
                )
            asked: list[list[PartitionKey]] = []
            for topic, partition_set in partitions_by_topic.items():
                ordered = sorted(partition_set)
                pipe.hmget(inflight_key(topic), [str(key[1]) for key in ordered])
                asked.append(ordered)
            pipe.hgetall(PROPERTY_DEFINITIONS)
            results = await pipe.execute()
        definitions = {
            text(name): PropertyDefinition.model_validate_json(value)
            for name, value in results.pop().items()
        }
        applied = {text(i) for found in results[: len(groups)] for i in found}
        in_flight: dict[PartitionKey, OffsetRange] = {}
        for keys, values in zip(asked, results[len(groups) :], strict=True):
            for key, value in zip(keys, values, strict=True):
                marked = in_flight_range(value, key)
                if marked is not None:
                    in_flight[key] = marked
        return applied, in_flight, definitions

    async def merged_ids(self, user: str) -> set[str]:
        """The anonymous ids merged into `user`: their events are stored under them."""
        fields = await self._client.hkeys(profile_keys(user).profile)
        return {
            name.removeprefix(ANONYMOUS_ID_PREFIX)
            for name in map(text, fields)
            if name.startswith(ANONYMOUS_ID_PREFIX)
        }

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
        async with self._client.pipeline(transaction=False) as pipe:
            for users in self._slot_groups(plan.changes_by_user):
                keys: list[Any] = []
                for user in users:
                    user_keys = profile_keys(user)
                    keys += (user_keys.profile, user_keys.seen)
                args = [orjson.dumps([(u, plan.changes_by_user[u]) for u in users])]
                await self._apply_changes(keys=keys, args=args, client=pipe)  # type: ignore[arg-type]
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
