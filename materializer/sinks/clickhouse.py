"""ClickHouse writer: one column-oriented INSERT per batch (the column types given, so no DESCRIBE
round trip), and the look-up of which in-flight messageIds a
crashed attempt already inserted. The client is synchronous (chDB runs in-process), so calls run
in a worker thread to keep the event loop (heartbeats, the embedded query API) responsive."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from infra.warehouse import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EVENTS_TABLE
from materializer.processing import EventColumns

COLUMN_NAMES = list(EVENT_COLUMNS)
COLUMN_TYPES = [EVENT_COLUMN_TYPES[name] for name in EVENT_COLUMNS]


class ClickHouseEventSink:
    def __init__(self, client: Any) -> None:
        self._client = client

    async def insert(self, columns: EventColumns) -> None:
        if len(columns):
            await asyncio.to_thread(
                self._client.insert,
                EVENTS_TABLE,
                columns.columns,
                column_names=COLUMN_NAMES,
                column_type_names=COLUMN_TYPES,
                column_oriented=True,
            )

    async def stored(
        self, user_ids: Sequence[str], message_ids: Sequence[str]
    ) -> dict[str, tuple[int, int]]:
        """Which of these messageIds are already in the events table, with the (partition,
        offset) their row came from."""
        if not message_ids:
            return {}
        result = await asyncio.to_thread(
            self._client.query,
            f"SELECT message_id, kafka_partition, kafka_offset FROM {EVENTS_TABLE} "  # noqa: S608
            "WHERE user_id IN {users:Array(String)} AND message_id IN {ids:Array(String)}",
            parameters={"users": list(set(user_ids)), "ids": list(message_ids)},
        )
        return {row[0]: (int(row[1]), int(row[2])) for row in result.result_rows}

    async def delete_users(self, user_ids: Sequence[str]) -> None:
        """Delete every event stored under these ids, waiting until it is done. A mutation,
        not a lightweight DELETE: it rewrites the daily-count projection too."""
        await asyncio.to_thread(
            self._client.command,
            f"ALTER TABLE {EVENTS_TABLE} DELETE WHERE user_id IN {{users:Array(String)}}",
            parameters={"users": list(user_ids)},
            settings={"mutations_sync": 2},
        )
