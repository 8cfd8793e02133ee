"""The customer-id index, on a real Valkey: a reservation is exclusive, and a release undoes only
the caller's own."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from profilestore import identity

pytestmark = pytest.mark.integration


def fresh() -> str:
    return f"cust-{uuid.uuid4().hex}"


async def test_a_reservation_belongs_to_one_user(redis: Any) -> None:
    customer_id = fresh()
    await identity.reserve(redis, customer_id, "alice")
    await identity.reserve(redis, customer_id, "alice")  # again: still hers
    with pytest.raises(identity.CustomerIdTaken) as taken:
        await identity.reserve(redis, customer_id, "bob")
    assert taken.value.owner == "alice"
    assert await identity.owner_of(redis, customer_id) == "alice"


async def test_a_release_undoes_only_the_callers_reservation(redis: Any) -> None:
    customer_id = fresh()
    await identity.reserve(redis, customer_id, "alice")
    await identity.release(redis, customer_id, "bob")
    assert await identity.owner_of(redis, customer_id) == "alice"
    await identity.release(redis, customer_id, "alice")
    assert await identity.owner_of(redis, customer_id) is None
    await identity.reserve(redis, customer_id, "bob")
    assert await identity.owner_of(redis, customer_id) == "bob"


async def test_the_index_is_keyed_by_the_json_of_the_id(redis: Any) -> None:
    """The apply script claims ids under the profile's stored (JSON) value: both must agree."""
    customer_id = fresh()
    await identity.reserve(redis, customer_id, "carol")
    assert await redis.hget("ps:customer_ids", f'"{customer_id}"') == b"carol"
