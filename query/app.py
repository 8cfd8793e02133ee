"""The query FastAPI application factory (the private admin plane)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI

from infra.clients import clickhouse_client, redis_client
from infra.http import install_error_handlers
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from infra.warehouse import ensure_schema
from query.deps import require_admin
from query.routes import events, properties, users


def create_app(
    settings: Settings,
    redis: aioredis.Redis | None = None,
    clickhouse: Any = None,
    publisher: KafkaPublisher | None = None,
) -> FastAPI:
    redis = redis or redis_client(settings)
    clickhouse = clickhouse if clickhouse is not None else clickhouse_client(settings)
    # Management writes go through Kafka, keyed by user (started on first write).
    publisher = publisher or KafkaPublisher(settings, "profilestream-query")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema(clickhouse)
        yield
        await publisher.close()
        await redis.aclose()

    app = FastAPI(
        title="Profilestream query",
        # Swagger UI and ReDoc load scripts from a CDN; only the schema is served.
        docs_url=None,
        redoc_url=None,
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(require_admin)],
    )
    app.state.settings = settings
    app.state.redis = redis
    app.state.clickhouse = clickhouse
    app.state.publisher = publisher
    install_error_handlers(app)
    app.include_router(users.router)
    app.include_router(properties.router)
    app.include_router(events.router)
    return app
