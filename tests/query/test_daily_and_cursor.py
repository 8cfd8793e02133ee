"""Unit tests for query/daily.py (time zones, day windows, zero filling) and query/cursor.py."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import pairwise

import orjson
import pytest

from query.cursor import BadCursor, decode_cursor, encode_cursor
from query.daily import day_window, zero_filled
from query.zones import zone
from schemas.api import DailyCount

# --- day_window -----------------------------------------------------------------------------


def test_day_window_utc() -> None:
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    dates, start = day_window(3, zone("UTC"), now)
    assert dates == [date(2026, 3, 8), date(2026, 3, 9), date(2026, 3, 10)]
    assert start == datetime(2026, 3, 8, 0, 0, tzinfo=UTC)


def test_day_window_local_date_ahead_of_utc() -> None:
    now = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)  # 05:00 on the 30th in Kolkata
    dates, start = day_window(7, zone("Asia/Kolkata"), now)
    assert len(dates) == 7
    assert dates[-1] == date(2026, 11, 30)
    assert dates[0] == date(2026, 11, 24)
    assert dates == sorted(dates)
    assert all(b - a == timedelta(days=1) for a, b in pairwise(dates))
    # local midnight of 24 Nov in UTC+05:30
    assert start == datetime(2026, 11, 23, 18, 30, tzinfo=UTC)
    assert start.utcoffset() == timedelta(0)


def test_day_window_local_date_behind_utc() -> None:
    now = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)  # still 31 Dec in Los Angeles (UTC-8)
    dates, start = day_window(2, zone("America/Los_Angeles"), now)
    assert dates == [date(2025, 12, 30), date(2025, 12, 31)]
    assert start == datetime(2025, 12, 30, 8, 0, tzinfo=UTC)


def test_day_window_single_day() -> None:
    now = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    dates, start = day_window(1, zone("Europe/Berlin"), now)  # 02:00 CEST
    assert dates == [date(2026, 6, 1)]
    assert start == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)


def test_day_window_start_uses_offset_of_first_day_across_dst() -> None:
    # Europe/London moves to BST on 29 Mar 2026; the window starts before it in GMT.
    now = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)
    dates, start = day_window(3, zone("Europe/London"), now)
    assert dates == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    assert start == datetime(2026, 3, 28, 0, 0, tzinfo=UTC)
    now = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
    _, start = day_window(2, zone("Europe/London"), now)
    assert start == datetime(2026, 3, 31, 23, 0, tzinfo=UTC)  # midnight BST


def test_day_window_accepts_non_utc_now() -> None:
    now = datetime(2026, 11, 30, 5, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    dates, _ = day_window(1, zone("UTC"), now)
    assert dates == [date(2026, 11, 29)]


def test_day_window_full_year() -> None:
    now = datetime(2026, 12, 31, 12, 0, tzinfo=UTC)
    dates, start = day_window(365, zone("UTC"), now)
    assert len(dates) == 365
    assert len(set(dates)) == 365
    assert dates[0] == date(2026, 1, 1)
    assert start == datetime(2026, 1, 1, tzinfo=UTC)


# --- zero_filled ----------------------------------------------------------------------------


def test_zero_filled_fills_missing_dates_in_order() -> None:
    dates = [date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 4)]
    counts = {date(2026, 1, 4): 7, date(2026, 1, 2): 3}
    result = zero_filled(dates, counts)
    assert all(isinstance(r, DailyCount) for r in result)
    assert [(r.date, r.count) for r in result] == [
        (date(2026, 1, 1), 0),
        (date(2026, 1, 2), 3),
        (date(2026, 1, 3), 0),
        (date(2026, 1, 4), 7),
    ]


def test_zero_filled_ignores_counts_outside_the_window() -> None:
    result = zero_filled([date(2026, 1, 2)], {date(2026, 1, 1): 5, date(2026, 1, 2): 1})
    assert [(r.date, r.count) for r in result] == [(date(2026, 1, 2), 1)]


def test_zero_filled_empty_counts_and_dates() -> None:
    assert [r.count for r in zero_filled([date(2026, 1, 1), date(2026, 1, 2)], {})] == [0, 0]
    assert zero_filled([], {date(2026, 1, 1): 1}) == []


# --- cursor ---------------------------------------------------------------------------------


def test_cursor_round_trip() -> None:
    ts = datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    cursor = encode_cursor(ts, "msg-1")
    assert decode_cursor(cursor) == (ts, "msg-1")


def test_cursor_round_trip_truncates_to_milliseconds() -> None:
    ts = datetime(2026, 5, 6, 7, 8, 9, 123999, tzinfo=UTC)
    decoded, message_id = decode_cursor(encode_cursor(ts, "m"))
    assert decoded == datetime(2026, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    assert decoded.utcoffset() == timedelta(0)
    assert message_id == "m"


def test_cursor_round_trip_many_millisecond_values() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for step in range(0, 5000, 7):
        ts = base + timedelta(milliseconds=step * 1_000_003)
        assert decode_cursor(encode_cursor(ts, "id"))[0] == ts


def test_cursor_naive_timestamp_is_utc() -> None:
    naive = datetime(2026, 5, 6, 7, 8, 9, 500000)
    assert decode_cursor(encode_cursor(naive, "m"))[0] == naive.replace(tzinfo=UTC)


def test_cursor_non_utc_timestamp_keeps_the_instant() -> None:
    ts = datetime(2026, 5, 6, 12, 0, tzinfo=timezone(timedelta(hours=-3)))
    decoded, _ = decode_cursor(encode_cursor(ts, "m"))
    assert decoded == ts
    assert decoded == datetime(2026, 5, 6, 15, 0, tzinfo=UTC)


def test_cursor_is_url_safe_and_unpadded() -> None:
    cursor = encode_cursor(datetime(2026, 5, 6, tzinfo=UTC), "a/b+c?d=é" * 5)
    assert "=" not in cursor
    assert "+" not in cursor
    assert "/" not in cursor
    assert decode_cursor(cursor)[1] == "a/b+c?d=é" * 5


def raw_cursor(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not a cursor",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"{not json").decode(),
        raw_cursor("string"),
        raw_cursor(5),
        raw_cursor(None),
        raw_cursor([]),
        raw_cursor([1]),
        raw_cursor([1, "a", 2]),
        raw_cursor(["1700000000000", "a"]),
        raw_cursor([1.5, "a"]),
        raw_cursor([1, 2]),
        raw_cursor([1, None]),
        raw_cursor({"t": 1, "m": "a"}),
        raw_cursor([10**18, "a"]),
        raw_cursor([-(10**18), "a"]),
    ],
)
def test_decode_garbage_cursor_raises_bad_cursor(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


def test_decode_boolean_millis_raises_bad_cursor() -> None:
    # JSON `true` is not a millisecond count, even though Python's bool is an int subclass.
    with pytest.raises(BadCursor):
        decode_cursor(raw_cursor([True, "a"]))


def test_bad_cursor_is_value_error() -> None:
    with pytest.raises(ValueError, match="cursor"):
        decode_cursor("###")
