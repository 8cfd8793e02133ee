"""Serving the query API with uvicorn, standalone or on an event loop another service owns."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Generator
from contextlib import contextmanager

import uvicorn

from infra.settings import Settings
from query.app import create_app

GRACEFUL_SHUTDOWN_S = 5.0


class _EmbeddedServer(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The host process (the Faust worker) owns SIGINT/SIGTERM.
        yield


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=settings.query_host,
        port=settings.query_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        limit_concurrency=200,
    )


async def serve_embedded(settings: Settings) -> None:
    """Serve on the running loop until cancelled, then shut down gracefully (finish requests,
    run the lifespan shutdown) instead of dying mid-request."""
    server = _EmbeddedServer(uvicorn_config(settings))
    serving = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(serving, timeout=GRACEFUL_SHUTDOWN_S)
        raise


def serve(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(settings)).run()
