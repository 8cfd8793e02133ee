"""Pure: an analyst's query parameters -> a validated query. Every refusal is a `BadParameter`
naming the parameter, which the routes answer with a 400."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from query.insights import periods
from query.zones import BadTimezone, zone

Interval = Literal["hour", "day", "week", "month"]
Measure = Literal["events", "users", "per_user"]
FilterOp = Literal["eq", "neq", "contains", "gt", "lt", "set", "not_set"]

INTERVALS: tuple[Interval, ...] = ("hour", "day", "week", "month")
MEASURES: tuple[Measure, ...] = ("events", "users", "per_user")
FILTER_OPS: tuple[FilterOp, ...] = ("eq", "neq", "contains", "gt", "lt", "set", "not_set")
VALUE_OPS = frozenset({"eq", "neq", "contains", "gt", "lt"})
NUMERIC_OPS = frozenset({"gt", "lt"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

MAX_EVENTS = 10
MAX_FILTERS = 10
MAX_NAME = 255  # an event name or a property path
MAX_VALUE = 1000
MAX_PERIODS = 2000
MAX_BREAKDOWN_LIMIT = 50
DEFAULT_LAST = "30d"
# ClickHouse's DateTime, which the 15-minute buckets are, ends in 2106.
EARLIEST = datetime(1970, 1, 2, tzinfo=UTC)
LATEST = datetime(2105, 12, 31, tzinfo=UTC)

_LAST = re.compile(r"(\d{1,5})([hdwm])")
_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}")  # 2026-11-03, or ISO's basic 20261103
_UNITS: dict[str, Interval] = {"h": "hour", "d": "day", "w": "week", "m": "month"}


class BadParameter(ValueError):
    """A query parameter that cannot be used; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC, at millisecond precision (the events table's), and the zone and
    week start its periods are counted in."""

    start: datetime
    end: datetime
    zone: ZoneInfo
    tz: str
    week_start: int  # 1 = Monday .. 7 = Sunday, as ISO weekdays and ClickHouse's toDayOfWeek

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def days(self) -> tuple[date, date]:
        """The first and the last local date the range covers (for file names)."""
        last = self.end - timedelta(milliseconds=1)
        return self.local(self.start).date(), self.local(last).date()


@dataclass(frozen=True)
class Filter:
    """`property:op[:value]`; `number` is the value of gt/lt."""

    property: str
    op: FilterOp
    value: str | None
    number: float | None = None

    def __str__(self) -> str:
        return f"{self.property}:{self.op}" + ("" if self.value is None else f":{self.value}")


@dataclass(frozen=True)
class CountsQuery:
    range: TimeRange
    interval: Interval
    measure: Measure
    events: tuple[str, ...]  # empty: all events, as one series
    filters: tuple[Filter, ...]
    breakdown: str | None
    breakdown_limit: int
    user: str | None
    # The start (UTC) of every period of the range, found while checking their number.
    period_starts: tuple[datetime, ...]


def _ms(moment: datetime, *, up: bool) -> datetime:
    """Rounded to the millisecond, down (a start) or up (an end)."""
    extra = moment.microsecond % 1000
    moment = moment - timedelta(microseconds=extra)
    return moment + timedelta(milliseconds=1) if up and extra else moment


def _moment(text: str, tz: ZoneInfo, field: str, *, end: bool) -> datetime:
    """A date (its local midnight; the next one for an end, so the day is included) or an ISO
    date-time (local in `tz` when it has no offset), in UTC."""
    reason = "expected a date YYYY-MM-DD or an ISO 8601 date-time"
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            moment = datetime.combine(day, time.min, tzinfo=tz)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadParameter(field, f"{reason}, got {text[:40]!r}") from None
    if not EARLIEST <= moment <= LATEST:
        raise BadParameter(field, f"{text[:40]!r} is outside 1970-2105")
    return moment


def _week_start(text: str) -> int:
    try:
        return WEEKDAYS.index(text.lower()) + 1
    except ValueError:
        raise BadParameter("week_start", f"expected one of {', '.join(WEEKDAYS)}") from None


def _zone(name: str) -> ZoneInfo:
    try:
        return zone(name)
    except BadTimezone as exc:
        raise BadParameter("tz", str(exc)) from None


def parse_time_range(
    from_: str | None,
    to: str | None,
    last: str | None,
    tz: str,
    week_start: str,
    now: datetime,
) -> TimeRange:
    """`from`/`to`, or `last=<N>h|d|w|m` (the current local hour/day/week/month and the N-1
    before it, up to now; `30d` when neither is given)."""
    local_zone = _zone(tz)
    first_weekday = _week_start(week_start)
    if from_ and last:
        raise BadParameter("last", "give either last or from/to, not both")
    if to and not from_:
        raise BadParameter("from", "from is required with to")
    now = now.astimezone(UTC)
    if from_:
        start = _moment(from_, local_zone, "from", end=False)
        end = _moment(to, local_zone, "to", end=True) if to else now
        if end <= start:
            raise BadParameter("to" if to else "from", "the range ends before it starts")
    else:
        found = _LAST.fullmatch(last or DEFAULT_LAST)
        if found is None or int(found[1]) == 0:
            raise BadParameter("last", "expected <N>h, <N>d, <N>w or <N>m with N from 1, like 30d")
        unit = _UNITS[found[2]]
        current = periods.floor(now, unit, local_zone, first_weekday)
        try:
            start = periods.shift(current, unit, local_zone, -(int(found[1]) - 1))
        except (ValueError, OverflowError):  # before year 1
            start = datetime.min.replace(tzinfo=UTC)
        if start < EARLIEST:
            raise BadParameter("last", "reaches before 1970")
        end = now
    return TimeRange(
        start=_ms(start, up=False),
        end=_ms(end, up=True),
        zone=local_zone,
        tz=tz,
        week_start=first_weekday,
    )


def _name(text: str, field: str) -> str:
    """An event name or a property path: any text the catalog can list (a path is bound as an
    Identifier parameter, whatever it holds)."""
    if not text or len(text) > MAX_NAME:
        raise BadParameter(field, f"must be 1 to {MAX_NAME} characters")
    return text


def parse_filter(text: str) -> Filter:
    """`property:op[:value]`, split on the first two colons (a value may hold colons)."""
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise BadParameter("where", f"expected property:op[:value], got {text[:60]!r}")
    prop = _name(parts[0], "where")
    op = parts[1]
    if op not in FILTER_OPS:
        raise BadParameter("where", f"unknown op {op[:20]!r}: expected {', '.join(FILTER_OPS)}")
    value = parts[2] if len(parts) == 3 else None
    if op in VALUE_OPS and value is None:
        raise BadParameter("where", f"{prop}:{op} needs a value ({prop}:{op}:<value>)")
    if op not in VALUE_OPS and value is not None:
        raise BadParameter("where", f"{prop}:{op} takes no value")
    if value is not None and len(value) > MAX_VALUE:
        raise BadParameter("where", f"a value is at most {MAX_VALUE} characters")
    number = None
    if op in NUMERIC_OPS:
        assert value is not None
        try:
            number = float(value)
        except ValueError:
            raise BadParameter("where", f"{prop}:{op} needs a number, got {value[:40]!r}") from None
        if not math.isfinite(number):
            raise BadParameter("where", f"{prop}:{op} needs a finite number")
    return Filter(prop, op, value, number)


def parse_counts_query(
    *,
    now: datetime,
    event: Sequence[str] = (),
    interval: str = "day",
    measure: str = "events",
    from_: str | None = None,
    to: str | None = None,
    last: str | None = None,
    tz: str = "UTC",
    week_start: str = "monday",
    where: Sequence[str] = (),
    breakdown: str | None = None,
    breakdown_limit: int = 10,
    user: str | None = None,
    time_range: TimeRange | None = None,
) -> CountsQuery:
    """`time_range`, when the caller parsed it already, stands for from_, to, last, tz and
    week_start."""
    if interval not in INTERVALS:
        raise BadParameter("interval", f"expected one of {', '.join(INTERVALS)}")
    if measure not in MEASURES:
        raise BadParameter("measure", f"expected one of {', '.join(MEASURES)}")
    if len(event) > MAX_EVENTS:
        raise BadParameter("event", f"at most {MAX_EVENTS} events")
    events = tuple(dict.fromkeys(_name(name, "event") for name in event))
    if len(where) > MAX_FILTERS:
        raise BadParameter("where", f"at most {MAX_FILTERS} filters")
    filters = tuple(parse_filter(text) for text in where)
    if breakdown is not None:
        breakdown = _name(breakdown, "breakdown")
    if not 1 <= breakdown_limit <= MAX_BREAKDOWN_LIMIT:
        raise BadParameter("breakdown_limit", f"must be 1 to {MAX_BREAKDOWN_LIMIT}")
    if user is not None:
        user = _name(user, "user")
    if time_range is None:
        time_range = parse_time_range(from_, to, last, tz, week_start, now)
    starts = periods.starts(
        time_range.start,
        time_range.end,
        interval,
        time_range.zone,
        time_range.week_start,
        MAX_PERIODS,
    )
    if len(starts) > MAX_PERIODS:
        raise BadParameter(
            "interval",
            f"more than {MAX_PERIODS} {interval}s in the range: use a longer interval or a "
            "shorter range",
        )
    return CountsQuery(
        range=time_range,
        interval=interval,
        measure=measure,
        events=events,
        filters=filters,
        breakdown=breakdown,
        breakdown_limit=breakdown_limit,
        user=user,
        period_starts=tuple(starts),
    )


def counts_query_from_params(
    params: Mapping[str, str | Sequence[str]], now: datetime
) -> CountsQuery:
    """The same from a mapping of query-string parameters (repeatable ones as lists): what the
    benchmark and the tests build queries from."""

    def many(name: str) -> list[str]:
        value = params.get(name, ())
        return [value] if isinstance(value, str) else list(value)

    def one(name: str) -> str | None:
        values = many(name)
        return values[-1] if values else None

    limit = one("breakdown_limit")
    try:
        breakdown_limit = int(limit) if limit is not None else 10
    except ValueError:
        raise BadParameter("breakdown_limit", "must be a whole number") from None
    return parse_counts_query(
        now=now,
        event=many("event"),
        interval=one("interval") or "day",
        measure=one("measure") or "events",
        from_=one("from"),
        to=one("to"),
        last=one("last"),
        tz=one("tz") or "UTC",
        week_start=one("week_start") or "monday",
        where=many("where"),
        breakdown=one("breakdown"),
        breakdown_limit=breakdown_limit,
        user=one("user"),
    )
