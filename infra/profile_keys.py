"""The Redis layout of a profile, shared by its writer (materializer) and readers (query).

A user has two keys, both carrying the hash tag `{user}` so that on Redis Cluster they share a
slot and one script can update them atomically:

    ps:{user}:profile  hash   first_seen, last_seen (event time, ms), event_count,
                              last_event (json), and prefixed fields:
                              t:<event name> -> total, p:<property> -> json value,
                              pt:<property> -> event time (ms) of the write that set it,
                              a:<anonymousId> -> 1
    ps:{user}:seen     set    messageIds already applied (exact dedup)
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ps"

TOTAL_PREFIX = "t:"
PROPERTY_PREFIX = "p:"
PROPERTY_TIME_PREFIX = "pt:"
ANONYMOUS_ID_PREFIX = "a:"


@dataclass(frozen=True)
class ProfileKeys:
    profile: str
    seen: str


def profile_keys(user_id: str) -> ProfileKeys:
    base = f"{PREFIX}:{{{user_id}}}:"
    return ProfileKeys(profile=base + "profile", seen=base + "seen")


def inflight_key(topic: str) -> str:
    """Hash partition -> "first:last" offsets a worker may have inserted into ClickHouse but
    not yet applied to Redis. It survives a crash, so the replay knows which events to look up
    in ClickHouse before inserting them again."""
    return f"{PREFIX}:inflight:{topic}"


def applied_offsets_key(topic: str) -> str:
    """Hash partition -> highest offset whose events are in ClickHouse and Redis."""
    return f"{PREFIX}:applied:{topic}"
