"""Wire-format changes and profile reads for the profile store's tests (Valkey only)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import redis.asyncio as aioredis

from profilestore.layout import IDS_META_FIELD, profile_keys, text
from profilestore.read import ProfileFields, read_fields, read_profile
from profilestore.wire import Change

T = 1_800_000_000_000  # an event time, ms
TODAY = T // 86_400_000  # the day of T (day number), the `today` of the tests' apply calls
KEEP = TODAY + 100_000  # a change's default `kp`: remembered past every test's days
_messages = itertools.count()


def uid(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def change(ts: int, **fields: Any) -> Change:
    """A change at event time `ts` with a fresh messageId, remembered until day `KEEP` unless
    `kp` says otherwise."""
    made: dict[str, Any] = {
        "m": f"m-{uuid.uuid4().hex[:8]}-{next(_messages)}",
        "ts": str(ts),
        "kp": KEEP,
    }
    made.update(fields)
    return made  # type: ignore[return-value]  # the fields are the caller's, as on the wire


def event(ts: int, name: str = "Played", **fields: Any) -> Change:
    """A change counting one event named `name`."""
    last_event = f'{{"message_id":"x","type":"track","name":"{name}","timestamp":"{ts}"}}'
    return change(ts, n=name, le=last_event, **fields)


async def fields_of(redis: aioredis.Redis, user: str) -> ProfileFields:
    found = await read_fields(redis, user)
    assert found is not None, f"no profile for {user}"
    assert found[0] == user, f"{user} was merged into {found[0]}"
    return found[1]


async def event_count(redis: aioredis.Redis, user: str) -> int:
    profile = await read_profile(redis, user)
    assert profile is not None, f"no profile for {user}"
    return profile.event_count


async def remembered(redis: aioredis.Redis, user: str) -> dict[str, int]:
    """The user's ids hash without its meta field: messageId -> the day until which it is
    remembered (kp)."""
    stored = await redis.hgetall(profile_keys(user).ids)
    return {text(k): int(v) for k, v in stored.items() if text(k) != IDS_META_FIELD}
