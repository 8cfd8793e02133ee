"""The Kafka wire format. Every message carries a schema version `v`; consumers refuse versions
they do not know (they go to the dead-letter topic) instead of guessing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.commands import UserCommand
from schemas.events import Event

SCHEMA_VERSION: Literal[1] = 1


class EventMessage(BaseModel):
    """events topic; key = Event.profile_key."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["event"] = "event"
    event: Event


class CommandMessage(BaseModel):
    """events topic too; key = UserCommand.user_id, so a user's commands and events share a
    partition and are applied in one order."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["command"] = "command"
    command: UserCommand


# What the events topic carries, told apart by `kind`.
EventsTopicMessage = Annotated[EventMessage | CommandMessage, Field(discriminator="kind")]


class FieldError(BaseModel):
    """One broken rule: a dotted field path and why."""

    field: str
    reason: str


class RejectionMessage(BaseModel):
    """rejections topic: an event ingest refused. Carries no event contents, only where it was
    and why it was refused, so operators can see rejections without seeing user data."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["rejection"] = "rejection"
    source: str
    endpoint: str
    index: int
    message_id: str | None = None
    errors: list[FieldError] = Field(default_factory=list)
    received_at: datetime


class DeadLetterMessage(BaseModel):
    """dead-letter topic: a message the materializer could not decode."""

    v: Literal[1] = SCHEMA_VERSION
    kind: Literal["dead-letter"] = "dead-letter"
    topic: str
    partition: int
    offset: int
    reason: str
    key: str | None = None
    # The original bytes, base64: kept so an operator can repair and replay it.
    value_b64: str
