"""Reading a profile out of Redis (the layout is in infra.profile_keys)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import redis.asyncio as aioredis

from infra.profile_keys import profile_keys
from schemas.profiles import LastEvent, Profile

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_ms(value: bytes | str | int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(value))


async def read_profile(client: aioredis.Redis, user_id: str) -> Profile | None:
    keys = profile_keys(user_id)
    # MULTI: one consistent snapshot of the user's keys (they share a hash slot).
    pipe = client.pipeline(transaction=True)
    pipe.hgetall(keys.profile)
    pipe.hgetall(keys.totals)
    pipe.hgetall(keys.props)
    pipe.smembers(keys.anonymous_ids)
    summary, totals, props, anonymous_ids = await pipe.execute()
    if not summary:
        return None
    last_event = None
    if b"last_event" in summary:
        raw = orjson.loads(summary[b"last_event"])
        last_event = LastEvent(
            message_id=raw["message_id"],
            type=raw["type"],
            name=raw["name"],
            timestamp=from_ms(raw["timestamp"]),
        )
    return Profile(
        user_id=user_id,
        first_seen=from_ms(summary[b"first_seen"]),
        last_seen=from_ms(summary[b"last_seen"]),
        event_count=int(summary.get(b"event_count", 0)),
        event_totals={k.decode(): int(v) for k, v in totals.items()},
        last_event=last_event,
        properties={k.decode(): orjson.loads(v) for k, v in props.items()},
        anonymous_ids=sorted(a.decode() for a in anonymous_ids),
    )
