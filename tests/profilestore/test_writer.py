"""profilestore/writer.py on Valkey: the applied-ids look-up and the apply call, with plain
data (wire-format changes by user, messageIds by user)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from profilestore.read import read_profile
from profilestore.writer import ProfileWriter
from tests.support.profiles import TODAY, T, change, event, uid

pytestmark = pytest.mark.integration


async def test_applied_ids_are_the_message_ids_each_user_has_applied(
    redis: aioredis.Redis,
) -> None:
    writer = ProfileWriter(redis)
    ada, bob = uid(), uid()
    first, second = event(T, kn=1), event(T + 1, kn=1)
    await writer.apply_changes({ada: [first], bob: [second]}, today=TODAY)
    asked = {ada: [first["m"], second["m"]], bob: [second["m"], "never-sent"]}
    assert await writer.applied_ids(asked) == {first["m"], second["m"]}


async def test_a_replayed_change_changes_nothing(redis: aioredis.Redis) -> None:
    writer = ProfileWriter(redis)
    ada = uid()
    played = event(T, kn=1)
    await writer.apply_changes({ada: [played]}, today=TODAY)
    await writer.apply_changes({ada: [played, played]}, today=TODAY)
    profile = await read_profile(redis, ada)
    assert profile is not None and profile.event_count == 1


async def test_nothing_asked_is_nothing_sent(redis: aioredis.Redis) -> None:
    writer = ProfileWriter(redis)
    assert await writer.applied_ids({}) == set()
    await writer.apply_changes({}, today=TODAY)


async def test_a_profile_rebuilt_after_a_delete_in_the_same_call_is_identified_again(
    redis: aioredis.Redis,
) -> None:
    """The pipeline sends a delete alone, but the script must not depend on it: what the
    deleted profile's state said (identified) is gone with it."""
    writer = ProfileWriter(redis)
    ada = uid()
    await writer.apply_changes(
        {ada: [event(T, kn=1), change(T + 1, cmd="delete"), event(T + 2, kn=1)]}, today=TODAY
    )
    profile = await read_profile(redis, ada)
    assert profile is not None and profile.identified and profile.event_count == 1


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([("s", '"a"'), ("u", None)], None),
        ([("u", None), ("s", '"b"')], "b"),
        ([("s", '"a"'), ("o", '"x"'), ("s", '"c"')], "c"),
    ],
)
async def test_ops_on_one_property_in_one_change_apply_in_order(
    redis: aioredis.Redis, ops: list[tuple[str, str | None]], expected: str | None
) -> None:
    writer, ada = ProfileWriter(redis), uid()
    written = [{"o": o, "k": "plan", **({"v": v} if v else {})} for o, v in ops]
    await writer.apply_changes({ada: [event(T, kn=1, ops=written)]}, today=TODAY)
    profile = await read_profile(redis, ada)
    assert profile is not None and profile.custom.get("plan") == expected
