"""Profile management commands: what the query service's management API produces to the events
topic, keyed by user, so the materializer applies API writes and SDK events in one order per
user."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.events import to_utc_ms

Status = Literal["active", "disabled"]
CommandOp = Literal["create", "update", "delete"]


class UserCommand(BaseModel):
    """One management write. Values in `set` were checked against their definitions by the
    API; the materializer applies them at `issued_at`, ordered by event time like SDK writes."""

    model_config = ConfigDict(frozen=True)

    command_id: str = Field(min_length=1, max_length=100)
    op: CommandOp
    user_id: str = Field(min_length=1, max_length=255)
    issued_at: datetime
    set: dict[str, Any] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    tags_add: list[str] = Field(default_factory=list)
    tags_remove: list[str] = Field(default_factory=list)
    status: Status | None = None

    @field_validator("issued_at")
    @classmethod
    def _utc_ms(cls, value: datetime) -> datetime:
        return to_utc_ms(value)

    # The same two names an Event has, so the batch code dedups and routes both alike.
    @property
    def message_id(self) -> str:
        return self.command_id

    @property
    def profile_key(self) -> str:
        return self.user_id
