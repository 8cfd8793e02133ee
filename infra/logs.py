"""Logging set-up: plain lines, no event contents or secrets (nothing here logs bodies)."""

from __future__ import annotations

import logging


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Group membership and fetch problems are what an operator needs from aiokafka; its INFO
    # lines are per-connection chatter.
    logging.getLogger("aiokafka").setLevel(
        max(logging.WARNING, logging.getLevelName(level.upper()))
    )
