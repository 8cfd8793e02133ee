"""`python -m materializer`: run the Faust worker alone (production topology)."""

from __future__ import annotations

from infra.settings import get_settings
from materializer.worker import run_worker


def main() -> None:
    run_worker(get_settings())


if __name__ == "__main__":
    main()
