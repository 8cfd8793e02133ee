"""Read-your-writes: a management write answers with the position the broker stored it at
(`<partition>:<offset>@<topic id>`); a read given `after=<position>` waits, bounded, until the
materializer has applied every message of that partition up to it (`ps:applied:<topic>`,
written by the same Redis call that applies the changes).

The topic id names one life of the topic: offsets restart at 0 when the topic is created anew
(and the embedded broker, which keeps its logs in memory, does that on every restart). A mark
vouches for a position only when both name the same life (infra.topic_ids)."""

from __future__ import annotations

import asyncio
import re
import time

import redis.asyncio as aioredis

from infra.publisher import Position
from profilestore.layout import AppliedMark
from profilestore.marks import applied_mark

POLL_S = 0.02
POSITION_HEADER = "X-Profilestream-Position"


class BadPosition(ValueError):
    pass


def format_position(position: Position) -> str:
    return f"{position.partition}:{position.offset}@{position.topic_id}"


# ASCII digits only: str.isdigit() takes "²"
POSITION = re.compile(r"([0-9]{1,9}):([0-9]{1,19})@([0-9a-f]{32})")


def parse_position(text: str) -> Position:
    match = POSITION.fullmatch(text)
    if match is None:
        raise BadPosition(
            "expected <partition>:<offset>@<topic id>, as returned by a write "
            "(X-Profilestream-Position)"
        )
    return Position(int(match[1]), int(match[2]), match[3])


def covers(mark: AppliedMark | None, position: Position) -> bool:
    """Whether the applied mark vouches for the position: the same life of the partition, and
    at or past its offset."""
    return (
        mark is not None and mark.topic_id == position.topic_id and mark.offset >= position.offset
    )


async def is_applied(client: aioredis.Redis, topic: str, position: Position) -> bool:
    return covers(await applied_mark(client, topic, position.partition), position)


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
