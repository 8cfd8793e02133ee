"""Reading the materializer's per-topic marks (`ps:applied:<topic>`; the layout and the
encoding are in profilestore.layout, the writer is the materializer's Redis sink)."""

from __future__ import annotations

import redis.asyncio as aioredis

from profilestore.layout import AppliedMark, applied_offsets_key, parse_applied


async def applied_mark(client: aioredis.Redis, topic: str, partition: int) -> AppliedMark | None:
    """The highest offset of the partition applied to Redis and ClickHouse, with its topic id."""
    return parse_applied(await client.hget(applied_offsets_key(topic), str(partition)))
