"""Pure: the query service's one source of time-zone rules, and their SQL.

Local days and hours are found twice: here, for a query's range and its periods, and in
ClickHouse, for each row. ClickHouse carries its own copy of the IANA database (chDB's and a
server's may each be older or newer than ours), and when the two copies disagree on a zone a
row lands in a period that does not exist here: a wrong count, or a period the answer cannot
place. In 2026 they disagreed on nine zones, America/Vancouver among them. So the SQL never asks
ClickHouse for a zone: it is given the zone's UTC offsets over the range, found here, and
computes local times from them (`local_time_sql`).

The rules here are the `tzdata` package's (pinned, and newer than most systems' copy), read
directly rather than through the system's search path first."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

# A zone's offset is looked at this often over a range; a change between two looks is then found
# to the second. No zone has changed twice within six hours.
_STEP = timedelta(hours=6)
# The SQL reads offsets a little outside the range: an hour's start is found from an instant up
# to two hours before the row (query/insights/sql.py).
MARGIN = timedelta(days=1)
_NAME = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*")


class BadTimezone(ValueError):
    pass


@cache
def _names() -> frozenset[str]:
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


@cache
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, from the tzdata package; BadTimezone if there is none."""
    if len(name) > 64 or not _NAME.fullmatch(name) or name not in _names():
        raise BadTimezone(f"unknown IANA time zone {name[:64]!r}")
    path = resources.files("tzdata.zoneinfo").joinpath(*name.split("/"))
    with path.open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


def _offset(second: int, tz: ZoneInfo) -> int:
    delta = datetime.fromtimestamp(second, UTC).astimezone(tz).utcoffset()
    assert delta is not None
    return int(delta.total_seconds())


@cache
def _changes_in_year(tz: ZoneInfo, year: int) -> tuple[tuple[datetime, int], ...]:
    """Each change of the zone's offset in the UTC year: (its first second, the new offset).
    Found once per zone and year (a 30-year range takes about 0.1 s the first time)."""
    first = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    last = int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp())
    step = int(_STEP.total_seconds())
    changes = []
    before, current = first - 1, _offset(first - 1, tz)
    while before < last - 1:
        after = min(before + step, last - 1)
        if _offset(after, tz) != current:
            low, high = before, after  # old offset at low, new at high: halve to the second
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(middle, tz) == current:
                    low = middle
                else:
                    high = middle
            current = _offset(high, tz)
            changes.append((datetime.fromtimestamp(high, UTC), current))
            after = high
        before = after
    return tuple(changes)


def offsets(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offset (seconds) at `start` and each change of it before `end`: (the
    instant it takes effect, the offset), the first at `start`."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    found = [(start, _offset(int(start.timestamp() // 1), tz))]
    for year in range(start.year, end.year + 1):
        found.extend(c for c in _changes_in_year(tz, year) if start < c[0] < end)
    return found


def local_time_sql(
    tz: ZoneInfo, start: datetime, end: datetime, params: dict[str, Any]
) -> Callable[[str], str]:
    """A builder of the SQL of an instant's local wall-clock time in `tz`, as a UTC time (so
    `toDate`, `toMinute` of it read the local date, minute), for instants within [start, end)
    give or take MARGIN; the offsets are bound into `params`."""
    changes = offsets(tz, start - MARGIN, end + MARGIN)
    for i, (moment, seconds) in enumerate(changes):
        params[f"tz_at{i}"], params[f"tz_offset{i}"] = moment, seconds

    def local(instant: str) -> str:
        if len(changes) == 1:
            offset = "{tz_offset0:Int32}"
        else:
            branches = ", ".join(
                f"{instant} < {{tz_at{i}:DateTime64(3, 'UTC')}}, {{tz_offset{i - 1}:Int32}}"
                for i in range(1, len(changes))
            )
            offset = f"multiIf({branches}, {{tz_offset{len(changes) - 1}:Int32}})"
        return f"({instant} + toIntervalSecond({offset}))"

    return local
