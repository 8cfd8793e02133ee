"""The ClickHouse schema: table names and DDL, shared by the writer (materializer) and the reader
(query). Applied idempotently at start-up by both."""

from __future__ import annotations

from typing import Any

EVENTS_TABLE = "events"
COUNTS_PROJECTION = "event_stats_15m"
BY_NAME_PROJECTION = "events_by_name"
# Replaced by COUNTS_PROJECTION (which adds each bucket's last time); dropped on upgrade.
_OLD_PROJECTIONS = ("event_counts_15m",)

# Every column and its type, in table order: the DDL below and the worker's column-oriented
# INSERT (which names the types, so the client never asks for them) both read this.
EVENT_COLUMN_TYPES: dict[str, str] = {
    "message_id": "String",
    "user_id": "String",
    "anonymous_id": "String",
    "type": "LowCardinality(String)",
    "event": "LowCardinality(String)",
    "name": "String",
    "timestamp": "DateTime64(3, 'UTC')",
    "received_at": "DateTime64(3, 'UTC')",
    "properties": "String",
    "traits": "String",
    "context": "String",
    "source": "LowCardinality(String)",
    "kafka_partition": "UInt32",
    "kafka_offset": "UInt64",
}
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_COLUMN_TYPES)
# JSON text compresses well, and is read only when a user's sequence is shown.
_CODECS = {
    "properties": " CODEC(ZSTD(3))",
    "traits": " CODEC(ZSTD(3))",
    "context": " CODEC(ZSTD(3))",
}
_COLUMNS_DDL = ",\n        ".join(
    f"{name} {kind}{_CODECS.get(name, '')}" for name, kind in EVENT_COLUMN_TYPES.items()
)

# `properties` parsed into ClickHouse's JSON type at INSERT time, for filters and breakdowns on
# event properties: reading one key reads that key's subcolumn, not every event's JSON text (at
# 10M events a filter and a breakdown took 1.2 s on the text, 0.22 s on this with the projection
# below; docs/insights.md). Computed by ClickHouse, so the worker's INSERT does not name it.
# `accurateCastOrDefault`: properties the JSON type refuses (a key given twice, `a.b` beside
# `{"a": {"b"}}`) become `{}` here, unfilterable, instead of failing the INSERT.
TYPED_PROPERTIES = "properties_typed"
_TYPED_PROPERTIES_DDL = (
    f"{TYPED_PROPERTIES} JSON MATERIALIZED accurateCastOrDefault(properties, 'JSON')"
)
_COUNTS_PROJECTION_QUERY = """(
            SELECT event, toStartOfFifteenMinutes(timestamp), count(), max(timestamp)
            GROUP BY event, toStartOfFifteenMinutes(timestamp)
        )"""
# The analyst's reads (one event's rows over a period) as a contiguous range: without it they
# read every granule of the table, which is ordered by user (measure=users over 30 days of one
# event at 10M events: 150-200 ms without, about 50 ms with).
_BY_NAME_PROJECTION_QUERY = f"""(
            SELECT event, timestamp, user_id, {TYPED_PROPERTIES}
            ORDER BY event, timestamp
        )"""

# Ordered by user then time: a user's sequence is a contiguous range of the primary key, and the
# per-user daily counts read the same range. Counts over all users come from the projection: 15
# minutes so that any IANA zone's day boundary falls on a bucket edge. A projection, not a
# materialized view, because it is written inside each data part: atomic with the INSERT. A
# view's rows are a second part, and a worker killed between the two left the counts short.
DDL: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        {_COLUMNS_DDL},
        {_TYPED_PROPERTIES_DDL},
        INDEX message_id_bf message_id TYPE bloom_filter(0.001) GRANULARITY 4,
        PROJECTION {COUNTS_PROJECTION} {_COUNTS_PROJECTION_QUERY},
        PROJECTION {BY_NAME_PROJECTION} {_BY_NAME_PROJECTION_QUERY}
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (user_id, timestamp, message_id)
    -- A user has tens to thousands of events: smaller granules read less around them.
    SETTINGS index_granularity = 1024
    """,
)


# A table made by an earlier version gains what it lacks. Parts written before get the new
# projections by a background mutation; until it is done, queries read those parts' rows
# (right, only slower), and the typed properties are computed when read.
_UPGRADE: tuple[str, ...] = (
    f"ALTER TABLE {EVENTS_TABLE} ADD COLUMN IF NOT EXISTS {_TYPED_PROPERTIES_DDL}",
    *(f"ALTER TABLE {EVENTS_TABLE} DROP PROJECTION IF EXISTS {name}" for name in _OLD_PROJECTIONS),
)


def _projections(client: Any) -> set[str]:
    rows = client.query(
        "SELECT name FROM system.projections WHERE database = currentDatabase() "
        "AND table = {table:String}",
        parameters={"table": EVENTS_TABLE},
    ).result_rows
    return {str(row[0]) for row in rows}


# The typed properties need ClickHouse's JSON type, generally available from 25.3 (before, it
# is experimental, or absent); on an older server the DDL fails with an error that names a
# setting or a syntax, not the version. The embedded chDB bundles a newer engine.
MIN_CLICKHOUSE_VERSION = (25, 3)


class UnsupportedClickHouse(RuntimeError):
    """The ClickHouse server is older than MIN_CLICKHOUSE_VERSION."""


def check_version(version: str) -> None:
    """Refuses a ClickHouse older than MIN_CLICKHOUSE_VERSION, naming both versions."""
    try:
        found = tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return  # a build naming itself otherwise: the DDL says what it lacks, if anything
    if found < MIN_CLICKHOUSE_VERSION:
        needed = ".".join(map(str, MIN_CLICKHOUSE_VERSION))
        raise UnsupportedClickHouse(
            f"ClickHouse {version} is too old: Profilestream needs {needed} or newer "
            "(the events table's typed properties use the JSON type)"
        )


def ensure_schema(client: Any) -> None:
    check_version(str(client.query("SELECT version()").result_rows[0][0]))
    for statement in DDL:
        client.command(statement)
    for statement in _UPGRADE:
        client.command(statement)
    present = _projections(client)
    for name, projection in (
        (COUNTS_PROJECTION, _COUNTS_PROJECTION_QUERY),
        (BY_NAME_PROJECTION, _BY_NAME_PROJECTION_QUERY),
    ):
        if name not in present:
            # IF NOT EXISTS: the worker and the query service may both get here at once.
            client.command(
                f"ALTER TABLE {EVENTS_TABLE} ADD PROJECTION IF NOT EXISTS {name} {projection}"
            )
            client.command(f"ALTER TABLE {EVENTS_TABLE} MATERIALIZE PROJECTION {name}")
