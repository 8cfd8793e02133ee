"""HTTP response bodies shared by the ingest and query services."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from schemas.messages import FieldError


class ErrorBody(BaseModel):
    """Every error: `code` and `message` (what Segment-spec clients read) plus the details."""

    success: bool = False
    code: str
    message: str
    errors: list[FieldError] = Field(default_factory=list)


class RejectedEvent(BaseModel):
    index: int
    messageId: str | None = None
    errors: list[FieldError]


class IngestResponse(BaseModel):
    success: bool = True
    accepted: int
    rejected: list[RejectedEvent] = Field(default_factory=list)


class StoredEvent(BaseModel):
    messageId: str
    type: str
    name: str
    # page/screen: the Segment `name` of the page or screen
    pageName: str | None = None
    timestamp: datetime
    receivedAt: datetime
    properties: dict[str, Any]
    traits: dict[str, Any] = Field(default_factory=dict)
    # the write key's source, and the protocol it came in by: "posthog", "mixpanel",
    # "amplitude", "segment-webhook", "rudderstack-webhook"; null for the Segment API (/v1)
    source: str = ""
    protocol: str | None = None


class EventPage(BaseModel):
    events: list[StoredEvent]
    next_cursor: str | None = None


class DailyCount(BaseModel):
    date: date
    count: int


class InsightSeries(BaseModel):
    """One line of an insights chart: an event (None: all events) and a breakdown value."""

    event: str | None
    breakdown_value: str | None = Field(description="None: not set, or no breakdown")
    other: bool = Field(description="the values outside the breakdown's top N")
    label: str
    values: list[int] | list[float] = Field(description="one per period, in order")
    total: int | float = Field(description="events: the sum; users: unique over the range")


class InsightCounts(BaseModel):
    interval: str
    measure: str
    tz: str
    week_start: str
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    events: list[str] | None
    where: list[str]
    breakdown: str | None
    user: str | None
    periods: list[str] = Field(description="each period's start: a date, or a local time")
    series: list[InsightSeries]


class EventName(BaseModel):
    name: str
    count: int
    last_seen: datetime


class EventNames(BaseModel):
    from_: datetime = Field(serialization_alias="from")
    to: datetime
    events: list[EventName]


class TopValue(BaseModel):
    value: str
    count: int


class EventProperty(BaseModel):
    property: str
    types: list[str]
    count: int
    top_values: list[TopValue]


class EventProperties(BaseModel):
    event: str
    sampled: int
    properties: list[EventProperty]
