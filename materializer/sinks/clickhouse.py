"""ClickHouse writer: one INSERT per batch, and the look-up of which in-flight messageIds a
crashed attempt already inserted. The client is synchronous (chDB runs in-process), so calls run
in a worker thread to keep the event loop (heartbeats, the embedded query API) responsive."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from infra.warehouse import EVENT_COLUMNS, EVENTS_TABLE


class ClickHouseEventSink:
    def __init__(self, client: Any) -> None:
        self._client = client

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await asyncio.to_thread(
                self._client.insert, EVENTS_TABLE, list(rows), column_names=list(EVENT_COLUMNS)
            )

    async def stored(self, user_ids: Sequence[str], message_ids: Sequence[str]) -> set[str]:
        """Which of these messageIds are already in the events table."""
        if not message_ids:
            return set()
        result = await asyncio.to_thread(
            self._client.query,
            f"SELECT DISTINCT message_id FROM {EVENTS_TABLE} "  # noqa: S608 - constant name
            "WHERE user_id IN {users:Array(String)} AND message_id IN {ids:Array(String)}",
            parameters={"users": list(set(user_ids)), "ids": list(message_ids)},
        )
        return {row[0] for row in result.result_rows}

    async def delete_users(self, user_ids: Sequence[str]) -> None:
        """Delete every event stored under these ids, waiting until it is done. A mutation,
        not a lightweight DELETE: it rewrites the daily-count projection too."""
        await asyncio.to_thread(
            self._client.command,
            f"ALTER TABLE {EVENTS_TABLE} DELETE WHERE user_id IN {{users:Array(String)}}",
            parameters={"users": list(user_ids)},
            settings={"mutations_sync": 2},
        )
