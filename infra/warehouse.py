"""The ClickHouse schema: table names and DDL, shared by the writer (materializer) and the reader
(query). Applied idempotently at start-up by both."""

from __future__ import annotations

from typing import Any

EVENTS_TABLE = "events"
DAILY_TABLE = "event_counts_15m"
DAILY_VIEW = "event_counts_15m_mv"

EVENT_COLUMNS: tuple[str, ...] = (
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
    "kafka_partition",
    "kafka_offset",
)

# Ordered by user then time: a user's sequence is a contiguous range of the primary key, and the
# per-user daily counts read the same range. Counts over all users come from the 15-minute
# rollup below (15 minutes so any IANA zone's day boundary falls on a bucket edge).
DDL: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        message_id String,
        user_id String,
        anonymous_id String,
        type LowCardinality(String),
        event LowCardinality(String),
        name String,
        timestamp DateTime64(3, 'UTC'),
        received_at DateTime64(3, 'UTC'),
        properties String CODEC(ZSTD(3)),
        traits String CODEC(ZSTD(3)),
        context String CODEC(ZSTD(3)),
        source LowCardinality(String),
        kafka_partition UInt32,
        kafka_offset UInt64,
        INDEX message_id_bf message_id TYPE bloom_filter(0.001) GRANULARITY 4
    ) ENGINE = MergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (user_id, timestamp, message_id)
    -- A user has tens to thousands of events: smaller granules read less around them.
    SETTINGS index_granularity = 1024
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {DAILY_TABLE} (
        event LowCardinality(String),
        bucket DateTime('UTC'),
        count Int64
    ) ENGINE = SummingMergeTree
    ORDER BY (event, bucket)
    """,
    f"""
    CREATE MATERIALIZED VIEW IF NOT EXISTS {DAILY_VIEW} TO {DAILY_TABLE} AS
    SELECT event, toStartOfFifteenMinutes(timestamp) AS bucket, count() AS count
    FROM {EVENTS_TABLE}
    GROUP BY event, bucket
    """,
)


def ensure_schema(client: Any) -> None:
    for statement in DDL:
        client.command(statement)
