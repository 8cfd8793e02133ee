"""query/zones.py: the zone rules are the tzdata package's, a zone's offsets over a range are
found to the second, and the SQL built from them gives ClickHouse's local dates and minutes by
those rules, whatever ClickHouse's own copy of the zone says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import tzdata

from query.zones import BadTimezone, local_time_sql, offsets, zone


def test_known_names_are_the_packages_zones() -> None:
    assert zone("UTC").key == "UTC"
    assert zone("Asia/Kolkata").key == "Asia/Kolkata"
    assert zone("Europe/Paris") is zone("Europe/Paris")  # made once


@pytest.mark.parametrize(
    "name", ["Not/AZone", "", "../etc/passwd", "Europe/", "UTC+5", "America", "x" * 300]
)
def test_an_unknown_name_raises_bad_timezone(name: str) -> None:
    with pytest.raises(BadTimezone) as info:
        zone(name)
    assert isinstance(info.value, ValueError)


def test_the_rules_are_the_tzdata_packages_not_the_systems() -> None:
    """British Columbia kept daylight time from November 2026 (tzdata 2026a and later); a
    system copy older than that says -08:00."""
    assert tzdata.IANA_VERSION >= "2026a"
    winter = datetime(2026, 12, 1, 12, tzinfo=UTC).astimezone(zone("America/Vancouver"))
    assert winter.utcoffset() == timedelta(hours=-7)


def _at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "start", "end", "expected"),
    [
        ("UTC", _at(2026, 1, 1), _at(2027, 1, 1), [(_at(2026, 1, 1), 0)]),
        (
            "Europe/Paris",
            _at(2026, 3, 28),
            _at(2026, 10, 30),
            [(_at(2026, 3, 28), 3600), (_at(2026, 3, 29, 1), 7200), (_at(2026, 10, 25, 1), 3600)],
        ),
        (  # a 30-minute change
            "Australia/Lord_Howe",
            _at(2026, 4, 1),
            _at(2026, 4, 10),
            [(_at(2026, 4, 1), 39600), (_at(2026, 4, 4, 15), 37800)],
        ),
        (  # Samoa skipped 30 December 2011
            "Pacific/Apia",
            _at(2011, 12, 28),
            _at(2012, 1, 2),
            [(_at(2011, 12, 28), -36000), (_at(2011, 12, 30, 10), 50400)],
        ),
        (  # across a year's end, starting on a change
            "Europe/London",
            _at(2025, 10, 26, 1),
            _at(2026, 3, 29, 2),
            [(_at(2025, 10, 26, 1), 0), (_at(2026, 3, 29, 1), 3600)],
        ),
    ],
)
def test_offsets_and_their_changes_to_the_second(
    name: str, start: datetime, end: datetime, expected: list[tuple[datetime, int]]
) -> None:
    assert offsets(zone(name), start, end) == expected


def test_every_change_is_where_the_offset_changes() -> None:
    tz = zone("America/New_York")
    found = offsets(tz, _at(1970, 1, 1), _at(2030, 1, 1))
    assert len(found) > 100
    for moment, seconds in found[1:]:
        assert moment.astimezone(tz).utcoffset() == timedelta(seconds=seconds)
        before = (moment - timedelta(seconds=1)).astimezone(tz).utcoffset()
        assert before != timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "name",
    # Winnipeg: chDB 26.9's own copy of the zone disagrees with tzdata 2026f from November 2026
    ["America/Winnipeg", "America/Vancouver", "Europe/Paris", "Australia/Lord_Howe", "UTC"],
)
def test_the_sql_gives_the_local_time_of_the_rules_here(chdb_client: Any, name: str) -> None:
    tz = zone(name)
    instants = [_at(2026, 3, 20) + timedelta(hours=5, minutes=15) * i for i in range(0, 1400)]
    params: dict[str, Any] = {"instants": instants}
    local = local_time_sql(tz, instants[0], instants[-1], params)
    rows = chdb_client.query(
        f"SELECT formatDateTime({local('t')}, '%F %T') "
        "FROM (SELECT arrayJoin({instants:Array(DateTime64(3, 'UTC'))}) AS t)",
        parameters=params,
    ).result_rows
    expected = [i.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") for i in instants]
    assert [row[0] for row in rows] == expected
