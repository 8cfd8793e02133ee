"""CSV answers of the query service: content negotiation, a streamed RFC 4180 body with a header
row, the spreadsheet formula-injection guard, and filenames that say what the file holds."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from query.clickhouse_params import utc

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# Cells that a spreadsheet reads as a formula (or, with tab and CR, as a new cell) when they
# lead a cell. Events come from the public internet, so their texts are attacker-chosen.
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
# Rows are written to the buffer and flushed as one chunk every so many rows: fewer, larger
# writes to the socket than one per row, and never the whole file in memory.
_ROWS_PER_CHUNK = 500
# For a route's `responses=`: its 200 may also be CSV (documented in the OpenAPI schema).
CSV_RESPONSE_DOC: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def iso_utc(moment: datetime) -> str:
    """A cell's time: UTC, milliseconds, `Z` (the API's JSON form)."""
    return utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wants_csv(request: Request, format: str | None) -> bool:
    """CSV when `format=csv`, or when the client accepts text/csv at least as much as JSON (and
    `format` is not given): `Accept: text/csv;q=0` is a refusal, not a request."""
    if format is not None:
        return format.strip().lower() == "csv"
    weights = _accept_weights(request.headers.get("accept", ""))
    csv_weight = weights.get("text/csv", 0.0)
    return csv_weight > 0 and csv_weight >= weights.get("application/json", 0.0)


def _accept_weights(accept: str) -> dict[str, float]:
    """Pure: each media type an Accept header names, with its q (1 when not given)."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if media:
            weights[media.lower()] = weight
    return weights


def safe_cell(value: object) -> object:
    """The value as written to a cell: None is empty, datetimes ISO 8601, and a text a
    spreadsheet would run as a formula gets a leading `'` (numbers such as -5 stay as they are)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_LEADS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_filename_part(text: str) -> str:
    """`text` with every run of characters other than letters, digits and `._-` made one `-`
    (no quotes, slashes or spaces in a Content-Disposition filename), at most 80 characters."""
    cleaned = _UNSAFE_FILENAME.sub("-", text).strip("-.")
    return cleaned[:80] or "all"


class _Chunks:
    """CSV rows written to a buffer and handed out as one encoded chunk every so many rows,
    the header first."""

    def __init__(self, header: Sequence[str]) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        self._writer.writerow(header)
        self._pending = 0

    def add(self, row: Sequence[object]) -> bytes | None:
        """The chunk that `row` completes, if it completes one."""
        self._writer.writerow([safe_cell(cell) for cell in row])
        self._pending += 1
        if self._pending < _ROWS_PER_CHUNK:
            return None
        self._pending = 0
        return self.rest()

    def rest(self) -> bytes:
        """What is written and not yet handed out."""
        chunk = self._buffer.getvalue().encode()
        self._buffer.seek(0)
        self._buffer.truncate()
        return chunk


def csv_lines(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[bytes]:
    """Pure: the CSV file as encoded chunks, the header first (also when there are no rows)."""
    chunks = _Chunks(header)
    for row in rows:
        if (chunk := chunks.add(row)) is not None:
            yield chunk
    yield chunks.rest()


async def async_csv_lines(
    header: Sequence[str], rows: AsyncIterable[Sequence[object]]
) -> AsyncIterator[bytes]:
    """`csv_lines` over rows that arrive asynchronously (pages read from the warehouse)."""
    chunks = _Chunks(header)
    async for row in rows:
        if (chunk := chunks.add(row)) is not None:
            yield chunk
    yield chunks.rest()


def csv_response(
    header: Sequence[str],
    rows: Iterable[Sequence[object]] | AsyncIterable[Sequence[object]],
    filename: str,
) -> StreamingResponse:
    """A streamed CSV download named `filename` (made of `safe_filename_part`s by the caller;
    what is not a letter, digit or `._-` is replaced again here, as it goes into a header)."""
    body: Any = (
        async_csv_lines(header, rows)
        if isinstance(rows, AsyncIterable)
        else csv_lines(header, rows)
    )
    name = _UNSAFE_FILENAME.sub("-", filename)[:200] or "export.csv"
    return StreamingResponse(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
