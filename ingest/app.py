"""The ingest FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infra.http import install_error_handlers
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from ingest.ratelimit import rate_limiter_for
from ingest.routes import router


def create_app(settings: Settings, publisher: KafkaPublisher | None = None) -> FastAPI:
    publisher = publisher or KafkaPublisher(settings, "profilestream-ingest")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await publisher.close()

    app = FastAPI(
        title="Profilestream ingest",
        version="0.1.0",
        lifespan=lifespan,
        # Swagger UI and ReDoc load scripts from a CDN; only the schema is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.publisher = publisher
    # One limiter per app, so per process; None when the limit is off.
    app.state.rate_limiter = rate_limiter_for(settings)
    install_error_handlers(app)
    app.include_router(router)
    return app
