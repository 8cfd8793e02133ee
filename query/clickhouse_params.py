"""ClickHouse query parameters that clickhouse-connect would otherwise mangle, its times made
aware, and the client that bounds what one analyst query may cost."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def utc(value: datetime) -> datetime:
    """A time as ClickHouse returns it (naive when the column's zone is UTC), aware in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Identifier:
    """A value for an `{name:Identifier}` parameter, sent as is. clickhouse-connect escapes a
    str parameter (backslash, quote, backtick, tab, newline) for the text formats ClickHouse
    unescapes, but ClickHouse takes an Identifier's value literally: a path such as `it's`
    would name no subcolumn and read as absent everywhere (chDB 26.9, clickhouse-connect 1.12).
    Any other object is bound as its str(). Still a bound parameter: the value is only ever an
    identifier, never SQL."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Identifier({self.name!r})"


# ClickHouse's codes for a query stopped by the limits below.
_LIMIT_CODES = ("Code: 159.", "Code: 241.")  # TIMEOUT_EXCEEDED, MEMORY_LIMIT_EXCEEDED


class LimitedClient:
    """A ClickHouse client whose every `query` stops past a time and memory budget: an analyst
    request's size is bounded, but a range of years or a breakdown by an all-unique property
    still reads or groups millions of rows, in the process that (embedded) also runs the
    worker. The query's own settings come on top."""

    def __init__(self, client: Any, max_seconds: float, max_memory_mb: int) -> None:
        self._client = client
        self.limits: dict[str, Any] = {
            "max_execution_time": max_seconds,
            "timeout_overflow_mode": "throw",
            "max_memory_usage": max_memory_mb * 1024 * 1024,
        }

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> Any:
        merged = {**self.limits, **(settings or {})}
        return self._client.query(sql, parameters=parameters, settings=merged)


def over_limits(exc: Exception) -> bool:
    """Whether ClickHouse stopped the query for the limits of a `LimitedClient`."""
    return any(code in str(exc) for code in _LIMIT_CODES)
