"""Reading a profile out of Redis (the layout is in infra.profile_keys)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis

from infra.profile_keys import (
    ANONYMOUS_ID_PREFIX,
    PROPERTY_PREFIX,
    TOTAL_PREFIX,
    profile_keys,
)
from schemas.profiles import LastEvent, Profile

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_ms(value: bytes | str | int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(value))


def _field_groups(fields: dict[Any, Any]) -> dict[str, dict[str, bytes]]:
    """Split the profile hash into its plain fields and its prefixed families."""
    groups: dict[str, dict[str, bytes]] = {
        "": {},
        TOTAL_PREFIX: {},
        PROPERTY_PREFIX: {},
        ANONYMOUS_ID_PREFIX: {},
    }
    for raw_name, value in fields.items():
        name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
        prefix, sep, rest = name.partition(":")
        family = f"{prefix}:" if sep else ""
        if family in groups:
            groups[family][rest if sep else name] = value
    return groups


async def read_profile(client: aioredis.Redis, user_id: str) -> Profile | None:
    fields = await client.hgetall(profile_keys(user_id).profile)
    if not fields:
        return None
    groups = _field_groups(fields)
    summary = groups[""]
    last_event = None
    if "last_event" in summary:
        raw = orjson.loads(summary["last_event"])
        last_event = LastEvent(
            message_id=raw["message_id"],
            type=raw["type"],
            name=raw["name"],
            timestamp=from_ms(raw["timestamp"]),
        )
    return Profile(
        user_id=user_id,
        first_seen=from_ms(summary["first_seen"]),
        last_seen=from_ms(summary["last_seen"]),
        event_count=int(summary.get("event_count", 0)),
        event_totals={k: int(v) for k, v in groups[TOTAL_PREFIX].items()},
        last_event=last_event,
        properties={k: orjson.loads(v) for k, v in groups[PROPERTY_PREFIX].items()},
        anonymous_ids=sorted(groups[ANONYMOUS_ID_PREFIX]),
    )
