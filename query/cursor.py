"""Pure: opaque pagination cursors for event sequences: (timestamp, messageId) of the last event
on a page, as URL-safe base64 JSON."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime

import orjson


class BadCursor(ValueError):
    pass


def encode_cursor(timestamp: datetime, message_id: str) -> str:
    millis = int(timestamp.replace(tzinfo=timestamp.tzinfo or UTC).timestamp() * 1000)
    raw = orjson.dumps([millis, message_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        millis, message_id = orjson.loads(raw)
        if (
            isinstance(millis, bool)
            or not isinstance(millis, int)
            or not isinstance(message_id, str)
        ):
            raise TypeError("wrong types")
        return datetime.fromtimestamp(millis / 1000, tz=UTC), message_id
    except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError, OverflowError):
        raise BadCursor("cursor is not one this API issued") from None
