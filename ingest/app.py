"""The ingest FastAPI application factory."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from infra.api_docs import install_api_docs
from infra.http import install_error_handlers, install_request_ids, wrap_outermost
from infra.metrics import install_http_metrics, install_metrics_route
from infra.publisher import KafkaPublisher
from infra.settings import Settings, is_loopback
from ingest import health, metrics
from ingest.providers.amplitude import routes as amplitude_routes
from ingest.providers.common import rendered_by_prefix
from ingest.providers.mixpanel import routes as mixpanel_routes
from ingest.providers.posthog import routes as posthog_routes
from ingest.providers.webhooks import routes as webhook_routes
from ingest.ratelimit import rate_limiter_for
from ingest.routes import beacon_router, router
from ingest.sdk import router as sdk_router

log = logging.getLogger(__name__)

# Each third-party protocol: its routes, under its own prefix, and its own error shape.
PROVIDERS = (posthog_routes, mixpanel_routes, amplitude_routes, webhook_routes)

# Net new container objects before a young collection (CPython's default is 700). A request of
# 100 events holds tens of thousands of them until it is answered: at 700 each request paid
# for several collections that traversed (and promoted) all of them, a quarter of ingest's CPU.
YOUNG_GC_THRESHOLD = 50_000


def settle_heap() -> None:
    """Once the serving process has started: what exists now (modules, routes, schemas) lives
    as long as the process, so full collections stop traversing it (`gc.freeze`), and young
    collections run when the heap has grown by YOUNG_GC_THRESHOLD objects instead of 700."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GC_THRESHOLD, middle, old)


def create_app(settings: Settings, publisher: KafkaPublisher | None = None) -> FastAPI:
    if not settings.ingest_public_url and not is_loopback(settings.ingest_host):
        log.warning(
            "PS_INGEST_PUBLIC_URL is not set: the SDK settings document names the host each "
            "request asked for; set it to the URL clients reach ingest at"
        )
    publisher = publisher or KafkaPublisher(
        settings, "profilestream-ingest", observer=metrics.PRODUCE
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_heap()  # only a served app runs its lifespan (not the tests' ASGI transports)
        yield
        await publisher.close()

    app = FastAPI(
        title="Profilestream ingest",
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's own pages load scripts from a CDN: ours serve them (install_api_docs).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.publisher = publisher
    # One limiter per app, so per process; None when the limit is off.
    app.state.rate_limiter = rate_limiter_for(settings)
    install_error_handlers(app, rendered_by_prefix([(p.PREFIX, p.render_error) for p in PROVIDERS]))
    # Any website may send (a write key can be limited to origins: ingest.auth). Origins and
    # requested headers are echoed, not "*": a "*" never covers Authorization, and is refused
    # for requests with credentials (mixpanel-style XHRs). Errors carry the headers too, so a
    # browser can read a 401, 413, 429 or 503 (and Retry-After), and a 500: the headers wrap the
    # whole stack (wrap_outermost), because Starlette answers unhandled errors outside any
    # middleware added by add_middleware.
    wrap_outermost(
        app,
        lambda inner: CORSMiddleware(
            inner,
            allow_origin_regex=".*",
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["*"],
            allow_credentials=True,
            expose_headers=["Retry-After"],
            max_age=settings.cors_max_age_s,
        ),
    )
    app.include_router(router)
    app.include_router(beacon_router)
    app.include_router(sdk_router)
    for provider in PROVIDERS:
        app.include_router(provider.router)
    app.include_router(health.router(settings, publisher))
    install_metrics_route(app, metrics.REGISTRY)
    install_api_docs(app)
    install_http_metrics(app, metrics.HTTP)
    install_request_ids(app)  # outermost: its id is on every answer, 500s included
    return app
