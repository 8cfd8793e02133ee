"""Reading profiles out of Redis (the layout is in profilestore.layout): pure decoding of the
profile hash, the reads that resolve a merged anonymous id to its user, and the users index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis

from profilestore.layout import (
    ANONYMOUS_ID_PREFIX,
    CONFIG_PREFIX,
    PROPERTY_PREFIX,
    TAG_PREFIX,
    TOTAL_PREFIX,
    USERS_INDEX,
    profile_keys,
    text,
)
from schemas.profiles import (
    ConfigAssignment,
    ConfigChange,
    LastEvent,
    Profile,
    ProfileRejection,
)
from schemas.properties import DEFAULT_PROPERTY_NAMES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FAMILIES = (TOTAL_PREFIX, PROPERTY_PREFIX, ANONYMOUS_ID_PREFIX, TAG_PREFIX, CONFIG_PREFIX)

ProfileFields = dict[str, dict[str, bytes]]


def from_ms(value: bytes | str | int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(value))


def field_groups(fields: dict[Any, Any]) -> ProfileFields:
    """Split the profile hash into its plain fields ("") and its prefixed families."""
    groups: ProfileFields = {"": {}, **{family: {} for family in FAMILIES}}
    for raw_name, value in fields.items():
        name = text(raw_name)
        prefix, sep, rest = name.partition(":")
        family = f"{prefix}:" if sep else ""
        if family in groups:
            groups[family][rest if sep else name] = value
    return groups


def _optional_ms(value: bytes | None) -> datetime | None:
    return from_ms(value) if value is not None else None


def profile_from_fields(user_id: str, groups: ProfileFields) -> Profile:
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
    properties = {k: orjson.loads(v) for k, v in groups[PROPERTY_PREFIX].items()}
    defaults = {name: properties.pop(name) for name in DEFAULT_PROPERTY_NAMES if name in properties}
    first_seen = _optional_ms(summary.get("first_seen"))
    created = [t for t in (_optional_ms(summary.get("created_at")), first_seen) if t is not None]
    rejections = [
        ProfileRejection(field=r["f"], reason=r["r"], message_id=r["m"], at=from_ms(r["ts"]))
        for r in orjson.loads(summary.get("rejections", b"[]"))
    ]
    return Profile(
        user_id=user_id,
        status=text(summary.get("status", b"active")),
        identified="known" in summary,
        **{k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in defaults.items()},
        custom=properties,
        tags=sorted(k for k, v in groups[TAG_PREFIX].items() if text(v).endswith(":1")),
        created_at=min(created) if created else None,
        first_seen=first_seen,
        last_seen=_optional_ms(summary.get("last_seen")),
        event_count=int(summary.get("event_count", 0)),
        event_totals={k: int(v) for k, v in groups[TOTAL_PREFIX].items()},
        last_event=last_event,
        anonymous_ids=sorted(groups[ANONYMOUS_ID_PREFIX]),
        rejections=rejections,
    )


def configs_from_fields(groups: ProfileFields) -> list[ConfigAssignment]:
    configs = []
    for key, raw in sorted(groups[CONFIG_PREFIX].items()):
        served = orjson.loads(raw)
        configs.append(
            ConfigAssignment(
                config=key,
                variation=served["v"],
                first_served=from_ms(served["f"]),
                last_served=from_ms(served["l"]),
                times_served=int(served["n"]),
                history=[ConfigChange(variation=v, at=from_ms(t)) for t, v in served["h"]],
            )
        )
    return configs


async def read_fields(client: aioredis.Redis, user_id: str) -> tuple[str, ProfileFields] | None:
    """(the user the id belongs to, the profile's fields); an anonymous id merged into a user
    resolves to that user. None: no such profile."""
    fields = await client.hgetall(profile_keys(user_id).profile)
    merged_into = fields.get(b"merged_into")
    if merged_into is not None:
        user_id = text(merged_into)
        fields = await client.hgetall(profile_keys(user_id).profile)
    if not fields or b"merged_into" in fields:
        return None
    return user_id, field_groups(fields)


async def read_profile(client: aioredis.Redis, user_id: str) -> Profile | None:
    found = await read_fields(client, user_id)
    return profile_from_fields(*found) if found else None


def stored_ids_from_fields(user_id: str, groups: ProfileFields) -> list[str]:
    """Every id the user's events are stored under in ClickHouse: its own, then the anonymous
    ids merged into it (their events keep the id they were sent with)."""
    return [user_id, *sorted(groups[ANONYMOUS_ID_PREFIX])]


async def stored_ids(client: aioredis.Redis, user_id: str) -> tuple[str, list[str]] | None:
    """(the user, `stored_ids_from_fields`); an anonymous id merged into a user resolves to
    that user."""
    found = await read_fields(client, user_id)
    if found is None:
        return None
    user, groups = found
    return user, stored_ids_from_fields(user, groups)


async def own_stored_ids(client: aioredis.Redis, user_id: str) -> list[str]:
    """`stored_ids_from_fields` of the profile hash of `user_id` itself, not resolving an id
    merged into another user (what a deletion of `user_id` removes); `[user_id]` when there
    is no such profile."""
    names = await client.hkeys(profile_keys(user_id).profile)
    return stored_ids_from_fields(user_id, field_groups(dict.fromkeys(names, b"")))


async def read_profiles(client: aioredis.Redis, users: list[str]) -> list[Profile]:
    """The profiles of `users` in one round trip, in order; ids with no profile of their own
    (absent, or merged into another user) are left out."""
    async with client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.hgetall(profile_keys(user).profile)
        results = await pipe.execute()
    return [
        profile_from_fields(user, field_groups(fields))
        for user, fields in zip(users, results, strict=True)
        if fields and b"merged_into" not in fields
    ]


async def profile_exists(client: aioredis.Redis, user_id: str) -> bool:
    """Whether the id has a profile hash (its own, or the marker of a merge into another)."""
    return bool(await client.exists(profile_keys(user_id).profile))


async def is_listed(client: aioredis.Redis, user_id: str) -> bool:
    """Whether the user is in the users index (`ps:users`)."""
    return await client.zscore(USERS_INDEX, user_id) is not None


async def users_by_activity(
    client: aioredis.Redis, max_score: float | str, offset: int, count: int
) -> list[tuple[str, float]]:
    """(user, last activity in ms) from the users index, newest first, at or below `max_score`
    ("+inf" for the newest), skipping `offset` entries."""
    chunk = await client.zrevrangebyscore(
        USERS_INDEX, max_score, "-inf", start=offset, num=count, withscores=True
    )
    return [(text(member), float(score)) for member, score in chunk]  # type: ignore[str-unpack, arg-type]
