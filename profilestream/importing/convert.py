"""Pure: one record of a file -> its normalized events, or why it is refused: the same
validation as a live event (`normalize_event`), and for Mixpanel and Amplitude exports the
same mapping as ingest's routes for them (ingest.providers), not a copy.

Every event gets a stable messageId, so importing a file again (or resuming) stores each event
once (the worker dedups by user and messageId): the file's own id when it has one (Segment
`messageId`, Mixpanel `$insert_id`, Amplitude `insert_id`, `$insert_id` or `uuid`), else a
hash of the record's canonical JSON and its format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.accept import ItemResult
from ingest.normalize import BatchDefaults, InvalidEvent, Limits, normalize_event
from ingest.providers.amplitude.mapping import PROTOCOL as AMPLITUDE
from ingest.providers.amplitude.mapping import Upload, in_amplitude_terms, map_event
from ingest.providers.common import Received, invalid, normalized, stable_message_id
from ingest.providers.mixpanel.mapping import PROTOCOL as MIXPANEL
from ingest.providers.mixpanel.mapping import event_events, renamed_fields
from profilestream.importing.formats import Format, user_id_column
from profilestream.importing.records import Record
from schemas.events import Event

# The first part of every hashed import id: an import's hash never equals another hash's.
ID_NAMESPACE = "import"


@dataclass(frozen=True)
class Conversion:
    """What every record of a batch is converted with."""

    format: Format
    source: str
    received_at: datetime
    limits: Limits


def endpoint_of(format_: Format) -> str:
    """The `endpoint` of the rejections an import records (beside ingest's "batch", ...)."""
    return f"import/{format_}"


def hashed_id(format_: Format, value: Any) -> str:
    """The messageId of a record that has none: the same record of the same format always
    gets the same id. Raises InvalidEvent for a record nested too deep to hash."""
    return stable_message_id(ID_NAMESPACE, str(format_), value)


def convert(record: Record, conversion: Conversion) -> ItemResult:
    """The record's events, or the InvalidEvent naming the fields (as the file names them)."""
    try:
        if conversion.format is Format.SEGMENT:
            return [segment_event(record, conversion)]
        if conversion.format is Format.USERS:
            return [user_event(record.value, conversion)]
        if conversion.format is Format.MIXPANEL:
            return mixpanel_events(record.value, conversion)
        return amplitude_events(record.value, conversion)
    except InvalidEvent as refused:
        return refused


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def segment_event(record: Record, conversion: Conversion) -> Event:
    """A Segment-spec event as the file has it, but for its time: an imported event happened
    at its `timestamp` (Segment's own, already corrected for the client's clock), else at its
    `originalTimestamp`. `sentAt` is dropped: correcting by it against now, the import's
    receivedAt, would move last year's events to today."""
    raw = record.value
    if not isinstance(raw, dict):
        raise invalid("event", "an event must be a JSON object")
    data = {k: v for k, v in raw.items() if k != "sentAt"}
    if data.get("messageId") is None:
        data["messageId"] = hashed_id(conversion.format, raw)
    if data.get("timestamp") is not None:
        data.pop("originalTimestamp", None)
    envelope = record.envelope
    defaults = BatchDefaults(
        context=_dict_or_empty(envelope.get("context")),
        integrations=_dict_or_empty(envelope.get("integrations")),
    )
    return normalize_event(
        data,
        received_at=conversion.received_at,
        source=conversion.source,
        defaults=defaults,
        limits=conversion.limits,
    )


def user_event(row: Any, conversion: Conversion) -> Event:
    """A CSV row -> an identify: the user id column, and every other non-empty cell as a
    trait (as text: a CSV has no types)."""
    if not isinstance(row, Mapping):
        raise invalid("row", "expected a CSV row")
    cells = {k: v for k, v in row.items() if isinstance(k, str)}
    column = user_id_column(list(cells))
    if column is None:
        raise invalid("userId", "the header has no userId, user_id or id column")
    user_id = (cells.get(column) or "").strip()
    if not user_id:
        raise invalid(column, "is empty: every row needs a user id")
    traits = {
        name.strip(): value
        for name, value in cells.items()
        if name != column and isinstance(value, str) and value.strip()
    }
    identify = {
        "type": "identify",
        "userId": user_id,
        "traits": traits,
        "messageId": hashed_id(conversion.format, cells),
    }
    return normalize_event(
        identify,
        received_at=conversion.received_at,
        source=conversion.source,
        limits=conversion.limits,
    )


def _with_ids(mapped: list[dict[str, Any]], format_: Format, value: Any) -> list[dict[str, Any]]:
    """The mapped events, each with a messageId: the mapping's own (the file's id, or the
    provider's hash of the event, as live ingest computes it), else one hashed from the record
    and the event's place in it."""
    return [
        event
        if event.get("messageId") is not None
        else {**event, "messageId": hashed_id(format_, [value, index])}
        for index, event in enumerate(mapped)
    ]


def mixpanel_events(value: Any, conversion: Conversion) -> list[Event]:
    """A line of Mixpanel's raw export, mapped as ingest's /mixpanel/import maps an event."""
    received = Received(conversion.received_at, conversion.source, MIXPANEL, conversion.limits)
    try:
        mapped = event_events(value, historical=True)
        return normalized(_with_ids(mapped, conversion.format, value), received)
    except InvalidEvent as refused:
        raise renamed_fields(refused, "import") from None


def amplitude_time_ms(value: Any) -> int | None:
    """An export's `event_time` ("2024-05-01 13:45:10.123000", UTC) as epoch milliseconds;
    None when it is not such a date-time."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


def amplitude_upload(exported: Any) -> Any:
    """An event of Amplitude's export in the shape its HTTP API takes (what the ingest mapping
    reads): `time` in ms from `event_time` (else `client_event_time`), `insert_id` from
    `$insert_id` (else Amplitude's `uuid`), `ip` from `ip_address`, `carrier` from
    `device_carrier`. An event already in the HTTP API's shape is left as it is."""
    if not isinstance(exported, dict):
        return exported
    event = dict(exported)
    if event.get("time") is None:
        written = exported.get("event_time") or exported.get("client_event_time")
        milliseconds = amplitude_time_ms(written)
        # an unreadable time stays as it is: the mapping refuses it, naming `time`
        event["time"] = milliseconds if milliseconds is not None else written
    if event.get("insert_id") is None:
        event["insert_id"] = exported.get("$insert_id") or exported.get("uuid")
    if event.get("ip") is None and exported.get("ip_address"):
        event["ip"] = exported["ip_address"]
    if event.get("carrier") is None and exported.get("device_carrier"):
        event["carrier"] = exported["device_carrier"]
    return event


def amplitude_events(value: Any, conversion: Conversion) -> list[Event]:
    """An event of Amplitude's export, mapped as ingest's /amplitude routes map one."""
    received = Received(conversion.received_at, conversion.source, AMPLITUDE, conversion.limits)
    upload = Upload(max_message_id_length=conversion.limits.max_message_id_length)
    try:
        mapped = map_event(amplitude_upload(value), upload)
        return normalized(_with_ids(mapped, conversion.format, value), received)
    except InvalidEvent as refused:
        raise in_amplitude_terms(refused) from None
