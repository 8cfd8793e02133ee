"""The ids a user's events are stored under (profilestore/read.py): one definition, read with
or without resolving an anonymous id merged into a user."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from profilestore.read import own_stored_ids, stored_ids
from profilestore.writer import ProfileWriter
from tests.support.profiles import TODAY, T, event, uid

pytestmark = pytest.mark.integration


async def test_stored_ids_resolve_a_merged_id_and_own_stored_ids_do_not(
    redis: aioredis.Redis,
) -> None:
    writer = ProfileWriter(redis)
    ada, anon, other = uid(), uid("anon"), uid("anon")
    await writer.apply_changes({anon: [event(T)], other: [event(T)]}, today=TODAY)
    await writer.apply_changes({ada: [event(T + 1, kn=1, mg=anon)]}, today=TODAY)
    assert await stored_ids(redis, ada) == (ada, [ada, anon])
    assert await stored_ids(redis, anon) == (ada, [ada, anon])
    assert await own_stored_ids(redis, ada) == [ada, anon]
    assert await own_stored_ids(redis, anon) == [anon]  # its hash holds only merged_into
    assert await own_stored_ids(redis, other) == [other]
    nobody = uid()
    assert await own_stored_ids(redis, nobody) == [nobody]
