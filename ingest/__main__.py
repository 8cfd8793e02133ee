"""`python -m ingest`: serve the ingest API with uvicorn."""

from __future__ import annotations

import uvicorn

from infra.logs import configure_logging
from infra.settings import get_settings
from ingest.app import create_app


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        limit_concurrency=1000,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
