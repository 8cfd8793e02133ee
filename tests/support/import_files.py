"""Files for `profilestream import` tests, in each format it reads: Segment-spec events as
NDJSON, a JSON array or a batch document (gzip or not), Mixpanel's raw export NDJSON,
Amplitude's export (a zip of hourly .json.gz members, or one of them), and a users CSV."""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

# Imported events happened last year: older than the worker's Redis dedup window, so a second
# import is deduplicated by the ClickHouse check (docs/guarantees.md).
START = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(second: int) -> datetime:
    return START + timedelta(seconds=second)


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


# --- events -------------------------------------------------------------------------------------


def segment_events(
    prefix: str, count: int, *, users: int = 1, event: str = "Imported", ids: bool = True
) -> list[dict[str, Any]]:
    """`count` track events of users `<prefix>-u0`..., each with a messageId unless `ids` is
    False (then only their content tells them apart: a `seq` property)."""
    events = []
    for n in range(count):
        item: dict[str, Any] = {
            "type": "track",
            "userId": f"{prefix}-u{n % users}",
            "event": event,
            "properties": {"seq": n},
            "timestamp": iso(at(n)),
        }
        if ids:
            item["messageId"] = f"{prefix}-m{n}"
        events.append(item)
    return events


def mixpanel_events(prefix: str, count: int, *, insert_ids: bool = True) -> list[dict[str, Any]]:
    """Lines of Mixpanel's raw export: time in epoch seconds, `$insert_id` unless `insert_ids`
    is False (then the ingest mapping hashes the event)."""
    events = []
    for n in range(count):
        properties: dict[str, Any] = {
            "time": int(at(n).timestamp()),
            "distinct_id": f"{prefix}-mp",
            "seq": n,
            "mp_processing_time_ms": int(at(n).timestamp() * 1000) + 500,
        }
        if insert_ids:
            properties["$insert_id"] = f"{prefix}mp{n}"
        events.append({"event": f"{prefix} Mixpanel Import", "properties": properties})
    return events


def amplitude_events(prefix: str, count: int) -> list[dict[str, Any]]:
    """Events of Amplitude's export (its field names: event_time, $insert_id, uuid, ...)."""
    return [
        {
            "event_type": f"{prefix} Amplitude Import",
            "user_id": f"{prefix}-amp",
            "device_id": f"{prefix}-device",
            "event_time": at(n).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "client_event_time": at(n).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "server_upload_time": at(n + 2).strftime("%Y-%m-%d %H:%M:%S.%f"),
            "$insert_id": f"{prefix}-amp-{n}",
            "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "amplitude_id": 123456789,
            "event_properties": {"seq": n},
            "user_properties": {"plan": "pro"},
            "ip_address": "203.0.113.9",
            "platform": "Web",
            "data": {},
        }
        for n in range(count)
    ]


# --- files --------------------------------------------------------------------------------------


def ndjson_bytes(records: Sequence[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def _write(path: Path, data: bytes, gz: bool) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_ndjson(path: Path, records: Sequence[Any], *, gz: bool = False) -> Path:
    return _write(path, ndjson_bytes(records), gz)


def write_lines(path: Path, lines: Sequence[bytes], *, gz: bool = False) -> Path:
    """Raw lines, for files with lines that are not JSON."""
    return _write(path, b"".join(line + b"\n" for line in lines), gz)


def write_json_array(path: Path, records: Sequence[Any], *, gz: bool = False) -> Path:
    return _write(path, orjson.dumps(list(records), option=orjson.OPT_INDENT_2), gz)


def write_batch_document(
    path: Path, records: Sequence[Any], *, context: dict[str, Any] | None = None
) -> Path:
    document: dict[str, Any] = {"batch": list(records)}
    if context is not None:
        document["context"] = context
    return _write(path, orjson.dumps(document, option=orjson.OPT_INDENT_2), False)


def write_amplitude_zip(path: Path, events: Sequence[dict[str, Any]], *, per_member: int) -> Path:
    """Amplitude's export archive: `<project>/<project>_<date>_<hour>#0.json.gz` members."""
    with zipfile.ZipFile(path, "w") as archive:
        for hour, start in enumerate(range(0, len(events), per_member)):
            name = f"123456/123456_2025-03-01_{hour}#0.json.gz"
            archive.writestr(name, gzip.compress(ndjson_bytes(events[start : start + per_member])))
    return path


def write_users_csv(
    path: Path, rows: Sequence[dict[str, str]], *, id_column: str = "userId"
) -> Path:
    """A users CSV: the id column first, then every other column the rows name."""
    columns = [id_column, *sorted({k for row in rows for k in row} - {id_column})]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(text.getvalue())
    return path
