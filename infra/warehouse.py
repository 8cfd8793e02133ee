"""The ClickHouse schema: table names and DDL, shared by the writer (materializer) and the reader
(query). Applied idempotently at start-up by both."""

from __future__ import annotations

from typing import Any

EVENTS_TABLE = "events"
COUNTS_PROJECTION = "event_counts_15m"

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

# Ordered by user then time: a user's sequence is a contiguous range of the primary key, and the
# per-user daily counts read the same range. Counts over all users come from the projection: 15
# minutes so that any IANA zone's day boundary falls on a bucket edge. A projection, not a
# materialized view, because it is written inside each data part: atomic with the INSERT. A
# view's rows are a second part, and a worker killed between the two left the counts short.
DDL: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        {_COLUMNS_DDL},
        INDEX message_id_bf message_id TYPE bloom_filter(0.001) GRANULARITY 4,
        PROJECTION {COUNTS_PROJECTION} (
            SELECT event, toStartOfFifteenMinutes(timestamp), count()
            GROUP BY event, toStartOfFifteenMinutes(timestamp)
        )
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (user_id, timestamp, message_id)
    -- A user has tens to thousands of events: smaller granules read less around them.
    SETTINGS index_granularity = 1024
    """,
)


def ensure_schema(client: Any) -> None:
    for statement in DDL:
        client.command(statement)
