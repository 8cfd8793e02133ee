"""The ClickHouse queries of the insights counts. Values are bound parameters and property
paths `Identifier` parameters (ClickHouse quotes them); only constants are formatted in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.warehouse import EVENTS_TABLE, TYPED_PROPERTIES
from query.clickhouse_params import Identifier
from query.insights.params import CountsQuery, Filter
from query.insights.periods import split_on_buckets
from query.zones import local_time_sql


def _period_key(query: CountsQuery, instant: str, params: dict[str, Any]) -> str:
    """A period's key from an instant (a row's time, or a 15-minute bucket's start), local
    times computed from the zone's offsets as query/zones.py found them (not ClickHouse's copy
    of the zone, which may differ):
    - hour: the start of the local hour, the last instant at or before it whose local minute
      is 0 (query/insights/periods.py): the instant minus its local minutes, and that again,
      because when a 30-minute DST change came between (Lord Howe) the first step lands on a :30;
    - day/week/month: the local date of the period's first day."""
    local = local_time_sql(query.range.zone, query.range.start, query.range.end, params)
    if query.interval == "hour":

        def minus_local_minutes(moment: str) -> str:
            return f"{moment} - toIntervalMinute(toMinute({local(moment)}))"

        return minus_local_minutes(minus_local_minutes(f"toStartOfMinute({instant})"))
    day = f"toDate({local(instant)})"
    if query.interval == "day":
        return day
    if query.interval == "week":
        return f"subtractDays({day}, (toDayOfWeek({day}) + 7 - {{week_start:UInt8}}) % 7)"
    return f"toStartOfMonth({day})"


@dataclass(frozen=True)
class CountRow:
    """One cell of the answer: a series' value in one period, or (period None) its total."""

    event: str | None  # None: all events
    value: str | None  # the breakdown value; None: not set (or no breakdown)
    other: bool  # the breakdown's "other" (values outside the top N)
    period: object | None
    events: int
    users: int


def _event_column(query: CountsQuery) -> str:
    """A series per named event, or one series (NULL) over all events."""
    return "event" if query.events else "CAST(NULL, 'Nullable(String)')"


def _filter_sql(index: int, where: Filter, params: dict[str, Any]) -> str:
    """One `where`: a property's text is what ClickHouse prints of its value (an absent or
    null property is NULL for `IS NULL`, and '' for `toString`, hence the IS NULL guards)."""
    params[f"p{index}"] = Identifier(where.property)
    path = f"{TYPED_PROPERTIES}.{{p{index}:Identifier}}"
    text = f"toString({path})"
    value = f"{{v{index}:String}}"
    if where.op in ("gt", "lt"):
        params[f"v{index}"] = where.number
        sign = ">" if where.op == "gt" else "<"
        # The value's number as the JSON type stored it (a subcolumn per type: reading those
        # took 60 ms at 10M events where printing and parsing every value took 73), or a
        # string that holds one. "inf" and "nan" parse as floats; they are not compared.
        number = (
            f"coalesce({path}.:Float64, toFloat64({path}.:Int64), toFloat64({path}.:UInt64), "
            f"toFloat64OrNull({path}.:String))"
        )
        return f"ifNull(isFinite({number}) AND {number} {sign} {{v{index}:Float64}}, 0)"
    params[f"v{index}"] = where.value
    if where.op == "eq":
        return f"({path} IS NOT NULL AND {text} = {value})"
    if where.op == "neq":
        return f"({path} IS NULL OR {text} != {value})"
    if where.op == "contains":
        return f"({path} IS NOT NULL AND positionCaseInsensitiveUTF8({text}, {value}) > 0)"
    if where.op == "set":
        return f"{path} IS NOT NULL"
    return f"{path} IS NULL"


def _common(query: CountsQuery, user_ids: list[str] | None) -> tuple[list[str], dict[str, Any]]:
    params: dict[str, Any] = {
        "week_start": query.range.week_start,
        "start": query.range.start,
        "end": query.range.end,
    }
    conditions: list[str] = []
    if user_ids is not None:
        params["users"] = user_ids
        conditions.append("user_id IN {users:Array(String)}")
    if query.events:
        params["events"] = list(query.events)
        conditions.append("event IN {events:Array(String)}")
    return conditions, params


def in_ranges(ranges: Sequence[tuple[datetime, datetime]], params: dict[str, Any]) -> str:
    """A condition: the row's time in one of `ranges` ([start, end) each), bound into
    `params` (the partial 15-minute buckets at a range's ends, read as rows)."""
    conditions = []
    for i, (low, high) in enumerate(ranges):
        params[f"edge{i}_start"], params[f"edge{i}_end"] = low, high
        conditions.append(
            f"(timestamp >= {{edge{i}_start:DateTime64(3, 'UTC')}} "
            f"AND timestamp < {{edge{i}_end:DateTime64(3, 'UTC')}})"
        )
    return f"({' OR '.join(conditions)})"


def _projection_counts(query: CountsQuery) -> tuple[str, dict[str, Any]]:
    """Events per period from the 15-minute counts projection (whole buckets inside the range)
    plus the rows of the partial buckets at its two ends."""
    conditions, params = _common(query, None)
    whole, edges = split_on_buckets(query.range.start, query.range.end)
    by_event = "event, " if query.events else ""
    inner = (
        f"SELECT {by_event}toStartOfFifteenMinutes(timestamp) AS bucket, count() AS n "  # noqa: S608
        f"FROM {EVENTS_TABLE} WHERE "
    )
    prefix = "".join(f"{c} AND " for c in conditions)
    parts = []
    if whole is not None:
        params["whole_start"], params["whole_end"] = whole
        # In the projection's own terms, and without the table's primary key: it starts with
        # user_id and cannot narrow this read, yet weighing it against the projection searched
        # every granule (see query/sql.py all_users_daily_counts). For this part only: the
        # edges below read a few granules through the events_by_name projection's key.
        parts.append(
            inner + prefix + "toStartOfFifteenMinutes(timestamp) >= {whole_start:DateTime('UTC')} "
            "AND toStartOfFifteenMinutes(timestamp) < {whole_end:DateTime('UTC')} "
            f"GROUP BY {by_event}bucket SETTINGS use_primary_key = 0"
        )
    if edges:
        parts.append(inner + prefix + f"{in_ranges(edges, params)} GROUP BY {by_event}bucket")
    event = _event_column(query)
    period = _period_key(query, "bucket", params)
    sql = (
        f"SELECT {event} AS e, {period} AS period, sum(n) AS events, "  # noqa: S608
        "grouping(period) AS is_total "
        f"FROM ({' UNION ALL '.join(parts)}) GROUP BY GROUPING SETS ((e, period), (e))"
    )
    return sql, params


# Unique users: exact sets of 64-bit hashes of the ids, one per period, merged for the total
# (not a second pass over the rows). At 10M events a day-by-day count of one event over 30 days
# took 142 ms counting the ids themselves in both grouping sets, 67 ms so. Two ids share a hash
# with odds of about n^2 / 2^65: 3 in 10 billion for 100,000 users.
_USERS_STATE = "uniqExactState(cityHash64(user_id))"


def _row_counts(query: CountsQuery, user_ids: list[str] | None) -> tuple[str, dict[str, Any]]:
    """Events and unique users per period from the rows (the `events_by_name` projection when
    events are named, the user's key range when a user is): filters, breakdowns, users. One
    pass over the rows, grouped by (event, breakdown value, period); the totals and the top N
    are computed over those groups."""
    conditions, params = _common(query, user_ids)
    conditions.append(
        "timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {end:DateTime64(3, 'UTC')}"
    )
    conditions.extend(_filter_sql(i, f, params) for i, f in enumerate(query.filters))
    where = " AND ".join(conditions)
    event = _event_column(query)
    period = _period_key(query, "timestamp", params)
    state, users = ("0", "0") if query.measure == "events" else (_USERS_STATE, "uniqExactMerge(s)")
    if query.breakdown is None:
        groups = (
            f"SELECT {event} AS e, {period} AS period, count() AS n, {state} AS s "  # noqa: S608
            f"FROM {EVENTS_TABLE} WHERE {where} GROUP BY e, period"
        )
        sql = (
            f"SELECT e, period, sum(n) AS events, {users} AS users, "  # noqa: S608
            f"grouping(period) AS is_total FROM ({groups}) "
            "GROUP BY GROUPING SETS ((e, period), (e))"
        )
        return sql, params
    params["breakdown"] = Identifier(query.breakdown)
    params["breakdown_limit"] = query.breakdown_limit
    path = f"{TYPED_PROPERTIES}.{{breakdown:Identifier}}"
    value = f"if({path} IS NULL, NULL, toString({path}))"
    groups = (
        f"SELECT {event} AS e, {value} AS v, {period} AS period, count() AS n, {state} AS s "  # noqa: S608
        f"FROM {EVENTS_TABLE} WHERE {where} GROUP BY e, v, period"
    )
    # A value's rank by its events over the range and the chosen events (ties by value, NULL
    # (not set) last), over the groups: the top N keep their value, the rest are "other".
    ranked = (
        "SELECT e, v, period, n, s, "  # noqa: S608
        "dense_rank() OVER (ORDER BY total DESC, v) <= {breakdown_limit:UInt8} AS in_top "
        f"FROM (SELECT e, v, period, n, s, sum(n) OVER (PARTITION BY v) AS total FROM ({groups}))"
    )
    sql = (
        "SELECT e, in_top, if(in_top, v, NULL) AS b, period, sum(n) AS events, "  # noqa: S608
        f"{users} AS users, grouping(period) AS is_total FROM ({ranked}) "
        "GROUP BY GROUPING SETS ((e, in_top, b, period), (e, in_top, b))"
    )
    return sql, params


def counts(client: Any, query: CountsQuery, user_ids: list[str] | None) -> list[CountRow]:
    """Every cell of the answer, unordered and not zero-filled (query/insights/series.py)."""
    fast = (
        query.measure == "events"
        and not query.filters
        and query.breakdown is None
        and user_ids is None
    )
    if fast:
        sql, params = _projection_counts(query)
        result = client.query(sql, parameters=params).result_rows
        return [
            CountRow(e, None, False, None if total else period, int(n), 0)
            for e, period, n, total in result
        ]
    sql, params = _row_counts(query, user_ids)
    result = client.query(sql, parameters=params).result_rows
    if query.breakdown is None:
        return [
            CountRow(e, None, False, None if total else period, int(n), int(u))
            for e, period, n, u, total in result
        ]
    return [
        CountRow(e, b if in_top else None, not in_top, None if total else period, int(n), int(u))
        for e, in_top, b, period, n, u, total in result
    ]
