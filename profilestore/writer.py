"""The writer of profile keys: which messageIds each user's profile has already applied (its
ids hash, exact dedup within a window), and applying changes (profilestore.wire) atomically
per user with the apply script (profilestore/lua/), which skips those messageIds.

Each call is one script over the keys of every user in it. The `queue_*` methods add the call
to a pipeline the caller executes, so that a batch costs one round trip per step together
with the caller's own commands; `applied_ids` and `apply_changes` run on their own.

Merges and the shared keys touch keys of users the script is not given: it needs a single
Redis (or Valkey) primary, not a Cluster (see profilestore.layout)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from profilestore.layout import profile_keys, text
from profilestore.script import load_apply_script
from profilestore.wire import Change

# KEYS: the ids hash of each user. ARGV[1]: JSON list, per key, of messageIds to look up.
# Returns the messageIds the hashes hold: applied (one whose day has passed but is not pruned
# yet was applied too; the apply script forgets it, see profilestore/lua/dedup.lua).
APPLIED_IDS_LUA = """
local ids = cjson.decode(ARGV[1])
local found = {}
for i, key in ipairs(KEYS) do
  local asked = ids[i]
  for first = 1, #asked, 4000 do -- unpack fails past about 8,000 values
    local last = math.min(first + 3999, #asked)
    local values = redis.call('HMGET', key, unpack(asked, first, last))
    for j = 1, #values do
      if values[j] then found[#found + 1] = asked[first + j - 1] end
    end
  end
end
return found
"""

APPLY_CHANGES_LUA = load_apply_script()


def applied_ids_from_reply(reply: Iterable[bytes | str]) -> set[str]:
    """The look-up's reply (an item of the pipeline's results) as messageIds."""
    return {text(i) for i in reply}


def _apply_keys(users: Iterable[str]) -> list[str]:
    """KEYS of the apply script: per user, its profile hash then its ids hash."""
    keys: list[str] = []
    for user in users:
        user_keys = profile_keys(user)
        keys += (user_keys.profile, user_keys.ids)
    return keys


class ProfileWriter:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._applied_ids = client.register_script(APPLIED_IDS_LUA)
        self._apply_changes = client.register_script(APPLY_CHANGES_LUA)

    async def queue_applied_ids(
        self, pipe: Pipeline, ids_by_user: Mapping[str, Sequence[str]]
    ) -> bool:
        """Queue the look-up of the messageIds each user has already applied; its reply (read
        with `applied_ids_from_reply`) is one item of the pipeline's results. False: nothing
        to look up, nothing queued."""
        if not ids_by_user:
            return False
        users = list(ids_by_user)
        await self._applied_ids(
            keys=[profile_keys(u).ids for u in users],
            args=[orjson.dumps([ids_by_user[u] for u in users])],
            client=pipe,
        )
        return True

    async def queue_apply_changes(
        self, pipe: Pipeline, changes_by_user: Mapping[str, Sequence[Change]], *, today: int
    ) -> bool:
        """Queue the apply script over every user's changes, in order. `today`: the day number
        (days since 1970-01-01 UTC) the ids hashes prune by: ids whose `kp` is before it are
        forgotten. False: no changes, nothing queued."""
        if not changes_by_user:
            return False
        args: list[bytes | int] = [orjson.dumps(list(changes_by_user.items())), today]
        await self._apply_changes(keys=_apply_keys(changes_by_user), args=args, client=pipe)
        return True

    async def applied_ids(self, ids_by_user: Mapping[str, Sequence[str]]) -> set[str]:
        async with self._client.pipeline(transaction=False) as pipe:
            if not await self.queue_applied_ids(pipe, ids_by_user):
                return set()
            (reply,) = await pipe.execute()
        return applied_ids_from_reply(reply)

    async def apply_changes(
        self, changes_by_user: Mapping[str, Sequence[Change]], *, today: int
    ) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            if await self.queue_apply_changes(pipe, changes_by_user, today=today):
                await pipe.execute()
