"""The query service's /healthz and /readyz (infra.health): ready while the broker (management
writes), Redis (profiles) and ClickHouse (events) each answer a cheap request."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from fastapi import APIRouter

from infra.health import Readiness, health_router
from infra.publisher import KafkaPublisher
from infra.settings import Settings


def query_readiness(
    settings: Settings, publisher: KafkaPublisher, redis: aioredis.Redis, clickhouse: Any
) -> Readiness:
    async def broker() -> None:
        # A metadata request now, not the producer's state: it may have started long ago.
        await publisher.current_topic_id(settings.events_topic)

    async def redis_ping() -> None:
        await redis.ping()

    async def clickhouse_select() -> None:
        # chDB in this process, or the HTTP client: both block, so in a thread.
        await asyncio.to_thread(clickhouse.command, "SELECT 1")

    return Readiness({"broker": broker, "redis": redis_ping, "clickhouse": clickhouse_select})


def router(
    settings: Settings, publisher: KafkaPublisher, redis: aioredis.Redis, clickhouse: Any
) -> APIRouter:
    return health_router(query_readiness(settings, publisher, redis, clickhouse))
