"""Every ClickHouse query the query service runs. Values are always bound parameters; only
constant table names are formatted into the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from infra.warehouse import DAILY_TABLE, EVENTS_TABLE

SEQUENCE_COLUMNS = (
    "message_id",
    "type",
    "event",
    "name",
    "timestamp",
    "received_at",
    "properties",
    "traits",
)


def user_sequence(
    client: Any, user_id: str, limit: int, before: tuple[datetime, str] | None
) -> list[tuple[Any, ...]]:
    """A user's events, newest first; `before` is the (timestamp, messageId) of the last event
    of the previous page."""
    params: dict[str, Any] = {"user": user_id, "limit": limit}
    where = "user_id = {user:String}"
    if before is not None:
        params["ts"], params["mid"] = before
        where += (
            " AND timestamp <= {ts:DateTime64(3, 'UTC')}"
            " AND (timestamp, message_id) < ({ts:DateTime64(3, 'UTC')}, {mid:String})"
        )
    sql = (
        f"SELECT {', '.join(SEQUENCE_COLUMNS)} FROM {EVENTS_TABLE} "  # noqa: S608
        f"WHERE {where} ORDER BY timestamp DESC, message_id DESC LIMIT {{limit:UInt32}}"
    )
    return list(client.query(sql, parameters=params).result_rows)


@dataclass(frozen=True)
class _CountSource:
    table: str
    time_column: str
    count: str


# One user's counts read the raw events (a primary-key range); everyone's read the rollup.
_USER_EVENTS = _CountSource(EVENTS_TABLE, "timestamp", "count()")
_ALL_USERS_ROLLUP = _CountSource(DAILY_TABLE, "bucket", "sum(count)")


def _daily_counts(
    client: Any,
    source: _CountSource,
    where: str,
    params: dict[str, Any],
    event: str | None,
    tz: str,
) -> dict[date, int]:
    params = {**params, "tz": tz}
    if event is not None:
        params["event"] = event
        where += " AND event = {event:String}"
    sql = (
        f"SELECT toDate({source.time_column}, {{tz:String}}) AS day, "  # noqa: S608
        f"{source.count} AS n FROM {source.table} WHERE {where} GROUP BY day"
    )
    return {row[0]: int(row[1]) for row in client.query(sql, parameters=params).result_rows}


def user_daily_counts(
    client: Any, user_id: str, event: str | None, start: datetime, tz: str
) -> dict[date, int]:
    return _daily_counts(
        client,
        _USER_EVENTS,
        "user_id = {user:String} AND timestamp >= {start:DateTime64(3, 'UTC')}",
        {"user": user_id, "start": start},
        event,
        tz,
    )


def all_users_daily_counts(
    client: Any, event: str | None, start: datetime, tz: str
) -> dict[date, int]:
    return _daily_counts(
        client,
        _ALL_USERS_ROLLUP,
        "bucket >= {start:DateTime('UTC')}",
        {"start": start},
        event,
        tz,
    )
