"""Pure: query/insights/periods.py, the local hours, days, weeks and months of a range, in zones
with DST (Paris, New York), half- and quarter-hour offsets (Kolkata, Kathmandu) and a 30-minute
DST change (Lord Howe), with weeks starting on any day. Checked by hand on the DST days and
against the oracle of tests/support/insights.py on many pseudo-random ranges."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from query.insights import periods
from tests.support.insights import period_labels, period_of

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
HAVANA = ZoneInfo("America/Havana")  # DST changes at midnight
MONDAY, WEDNESDAY, SUNDAY = 1, 3, 7
UNITS: tuple[periods.Unit, ...] = ("hour", "day", "week", "month")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local_midnight(day: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)


def hours_of(day: str, zone: ZoneInfo) -> list[str]:
    """The hour labels of one local day."""
    start = local_midnight(day, zone)
    end = local_midnight((date.fromisoformat(day) + timedelta(days=1)).isoformat(), zone)
    found = periods.starts(start, end, "hour", zone, MONDAY, 2000)
    return [periods.label(s, "hour", zone) for s in found]


# --- hours on DST days ------------------------------------------------------------------------


def test_paris_spring_forward_day_has_23_hours_and_no_2_oclock() -> None:
    hours = hours_of("2026-03-29", PARIS)
    assert len(hours) == 23
    assert hours[:4] == [
        "2026-03-29T00:00:00+01:00",
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]
    assert hours[-1] == "2026-03-29T23:00:00+02:00"


def test_paris_fall_back_day_has_25_hours_and_two_2_oclocks() -> None:
    hours = hours_of("2026-10-25", PARIS)
    assert len(hours) == 25
    assert hours[1:5] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert len(set(hours)) == 25


def test_new_york_dst_days() -> None:
    spring, autumn = hours_of("2026-03-08", NEW_YORK), hours_of("2026-11-01", NEW_YORK)
    assert len(spring) == 23 and spring[2] == "2026-03-08T03:00:00-04:00"
    assert len(autumn) == 25
    assert autumn[1:3] == ["2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"]


@pytest.mark.parametrize(("zone", "minute"), [(KOLKATA, 30), (KATHMANDU, 15)])
def test_hours_of_half_and_quarter_hour_zones_start_off_the_utc_hour(
    zone: ZoneInfo, minute: int
) -> None:
    start = local_midnight("2026-06-01", zone)
    found = periods.starts(start, start + timedelta(days=1), "hour", zone, MONDAY, 100)
    assert len(found) == 24
    assert {s.minute for s in found} == {minute}
    assert periods.label(found[0], "hour", zone) == (
        "2026-06-01T00:00:00+05:30" if zone is KOLKATA else "2026-06-01T00:00:00+05:45"
    )


def test_lord_howe_30_minute_changes_make_a_90_minute_hour() -> None:
    # 4 Oct 2026: 02:00 +10:30 becomes 02:30 +11:00; the 01:00 hour runs to 03:00 +11:00.
    spring = hours_of("2026-10-04", LORD_HOWE)
    assert spring[:3] == [
        "2026-10-04T00:00:00+10:30",
        "2026-10-04T01:00:00+10:30",
        "2026-10-04T03:00:00+11:00",
    ]
    assert len(spring) == 23
    # 5 Apr 2026: 02:00 +11:00 becomes 01:30 +10:30; the 01:00 hour runs to 02:00 +10:30.
    autumn = hours_of("2026-04-05", LORD_HOWE)
    assert autumn[:3] == [
        "2026-04-05T00:00:00+11:00",
        "2026-04-05T01:00:00+11:00",
        "2026-04-05T02:00:00+10:30",
    ]
    assert len(autumn) == 24
    for day in ("2026-10-04", "2026-04-05"):
        start = local_midnight(day, LORD_HOWE)
        found = periods.starts(start, start + timedelta(hours=4), "hour", LORD_HOWE, 1, 10)
        assert [b - a for a, b in pairwise(found)][:2] == [
            timedelta(hours=1),
            timedelta(minutes=90),
        ]


def test_a_row_in_the_second_half_of_lord_howes_long_hour_floors_to_its_start() -> None:
    # 02:40 +11:00 on 4 Oct 2026 and 01:40 +10:30 (the second one) on 5 Apr 2026
    assert periods.floor(utc("2026-10-03T15:40"), "hour", LORD_HOWE, 1) == utc("2026-10-03T14:30")
    assert periods.floor(utc("2026-04-04T15:10"), "hour", LORD_HOWE, 1) == utc("2026-04-04T14:00")


# --- days, weeks, months ----------------------------------------------------------------------


def test_days_across_dst_are_local_midnights_of_23_24_and_25_hours() -> None:
    found = periods.starts(
        local_midnight("2026-03-28", PARIS), local_midnight("2026-03-31", PARIS), "day", PARIS, 1, 9
    )
    assert found == [utc("2026-03-27T23:00"), utc("2026-03-28T23:00"), utc("2026-03-29T22:00")]
    assert [periods.label(s, "day", PARIS) for s in found] == [
        "2026-03-28",
        "2026-03-29",
        "2026-03-30",
    ]
    autumn = periods.starts(
        local_midnight("2026-10-25", PARIS), local_midnight("2026-10-27", PARIS), "day", PARIS, 1, 9
    )
    assert [b - a for a, b in pairwise(autumn)] == [timedelta(hours=25)]


def test_days_of_kolkata_and_kathmandu_start_at_their_local_midnight() -> None:
    assert periods.floor(utc("2026-06-01T18:29"), "day", KOLKATA, 1) == utc("2026-05-31T18:30")
    assert periods.floor(utc("2026-06-01T18:30"), "day", KOLKATA, 1) == utc("2026-06-01T18:30")
    assert periods.floor(utc("2026-06-01T18:14"), "day", KATHMANDU, 1) == utc("2026-05-31T18:15")
    assert periods.label(utc("2026-06-01T18:15"), "day", KATHMANDU) == "2026-06-02"


def test_lord_howe_days_last_23_and_a_half_and_24_and_a_half_hours() -> None:
    def length(day: str) -> timedelta:
        start = local_midnight(day, LORD_HOWE)
        return periods.following(start, "day", LORD_HOWE) - start

    assert length("2026-10-04") == timedelta(hours=23, minutes=30)
    assert length("2026-04-05") == timedelta(hours=24, minutes=30)


def test_havana_days_start_at_their_first_instant_when_midnight_is_skipped_or_repeated() -> None:
    # 8 Mar 2026: 00:00 -05:00 becomes 01:00 -04:00 (no midnight); 1 Nov 2026: 01:00 -04:00
    # becomes 00:00 -05:00 (two midnights). A day starts at its first instant.
    spring = periods.floor(utc("2026-03-08T12:00"), "day", HAVANA, MONDAY)
    assert spring == utc("2026-03-08T05:00")
    assert periods.following(spring, "day", HAVANA) - spring == timedelta(hours=23)
    autumn = periods.floor(utc("2026-11-01T12:00"), "day", HAVANA, MONDAY)
    assert autumn == utc("2026-11-01T04:00")
    assert periods.following(autumn, "day", HAVANA) - autumn == timedelta(hours=25)
    assert periods.floor(utc("2026-11-01T04:30"), "day", HAVANA, MONDAY) == autumn
    assert periods.label(autumn, "day", HAVANA) == "2026-11-01"
    sunday_week = periods.floor(utc("2026-11-03T12:00"), "week", HAVANA, SUNDAY)
    assert sunday_week == autumn


@pytest.mark.parametrize(
    ("week_start", "first_day"),
    [(MONDAY, "2026-03-23"), (SUNDAY, "2026-03-29"), (WEDNESDAY, "2026-03-25")],
)
def test_a_week_starts_on_its_first_weekday(week_start: int, first_day: str) -> None:
    sunday_noon = datetime(2026, 3, 29, 12, tzinfo=PARIS)  # a Sunday, and Paris's DST day
    start = periods.floor(sunday_noon, "week", PARIS, week_start)
    assert periods.label(start, "week", PARIS) == first_day
    assert start == local_midnight(first_day, PARIS)
    following = periods.following(start, "week", PARIS)
    assert following.astimezone(PARIS).time().hour == 0
    assert following - start == timedelta(days=7, hours=-1)  # each holds the 23-hour day


def test_the_week_of_a_week_start_day_is_itself_at_its_first_instant() -> None:
    monday = local_midnight("2026-11-02", NEW_YORK)  # the day after New York's fall-back
    assert periods.floor(monday, "week", NEW_YORK, MONDAY) == monday
    before = monday - timedelta(milliseconds=1)
    assert periods.label(periods.floor(before, "week", NEW_YORK, MONDAY), "week", NEW_YORK) == (
        "2026-10-26"
    )


def test_months_start_on_the_first_at_local_midnight() -> None:
    found = periods.starts(
        utc("2026-02-26T12:00"), utc("2026-05-02T00:00"), "month", PARIS, MONDAY, 9
    )
    assert [periods.label(s, "month", PARIS) for s in found] == [
        "2026-02-01",
        "2026-03-01",
        "2026-04-01",
        "2026-05-01",
    ]
    assert found[2] == utc("2026-03-31T22:00")  # April starts in summer time
    # a UTC instant that is already the next month in Kolkata
    assert (
        periods.label(periods.floor(utc("2026-03-31T19:00"), "month", KOLKATA, 1), "month", KOLKATA)
        == "2026-04-01"
    )


@pytest.mark.parametrize(
    ("unit", "start", "n", "expected"),
    [
        ("day", "2026-03-30", -2, "2026-03-28"),
        ("week", "2026-11-02", -1, "2026-10-26"),
        ("month", "2026-01-01", -13, "2024-12-01"),
        ("month", "2026-11-01", 2, "2027-01-01"),
    ],
)
def test_shift_by_whole_periods(unit: periods.Unit, start: str, n: int, expected: str) -> None:
    moved = periods.shift(local_midnight(start, PARIS), unit, PARIS, n)
    assert moved == local_midnight(expected, PARIS)


def test_starts_stop_one_past_the_limit() -> None:
    begin = utc("2026-01-01T00:00")
    assert len(periods.starts(begin, begin + timedelta(hours=2000), "hour", PARIS, 1, 2000)) == 2000
    assert len(periods.starts(begin, begin + timedelta(hours=2001), "hour", PARIS, 1, 2000)) == 2001
    assert len(periods.starts(begin, begin + timedelta(days=30), "hour", PARIS, 1, 10)) == 11


def test_a_partial_first_period_starts_before_the_range() -> None:
    begin, end = utc("2026-03-29T10:07:13"), utc("2026-03-29T12:30")
    found = periods.starts(begin, end, "hour", PARIS, MONDAY, 10)
    assert found == [utc("2026-03-29T10:00"), utc("2026-03-29T11:00"), utc("2026-03-29T12:00")]


def test_key_labels_of_clickhouse_keys() -> None:
    assert periods.key_label(date(2026, 3, 29), "day", PARIS) == "2026-03-29"
    naive_utc_hour = datetime(2026, 10, 25, 1, 0)  # 02:00 +01:00, the second 2 o'clock
    assert periods.key_label(naive_utc_hour, "hour", PARIS) == "2026-10-25T02:00:00+01:00"
    assert periods.key_label(utc("2026-10-25T00:00"), "hour", PARIS) == "2026-10-25T02:00:00+02:00"


# --- against the oracle -----------------------------------------------------------------------

ZONES = (UTC, PARIS, NEW_YORK, KOLKATA, KATHMANDU, LORD_HOWE, HAVANA)
# Around the DST changes of 2026 (each window a few days wide), and plain weeks.
AROUND = ("2026-03-06", "2026-03-27", "2026-04-03", "2026-10-02", "2026-10-23", "2026-10-30")


def _random_ranges(seed: int, count: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    ranges = []
    for _ in range(count):
        base = utc(rng.choice(AROUND) + "T00:00")
        start = base + timedelta(
            minutes=rng.randrange(4 * 24 * 60), milliseconds=rng.randrange(1000)
        )
        ranges.append((start, start + timedelta(minutes=rng.randrange(1, 9 * 24 * 60))))
    return ranges


@pytest.mark.parametrize("zone", ZONES, ids=str)
@pytest.mark.parametrize("unit", UNITS)
def test_periods_equal_the_oracles_on_random_ranges(zone: ZoneInfo, unit: periods.Unit) -> None:
    for n, (begin, end) in enumerate(_random_ranges(len(str(zone)) * 7 + len(unit), 12)):
        week_start = n % 7 + 1
        found = periods.starts(begin, end, unit, zone, week_start, 2000)
        labels = [periods.label(s, unit, zone) for s in found]
        assert labels == period_labels(begin, end, unit, zone, week_start), (begin, end)
        for start in found:
            # each start is the first instant of its period
            assert period_of(start, unit, zone, week_start) == periods.label(start, unit, zone)
            before = start - timedelta(milliseconds=1)
            assert period_of(before, unit, zone, week_start) != periods.label(start, unit, zone)


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_floor_equals_the_oracle_on_every_quarter_hour_near_dst(zone: ZoneInfo) -> None:
    for day in AROUND:
        moment = utc(day + "T00:00") + timedelta(minutes=7, seconds=30)
        for _ in range(4 * 24 * 4):
            for unit in UNITS:
                start = periods.floor(moment, unit, zone, SUNDAY)
                assert start <= moment
                assert periods.label(start, unit, zone) == period_of(moment, unit, zone, SUNDAY)
            moment += timedelta(minutes=15)
