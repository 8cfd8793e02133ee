"""Event sequences and daily counts, read from ClickHouse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from infra.http import ApiError, bad_parameter
from profilestore.read import stored_ids
from query import sql
from query.clickhouse_params import utc
from query.csv_export import CSV_RESPONSE_DOC, csv_response, iso_utc, safe_filename_part, wants_csv
from query.cursor import BadCursor, decode_cursor, encode_cursor
from query.daily import MAX_DAYS, day_window, zero_filled
from query.deps import AfterDep, ClickHouseDep, RedisDep, SettingsDep, require_reader
from query.routes.common import Format
from query.zones import BadTimezone, zone
from schemas.api import DailyCount, EventPage, StoredEvent

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(require_reader)])

Days = Annotated[int, Query(ge=1, le=MAX_DAYS, description="how many days, ending today")]
Tz = Annotated[str, Query(max_length=64, description="IANA time zone of the days")]
EventName = Annotated[
    str | None, Query(min_length=1, max_length=255, description="event name; all if omitted")
]


def _stored_event(row: tuple[object, ...]) -> StoredEvent:
    message_id, type_, event, name, timestamp, received_at, properties, traits, source, protocol = (
        row
    )
    assert isinstance(timestamp, datetime) and isinstance(received_at, datetime)
    return StoredEvent(
        messageId=str(message_id),
        type=str(type_),
        name=str(event),
        pageName=str(name) or None,
        timestamp=utc(timestamp),
        receivedAt=utc(received_at),
        properties=orjson.loads(str(properties)),
        traits=orjson.loads(str(traits)),
        source=str(source),
        protocol=str(protocol) or None,
    )


async def _stored_ids(redis: RedisDep, user_id: str) -> list[str]:
    """Every id the user's events are stored under (anonymous ids merged into it too)."""
    found = await stored_ids(redis, user_id)
    if found is None:
        raise ApiError(404, f"no user {user_id!r}")
    return found[1]


# A user's sequence as CSV: every event, read in pages of this many along the sequence's cursor.
CSV_PAGE = 1000
SEQUENCE_CSV_HEADER = (
    "timestamp",
    "received_at",
    "type",
    "event",
    "page_name",
    "message_id",
    "source",
    "protocol",
    "properties",
    "traits",
)


def _sequence_csv_row(row: Sequence[object]) -> list[object]:
    message_id, type_, event, name, timestamp, received_at, properties, traits, source, protocol = (
        row
    )
    assert isinstance(timestamp, datetime) and isinstance(received_at, datetime)
    # properties and traits as stored: the JSON text ingest wrote.
    return [
        iso_utc(timestamp),
        iso_utc(received_at),
        type_,
        event,
        name,
        message_id,
        source,
        protocol,
        properties,
        traits,
    ]


async def _sequence_rows(
    clickhouse: object,
    ids: list[str],
    cursor: tuple[datetime, str] | None,
    event: str | None,
) -> AsyncIterator[list[object]]:
    while True:
        rows = await asyncio.to_thread(sql.user_sequence, clickhouse, ids, CSV_PAGE, cursor, event)
        for row in rows:
            yield _sequence_csv_row(row)
        if len(rows) < CSV_PAGE:
            return
        last_timestamp, last_id = rows[-1][4], rows[-1][0]
        assert isinstance(last_timestamp, datetime)
        cursor = (utc(last_timestamp), str(last_id))


@router.get("/users/{user_id}/events", response_model=EventPage, responses=CSV_RESPONSE_DOC)
async def user_events(
    request: Request,
    user_id: str,
    clickhouse: ClickHouseDep,
    redis: RedisDep,
    settings: SettingsDep,
    _after: AfterDep,
    event: EventName = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[str | None, Query(max_length=512, description="next_cursor")] = None,
    format: Format = None,
) -> EventPage | Response:
    limit = min(limit, settings.max_page_size)
    try:
        cursor = decode_cursor(before) if before else None
    except BadCursor as exc:
        raise bad_parameter("before", exc) from None
    ids = await _stored_ids(redis, user_id)
    if wants_csv(request, format):
        today = datetime.now(UTC).date().isoformat()
        filename = f"events_{safe_filename_part(user_id)}_{today}.csv"
        return csv_response(
            SEQUENCE_CSV_HEADER, _sequence_rows(clickhouse, ids, cursor, event), filename
        )
    rows = await asyncio.to_thread(sql.user_sequence, clickhouse, ids, limit, cursor, event)
    events = [_stored_event(row) for row in rows]
    next_cursor = None
    if len(events) == limit:
        next_cursor = encode_cursor(events[-1].timestamp, events[-1].messageId)
    return EventPage(events=events, next_cursor=next_cursor)


def _window(days: int, tz: str) -> tuple[list[date], datetime, datetime, ZoneInfo]:
    """The dates, the first one's start, now, and the zone."""
    try:
        local_zone = zone(tz)
    except BadTimezone as exc:
        raise bad_parameter("tz", exc) from None
    now = datetime.now(UTC)
    dates, start = day_window(days, local_zone, now)
    return dates, start, now, local_zone


@router.get("/users/{user_id}/events/daily", response_model=list[DailyCount])
async def user_daily(
    user_id: str,
    clickhouse: ClickHouseDep,
    redis: RedisDep,
    _after: AfterDep,
    event: EventName = None,
    days: Days = 30,
    tz: Tz = "UTC",
) -> list[DailyCount]:
    dates, start, now, local_zone = _window(days, tz)
    ids = await _stored_ids(redis, user_id)
    counts = await asyncio.to_thread(
        sql.user_daily_counts, clickhouse, ids, event, start, now, local_zone
    )
    return zero_filled(dates, counts)


@router.get("/events/daily", response_model=list[DailyCount])
async def all_users_daily(
    clickhouse: ClickHouseDep,
    _after: AfterDep,
    event: EventName = None,
    days: Days = 30,
    tz: Tz = "UTC",
) -> list[DailyCount]:
    dates, start, now, local_zone = _window(days, tz)
    counts = await asyncio.to_thread(
        sql.all_users_daily_counts, clickhouse, event, start, now, local_zone
    )
    return zero_filled(dates, counts)
