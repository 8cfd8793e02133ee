"""Listing and searching users, most recently active first (the users index, read through
profilestore.read)."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from profilestore import identity
from profilestore.read import is_listed, read_profiles, users_by_activity
from query.cursor import encode_cursor
from schemas.commands import Status
from schemas.profiles import Profile, UserPage, UserSummary

CHUNK = 200
# A filtered page reads at most this many profiles; if it found fewer matches, it still returns
# a cursor to go on from where it stopped.
MAX_SCAN = 5000


def summary(profile: Profile) -> UserSummary:
    return UserSummary(
        user_id=profile.user_id,
        customer_id=profile.customer_id,
        email=profile.email,
        first_name=profile.first_name,
        last_name=profile.last_name,
        status=profile.status,
        tags=profile.tags,
        last_seen=profile.last_seen or profile.created_at,
    )


def matches(profile: Profile, q: str | None, status: Status | None, tag: str | None) -> bool:
    """q: the user id or customer id exactly, or a prefix (any case) of the customer id, the
    email, the first or last name, or "first last"."""
    if status is not None and profile.status != status:
        return False
    if tag is not None and tag not in profile.tags:
        return False
    if not q:
        return True
    if q in (profile.user_id, profile.customer_id):
        return True
    needle = q.casefold()
    full_name = f"{profile.first_name or ''} {profile.last_name or ''}".strip()
    candidates = (profile.customer_id, profile.email, profile.first_name, profile.last_name)
    return any(c and c.casefold().startswith(needle) for c in (*candidates, full_name))


async def _exact(client: aioredis.Redis, q: str) -> list[str]:
    """Users q names exactly (user id or customer id), found without a scan."""
    found = [q] if await is_listed(client, q) else []
    owner = await identity.owner_of(client, q)
    if owner is not None and owner not in found:
        found.append(owner)
    return found


async def list_users(
    client: aioredis.Redis,
    *,
    q: str | None,
    status: Status | None,
    tag: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> UserPage:
    found: list[UserSummary] = []
    if q and after is None:
        exact = await read_profiles(client, await _exact(client, q))
        found += [summary(p) for p in exact if matches(p, None, status, tag)]
    skip = {s.user_id for s in found}
    cursor_score = float(round(after[0].timestamp() * 1000)) if after is not None else None
    max_score: float | str = "+inf" if cursor_score is None else cursor_score
    offset = scanned = 0
    last: tuple[float, str] | None = None
    while len(found) < limit and scanned < MAX_SCAN:
        entries = await users_by_activity(client, max_score, offset, CHUNK)
        if not entries:
            last = None
            break
        offset += len(entries)
        if after is not None and cursor_score is not None:
            # members of the cursor's own score sort in reverse: skip up to the cursor's
            entries = [(u, s) for u, s in entries if s < cursor_score or u < after[1]]
        profiles = {p.user_id: p for p in await read_profiles(client, [u for u, _ in entries])}
        for user, score in entries:
            scanned += 1
            last = (score, user)
            profile = profiles.get(user)
            if profile and user not in skip and matches(profile, q, status, tag):
                found.append(summary(profile))
                if len(found) == limit:
                    break
    next_cursor = None
    if last is not None and (len(found) == limit or scanned >= MAX_SCAN):
        stamp = datetime.fromtimestamp(last[0] / 1000, tz=UTC)
        next_cursor = encode_cursor(stamp, last[1])
    return UserPage(users=found, next_cursor=next_cursor)
