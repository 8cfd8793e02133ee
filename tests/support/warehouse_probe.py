"""Run in a process of its own (chDB allows one data directory per process): make an events
table as an earlier version did, or none, run `ensure_schema`, insert rows the way the worker
does, and print what the tests check as JSON.

    python -m tests.support.warehouse_probe <data dir> <old|new>
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from infra.clients import clickhouse_client
from infra.settings import Settings
from infra.warehouse import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EVENTS_TABLE, ensure_schema

# The table as it was before issue 14: no typed properties, the counts projection without the
# last time, no projection by event name.
OLD_DDL = f"""
CREATE TABLE {EVENTS_TABLE} (
    message_id String, user_id String, anonymous_id String, type LowCardinality(String),
    event LowCardinality(String), name String, timestamp DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'), properties String, traits String, context String,
    source LowCardinality(String), kafka_partition UInt32, kafka_offset UInt64,
    PROJECTION event_counts_15m (
        SELECT event, toStartOfFifteenMinutes(timestamp), count()
        GROUP BY event, toStartOfFifteenMinutes(timestamp)
    )
) ENGINE = MergeTree ORDER BY (user_id, timestamp, message_id)
"""

# Properties ingest accepts (valid JSON objects) that ClickHouse's JSON type refuses.
AWKWARD_PROPERTIES = [
    b'{"plan":"pro","plan":"free"}',
    b'{"a.b":1,"a":{"b":2}}',
    b'{"price":12.5,"company":{"name":"Initech"}}',
    b'{"at":"2026-11-03T10:00:00+02:00","day":"1900-01-01"}',
]


def insert(client: Any, properties: list[bytes]) -> None:
    """Rows as the worker's sink writes them: its column names and types, column-oriented."""
    now = datetime.now(UTC)
    size = len(properties)
    values: dict[str, list[Any]] = {
        "message_id": [f"m{i}" for i in range(size)],
        "user_id": ["u1"] * size,
        "anonymous_id": [""] * size,
        "type": ["track"] * size,
        "event": ["Probe"] * size,
        "name": [""] * size,
        "timestamp": [now] * size,
        "received_at": [now] * size,
        "properties": properties,
        "traits": [b"{}"] * size,
        "context": [b"{}"] * size,
        "source": ["probe"] * size,
        "kafka_partition": [0] * size,
        "kafka_offset": list(range(size)),
    }
    client.insert(
        EVENTS_TABLE,
        [values[name] for name in EVENT_COLUMNS],
        column_names=list(EVENT_COLUMNS),
        column_type_names=[EVENT_COLUMN_TYPES[name] for name in EVENT_COLUMNS],
        column_oriented=True,
    )


def main(path: str, start: str) -> dict[str, Any]:
    client = clickhouse_client(Settings.from_environment({"PS_CLICKHOUSE_DSN": f"chdb://{path}"}))
    if start == "old":
        client.command(OLD_DDL)
        insert(client, [b'{"plan":"pro"}', b'{"plan":"free"}'])
    ensure_schema(client)
    ensure_schema(client)  # idempotent
    if start == "new":
        insert(client, AWKWARD_PROPERTIES)
    projections = sorted(
        str(row[0])
        for row in client.query(
            "SELECT name FROM system.projections WHERE table = {t:String}",
            parameters={"t": EVENTS_TABLE},
        ).result_rows
    )
    for _ in range(100):  # the upgrade's MATERIALIZE PROJECTION runs in the background
        pending = client.query("SELECT count() FROM system.mutations WHERE NOT is_done")
        if pending.result_rows[0][0] == 0:
            break
        time.sleep(0.1)
    parts_with = client.query(
        "SELECT name, count() FROM system.projection_parts WHERE active AND table = {t:String} "
        "GROUP BY name ORDER BY name",
        parameters={"t": EVENTS_TABLE},
    ).result_rows
    typed = client.query(
        f"SELECT properties, toJSONString(properties_typed) FROM {EVENTS_TABLE} "
        "ORDER BY kafka_offset"
    ).result_rows
    texts = client.query(
        f"SELECT toString(properties_typed.at), toString(properties_typed.day), "
        f"toTypeName(properties_typed.at) FROM {EVENTS_TABLE} WHERE properties_typed.at IS NOT NULL"
    ).result_rows
    return {
        "projections": projections,
        "projection_parts": {str(name): int(n) for name, n in parts_with},
        "rows": [[str(text), str(typed_text)] for text, typed_text in typed],
        "date_like": [[str(cell) for cell in row] for row in texts],
    }


if __name__ == "__main__":
    sys.stdout.write(orjson.dumps(main(sys.argv[1], sys.argv[2])).decode())
