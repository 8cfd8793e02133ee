"""The Redis key layout of a profile, shared by its writer (materializer) and readers (query).

Every key of one user carries the hash tag `{user}`, so on Redis Cluster a user's keys share a
slot and the apply script can touch them atomically."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "ps"


@dataclass(frozen=True)
class ProfileKeys:
    profile: str  # hash: first_seen, last_seen (ms), event_count, last_event (json)
    totals: str  # hash: event name -> count
    props: str  # hash: property -> json value
    props_ts: str  # hash: property -> event time (ms) of the write that set it
    seen: str  # set: messageIds already applied
    anonymous_ids: str  # set: anonymousIds seen together with this userId

    def all(self) -> list[str]:
        return [
            self.profile,
            self.totals,
            self.props,
            self.props_ts,
            self.seen,
            self.anonymous_ids,
        ]


def profile_keys(user_id: str) -> ProfileKeys:
    base = f"{PREFIX}:{{{user_id}}}:"
    return ProfileKeys(
        profile=base + "profile",
        totals=base + "totals",
        props=base + "props",
        props_ts=base + "props_ts",
        seen=base + "seen",
        anonymous_ids=base + "anon",
    )


def inflight_key(topic: str, partition: int) -> str:
    """Set of messageIds a worker is inserting into ClickHouse for this partition; survives a
    crash so the replay knows which ids to look up before inserting again."""
    return f"{PREFIX}:inflight:{topic}:{partition}"


def applied_offsets_key(topic: str) -> str:
    """Hash partition -> highest offset whose events are in ClickHouse and Redis."""
    return f"{PREFIX}:applied:{topic}"
