"""Read-your-writes: a management write answers with the position (partition:offset) the broker
stored it at; a read given `after=<position>` waits, bounded, until the materializer has
applied every message of that partition up to it (`ps:applied:<topic>`, written by the same
Redis call that applies the changes)."""

from __future__ import annotations

import asyncio
import re
import time

import redis.asyncio as aioredis

from infra.profile_keys import applied_offsets_key
from infra.publisher import Position

POLL_S = 0.02
POSITION_HEADER = "X-Profilestream-Position"


class BadPosition(ValueError):
    pass


def format_position(position: Position) -> str:
    return f"{position.partition}:{position.offset}"


POSITION = re.compile(r"([0-9]{1,9}):([0-9]{1,19})")


def parse_position(text: str) -> Position:
    match = POSITION.fullmatch(text)  # ASCII digits only: str.isdigit() takes "²"
    if match is None:
        raise BadPosition("expected <partition>:<offset>, as returned by a write")
    return Position(int(match[1]), int(match[2]))


async def is_applied(client: aioredis.Redis, topic: str, position: Position) -> bool:
    applied = await client.hget(applied_offsets_key(topic), str(position.partition))
    return applied is not None and int(applied) >= position.offset


async def wait_applied(
    client: aioredis.Redis, topic: str, position: Position, timeout_s: float
) -> bool:
    """True once the materializer passed `position`; False if `timeout_s` ran out first."""
    deadline = time.monotonic() + timeout_s
    while not await is_applied(client, topic, position):
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_S)
    return True
