"""Serving the query API with uvicorn, standalone or on an event loop another service owns."""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager

import uvicorn

from infra.settings import Settings
from query.app import create_app


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
    """Serve on the running loop; returns when cancelled."""
    await _EmbeddedServer(uvicorn_config(settings)).serve()


def serve(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(settings)).run()
