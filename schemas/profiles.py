"""The user profile as stored in Redis and served by the query API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class LastEvent(BaseModel):
    message_id: str
    type: str
    name: str
    timestamp: datetime


class Profile(BaseModel):
    user_id: str
    first_seen: datetime
    last_seen: datetime
    event_count: int
    # Totals per event name (`$identify`, `$page`, ... for the non-track types).
    event_totals: dict[str, int] = Field(default_factory=dict)
    last_event: LastEvent | None = None
    # Identify traits merged into properties; the newest write by event time wins per property.
    properties: dict[str, Any] = Field(default_factory=dict)
    anonymous_ids: list[str] = Field(default_factory=list)
