"""The event catalog: which event names exist in a period (with volume and last time seen), and
which properties one event carries (types, how often, top values). SQL with bound parameters
only (property paths as `{p:Identifier}`); the assembly of the answers is pure."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.warehouse import EVENTS_TABLE, TYPED_PROPERTIES
from query.clickhouse_params import Identifier, utc
from query.insights.periods import split_on_buckets
from query.insights.sql import in_ranges

SAMPLE_SIZE = 10_000
MAX_PROPERTIES = 200
TOP_VALUES = 5


@dataclass(frozen=True)
class EventNameCount:
    name: str
    count: int
    last_seen: datetime


@dataclass(frozen=True)
class PathType:
    """How many sampled events have `path` with values of ClickHouse type `kind`."""

    path: str
    kind: str
    count: int


@dataclass(frozen=True)
class PropertyStats:
    property: str
    types: list[str]
    count: int
    top_values: list[tuple[str, int]]


# --- event names --------------------------------------------------------------------------


_NAME_FILTER = " AND positionCaseInsensitiveUTF8(event, {q:String}) > 0"


def _event_names_sql(
    whole: tuple[datetime, datetime] | None,
    edges: Sequence[tuple[datetime, datetime]],
    search: bool,
) -> tuple[str, dict[str, Any]]:
    name_filter = _NAME_FILTER if search else ""
    params: dict[str, Any] = {}
    parts = []
    if whole is not None:
        params["b0"], params["b1"] = whole
        # In the projection's own terms (grouped by event, filtered on the bucket), so ClickHouse
        # reads the per-bucket counts and not the rows. Grouped by event only: the projection's
        # states merge straight into one row per event (20 ms at 10M events, against 60 ms
        # grouping by event and bucket and summing outside). Without the primary key, as
        # query/sql.py all_users_daily_counts explains; for this part only (the edges below
        # use the events_by_name key to read a few granules).
        parts.append(
            "SELECT event, count() AS n, max(timestamp) AS last "  # noqa: S608
            f"FROM {EVENTS_TABLE} "
            "WHERE toStartOfFifteenMinutes(timestamp) >= {b0:DateTime('UTC')} "
            "AND toStartOfFifteenMinutes(timestamp) < {b1:DateTime('UTC')}"
            f"{name_filter} GROUP BY event SETTINGS use_primary_key = 0"
        )
    if edges:
        parts.append(
            "SELECT event, count() AS n, max(timestamp) AS last "  # noqa: S608
            f"FROM {EVENTS_TABLE} WHERE {in_ranges(edges, params)}{name_filter} GROUP BY event"
        )
    sql = (
        "SELECT event, sum(n) AS total, max(last) FROM ("  # noqa: S608
        + " UNION ALL ".join(parts)
        + ") GROUP BY event ORDER BY total DESC, event LIMIT {limit:UInt32}"
    )
    return sql, params


def event_names(
    client: Any, start: datetime, end: datetime, q: str | None, limit: int
) -> list[EventNameCount]:
    """Every event name with rows in [start, end) (containing `q`, case-insensitively), by
    count desc then name, at most `limit`."""
    whole, edges = split_on_buckets(start, end)
    if whole is None and not edges:
        return []
    sql, params = _event_names_sql(whole, edges, bool(q))
    params["limit"] = limit
    if q:
        params["q"] = q
    rows = client.query(sql, parameters=params).result_rows
    return [
        EventNameCount(name=str(name), count=int(n), last_seen=utc(last)) for name, n, last in rows
    ]


# --- properties of one event ----------------------------------------------------------------


def _sample_sql(columns: str) -> str:
    # The latest events of the name in the range: the events_by_name projection (ordered by
    # event, timestamp) makes this a range read in reverse order, stopped at the limit.
    return (
        f"SELECT {columns} FROM {EVENTS_TABLE} "  # noqa: S608
        "WHERE event = {event:String} AND timestamp >= {start:DateTime64(3, 'UTC')} "
        "AND timestamp < {end:DateTime64(3, 'UTC')} "
        "ORDER BY timestamp DESC LIMIT {sample:UInt32}"
    )


def path_types(
    client: Any, event: str, start: datetime, end: datetime
) -> tuple[int, list[PathType]]:
    """(how many events were sampled, every leaf path of their properties with each of its
    ClickHouse types and how many sampled events had it so)."""
    sample = _sample_sql(f"JSONAllPathsWithTypes({TYPED_PROPERTIES}) AS m")
    # The sample's size rides on every row (a window over the sample); LEFT ARRAY JOIN keeps
    # events without any property, as one row with an empty type, so that the count holds.
    sql = (
        "SELECT sampled, path, kind, count() FROM ("  # noqa: S608
        f"SELECT m, count() OVER () AS sampled FROM ({sample})"
        ") LEFT ARRAY JOIN mapKeys(m) AS path, mapValues(m) AS kind "
        "GROUP BY sampled, path, kind"
    )
    params = {"event": event, "start": start, "end": end, "sample": SAMPLE_SIZE}
    rows = client.query(sql, parameters=params).result_rows
    sampled = int(rows[0][0]) if rows else 0
    # The empty key ({"": 1}) is a path no filter can name and no Identifier can bind: left out.
    found = [PathType(str(path), str(kind), int(n)) for _, path, kind, n in rows if kind and path]
    return sampled, found


def top_values(
    client: Any, event: str, start: datetime, end: datetime, paths: Sequence[str]
) -> dict[str, list[tuple[str, int]]]:
    """The `TOP_VALUES` most frequent values (as ClickHouse prints them) of each path over the
    same sample, in one query: one subcolumn per path, bound as an Identifier."""
    wanted = list(paths)
    if not wanted:
        return {}
    params: dict[str, Any] = {"event": event, "start": start, "end": end, "sample": SAMPLE_SIZE}
    columns, pairs = [], []
    for i, path in enumerate(wanted):
        params[f"p{i}"] = Identifier(path)
        columns.append(f"{TYPED_PROPERTIES}.{{p{i}:Identifier}} AS v{i}")
        pairs.append(f"tuple({i}, v{i})")
    # The paths' subcolumns of the sample (not every path of the JSON column), each made one
    # (index, value) row outside the sample's LIMIT.
    sql = (
        "SELECT pv.1 AS i, toString(pv.2) AS value, count() AS n "  # noqa: S608
        f"FROM ({_sample_sql(', '.join(columns))}) ARRAY JOIN [{', '.join(pairs)}] AS pv "
        "WHERE NOT isNull(pv.2) "
        "GROUP BY i, value ORDER BY i, n DESC, value LIMIT {top:UInt8} BY i"
    )
    params["top"] = TOP_VALUES
    found: dict[str, list[tuple[str, int]]] = {}
    for i, value, n in client.query(sql, parameters=params).result_rows:
        found.setdefault(wanted[int(i)], []).append((str(value), int(n)))
    return found


_NUMBER = re.compile(r"(U?Int\d+|Float\d+|BFloat16|Decimal\d*(\(.*\))?)")


def friendly_type(kind: str) -> str:
    """Pure: the name an analyst reads for a ClickHouse type of a JSON path. Dates are JSON
    strings ClickHouse recognised as dates (their values print as ClickHouse writes them)."""
    for wrapper in ("Nullable(", "LowCardinality("):
        while kind.startswith(wrapper) and kind.endswith(")"):
            kind = kind[len(wrapper) : -1]
    if kind.startswith("Array("):
        return "array"
    if kind == "Bool":
        return "boolean"
    if _NUMBER.fullmatch(kind):
        return "number"
    if kind in ("Date", "Date32"):
        return "date"
    if kind.startswith("DateTime"):
        return "datetime"
    if kind.startswith(("JSON", "Object", "Map(", "Tuple(")):
        return "object"
    if kind.startswith(("String", "FixedString", "UUID", "IPv4", "IPv6", "Enum")):
        return "string"
    if kind == "None":
        return "null"
    return kind.lower()


def property_stats(
    found: Iterable[PathType], values: dict[str, list[tuple[str, int]]]
) -> list[PropertyStats]:
    """Pure: one entry per path (its friendly types, most common first; how many sampled
    events have it), ordered by count desc then path, at most `MAX_PROPERTIES`."""
    counts: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = {}
    for item in found:
        counts[item.path] += item.count
        kinds.setdefault(item.path, Counter())[friendly_type(item.kind)] += item.count
    ordered = sorted(counts, key=lambda path: (-counts[path], path))[:MAX_PROPERTIES]
    return [
        PropertyStats(
            property=path,
            types=sorted(kinds[path], key=lambda kind: (-kinds[path][kind], kind)),
            count=counts[path],
            top_values=values.get(path, []),
        )
        for path in ordered
    ]


def event_properties(
    client: Any, event: str, start: datetime, end: datetime
) -> tuple[int, list[PropertyStats]]:
    """(sampled, the properties of the latest `SAMPLE_SIZE` events named `event` in range)."""
    sampled, found = path_types(client, event, start, end)
    if not found:
        return sampled, []
    # Top values only for the paths that will be shown.
    shown = property_stats(found, {})
    values = top_values(client, event, start, end, [stats.property for stats in shown])
    return sampled, property_stats(found, values)
