"""`python -m query`: serve the query API alone (production topology, ClickHouse over HTTP)."""

from __future__ import annotations

from infra.logs import configure_logging
from infra.settings import get_settings
from query.server import serve


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level)
    serve(settings)


if __name__ == "__main__":
    main()
