"""Every ClickHouse query the query service runs. Values are always bound parameters; only
constant table names are formatted into the SQL."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from infra.warehouse import EVENTS_TABLE
from query.zones import local_time_sql

SEQUENCE_COLUMNS = (
    "message_id",
    "type",
    "event",
    "name",
    "timestamp",
    "received_at",
    "properties",
    "traits",
    "source",
    # which protocol the event came in by (ingest/providers set it); empty for /v1
    "JSONExtractString(context, 'protocol')",
)


def user_sequence(
    client: Any,
    user_ids: list[str],
    limit: int,
    before: tuple[datetime, str] | None,
    event: str | None = None,
) -> list[tuple[Any, ...]]:
    """A user's events (stored under any of `user_ids`), newest first; `before` is the
    (timestamp, messageId) of the last event of the previous page."""
    return _user_events_page(client, SEQUENCE_COLUMNS, user_ids, limit, before, True, event)


def _user_events_page(
    client: Any,
    columns: tuple[str, ...],
    user_ids: list[str],
    limit: int,
    cursor: tuple[datetime, str] | None,
    newest_first: bool,
    event: str | None = None,
) -> list[tuple[Any, ...]]:
    """A page of a user's events in (timestamp, messageId) order, from past `cursor` (the
    previous page's last), either way."""
    params: dict[str, Any] = {"users": user_ids, "limit": limit}
    where = "user_id IN {users:Array(String)}"
    if event is not None:
        params["event"] = event
        where += " AND event = {event:String}"
    if cursor is not None:
        params["ts"], params["mid"] = cursor
        # the first comparison lets ClickHouse skip by the sorting key
        bound, beyond = ("<=", "<") if newest_first else (">=", ">")
        where += (
            f" AND timestamp {bound} {{ts:DateTime64(3, 'UTC')}}"
            f" AND (timestamp, message_id) {beyond} ({{ts:DateTime64(3, 'UTC')}}, {{mid:String}})"
        )
    order = "timestamp DESC, message_id DESC" if newest_first else "timestamp, message_id"
    sql = (
        f"SELECT {', '.join(columns)} FROM {EVENTS_TABLE} "  # noqa: S608
        f"WHERE {where} ORDER BY {order} LIMIT {{limit:UInt32}}"
    )
    return list(client.query(sql, parameters=params).result_rows)


def user_daily_counts(
    client: Any,
    user_ids: list[str],
    event: str | None,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> dict[date, int]:
    """One user's events per day in `tz` since `start` (`end`: now, for the zone's offsets): a
    range of the primary key per stored id."""
    params: dict[str, Any] = {"users": user_ids, "start": start}
    local = local_time_sql(tz, start, end, params)
    where = "user_id IN {users:Array(String)} AND timestamp >= {start:DateTime64(3, 'UTC')}"
    if event is not None:
        params["event"] = event
        where += " AND event = {event:String}"
    sql = (
        f"SELECT toDate({local('timestamp')}) AS day, count() AS n "  # noqa: S608
        f"FROM {EVENTS_TABLE} WHERE {where} GROUP BY day"
    )
    return {row[0]: int(row[1]) for row in client.query(sql, parameters=params).result_rows}


def all_users_daily_counts(
    client: Any, event: str | None, start: datetime, end: datetime, tz: ZoneInfo
) -> dict[date, int]:
    """Everyone's events per day in `tz` since `start` (`end`: now, for the zone's offsets).
    The inner query is written in the projection's own terms (15-minute buckets, filtered by
    bucket) so ClickHouse answers it from the projection; `start` is a local midnight, which
    is always a bucket edge."""
    params: dict[str, Any] = {"start": start}
    local = local_time_sql(tz, start, end, params)
    where = "toStartOfFifteenMinutes(timestamp) >= {start:DateTime('UTC')}"
    if event is not None:
        params["event"] = event
        where = "event = {event:String} AND " + where
    sql = (
        f"SELECT toDate({local('bucket')}) AS day, sum(n) FROM ("  # noqa: S608
        "SELECT toStartOfFifteenMinutes(timestamp) AS bucket, count() AS n "
        f"FROM {EVENTS_TABLE} WHERE {where} GROUP BY bucket) GROUP BY day"
    )
    # The table's primary key starts with user_id, so it cannot narrow an all-users read; yet
    # weighing it against the projection meant a search over every granule of the table: 30 to
    # 50 ms of 10M events, against under 10 ms for the projection read itself.
    result = client.query(sql, parameters=params, settings={"use_primary_key": 0})
    return {row[0]: int(row[1]) for row in result.result_rows}


# A user's export (query/export.py): every stored column but the Kafka position, which says
# nothing about the user.
EXPORT_COLUMNS = (
    "message_id",
    "user_id",
    "anonymous_id",
    "type",
    "event",
    "name",
    "timestamp",
    "received_at",
    "properties",
    "traits",
    "context",
    "source",
)


def user_events_oldest_first(
    client: Any, user_ids: list[str], limit: int, after: tuple[datetime, str] | None
) -> list[tuple[Any, ...]]:
    """One page of a user's events (stored under any of `user_ids`), oldest first, in
    EXPORT_COLUMNS order; `after` is the (timestamp, messageId) of the previous page's last."""
    return _user_events_page(client, EXPORT_COLUMNS, user_ids, limit, after, False)
