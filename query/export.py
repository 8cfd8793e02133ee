"""Pure: a user's export (an access request, the companion of deletion) from the profile and
the stored event rows. Two shapes, both written as the rows arrive, so an export of any size is
never held whole in memory:

- NDJSON: `{"kind": "profile", "profile": {...}}` first, then `{"kind": "event", ...}` per
  event, oldest first;
- JSON: one document `{"profile": {...}, "events": [...]}`.

An event carries every stored field (query.sql.EXPORT_COLUMNS) under the Segment spec's names,
with `properties`, `traits` and `context` parsed back to JSON."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Literal

import orjson

from query.clickhouse_params import utc
from query.csv_export import iso_utc

ExportFormat = Literal["ndjson", "json"]
MEDIA_TYPES: dict[ExportFormat, str] = {
    "ndjson": "application/x-ndjson",
    "json": "application/json",
}

# The stored columns (query.sql.EXPORT_COLUMNS, in that order) and their names in the export.
_FIELD_NAMES = (
    "messageId",
    "userId",
    "anonymousId",
    "type",
    "event",
    "name",
    "timestamp",
    "receivedAt",
    "properties",
    "traits",
    "context",
    "source",
)
_JSON_TEXT_FIELDS = frozenset({"properties", "traits", "context"})
_TIME_FIELDS = frozenset({"timestamp", "receivedAt"})


def _json_text(text: object) -> Any:
    # Stored as the JSON text ingest wrote; a text that does not parse (never written by this
    # code base) is handed over as it is rather than dropped.
    try:
        return orjson.loads(str(text))
    except orjson.JSONDecodeError:
        return str(text)


def exported_event(row: Sequence[object]) -> dict[str, Any]:
    """One stored row (EXPORT_COLUMNS order) as the export's event object. Empty ids and names
    (ClickHouse stores "" for absent) are null. The `user_id` column holds the id the event is
    stored under, its anonymousId when it had no userId: `userId` is null then (also for an
    event sent with a userId equal to its anonymousId, which is stored the same way)."""
    event: dict[str, Any] = {}
    for name, value in zip(_FIELD_NAMES, row, strict=True):
        if name in _JSON_TEXT_FIELDS:
            event[name] = _json_text(value)
        elif name in _TIME_FIELDS:
            assert isinstance(value, datetime)
            event[name] = iso_utc(value)
        else:
            event[name] = str(value) if value not in ("", None) else None
    if event["userId"] == event["anonymousId"]:
        event["userId"] = None
    return event


def row_position(row: Sequence[object]) -> tuple[datetime, str]:
    """(timestamp, messageId) of a row: where the next page starts after it."""
    timestamp = row[_FIELD_NAMES.index("timestamp")]
    assert isinstance(timestamp, datetime)
    return utc(timestamp), str(row[0])


def profile_line(profile: dict[str, Any]) -> bytes:
    return orjson.dumps({"kind": "profile", "profile": profile}) + b"\n"


def event_line(row: Sequence[object]) -> bytes:
    return orjson.dumps({"kind": "event", **exported_event(row)}) + b"\n"


def document_opening(profile: dict[str, Any]) -> bytes:
    return b'{"profile":' + orjson.dumps(profile) + b',"events":['


DOCUMENT_CLOSING = b"]}\n"


async def export_chunks(
    profile: dict[str, Any],
    pages: AsyncIterable[Sequence[Sequence[object]]],
    export_format: ExportFormat,
) -> AsyncIterator[bytes]:
    """The export as chunks of bytes, one per page of rows (after the profile's own)."""
    if export_format == "ndjson":
        yield profile_line(profile)
        async for page in pages:
            if page:
                yield b"".join(event_line(row) for row in page)
        return
    yield document_opening(profile)
    first = True
    async for page in pages:
        if not page:
            continue
        events = b",".join(orjson.dumps(exported_event(row)) for row in page)
        yield events if first else b"," + events
        first = False
    yield DOCUMENT_CLOSING
