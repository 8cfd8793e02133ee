"""The bounded exact dedup (the ids hash of profilestore.layout, profilestore/lua/dedup.lua): a
messageId is remembered until its change's `kp` (a day number), replays within that are
skipped, later ones apply again (the materializer checks ClickHouse for those), the key expires
after its largest kp and its past entries are pruned as the user is touched."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from profilestore.layout import legacy_seen_key, profile_keys
from profilestore.writer import ProfileWriter
from tests.support.profiles import TODAY, T, change, event, event_count, remembered, uid

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


async def test_a_change_applies_once_and_its_replays_are_skipped_whatever_their_kp(
    redis: aioredis.Redis,
) -> None:
    writer, ada = ProfileWriter(redis), uid()
    played = event(T, kp=TODAY + 30)
    await writer.apply_changes({ada: [played]}, today=TODAY)
    await writer.apply_changes({ada: [played, {**played, "kp": TODAY + 60}]}, today=TODAY)
    await writer.apply_changes({ada: [{**played, "kp": TODAY + 5}]}, today=TODAY + 3)
    assert await event_count(redis, ada) == 1
    assert await remembered(redis, ada) == {played["m"]: TODAY + 30}  # the first kp stands
    assert await writer.applied_ids({ada: [played["m"], "never-sent"]}) == {played["m"]}


async def test_an_id_is_forgotten_once_today_passes_its_kp_and_its_replay_applies_again(
    redis: aioredis.Redis,
) -> None:
    writer, ada = ProfileWriter(redis), uid()
    played, other = event(T, kp=TODAY + 1), event(T + 1, kp=TODAY + 1)
    await writer.apply_changes({ada: [played, other]}, today=TODAY)
    await writer.apply_changes({ada: [played]}, today=TODAY + 1)  # its last day: remembered
    assert await event_count(redis, ada) == 2
    await writer.apply_changes({ada: [played]}, today=TODAY + 2)
    assert await event_count(redis, ada) == 3
    # touched after their day, the user's past entries went; the replay is remembered anew,
    # its kp (past) as today
    assert await remembered(redis, ada) == {played["m"]: TODAY + 2}


async def test_a_change_without_kp_is_remembered_until_tomorrow(redis: aioredis.Redis) -> None:
    writer, ada = ProfileWriter(redis), uid()
    played = event(T)
    del played["kp"]
    await writer.apply_changes({ada: [played]}, today=TODAY)
    assert await remembered(redis, ada) == {played["m"]: TODAY + 1}


async def test_the_expiry_follows_the_largest_kp_and_never_shrinks(
    redis: aioredis.Redis,
) -> None:
    writer, ada = ProfileWriter(redis), uid()
    key = profile_keys(ada).ids
    await writer.apply_changes({ada: [event(T, kp=TODAY + 30)]}, today=TODAY)
    assert await redis.expiretime(key) == (TODAY + 31) * 86_400
    await writer.apply_changes({ada: [event(T, kp=TODAY + 10)]}, today=TODAY)
    assert await redis.expiretime(key) == (TODAY + 31) * 86_400
    await writer.apply_changes({ada: [event(T, kp=TODAY + 40)]}, today=TODAY + 1)
    assert await redis.expiretime(key) == (TODAY + 41) * 86_400


async def test_the_ids_hash_holds_no_more_than_the_window_over_many_days(
    redis: aioredis.Redis,
) -> None:
    """60 days of 5 events a day, each remembered 30 days: the hash holds 31 days of ids at
    most (the past ones go when the user is next touched)."""
    writer, ada = ProfileWriter(redis), uid()
    per_day, window = 5, 30
    sizes = []
    for day in range(60):
        today = TODAY + day
        events = [
            event(T + day * DAY_MS + i, kp=today + window, m=f"d{day}-{i}") for i in range(per_day)
        ]
        await writer.apply_changes({ada: events}, today=today)
        held = await remembered(redis, ada)
        assert all(kp >= today for kp in held.values())
        sizes.append(len(held))
    assert max(sizes) == (window + 1) * per_day
    assert sizes[-1] == (window + 1) * per_day
    assert await event_count(redis, ada) == 60 * per_day


async def test_a_deletion_removes_the_ids_hashes_and_old_seen_sets(redis: aioredis.Redis) -> None:
    writer, ada, anon = ProfileWriter(redis), uid(), uid("anon")
    for user in (ada, anon):
        await redis.sadd(legacy_seen_key(user), "m-old")
    await writer.apply_changes({anon: [event(T)]}, today=TODAY)
    await writer.apply_changes({ada: [event(T + 1, kn=1, mg=anon)]}, today=TODAY)
    assert await redis.exists(profile_keys(ada).ids, profile_keys(anon).ids) == 2
    await writer.apply_changes({ada: [change(T + 2, cmd="delete")]}, today=TODAY)
    keys = [profile_keys(ada).ids, profile_keys(anon).ids, legacy_seen_key(ada)]
    assert await redis.exists(*keys, legacy_seen_key(anon)) == 0


async def test_the_old_seen_set_goes_when_the_ids_hash_is_made(redis: aioredis.Redis) -> None:
    writer, ada = ProfileWriter(redis), uid()
    await redis.sadd(legacy_seen_key(ada), "m-old")
    await writer.apply_changes({ada: [event(T)]}, today=TODAY)
    assert await redis.exists(legacy_seen_key(ada)) == 0
