"""The user profile as stored in Redis and served by the query API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.commands import Status


class LastEvent(BaseModel):
    message_id: str
    type: str
    name: str
    timestamp: datetime


class ProfileRejection(BaseModel):
    """A write the materializer did not apply to the profile (the event itself is stored)."""

    field: str
    reason: str
    message_id: str
    at: datetime


class Profile(BaseModel):
    user_id: str
    status: Status = "active"
    # False for a profile only ever seen under an anonymousId.
    identified: bool = False
    # Default properties, by name.
    customer_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    gender: str | None = None
    birthday: str | None = None
    country: str | None = None
    city: str | None = None
    language: str | None = None
    timezone: str | None = None
    custom: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    created_at: datetime | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    event_count: int = 0
    # Totals per event name (`$identify`, `$page`, ... for the non-track types).
    event_totals: dict[str, int] = Field(default_factory=dict)
    last_event: LastEvent | None = None
    # Anonymous ids merged into this profile: their events belong to this user.
    anonymous_ids: list[str] = Field(default_factory=list)
    # The newest writes that broke a constraint or an identity rule (at most 20).
    rejections: list[ProfileRejection] = Field(default_factory=list)


class ConfigChange(BaseModel):
    variation: str
    at: datetime


class ConfigAssignment(BaseModel):
    """The variation of one dynamic config served to a user."""

    config: str
    variation: str
    first_served: datetime
    last_served: datetime
    times_served: int
    # Each change of variation, oldest first (at most 50).
    history: list[ConfigChange]


class UserSummary(BaseModel):
    """One row of the users list."""

    user_id: str
    customer_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    status: Status = "active"
    tags: list[str] = Field(default_factory=list)
    last_seen: datetime | None = None


class UserPage(BaseModel):
    users: list[UserSummary]
    next_cursor: str | None = None
