"""Pure: a raw Segment-spec event (a decoded JSON value) -> a normalized `Event`, or the list of
field errors that explain why not. No I/O here; the routes call it for every event."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from ingest.limits import MAX_NESTING, nesting_depth
from schemas.events import Event, SegmentEvent, to_utc_ms
from schemas.messages import FieldError

# ClickHouse DateTime64 covers 1900..2299; events from before 2000 are clock bugs, not history.
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int = 32 * 1024
    max_message_id_length: int = 100
    max_future_skew: timedelta = timedelta(days=1)
    # A client clock this close to ours is taken as right (PS_CLOCK_SKEW_TOLERANCE_S).
    skew_tolerance: timedelta = timedelta(seconds=10)


@dataclass(frozen=True)
class BatchDefaults:
    """What a /v1/batch body (or the request) gives every event in it (each event's own values
    win)."""

    context: dict[str, Any] = field(default_factory=dict)
    integrations: dict[str, Any] = field(default_factory=dict)
    sent_at: Any = None
    # RudderStack's SDKs send the anonymous id in an `AnonymousId` header too (base64).
    anonymous_id: str | None = None


MAX_ANONYMOUS_ID_HEADER = 1024


def anonymous_id_from_header(value: str | None) -> str | None:
    """RudderStack's `AnonymousId` header: base64 of the id. Anything else is ignored (the
    events carry the id themselves; the header only fills in where they do not)."""
    if not value or len(value) > MAX_ANONYMOUS_ID_HEADER:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded or None


def merged_identify_traits(data: dict[str, Any]) -> Any:
    """An identify's traits: Segment's spec defines `context.traits` as the user's traits too,
    and RudderStack's SDKs send identify traits only there. Merged under the top-level ones
    (which win). Other event types keep their own traits: RudderStack repeats every cached
    trait in each event's context, which is not a change to the profile."""
    context = data.get("context")
    extra = context.get("traits") if isinstance(context, dict) else None
    own = data.get("traits")
    if not isinstance(extra, dict) or not extra or not (own is None or isinstance(own, dict)):
        return own
    return {**extra, **(own or {})}


DEFAULT_LIMITS = Limits()
NO_DEFAULTS = BatchDefaults()


class InvalidEvent(Exception):
    def __init__(self, errors: list[FieldError], message_id: str | None = None) -> None:
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors
        self.message_id = message_id


class EventTooLarge(InvalidEvent):
    pass


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]) or "event", reason=err["msg"])
        for err in exc.errors(include_url=False, include_input=False)
    ]


def corrected_timestamp(
    received_at: datetime,
    sent_at: datetime | None,
    original: datetime | None,
    tolerance: timedelta = timedelta(0),
) -> datetime:
    """Segment's clock-skew correction: timestamp = receivedAt - (sentAt - originalTimestamp),
    unless the client's clock (sentAt) is within `tolerance` of ours. Then the difference is
    the request's transit time, not a wrong clock: correcting by it would shift each request's
    events by that request's latency, and reorder events sent milliseconds apart in two requests
    (an identify sent at once, the next call batched; a first request delayed by its CORS
    preflight)."""
    if original is None:
        return received_at
    if sent_at is None or abs(received_at - sent_at) <= tolerance:
        return original
    return received_at - (sent_at - original)


def _too_deep(raw: dict[str, Any], limits: Limits) -> InvalidEvent:
    return InvalidEvent(
        [FieldError(field="event", reason=f"nests deeper than {MAX_NESTING} levels")],
        _message_id_of(raw, limits),
    )


def _encoded_within_nesting(raw: dict[str, Any], limits: Limits) -> bytes:
    """The event's JSON (orjson, as its size is counted), once it is known to nest at most
    MAX_NESTING levels; InvalidEvent if deeper. Each list and object of the event opens with a
    bracket in that JSON, so a JSON with at most MAX_NESTING opening brackets (those in strings
    counted too) cannot nest deeper: only an event with more is walked (`nesting_depth`)."""
    try:
        encoded = orjson.dumps(raw)
    except orjson.JSONEncodeError:
        # orjson refuses to encode deeper than 254 levels
        if nesting_depth(raw) > MAX_NESTING:
            raise _too_deep(raw, limits) from None
        raise
    if encoded.count(b"{") + encoded.count(b"[") > MAX_NESTING and nesting_depth(raw) > MAX_NESTING:
        raise _too_deep(raw, limits)
    return encoded


def _message_id_of(raw: dict[str, Any], limits: Limits) -> str | None:
    """The client's messageId, to echo in a rejection: only one that is itself valid."""
    value = raw.get("messageId")
    if isinstance(value, str) and 0 < len(value) <= limits.max_message_id_length:
        return value
    return None


def normalize_event(
    raw: Any,
    *,
    received_at: datetime,
    source: str,
    event_type: str | None = None,
    defaults: BatchDefaults | None = None,
    limits: Limits | None = None,
    protocol: str | None = None,
) -> Event:
    """Validate one event and normalize it. Raises InvalidEvent naming every broken field.
    `context.protocol` says which third-party protocol the event came in by (`protocol`); a
    client cannot set it itself."""
    limits = limits or DEFAULT_LIMITS
    defaults = defaults or NO_DEFAULTS
    if not isinstance(raw, dict):
        raise InvalidEvent([FieldError(field="event", reason="an event must be a JSON object")])
    size = len(_encoded_within_nesting(raw, limits))
    if size > limits.max_event_bytes:
        raise EventTooLarge(
            [
                FieldError(
                    field="event",
                    reason=f"event is {size} bytes, over the {limits.max_event_bytes}-byte limit",
                )
            ],
            _message_id_of(raw, limits),
        )
    data = dict(raw)
    if event_type is not None:
        data["type"] = event_type  # the endpoint decides the type, as in Segment's API
    # Whether the batch (or context.traits) added to the event: then its size is counted again.
    grown = False
    if defaults.context or defaults.integrations:
        for name, batch_value in (
            ("context", defaults.context),
            ("integrations", defaults.integrations),
        ):
            own = data.get(name)
            if batch_value and (own is None or isinstance(own, dict)):
                data[name] = {**batch_value, **(own or {})}
                grown = True
    context = data.get("context")
    if isinstance(context, dict) and (protocol or "protocol" in context):
        data["context"] = {k: v for k, v in context.items() if k != "protocol"}
        if protocol:
            data["context"]["protocol"] = protocol
    elif context is None and protocol:
        data["context"] = {"protocol": protocol}
    if defaults.sent_at is not None and data.get("sentAt") is None:
        data["sentAt"] = defaults.sent_at
    if defaults.anonymous_id is not None and data.get("anonymousId") is None:
        data["anonymousId"] = defaults.anonymous_id
    if data.get("type") == "identify":
        own_traits = data.get("traits")
        traits = merged_identify_traits(data)
        if traits is not own_traits:
            data["traits"] = traits
            grown = True
    if grown:
        # What the batch (or context.traits) added counts too: a large batch `context` must not
        # make each of 2,500 small events as large as the request.
        merged_size = len(orjson.dumps(data))
        if merged_size > limits.max_event_bytes:
            raise EventTooLarge(
                [
                    FieldError(
                        field="event",
                        reason=f"event is {merged_size} bytes with the batch's context and "
                        f"integrations, over the {limits.max_event_bytes}-byte limit",
                    )
                ],
                _message_id_of(raw, limits),
            )

    try:
        incoming = SegmentEvent.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(_field_errors(exc), _message_id_of(raw, limits)) from None

    errors = [FieldError(field=f, reason=r) for f, r in incoming.missing_fields()]
    # A rejection echoes the client's own messageId, if it sent a valid one, and nothing else.
    client_message_id = incoming.messageId
    if client_message_id is not None and len(client_message_id) > limits.max_message_id_length:
        errors.append(
            FieldError(
                field="messageId",
                reason=f"longer than {limits.max_message_id_length} characters",
            )
        )
        client_message_id = None

    received = to_utc_ms(received_at)
    try:
        original = incoming.originalTimestamp or incoming.timestamp
        original = to_utc_ms(original) if original else None
        sent_at = to_utc_ms(incoming.sentAt) if incoming.sentAt else None
        # UTC milliseconds already: its inputs are
        timestamp = corrected_timestamp(received, sent_at, original, limits.skew_tolerance)
    except OverflowError:
        # e.g. year 1 at UTC+1, or sentAt and originalTimestamp millennia apart
        errors.append(
            FieldError(
                field="timestamp",
                reason="timestamp, originalTimestamp or sentAt is outside the representable "
                "range after conversion to UTC",
            )
        )
        raise InvalidEvent(errors, client_message_id) from None
    if timestamp > received + limits.max_future_skew:
        errors.append(
            FieldError(
                field="timestamp",
                reason=f"more than {limits.max_future_skew} in the future after clock-skew "
                "correction",
            )
        )
    elif timestamp < EARLIEST_TIMESTAMP:
        errors.append(FieldError(field="timestamp", reason="before 2000-01-01T00:00:00Z"))
    if errors:
        raise InvalidEvent(errors, client_message_id)

    # Every value comes from the validation above and the checks after it (the timestamp is
    # between 2000 and received_at plus the allowed skew): not validated a second time.
    return Event.trusted(
        {
            "message_id": client_message_id or str(uuid.uuid4()),
            "type": incoming.type,
            "user_id": incoming.userId,
            "anonymous_id": incoming.anonymousId,
            "event": incoming.event,
            "name": incoming.name,
            "group_id": incoming.groupId,
            "previous_id": incoming.previousId,
            "properties": incoming.properties,
            "traits": incoming.traits,
            "context": incoming.context,
            "integrations": incoming.integrations,
            "profile_ops": incoming.profileOps or None,
            "configs": incoming.configs or None,
            "timestamp": timestamp,
            "original_timestamp": original,
            "sent_at": sent_at,
            "received_at": received,
            "source": source,
        }
    )
