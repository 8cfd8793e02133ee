"""Events written straight into an events table at known times (every column settable), in a
database of the test module's own on the session's chDB, and a merged user in Valkey: what the
catalog and sequence-CSV tests count against."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
import httpx
import redis.asyncio as aioredis

from infra.clients import TYPED_JSON_SETTINGS
from infra.settings import Settings
from infra.warehouse import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EVENTS_TABLE, ensure_schema
from profilestore.writer import ProfileWriter
from query.app import create_app
from tests.support import profiles
from tests.support.publishers import RecordingPublisher


@dataclass(frozen=True)
class EventRow:
    message_id: str
    user_id: str
    event: str
    timestamp: datetime  # UTC, whole milliseconds (the column is DateTime64(3))
    properties: Mapping[str, Any] = field(default_factory=dict)
    type: str = "track"
    name: str = ""
    traits: Mapping[str, Any] = field(default_factory=dict)
    protocol: str = ""
    source: str = "test"
    received_at: datetime = datetime(2026, 12, 1, tzinfo=UTC)


def insert_events(client: Any, rows: Sequence[EventRow]) -> None:
    """One INSERT naming the stored columns, as the worker's, so ClickHouse computes the
    materialized one (properties_typed)."""
    data = []
    for n, row in enumerate(rows):
        context = {"protocol": row.protocol} if row.protocol else {}
        values = {
            "message_id": row.message_id,
            "user_id": row.user_id,
            "anonymous_id": "",
            "type": row.type,
            "event": row.event,
            "name": row.name,
            "timestamp": row.timestamp,
            "received_at": row.received_at,
            "properties": json.dumps(row.properties),
            "traits": json.dumps(row.traits),
            "context": json.dumps(context),
            "source": row.source,
            "kafka_partition": 0,
            "kafka_offset": n,
        }
        data.append([values[column] for column in EVENT_COLUMNS])
    client.insert(
        EVENTS_TABLE,
        data,
        column_names=list(EVENT_COLUMNS),
        column_type_names=[EVENT_COLUMN_TYPES[c] for c in EVENT_COLUMNS],
    )


@contextmanager
def own_database(chdb_client: Any, prefix: str) -> Iterator[Any]:
    """A client on a new database of the session's chDB (one data directory per process), with
    the events schema and the session settings of infra/clients.py, dropped afterwards: no
    other test's events are in it."""
    database = f"{prefix}_{uuid.uuid4().hex[:8]}"
    chdb_client.command(f"CREATE DATABASE {database}")
    client = clickhouse_connect.get_client(
        dsn=f"chdb://{chdb_client.path}", database=database, settings=TYPED_JSON_SETTINGS
    )
    try:
        ensure_schema(client)
        yield client
    finally:
        chdb_client.command(f"DROP DATABASE IF EXISTS {database}")


async def make_profiles(redis_url: str, users: Sequence[str], merged: Mapping[str, str]) -> None:
    """Profiles for `users`, and each anonymous id of `merged` (anonymous id -> user) folded
    into its user, as the worker does on identify."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        writer = ProfileWriter(client)
        t, today = profiles.T, profiles.TODAY
        await writer.apply_changes(
            {user: [profiles.event(t)] for user in [*users, *merged]}, today=today
        )
        for anonymous_id, user in merged.items():
            await writer.apply_changes(
                {user: [profiles.event(t + 1, kn=1, mg=anonymous_id)]}, today=today
            )
    finally:
        await client.aclose()


@asynccontextmanager
async def query_api(
    valkey_url: str, clickhouse: Any, token: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The query service's app on `clickhouse` and the Valkey at `valkey_url`, over ASGI, signed
    in with `token` (management writes go to a recording publisher)."""
    settings = Settings.from_environment({"PS_ADMIN_TOKEN": token, "PS_REDIS_URL": valkey_url})
    redis = aioredis.Redis.from_url(valkey_url)
    app = create_app(settings, redis, clickhouse, RecordingPublisher(settings))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://query",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ) as http:
            yield http
    finally:
        await redis.aclose()
