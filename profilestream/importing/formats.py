"""Pure: which format a file holds and how its records lie, from its first bytes (inflated when
gzip), never from its name. `--format` overrides the format; the layout is always read."""

from __future__ import annotations

import csv
import json
from enum import StrEnum
from typing import Any

import orjson

from profilestream.importing.records import ZIP_MAGIC, Layout

BOM = b"\xef\xbb\xbf"
# The column of a users CSV that holds the user id (the first of these the header has).
USER_ID_COLUMNS = ("userId", "user_id", "id")


class Format(StrEnum):
    SEGMENT = "segment"  # Segment-spec events: NDJSON, a JSON array, or {"batch": [...]}
    MIXPANEL = "mixpanel"  # Mixpanel's raw export: {"event", "properties": {...}} a line
    AMPLITUDE = "amplitude"  # Amplitude's export: a zip of hourly .json.gz, or one of them
    USERS = "users"  # a CSV of users: a user id column and trait columns


class UnknownFormat(Exception):
    """The file's format cannot be told (or is not what `--format` says); the message says why."""


def user_id_column(header: list[str]) -> str | None:
    """The header's user id column: userId, user_id or id (any case), in that preference."""
    by_lower = {name.strip().lower(): name for name in header}
    for candidate in USER_ID_COLUMNS:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return None


def _first_line(text: bytes) -> bytes:
    return text.split(b"\n", 1)[0].strip()


def _csv_header(text: bytes) -> list[str] | None:
    try:
        line = _first_line(text).decode("utf-8")
    except UnicodeDecodeError:
        return None
    rows = list(csv.reader([line]))
    return rows[0] if rows and len(rows[0]) >= 1 else None


def detect_layout(head: bytes) -> Layout:
    """How the records lie: a zip, a JSON array, one JSON document, NDJSON, or a CSV with a
    user id column."""
    if head.startswith(ZIP_MAGIC):
        return Layout.ZIP
    text = head.removeprefix(BOM).lstrip()
    if text.startswith(b"["):
        return Layout.JSON_ARRAY
    if text.startswith(b"{"):
        try:
            first = orjson.loads(_first_line(text))
        except orjson.JSONDecodeError:
            return Layout.JSON_DOCUMENT  # a JSON object over several lines
        if isinstance(first, dict) and isinstance(first.get("batch"), list):
            return Layout.JSON_DOCUMENT
        return Layout.NDJSON
    header = _csv_header(text)
    if header and user_id_column(header):
        return Layout.CSV
    raise UnknownFormat(
        "not JSON, NDJSON, a zip, or a CSV whose header has a userId, user_id or id column"
    )


def _first_record(head: bytes, layout: Layout) -> Any:
    """The file's first record when the head holds it whole, else None."""
    text = head.removeprefix(BOM).lstrip()
    try:
        if layout is Layout.NDJSON:
            return orjson.loads(_first_line(text))
        if layout is Layout.JSON_ARRAY:
            decoded = text[1:].decode("utf-8", "ignore").lstrip()
            return json.JSONDecoder().raw_decode(decoded)[0]
    except (orjson.JSONDecodeError, json.JSONDecodeError):
        return None
    return None


def format_of_record(record: Any) -> Format:
    """Amplitude's events have `event_type`; Mixpanel's an `event` and `properties` holding its
    ids and time; anything else is taken as a Segment-spec event."""
    if isinstance(record, dict) and "type" not in record:
        if "event_type" in record:
            return Format.AMPLITUDE
        properties = record.get("properties")
        if (
            "event" in record
            and isinstance(properties, dict)
            and {"distinct_id", "time", "$insert_id"} & properties.keys()
        ):
            return Format.MIXPANEL
    return Format.SEGMENT


def detect(head: bytes, forced: Format | None = None) -> tuple[Format, Layout]:
    """The file's format (`forced`, else told from its first record) and layout. Raises
    UnknownFormat when they cannot be told or do not fit together."""
    layout = detect_layout(head)
    if layout is Layout.ZIP:
        format_ = forced or Format.AMPLITUDE
    elif layout is Layout.CSV:
        format_ = forced or Format.USERS
    elif layout is Layout.JSON_DOCUMENT:
        format_ = forced or Format.SEGMENT
    else:
        format_ = forced or format_of_record(_first_record(head, layout))
    if (format_ is Format.USERS) != (layout is Layout.CSV):
        raise UnknownFormat(
            "a users import is a CSV with a userId, user_id or id column"
            if format_ is Format.USERS
            else f"a CSV is imported as users, not as {format_} events"
        )
    return format_, layout
