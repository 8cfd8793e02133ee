"""merge.lua beyond the rule table: a field no merge rule covers refuses the merge and loses
nothing, and every field the apply script writes on an anonymous profile has a rule."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from profilestore.layout import (
    ANONYMOUS_ID_PREFIX,
    MERGE_REFUSED_PREFIX,
    USERS_INDEX,
    profile_keys,
)
from profilestore.read import read_profile
from profilestore.wire import (
    APPEND,
    INCREMENT,
    PREPEND,
    REMOVE,
    SET,
    SET_ONCE,
    UNION,
    UNION_FRONT,
    UNSET,
)
from profilestore.writer import ProfileWriter
from tests.support.profiles import TODAY, T, change, event, fields_of, uid

pytestmark = pytest.mark.integration


async def anonymous_profile_with(redis: aioredis.Redis, writer: ProfileWriter, field: str) -> str:
    anon = uid("anon")
    await writer.apply_changes(
        {anon: [event(T, ops=[{"o": SET, "k": "plan", "v": '"free"'}])]}, today=TODAY
    )
    await redis.hset(profile_keys(anon).profile, field, "1")  # written by no rule of today
    return anon


@pytest.mark.parametrize(("field", "named"), [("zz:foo", "zz:"), ("foo", "foo")])
async def test_a_field_no_merge_rule_covers_refuses_the_merge_and_loses_nothing(
    redis: aioredis.Redis, field: str, named: str
) -> None:
    writer = ProfileWriter(redis)
    user = uid()
    anon = await anonymous_profile_with(redis, writer, field)
    before = await redis.hgetall(profile_keys(anon).profile)
    await writer.apply_changes({user: [event(T + 1, kn=1, mg=anon)]}, today=TODAY)

    assert await redis.hgetall(profile_keys(anon).profile) == before
    assert await redis.zscore(USERS_INDEX, anon) is not None
    profile = await read_profile(redis, user)
    assert profile is not None and profile.anonymous_ids == [] and profile.custom == {}
    assert [r.field for r in profile.rejections] == ["anonymousId"]
    assert named in profile.rejections[0].reason
    user_fields = await redis.hgetall(profile_keys(user).profile)
    assert (MERGE_REFUSED_PREFIX + anon).encode() in user_fields
    # refused once: the next event asking for the same merge records nothing more
    await writer.apply_changes({user: [event(T + 2, kn=1, mg=anon)]}, today=TODAY)
    again = await read_profile(redis, user)
    assert again is not None and len(again.rejections) == 1
    assert await redis.hgetall(profile_keys(anon).profile) == before


async def test_every_field_the_script_writes_on_an_anonymous_profile_merges(
    redis: aioredis.Redis,
) -> None:
    writer = ProfileWriter(redis)
    user, anon = uid(), uid("anon")
    await writer.apply_changes(
        {
            anon: [
                change(T - 1, ca=[]),  # a clear-all before the writes below
                event(
                    T,
                    ops=[
                        {"o": SET, "k": "plan", "v": '"free"'},
                        {"o": SET, "k": "customer_id", "v": f'"C-{anon}"'},
                        {"o": SET_ONCE, "k": "source", "v": '"ads"'},
                        {"o": UNSET, "k": "coupon"},
                        {"o": INCREMENT, "k": "logins", "d": 2},
                        {"o": UNION, "k": "devices", "items": ['"ios"', '"web"']},
                        {"o": REMOVE, "k": "devices", "items": ['"web"']},
                        {"o": UNION_FRONT, "k": "devices", "items": ['"tv"']},
                        {"o": APPEND, "k": "visits", "items": ["1", "1"]},
                        {"o": PREPEND, "k": "visits", "items": ["true"]},
                    ],
                    x=[{"f": "traits.email", "r": "is not an email"}],
                ),
                change(T + 1, ta=["vip"], tr=["beta"], st="disabled", cfg=["checkout", "A"]),
            ]
        },
        today=TODAY,
    )
    written = await fields_of(redis, anon)
    assert all(written[family] for family in written if family != ANONYMOUS_ID_PREFIX)
    await writer.apply_changes({user: [event(T + 2, kn=1, mg=anon)]}, today=TODAY)

    profile = await read_profile(redis, user)
    assert profile is not None
    assert profile.anonymous_ids == [anon]
    assert [r.field for r in profile.rejections] == ["traits.email"]  # no refusal
    assert profile.custom == {
        "plan": "free",
        "source": "ads",
        "logins": 2,
        "devices": ["tv", "ios"],
        "visits": [True, 1, 1],
    }
    assert profile.customer_id == f"C-{anon}"
    assert profile.tags == ["vip"] and profile.event_count == 2
    assert await redis.hget(profile_keys(anon).profile, "merged_into") == user.encode()
    assert await redis.hget(profile_keys(user).profile, "cleared") is not None
