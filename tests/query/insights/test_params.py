"""Pure: query/insights/params.py, the shared time range (from/to/last/tz/week_start) and the
counts query's parameters, each refusal a BadParameter naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from query.insights.params import (
    BadParameter,
    Filter,
    TimeRange,
    counts_query_from_params,
    parse_counts_query,
    parse_filter,
    parse_time_range,
)
from query.zones import zone as service_zone
from tests.support.insights import period_labels, period_of

# A Wednesday afternoon (17:40:00.1234 in Paris).
NOW = datetime(2026, 12, 2, 16, 40, 0, 123400, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def time_range(
    from_: str | None = None,
    to: str | None = None,
    last: str | None = None,
    tz: str = "UTC",
    week_start: str = "monday",
    now: datetime = NOW,
) -> TimeRange:
    return parse_time_range(from_, to, last, tz, week_start, now)


def refused(field: str, **kwargs: Any) -> BadParameter:
    with pytest.raises(BadParameter) as info:
        time_range(**kwargs)
    assert info.value.field == field, (info.value.field, str(info.value))
    assert isinstance(info.value, ValueError) and str(info.value)
    return info.value


# --- from / to --------------------------------------------------------------------------------


def test_dates_are_local_days_and_a_date_to_includes_its_day() -> None:
    found = time_range("2026-11-03", "2026-12-01", tz="Europe/Paris")
    assert (found.start, found.end) == (utc("2026-11-02T23:00"), utc("2026-12-01T23:00"))
    assert found.zone == service_zone("Europe/Paris") and found.tz == "Europe/Paris"
    assert found.week_start == 1


@pytest.mark.parametrize(
    ("day", "tz", "hours"),
    [
        ("2026-03-29", "Europe/Paris", 23),
        ("2026-10-25", "Europe/Paris", 25),
        ("2026-03-08", "America/New_York", 23),
        ("2026-11-01", "America/New_York", 25),
        ("2026-10-04", "Australia/Lord_Howe", 23.5),
        ("2026-04-05", "Australia/Lord_Howe", 24.5),
        ("2026-03-29", "Asia/Kolkata", 24),
        ("2026-03-08", "America/Havana", 23),  # from 01:00: midnight is skipped
        # from the first of two midnights (2026f: Havana has none in 2026)
        ("2025-11-02", "America/Havana", 25),
    ],
)
def test_one_date_is_its_whole_local_day(day: str, tz: str, hours: float) -> None:
    found = time_range(day, day, tz=tz)
    assert found.end - found.start == timedelta(hours=hours)
    assert found.start.astimezone(service_zone(tz)).date().isoformat() == day
    assert (found.start - timedelta(milliseconds=1)).astimezone(
        service_zone(tz)
    ).date().isoformat() < day


def test_date_times_with_an_offset_or_z_are_instants_and_without_are_local() -> None:
    with_offset = time_range("2026-03-01T10:00:00+05:30", "2026-03-02T00:00:00Z", tz="Europe/Paris")
    assert (with_offset.start, with_offset.end) == (
        utc("2026-03-01T04:30"),
        utc("2026-03-02T00:00"),
    )
    local = time_range("2026-03-29T01:30", "2026-03-29T03:30", tz="Europe/Paris")
    assert (local.start, local.end) == (utc("2026-03-29T00:30"), utc("2026-03-29T01:30"))
    kathmandu = time_range("2026-06-01T00:00:00", "2026-06-01T01:00:00", tz="Asia/Kathmandu")
    assert kathmandu.start == utc("2026-05-31T18:15")


def test_from_alone_runs_up_to_now() -> None:
    found = time_range("2026-11-30")
    assert found.start == utc("2026-11-30T00:00")
    assert NOW <= found.end < NOW + timedelta(milliseconds=1)


def test_to_is_exclusive_and_must_be_after_from() -> None:
    found = time_range("2026-03-01T10:00:00Z", "2026-03-01T10:00:00.001Z")
    assert found.end - found.start == timedelta(milliseconds=1)
    refused("to", from_="2026-03-01T10:00:00Z", to="2026-03-01T10:00:00Z")
    refused("to", from_="2026-03-02", to="2026-03-01")
    refused("to", from_="2026-03-01T12:00:00+01:00", to="2026-03-01T11:00:00Z")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"to": "2026-03-01"}, "from"),
        ({"from_": "2026-03-01", "last": "7d"}, "last"),
        ({"from_": "2026-13-01"}, "from"),
        ({"from_": "2026-02-30"}, "from"),
        ({"from_": "yesterday"}, "from"),
        ({"from_": "2026-03-01T25:00"}, "from"),
        ({"from_": "1960-01-01"}, "from"),
        ({"from_": "2026-03-01", "to": "soon"}, "to"),
        ({"from_": "2026-03-01", "to": "9999-01-01"}, "to"),
        ({"from_": "2027-01-01"}, "from"),  # after now, with no `to`
    ],
)
def test_bad_from_and_to_name_their_parameter(kwargs: dict[str, Any], field: str) -> None:
    refused(field, **kwargs)


# --- last -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "tz", "week_start", "start"),
    [
        ("30d", "Europe/Paris", "monday", "2026-11-02T23:00"),  # 3 Nov, local midnight
        ("1d", "Europe/Paris", "monday", "2026-12-01T23:00"),
        ("1d", "Asia/Kolkata", "monday", "2026-12-01T18:30"),
        ("24h", "UTC", "monday", "2026-12-01T17:00"),
        ("24h", "Asia/Kolkata", "monday", "2026-12-01T17:30"),  # now 22:10 +05:30
        ("1w", "UTC", "monday", "2026-11-30T00:00"),
        ("2w", "UTC", "sunday", "2026-11-22T00:00"),
        ("1w", "UTC", "wednesday", "2026-12-02T00:00"),
        ("1w", "UTC", "thursday", "2026-11-26T00:00"),
        ("6m", "Europe/Paris", "monday", "2026-06-30T22:00"),  # 1 July, summer time
        ("13m", "UTC", "monday", "2025-12-01T00:00"),
    ],
)
def test_last_is_the_current_period_and_the_n_1_before(
    last: str, tz: str, week_start: str, start: str
) -> None:
    found = time_range(last=last, tz=tz, week_start=week_start)
    assert found.start == utc(start)
    assert NOW <= found.end < NOW + timedelta(milliseconds=1)


def test_the_default_is_the_last_30_days() -> None:
    assert time_range(tz="America/New_York") == time_range(last="30d", tz="America/New_York")
    assert time_range(tz="America/New_York").start == utc("2026-11-03T05:00")


@pytest.mark.parametrize("tz", ["Europe/Paris", "America/New_York", "Australia/Lord_Howe"])
@pytest.mark.parametrize("unit", ["h", "d", "w"])
def test_last_n_holds_n_periods_whatever_now_is_near_dst(tz: str, unit: str) -> None:
    """Now on every quarter hour (and a bit) around each DST change of the zone: `last=N`
    covers exactly N periods by the oracle's count, the first from its start."""
    interval = {"h": "hour", "d": "day", "w": "week"}[unit]
    zone = service_zone(tz)
    changes = {
        "Europe/Paris": ("2026-03-29T01:00", "2026-10-25T01:00"),
        "America/New_York": ("2026-03-08T07:00", "2026-11-01T06:00"),
        "Australia/Lord_Howe": ("2026-04-04T15:00", "2026-10-03T15:30"),
    }[tz]
    for change in changes:
        now = utc(change) - timedelta(hours=3, seconds=-17)
        for _ in range(6 * 4):
            for n in (1, 2, 3, 5):
                found = time_range(last=f"{n}{unit}", tz=tz, week_start="sunday", now=now)
                labels = period_labels(found.start, found.end, interval, zone, 7)
                assert len(labels) == n, (now, n, labels)
                assert (
                    period_of(found.start - timedelta(milliseconds=1), interval, zone, 7)
                    != (labels[0])
                )
            now += timedelta(minutes=15)


@pytest.mark.parametrize("last", ["0d", "30x", "d", "1.5d", "-1d", "30 d", "30D", "h1", "1hh"])
def test_bad_last_is_refused(last: str) -> None:
    refused("last", last=last)


@pytest.mark.parametrize("last", ["99999d", "99999w", "99999m"])
def test_last_reaching_before_1970_is_refused(last: str) -> None:
    refused("last", last=last)


# --- tz and week_start ------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "UTC+5", "../etc/passwd", "Europe/"])
def test_an_unknown_zone_is_refused(tz: str) -> None:
    refused("tz", from_="2026-03-01", tz=tz)


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("monday", 1),
        ("tuesday", 2),
        ("wednesday", 3),
        ("thursday", 4),
        ("friday", 5),
        ("saturday", 6),
        ("sunday", 7),
    ],
)
def test_week_start_names(name: str, number: int) -> None:
    assert time_range(week_start=name).week_start == number


@pytest.mark.parametrize("name", ["funday", "", "mon", "1", "7"])
def test_a_bad_week_start_is_refused(name: str) -> None:
    refused("week_start", week_start=name)


# --- where ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plan:eq:pro", Filter("plan", "eq", "pro")),
        ("note:eq:x:y:z", Filter("note", "eq", "x:y:z")),  # split on the first two colons
        (
            "company.name:contains:Initech: West",
            Filter("company.name", "contains", "Initech: West"),
        ),
        ("plan:neq:pro", Filter("plan", "neq", "pro")),
        ("price:gt:100", Filter("price", "gt", "100", 100.0)),
        ("price:lt:-2.5", Filter("price", "lt", "-2.5", -2.5)),
        ("price:gt:1e3", Filter("price", "gt", "1e3", 1000.0)),
        ("plan:set", Filter("plan", "set", None)),
        ("plan:not_set", Filter("plan", "not_set", None)),
    ],
)
def test_a_filter_parses_and_prints_as_given(text: str, expected: Filter) -> None:
    parsed = parse_filter(text)
    assert parsed == expected
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "plan",
        "plan:like:pro",
        "plan:EQ:pro",
        "plan:eq",
        "plan:contains",
        ":eq:pro",
        "price:gt:abc",
        "price:gt:",
        "price:lt:nan",
        "price:lt:inf",
        "x" * 256 + ":set",
    ],
)
def test_a_bad_filter_is_refused(text: str) -> None:
    with pytest.raises(BadParameter) as info:
        parse_filter(text)
    assert info.value.field == "where"


# --- the counts query -------------------------------------------------------------------------


def counts(**kwargs: Any) -> Any:
    return parse_counts_query(now=NOW, **{"from_": "2026-11-01", "to": "2026-11-30", **kwargs})


def test_the_counts_query_defaults() -> None:
    query = parse_counts_query(now=NOW)
    assert (query.interval, query.measure, query.events, query.filters) == ("day", "events", (), ())
    assert (query.breakdown, query.breakdown_limit, query.user) == (None, 10, None)
    assert query.range == time_range(last="30d")


def test_the_counts_query_keeps_every_parameter() -> None:
    query = counts(
        event=["B", "A"],
        interval="week",
        measure="per_user",
        tz="Asia/Kolkata",
        week_start="sunday",
        where=["plan:eq:pro", "price:gt:5"],
        breakdown="company.name",
        breakdown_limit=3,
        user="ada",
    )
    assert query.events == ("B", "A")  # in the order given
    assert (query.interval, query.measure, query.breakdown, query.breakdown_limit) == (
        "week",
        "per_user",
        "company.name",
        3,
    )
    assert [str(f) for f in query.filters] == ["plan:eq:pro", "price:gt:5"]
    assert (query.user, query.range.tz, query.range.week_start) == ("ada", "Asia/Kolkata", 7)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event": [f"E{n}" for n in range(11)]}, "event"),
        ({"event": [""]}, "event"),
        ({"event": ["x" * 256]}, "event"),
        ({"interval": "minute"}, "interval"),
        ({"interval": "Day"}, "interval"),
        ({"measure": "sessions"}, "measure"),
        ({"where": [f"p{n}:set" for n in range(11)]}, "where"),
        ({"where": ["plan:like:x"]}, "where"),
        ({"breakdown": ""}, "breakdown"),
        ({"breakdown": "x" * 256}, "breakdown"),
        ({"breakdown_limit": 0}, "breakdown_limit"),
        ({"breakdown_limit": 51}, "breakdown_limit"),
        ({"user": ""}, "user"),
        ({"tz": "Nowhere/Land"}, "tz"),
        ({"to": None, "from_": None, "last": "0w"}, "last"),
        ({"interval": "hour", "from_": "2026-01-01", "to": "2026-12-01"}, "interval"),
    ],
)
def test_each_bad_counts_parameter_is_named(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(BadParameter) as info:
        counts(**kwargs)
    assert info.value.field == field, str(info.value)


def test_the_most_of_each_counts_parameter_is_accepted() -> None:
    query = counts(
        event=[f"E{n}" + "x" * 250 for n in range(10)],
        where=[f"p{n}:not_set" for n in range(10)],
        breakdown="b" * 255,
        breakdown_limit=50,
    )
    assert len(query.events) == 10 and len(query.filters) == 10
    assert counts(breakdown_limit=1).breakdown_limit == 1


def test_at_most_2000_periods() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    at_most = (start + timedelta(hours=2000)).isoformat()
    assert counts(interval="hour", from_=start.isoformat(), to=at_most).interval == "hour"
    one_more = (start + timedelta(hours=2000, minutes=1)).isoformat()
    with pytest.raises(BadParameter) as info:
        counts(interval="hour", from_=start.isoformat(), to=one_more)
    assert info.value.field == "interval"
    last_2000 = counts(interval="day", from_=None, to=None, last="2000d")
    assert last_2000.range.start == utc("2021-06-12T00:00")
    with pytest.raises(BadParameter):
        counts(interval="day", from_=None, to=None, last="2001d")


def test_counts_query_from_query_string_parameters() -> None:
    query = counts_query_from_params(
        {
            "event": ["A", "B"],
            "where": "plan:eq:pro",
            "breakdown": "plan",
            "breakdown_limit": "3",
            "last": "12w",
            "week_start": "sunday",
            "tz": "Europe/Paris",
        },
        NOW,
    )
    assert query.events == ("A", "B") and [str(f) for f in query.filters] == ["plan:eq:pro"]
    assert query.breakdown_limit == 3
    assert query.range == time_range(last="12w", tz="Europe/Paris", week_start="sunday")
    with pytest.raises(BadParameter) as info:
        counts_query_from_params({"breakdown_limit": "ten"}, NOW)
    assert info.value.field == "breakdown_limit"
