"""The query API's live debugger (GET /v1/debugger/events), what the dashboard's Debugger page
reads: the events arriving now and the items ingest refused, newest last."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.messages import FieldError

DebuggerKind = Literal["accepted", "rejected"]


class DebuggerRecord(BaseModel):
    """One accepted event or one refused item, as the debugger shows it."""

    seq: int = Field(description="its place in the debugger's sequence: ask for `after` it")
    kind: DebuggerKind
    received_at: datetime | None = None
    source: str
    type: str | None = Field(default=None, description="track, identify, page, …")
    event: str | None = Field(default=None, description="a track's event, a page's name")
    user: str | None = Field(default=None, description="userId, else anonymousId")
    message_id: str | None = None
    endpoint: str | None = Field(default=None, description="where a refused item was sent")
    reasons: list[FieldError] = Field(default_factory=list, description="why it was refused")
    body: Any = Field(
        default=None,
        description="the event as the pipeline carries it, or the refused item as received "
        "(its JSON text when it was cut to PS_MAX_EVENT_BYTES); secrets removed",
    )
    body_truncated: bool = False


class DebuggerPage(BaseModel):
    events: list[DebuggerRecord] = Field(description="oldest first; at most `limit`, the newest")
    next: int = Field(description="pass as `after` to get what arrives next")
    skipped: int = Field(
        description="events not recorded since the debugger started, over its rate bound"
    )
    live: bool = Field(description="reading the topics now (false while starting or failing)")
