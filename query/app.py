"""The query FastAPI application factory (the private admin plane)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from infra.clients import clickhouse_client, redis_client
from infra.http import install_error_handlers
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from infra.warehouse import ensure_schema
from query.routes import catalog, events, insights, properties, users


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
    )
    app.state.settings = settings
    app.state.redis = redis
    app.state.clickhouse = clickhouse
    app.state.publisher = publisher
    install_error_handlers(app)
    app.include_router(users.router)
    app.include_router(properties.router)
    mount_dashboard(app)
    app.include_router(catalog.router)
    app.include_router(events.router)
    app.include_router(insights.router)
    return app


# The dashboard's own files (HTML, JS, CSS) hold no data and are public; every API route it
# calls needs the admin token, which the page keeps in sessionStorage.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def mount_dashboard(app: FastAPI) -> None:
    directory = Path(__file__).parent / "dashboard"
    app.mount("/dashboard", StaticFiles(directory=directory, html=True), name="dashboard")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        if request.url.path.startswith("/dashboard"):
            response.headers["Content-Security-Policy"] = DASHBOARD_CSP
            response.headers["Referrer-Policy"] = "no-referrer"
        return response
