"""The customer-id index (`ps:customer_ids`, json customer_id -> user): customer_id is unique.

The apply script claims and releases ids as profiles change; the query service reserves one
here before it produces a create or update that sets it, so two requests cannot both get it
(the reservation is what the script's claim then finds)."""

from __future__ import annotations

import orjson
import redis.asyncio as aioredis

from profilestore.layout import CUSTOMER_IDS, text

# A compare-and-delete: only the reservation the caller made is undone.
RELEASE_IF_OWNER = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""


class CustomerIdTaken(Exception):
    def __init__(self, owner: str) -> None:
        super().__init__(f"customer_id belongs to user {owner}")
        self.owner = owner


def index_field(customer_id: str) -> str:
    """The index's field for a customer id: its JSON encoding, as the profile stores values."""
    return orjson.dumps(customer_id).decode()


async def owner_of(client: aioredis.Redis, customer_id: str) -> str | None:
    owner = await client.hget(CUSTOMER_IDS, index_field(customer_id))
    return text(owner) if owner is not None else None


async def reserve(client: aioredis.Redis, customer_id: str, user_id: str) -> None:
    """Claim `customer_id` for `user_id` (a no-op if it already has it). Raises CustomerIdTaken
    when another user holds it."""
    field = index_field(customer_id)
    if not await client.hsetnx(CUSTOMER_IDS, field, user_id):
        owner = await client.hget(CUSTOMER_IDS, field)
        if owner is not None and text(owner) != user_id:
            raise CustomerIdTaken(text(owner))


async def release(client: aioredis.Redis, customer_id: str, user_id: str) -> None:
    """Give back a reservation, only if `user_id` still holds it."""
    await client.eval(RELEASE_IF_OWNER, 1, CUSTOMER_IDS, index_field(customer_id), user_id)
