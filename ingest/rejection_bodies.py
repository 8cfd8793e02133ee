"""The body a rejection carries (schemas.messages.RejectionMessage.body): the refused item as
received, its secrets removed (schemas.redaction), cut to a bound. Called only for refused
items, so its cost is off the accepted events' path."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from schemas.redaction import without_secrets


def rejected_body(item: Any, secrets: Collection[str], max_bytes: int) -> tuple[str, bool]:
    """The JSON text of `item` without secrets, and whether it was cut to `max_bytes` bytes
    (at a character boundary: a cut body is not valid JSON). An item JSON cannot encode (nested
    past orjson's limit) is described instead."""
    try:
        encoded = orjson.dumps(without_secrets(item, secrets))
    except (orjson.JSONEncodeError, RecursionError):
        return '"(not representable as JSON)"', False
    if len(encoded) <= max_bytes:
        return encoded.decode(), False
    return encoded[:max_bytes].decode(errors="ignore"), True
