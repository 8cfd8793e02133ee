"""Unit tests for query/csv_export.py: negotiation, RFC 4180 quoting read back with the csv
module, the header without rows, the formula-injection guard, filenames, and streaming."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime

import pytest
from starlette.requests import Request

from query.csv_export import (
    CSV_MEDIA_TYPE,
    csv_lines,
    csv_response,
    safe_cell,
    safe_filename_part,
    wants_csv,
)


def parsed(chunks: Iterable[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode(), newline="")))


def request_accepting(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


# --- wants_csv ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "format_", "expected"),
    [
        (None, None, False),
        ("application/json", None, False),
        ("*/*", None, False),
        ("text/html,application/xhtml+xml,*/*;q=0.8", None, False),
        ("text/csv", None, True),
        ("Text/CSV; charset=utf-8", None, True),
        ("application/json;q=0.5, text/csv", None, True),
        (None, "csv", True),
        (None, "CSV", True),
        ("application/json", "csv", True),
        # An explicit format wins over the Accept header.
        ("text/csv", "json", False),
    ],
)
def test_wants_csv(accept: str | None, format_: str | None, expected: bool) -> None:
    assert wants_csv(request_accepting(accept), format_) is expected


# --- csv_lines ------------------------------------------------------------------------------


def test_header_only_when_there_are_no_rows() -> None:
    body = b"".join(csv_lines(["name", "count"], []))
    assert body == b"name,count\r\n"
    assert parsed([body]) == [["name", "count"]]


def test_quoting_round_trips() -> None:
    tricky = [
        'say "hi"',
        "a,b",
        "line\nbreak",
        "crlf\r\ninside",
        "  spaced  ",
        "émoji 🎉",
        "",
        "plain",
    ]
    rows = [[text, n] for n, text in enumerate(tricky)]
    assert parsed(csv_lines(["text", "n"], rows)) == [
        ["text", "n"],
        *[[text, str(n)] for n, text in enumerate(tricky)],
    ]


def test_none_is_an_empty_cell_and_datetimes_are_iso() -> None:
    at = datetime(2026, 12, 2, 17, 40, 1, 123000, tzinfo=UTC)
    assert parsed(csv_lines(["a", "b", "c"], [[None, at, 2.5]]))[1] == [
        "",
        "2026-12-02T17:40:01.123000+00:00",
        "2.5",
    ]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tstarts with tab", "'\tstarts with tab"),
        ("\rstarts with cr", "'\rstarts with cr"),
        ("-", "'-"),
        ("-inf", "'-inf"),
        # Numbers stay numbers.
        ("-5", "-5"),
        ("+5", "+5"),
        ("-1.25", "-1.25"),
        ("-.5", "-.5"),
        ("-1e-3", "-1e-3"),
        ("a=b", "a=b"),
        ("pro", "pro"),
    ],
)
def test_formula_injection_guard(value: str, written: str) -> None:
    assert safe_cell(value) == written
    assert parsed(csv_lines(["v"], [[value]]))[1] == [written]


def test_non_text_values_are_not_guarded() -> None:
    assert safe_cell(-5) == -5
    assert safe_cell(-0.5) == -0.5
    assert parsed(csv_lines(["v"], [[-5], [-0.5]]))[1:] == [["-5"], ["-0.5"]]


def test_many_rows_come_in_several_chunks() -> None:
    rows = [[f"event {n}", n] for n in range(2_100)]
    chunks = list(csv_lines(["event", "n"], rows))
    assert len(chunks) > 2
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert parsed(chunks)[1:] == [[f"event {n}", str(n)] for n in range(2_100)]


# --- filenames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Product Viewed", "Product-Viewed"),
        ("2026-11-03", "2026-11-03"),
        ('a"b/c\\d;e\r\nf', "a-b-c-d-e-f"),
        ("../../etc/passwd", "etc-passwd"),
        ("événement", "v-nement"),
        ("", "all"),
        ("///", "all"),
        ("x" * 300, "x" * 80),
        ("user_1.v2", "user_1.v2"),
    ],
)
def test_safe_filename_part(text: str, expected: str) -> None:
    assert safe_filename_part(text) == expected


# --- csv_response ---------------------------------------------------------------------------


async def body_of(response: object) -> bytes:
    chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    return b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)


async def test_csv_response_headers_and_sync_rows() -> None:
    response = csv_response(["a"], [["=1+1"], ["x"]], "event-names_2026-11-03_2026-12-02.csv")
    assert response.media_type == CSV_MEDIA_TYPE
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        response.headers["content-disposition"]
        == 'attachment; filename="event-names_2026-11-03_2026-12-02.csv"'
    )
    assert parsed([await body_of(response)]) == [["a"], ["'=1+1"], ["x"]]


async def test_csv_response_async_rows() -> None:
    async def rows() -> AsyncIterator[Sequence[object]]:
        for n in range(3):
            await asyncio.sleep(0)
            yield [n, f"+{n}x"]

    response = csv_response(["n", "t"], rows(), "x.csv")
    assert parsed([await body_of(response)]) == [
        ["n", "t"],
        ["0", "'+0x"],
        ["1", "'+1x"],
        ["2", "'+2x"],
    ]


async def test_csv_response_filename_cannot_break_the_header() -> None:
    response = csv_response(["a"], [], 'bad"name\r\nX-Evil: 1.csv')
    disposition = response.headers["content-disposition"]
    assert disposition == 'attachment; filename="bad-name-X-Evil-1.csv"'
    assert await body_of(response) == b"a\r\n"


@pytest.mark.parametrize(
    ("accept", "csv"),
    [
        ("text/csv", True),
        ("application/json, text/csv", True),
        ("text/csv;q=0.9, application/json;q=0.5", True),
        ("application/json, text/csv;q=0", False),
        ("text/csv;q=0.5, application/json", False),
        ("*/*", False),
        ("", False),
    ],
)
def test_accept_weights_decide(accept: str, csv: bool) -> None:
    request = Request({"type": "http", "headers": [(b"accept", accept.encode())]})
    assert wants_csv(request, None) is csv
