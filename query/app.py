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

from infra.api_docs import install_api_docs
from infra.clients import clickhouse_client, redis_client
from infra.http import install_error_handlers, install_request_ids
from infra.metrics import install_http_metrics, install_metrics_route
from infra.publisher import KafkaPublisher
from infra.settings import Settings
from infra.warehouse import ensure_schema
from query import health, metrics
from query.debugger import close_debugger
from query.routes import (
    catalog,
    dead_letters,
    debugger,
    events,
    export,
    insights,
    operators,
    properties,
    users,
)


def create_app(
    settings: Settings,
    redis: aioredis.Redis | None = None,
    clickhouse: Any = None,
    publisher: KafkaPublisher | None = None,
) -> FastAPI:
    redis = redis or redis_client(settings)
    clickhouse = clickhouse if clickhouse is not None else clickhouse_client(settings)
    # Management writes go through Kafka, keyed by user (started on first write).
    publisher = publisher or KafkaPublisher(
        settings, "profilestream-query", observer=metrics.PRODUCE
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema(clickhouse)
        yield
        await close_debugger(app)
        await publisher.close()
        await redis.aclose()

    app = FastAPI(
        title="Profilestream query",
        # FastAPI's own pages load scripts from a CDN: ours serve them (install_api_docs).
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
    app.include_router(operators.router)
    app.include_router(debugger.router)
    app.include_router(dead_letters.router)
    app.include_router(export.router)
    app.include_router(health.router(settings, publisher, redis, clickhouse))
    install_metrics_route(app, metrics.REGISTRY)
    install_api_docs(app)
    install_http_metrics(app, metrics.HTTP)
    install_request_ids(app)  # outermost: its id is on every answer, 500s included
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
