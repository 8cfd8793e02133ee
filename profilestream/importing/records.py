"""A file's records, streamed one at a time (memory stays bounded whatever the file's size),
each with where it is in the file so a refusal can point at it. The readers take open binary
streams; `open_input` opens a path (gzip found by its magic bytes, never by the name)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, cast

import orjson

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
# How much of a file (decompressed) format detection looks at.
HEAD_BYTES = 64 * 1024
# How much of a JSON array is read at a time.
CHUNK_CHARS = 64 * 1024
# A CSV cell may be long (a JSON-ish trait), but not unbounded.
CSV_FIELD_LIMIT = 1024 * 1024


class Layout(StrEnum):
    """How the records lie in a (decompressed) file."""

    NDJSON = "ndjson"  # one JSON value a line
    JSON_ARRAY = "json-array"  # one JSON array of records, streamed
    JSON_DOCUMENT = "json-document"  # one JSON value read whole: {"batch": [...]} or one record
    CSV = "csv"  # a header row, then one record a row
    ZIP = "zip"  # members (gzip or not), each NDJSON


@dataclass(frozen=True)
class Record:
    """One record of a file: a decoded JSON value (a dict of strings for a CSV row)."""

    where: str  # "line 12", "item 3", "row 4", "<member> line 5"
    value: Any
    # What a Segment batch document gives every event in it: context, integrations.
    envelope: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotJson:
    """A line (or the rest of a document) that is not JSON: skipped and reported."""

    where: str
    reason: str


Read = Record | NotJson
# A readable binary stream: a file, a gzip or zip member, a BytesIO in tests.
Stream = IO[bytes]


class UnreadableFile(Exception):
    """The file cannot be read as the layout it was taken for (the message says why)."""


# --- opening ------------------------------------------------------------------------------------


@dataclass
class OpenInput:
    """An input file opened for reading: its (decompressed) bytes, and how far into the file
    on disk reading has got (for the ETA: a gzip's record count is unknown)."""

    stream: Stream
    raw: Stream

    def position(self) -> int:
        return self.raw.tell()


@contextmanager
def open_input(path: Path) -> Iterator[OpenInput]:
    raw = path.open("rb")
    try:
        magic = raw.read(2)
        raw.seek(0)
        if magic == GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw) as inflated:
                yield OpenInput(cast(Stream, inflated), raw)
        else:
            yield OpenInput(raw, raw)
    finally:
        raw.close()


def read_head(path: Path) -> bytes:
    """The first HEAD_BYTES of the file, inflated when gzip (a zip's stay as they are)."""
    with path.open("rb") as raw:
        start = raw.read(4)
        raw.seek(0)
        if start.startswith(GZIP_MAGIC):
            try:
                with gzip.GzipFile(fileobj=raw) as inflated:
                    return inflated.read(HEAD_BYTES)
            except (OSError, EOFError) as exc:
                raise UnreadableFile(f"not a readable gzip file: {exc}") from None
        return raw.read(HEAD_BYTES)


# --- readers -------------------------------------------------------------------------------------


def read_records(opened: OpenInput, layout: Layout) -> Iterator[Read]:
    """The file's records; UnreadableFile where it stops being readable (a truncated gzip, a
    damaged zip member), after the records before that point."""
    try:
        yield from _layout_records(opened.stream, layout)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise UnreadableFile(f"unreadable: {type(exc).__name__}: {exc}") from None


def _layout_records(stream: Stream, layout: Layout) -> Iterator[Read]:
    if layout is Layout.NDJSON:
        return ndjson_records(stream)
    if layout is Layout.JSON_ARRAY:
        return json_array_records(stream)
    if layout is Layout.JSON_DOCUMENT:
        return json_document_records(stream)
    if layout is Layout.CSV:
        return csv_records(stream)
    return zip_records(stream)


def ndjson_records(stream: Stream, prefix: str = "") -> Iterator[Read]:
    """One record a non-blank line; a line that is not JSON is a NotJson of its own."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield Record(f"{prefix}line {number}", orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield NotJson(f"{prefix}line {number}", f"not JSON: {exc}")


def json_array_records(stream: Stream) -> Iterator[Read]:
    """The items of one JSON array, decoded one at a time from a sliding buffer."""
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict")
    decoder = json.JSONDecoder()
    buffer = ""
    position = 0
    at_end = False

    def fill() -> bool:
        """Read more into the buffer (dropping what was decoded); False at the end."""
        nonlocal buffer, position, at_end
        try:
            more = text.read(CHUNK_CHARS)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"not UTF-8: {exc}") from None
        buffer, position = buffer[position:] + more, 0
        at_end = not more
        return bool(more)

    def next_significant() -> str:
        """The next character that is not whitespace ("" at the end of the file)."""
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position < len(buffer) or not fill():
                return buffer[position] if position < len(buffer) else ""

    if next_significant() != "[":
        raise UnreadableFile("expected a JSON array")
    position += 1
    index = 0
    while True:
        mark = next_significant()
        if mark == "]":
            return
        if index > 0:
            if mark != ",":
                yield NotJson(f"item {index + 1}", "expected ',' or ']' between array items")
                return
            position += 1
            next_significant()
        while True:
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as exc:
                if fill():
                    continue
                yield NotJson(f"item {index + 1}", f"not JSON (the rest is not read): {exc}")
                return
            if end == len(buffer) and not at_end and fill():
                continue  # a number cut by the buffer's end would decode too short
            break
        index += 1
        position = end
        yield Record(f"item {index}", value)


def json_document_records(stream: Stream) -> Iterator[Read]:
    """One JSON document read whole: a Segment batch ({"batch": [...], "context": ...}), an
    array, or a single record."""
    try:
        document = orjson.loads(stream.read())
    except orjson.JSONDecodeError as exc:
        yield NotJson("document", f"not JSON: {exc}")
        return
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        envelope = {k: v for k, v in document.items() if k != "batch"}
        for index, item in enumerate(document["batch"], 1):
            yield Record(f"batch item {index}", item, envelope)
    elif isinstance(document, list):
        for index, item in enumerate(document, 1):
            yield Record(f"item {index}", item)
    else:
        yield Record("document", document)


def csv_records(stream: Stream) -> Iterator[Read]:
    """One dict (header name -> cell) per row after the header; blank rows skipped."""
    csv.field_size_limit(CSV_FIELD_LIMIT)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = csv.DictReader(text)
    try:
        for row in reader:
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue
            yield Record(f"line {reader.line_num}", row)
    except (csv.Error, UnicodeDecodeError) as exc:
        yield NotJson(f"line {reader.line_num}", f"not CSV (the rest is not read): {exc}")


def zip_records(stream: Stream) -> Iterator[Read]:
    """Each member in name order (Amplitude's are one per hour), inflated when gzip, as
    NDJSON."""
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile as exc:
        raise UnreadableFile(f"not a readable zip file: {exc}") from None
    with archive:
        for name in sorted(n for n in archive.namelist() if not n.endswith("/")):
            with archive.open(name) as probe:
                gzipped = probe.read(2) == GZIP_MAGIC
            with archive.open(name) as member:
                if gzipped:
                    with gzip.GzipFile(fileobj=member) as inflated:
                        yield from ndjson_records(cast(Stream, inflated), f"{name} ")
                else:
                    yield from ndjson_records(member, f"{name} ")
