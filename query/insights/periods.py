"""Pure: the periods (local hours, days, weeks, months) of a time range, as UTC instants, and
their labels. ClickHouse buckets rows with the same rules and the same zone offsets
(query/insights/sql.py, query/zones.py), so a row's period here and there agree, across DST
changes and zones with half- and quarter-hour offsets."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Unit = Literal["hour", "day", "week", "month"]

QUARTER = timedelta(minutes=15)
# Every offset in use since 1972 is a whole number of quarter hours, so a local hour starts on a
# UTC quarter hour; the bound only stops a loop on an older zone's odd offset.
_MAX_QUARTERS = 8


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone` (when midnight is skipped by a DST change, fold=0
    gives the offset before it, which is the instant the day starts)."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _quarter_floor(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def split_on_buckets(
    start: datetime, end: datetime
) -> tuple[tuple[datetime, datetime] | None, list[tuple[datetime, datetime]]]:
    """[start, end) as the whole 15-minute buckets inside it (answered by the aggregate
    projection) and the pieces at either edge that are parts of buckets (read as rows)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    floor = _quarter_floor(start)
    first = floor if floor == start else floor + QUARTER
    last = _quarter_floor(end)
    if first >= last:
        return None, [(start, end)] if start < end else []
    edges = []
    if start < first:
        edges.append((start, first))
    if last < end:
        edges.append((last, end))
    return (first, last), edges


def _is_hour_start(moment: datetime, zone: ZoneInfo) -> bool:
    return moment.astimezone(zone).minute == 0


def _week_first_day(day: date, week_start: int) -> date:
    return day - timedelta(days=(day.isoweekday() - week_start) % 7)


def floor(moment: datetime, unit: Unit, zone: ZoneInfo, week_start: int) -> datetime:
    """The start (UTC) of the local period holding `moment`."""
    moment = moment.astimezone(UTC)
    if unit == "hour":
        start = _quarter_floor(moment)
        for _ in range(_MAX_QUARTERS):
            if _is_hour_start(start, zone):
                break
            start -= QUARTER
        return start
    day = moment.astimezone(zone).date()
    if unit == "week":
        day = _week_first_day(day, week_start)
    elif unit == "month":
        day = day.replace(day=1)
    return _midnight(day, zone)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def shift(start: datetime, unit: Unit, zone: ZoneInfo, periods: int) -> datetime:
    """The start of the period `periods` periods after (or before, negative) the one starting
    at `start`."""
    if unit == "hour":
        # Whole hours, then back to an hour start: a 30-minute DST change (Lord Howe) between
        # the two would otherwise land mid-hour.
        return floor(start + timedelta(hours=periods), unit, zone, 1)
    day = start.astimezone(zone).date()
    if unit == "day":
        return _midnight(day + timedelta(days=periods), zone)
    if unit == "week":
        return _midnight(day + timedelta(weeks=periods), zone)
    return _midnight(_add_months(day, periods), zone)


def following(start: datetime, unit: Unit, zone: ZoneInfo) -> datetime:
    """The start of the period after the one starting at `start`."""
    if unit == "hour":
        moment = start + QUARTER
        for _ in range(_MAX_QUARTERS):
            if _is_hour_start(moment, zone):
                break
            moment += QUARTER
        return moment
    return shift(start, unit, zone, 1)


def starts(
    begin: datetime, end: datetime, unit: Unit, zone: ZoneInfo, week_start: int, limit: int
) -> list[datetime]:
    """The start of every period overlapping [begin, end), at most `limit` + 1 of them (one
    more than the limit says the range has too many)."""
    found: list[datetime] = []
    moment = floor(begin, unit, zone, week_start)
    while moment < end and len(found) <= limit:
        found.append(moment)
        moment = following(moment, unit, zone)
    return found


def label(start: datetime, unit: Unit, zone: ZoneInfo) -> str:
    """`YYYY-MM-DD` for a day, week or month; a local ISO date-time with its offset for an hour
    (a DST fall-back day has two `02:00`, told apart by their offsets)."""
    local = start.astimezone(zone)
    if unit == "hour":
        return local.isoformat()
    return local.date().isoformat()


def nominal_key(label_: str, unit: Unit, week_start: int) -> str:
    """The local date ClickHouse keys a day, week or month by, from the period's label: the
    same but for a week whose first day never existed (Samoa skipped 30 December 2011; its
    week from Friday is labelled the 31st, its first instant's date, and keyed the 30th)."""
    day = date.fromisoformat(label_)
    if unit == "week":
        day = _week_first_day(day, week_start)
    elif unit == "month":
        day = day.replace(day=1)
    return day.isoformat()


def key_label(key: object, unit: Unit, zone: ZoneInfo) -> str:
    """The label of a period as ClickHouse returns its key: the hour's start instant (naive UTC
    or aware), or the local date of a day, week or month."""
    if isinstance(key, datetime):
        moment = key if key.tzinfo is not None else key.replace(tzinfo=UTC)
        return label(moment, unit, zone)
    if isinstance(key, date):
        return key.isoformat()
    raise TypeError(f"unexpected period key {key!r}")
