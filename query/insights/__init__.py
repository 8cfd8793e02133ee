"""Analyst insights over the events table (part of the query service): counts of events,
unique users and events per user by hour, day, week or month, filtered and broken down by
event properties. Pure parsing (params), periods and assembly (series) around one I/O step
(sql)."""

from __future__ import annotations

from typing import Any

from query.insights.params import CountsQuery
from query.insights.series import assemble
from query.insights.sql import counts
from schemas.api import InsightCounts


def run_counts(client: Any, query: CountsQuery, user_ids: list[str] | None = None) -> InsightCounts:
    """The answer of GET /v1/insights/counts (blocking: call it in a thread from async code).
    `user_ids`: every id the `user`'s events are stored under."""
    return assemble(query, counts(client, query, user_ids))
