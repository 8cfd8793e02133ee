"""Custom property definitions (`ps:property_definitions`, name -> PropertyDefinition json):
written by the query service's /v1/properties, read by the materializer with every batch (so a
change applies to the next SDK writes) and by the query service's checks."""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline

from profilestore.layout import PROPERTY_DEFINITIONS, text
from schemas.properties import PropertyDefinition


def parse_definitions(stored: Mapping[bytes | str, bytes | str]) -> dict[str, PropertyDefinition]:
    """The definitions hash as read (HGETALL) -> definitions by name."""
    return {text(k): PropertyDefinition.model_validate_json(v) for k, v in stored.items()}


def queue_all_definitions(pipe: Pipeline) -> None:
    """Queue the read of every definition on the caller's pipeline (its reply goes to
    `parse_definitions`): the materializer reads them with each batch's look-up."""
    pipe.hgetall(PROPERTY_DEFINITIONS)


async def all_definitions(client: aioredis.Redis) -> dict[str, PropertyDefinition]:
    return parse_definitions(await client.hgetall(PROPERTY_DEFINITIONS))


async def get_definition(client: aioredis.Redis, name: str) -> PropertyDefinition | None:
    raw = await client.hget(PROPERTY_DEFINITIONS, name)
    return PropertyDefinition.model_validate_json(raw) if raw is not None else None


async def count_definitions(client: aioredis.Redis) -> int:
    return int(await client.hlen(PROPERTY_DEFINITIONS))


async def add_definition(client: aioredis.Redis, definition: PropertyDefinition) -> bool:
    """False when a definition of that name exists (it is left as it is)."""
    return bool(
        await client.hsetnx(PROPERTY_DEFINITIONS, definition.name, definition.model_dump_json())
    )


async def put_definition(client: aioredis.Redis, definition: PropertyDefinition) -> None:
    await client.hset(PROPERTY_DEFINITIONS, definition.name, definition.model_dump_json())


async def delete_definition(client: aioredis.Redis, name: str) -> bool:
    """False when there was no such definition."""
    return bool(await client.hdel(PROPERTY_DEFINITIONS, name))
