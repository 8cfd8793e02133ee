"""The Segment-spec event: what clients send (`SegmentEvent`) and what travels on, normalized
(`Event`: ids resolved, timestamps corrected, UTC with millisecond precision)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

EventType = Literal["track", "identify", "page", "screen", "group", "alias"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)

# Event names stored for the events that have no `event` field (every type but track, and a
# track without one), so totals and daily counts can address them too (`?event=$page`).
TYPE_EVENT_NAMES: dict[EventType, str] = {t: f"${t}" for t in EVENT_TYPES}

MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255
MAX_CONFIG_TEXT_LENGTH = 255

# A dynamic config's key, or the variation served of it.
ConfigText = Annotated[str, Field(min_length=1, max_length=MAX_CONFIG_TEXT_LENGTH)]


def to_utc_ms(value: datetime) -> datetime:
    """UTC, truncated to milliseconds (the precision stored everywhere)."""
    if value.microsecond % 1000 == 0 and value.tzinfo is not None and not value.utcoffset():
        return value  # already UTC milliseconds: the common case, on the hot path
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# The object fields, where null means empty.
_OBJECT_FIELDS = frozenset(
    ("properties", "traits", "context", "integrations", "profileOps", "configs")
)


class SegmentEvent(BaseModel):
    """One event as a Segment-spec client sends it. Unknown top-level fields are ignored."""

    model_config = ConfigDict(extra="ignore", str_max_length=MAX_ID_LENGTH)

    type: EventType
    messageId: str | None = Field(default=None, min_length=1)
    # Segment libraries accept numeric ids; they are stored as strings, as str() writes them (a
    # boolean is refused).
    userId: str | None = Field(default=None, min_length=1, coerce_numbers_to_str=True)
    anonymousId: str | None = Field(default=None, min_length=1, coerce_numbers_to_str=True)
    event: str | None = Field(default=None, min_length=1, max_length=MAX_NAME_LENGTH)
    name: str | None = Field(default=None, max_length=MAX_NAME_LENGTH)
    groupId: str | None = Field(default=None, min_length=1, coerce_numbers_to_str=True)
    previousId: str | None = Field(default=None, min_length=1, coerce_numbers_to_str=True)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    # Profilestream extensions, on any event type: profile operations in the identify-traits
    # syntax ({"$set": {...}, "$append": {...}, ...}; materializer.profile_ops), and the
    # variations of dynamic configs served ({config: variation}). The third-party mappings
    # (ingest/providers) carry PostHog's `$set` on any event, Amplitude's `user_properties` and
    # feature-flag exposures in them.
    profileOps: dict[str, Any] = Field(default_factory=dict)
    configs: dict[ConfigText, ConfigText] = Field(default_factory=dict)
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _null_objects_are_empty(cls, data: Any) -> Any:
        # One check for the whole event, in C, in the common case (no top-level null): a
        # validator per field cost as much as the rest of the validation.
        if isinstance(data, dict) and None in data.values():
            # left out, so each gets its default: an empty dict of its own
            return {k: v for k, v in data.items() if v is not None or k not in _OBJECT_FIELDS}
        return data

    def missing_fields(self) -> list[tuple[str, str]]:
        """The (field, reason) pairs of fields this event's type requires but lacks."""
        missing: list[tuple[str, str]] = []
        if not (self.userId or self.anonymousId):
            missing.append(("userId", "userId or anonymousId is required"))
        if self.type == "track" and not self.event:
            missing.append(("event", "event is required for track"))
        if self.type == "group" and not self.groupId:
            missing.append(("groupId", "groupId is required for group"))
        if self.type == "alias":
            if not self.previousId:
                missing.append(("previousId", "previousId is required for alias"))
            if not self.userId:
                missing.append(("userId", "userId is required for alias"))
        return missing


_object_setattr = object.__setattr__


def _is_none(value: Any) -> bool:
    return value is None


# What ClickHouse's DateTime64(3) holds; an event outside it could never be stored.
STORABLE_FROM = datetime(1900, 1, 1, tzinfo=UTC)
STORABLE_UNTIL = datetime(2299, 12, 31, tzinfo=UTC)

# An event time ClickHouse can store (DateTime64(3)), with a time zone. pydantic-core checks it
# without calling Python, which matters: the materializer decodes every event, and a Python
# validator here cost about a twentieth of its time. Ingest produces UTC milliseconds
# (`to_utc_ms`); another offset is the same instant and is stored as such.
StorableTime = Annotated[AwareDatetime, Field(ge=STORABLE_FROM, le=STORABLE_UNTIL)]


class Event(BaseModel):
    """A normalized event, as produced to Kafka and consumed by the materializer."""

    model_config = ConfigDict(frozen=True)

    message_id: str
    type: EventType
    user_id: str | None = None
    anonymous_id: str | None = None
    event: str | None = None
    name: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    # SegmentEvent.profileOps and .configs, None when empty: left out of the message then (as in
    # messages written before they existed), and no two empty dicts built per event decoded.
    profile_ops: dict[str, Any] | None = Field(default=None, exclude_if=_is_none)
    configs: dict[str, str] | None = Field(default=None, exclude_if=_is_none)
    timestamp: StorableTime
    original_timestamp: datetime | None = None
    sent_at: datetime | None = None
    received_at: StorableTime
    source: str = ""

    @classmethod
    def trusted(cls, values: dict[str, Any]) -> Event:
        """An Event from `values` already validated, one for every field (ingest's
        normalize_event, which validated the client's event as a SegmentEvent): what
        `model_construct` makes, without its Python loop over the fields, which cost as much
        as validating them again."""
        event = cls.__new__(cls)
        _object_setattr(event, "__dict__", values)
        _object_setattr(event, "__pydantic_fields_set__", set(values))
        _object_setattr(event, "__pydantic_extra__", None)
        _object_setattr(event, "__pydantic_private__", None)
        return event

    @property
    def profile_key(self) -> str:
        """The Kafka key and profile id: userId if present, else anonymousId."""
        key = self.user_id or self.anonymous_id
        assert key is not None  # guaranteed by SegmentEvent validation
        return key

    @property
    def event_name(self) -> str:
        """`event` for track, `$<type>` otherwise."""
        if self.type == "track" and self.event:
            return self.event
        return TYPE_EVENT_NAMES[self.type]
