"""The insights counts tests' rows and oracle: deterministic pseudo-random events around DST
changes, inserted straight into an events table, and a plain-Python answer of
GET /v1/insights/counts over the same rows (zoneinfo buckets, one loop per row), written from
the API contract rather than from query/insights."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from infra.warehouse import EVENT_COLUMN_TYPES, EVENT_COLUMNS, EVENTS_TABLE
from query.zones import zone as service_zone

VIEWED, SIGNED_UP, CHECKOUT = "Product Viewed", "Signed Up", "Checkout"
EVENT_NAMES = (VIEWED, SIGNED_UP, CHECKOUT)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
NOT_SET, OTHER = "(not set)", "Other"
SEP = " \u00b7 "  # the contract's label separator, "Product Viewed · pro"

# The weeks the rows are spread over: each holds DST changes of the zones above (UTC bounds).
# Spring: New York 8 Mar, Paris 29 Mar, Lord Howe's 30-minute fall-back 5 Apr.
# Autumn: Lord Howe's 30-minute spring-forward 4 Oct, Paris 25 Oct, New York 1 Nov.
WINDOWS = (
    (datetime(2026, 2, 26, tzinfo=UTC), datetime(2026, 4, 10, tzinfo=UTC)),
    (datetime(2026, 9, 28, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)),
)
# The DST changes themselves (UTC): rows are packed into the hours around each.
DST_CHANGES = (
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York 02:00 EST -> 03:00 EDT
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Paris 02:00 CET -> 03:00 CEST
    datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe 02:00 +11 -> 01:30 +10:30
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe 02:00 +10:30 -> 02:30 +11
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # Paris 03:00 CEST -> 02:00 CET
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York 02:00 EDT -> 01:00 EST
)
PLANS = ("free", "pro", "team", "enterprise")
COMPANIES = ("Acme", "ACME Corp", "Globex", "Initech: West", "Zürich AG", "ZÜRICH Bank")
NOTES = ("a:b", "x:y:z", "Hello World", "hello there", '=HYPERLINK("http://x")', "-5", "+1 555", "")


@dataclass(frozen=True)
class Row:
    message_id: str
    user_id: str
    event: str
    timestamp: datetime  # UTC, whole milliseconds (the column is DateTime64(3))
    properties: Mapping[str, Any]


@dataclass(frozen=True)
class Dataset:
    rows: tuple[Row, ...]
    merged_user: str  # a user whose anonymous id was merged into it
    anonymous_id: str  # that anonymous id: its events are stored under it, not the user's


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


ODD_KEY = "it's `odd`\\"


def _properties(rng: random.Random) -> dict[str, Any]:
    """A mix of types per key: the filters and breakdowns compare texts and numbers of it."""
    props: dict[str, Any] = {}
    draw = rng.random()
    # plan: four values with distinct weights, absent or null ("not set") in about 1 of 6
    if draw < 0.42:
        props["plan"] = "free"
    elif draw < 0.64:
        props["plan"] = "pro"
    elif draw < 0.76:
        props["plan"] = "team"
    elif draw < 0.83:
        props["plan"] = "enterprise"
    elif draw < 0.92:
        props["plan"] = None
    draw = rng.random()
    if draw < 0.45:
        props["price"] = rng.randint(1, 300)
    elif draw < 0.7:
        props["price"] = rng.randint(1, 300) + rng.choice((0.25, 0.5, 0.75))
    elif draw < 0.8:
        props["price"] = str(rng.randint(1, 300))  # a numeric string counts for gt/lt
    elif draw < 0.83:
        props["price"] = "free"
    elif draw < 0.85:
        # texts ClickHouse reads as numbers (a gt/lt compares them), and two it does not count
        props["price"] = rng.choice(("1e2", "+7", ".5", "2.5E1", "inf", "NaN"))
    if rng.random() < 0.6:
        props["company"] = {"name": rng.choice(COMPANIES), "size": rng.randint(1, 5000)}
    if rng.random() < 0.5:
        props["flag"] = rng.random() < 0.5
    if rng.random() < 0.4:
        props["note"] = rng.choice(NOTES)
    if rng.random() < 0.7:
        props["qty"] = rng.randint(1, 4)
    if rng.random() < 0.1:
        props["tags"] = ["a", "b"]
    if rng.random() < 0.3:
        # a key that needs quoting: bound as a ClickHouse Identifier it must still be found
        props[ODD_KEY] = rng.choice(("x", "y"))
    return props


def build_dataset(prefix: str, seed: int = 14) -> Dataset:
    """About 4,000 rows over `WINDOWS`, a quarter of them within 30 hours of a DST change,
    for 40 users (ids start with `prefix`, which names them apart in a shared Valkey) and one
    merged user with an anonymous id."""
    rng = random.Random(seed)
    users = [f"{prefix}-u{n:02d}" for n in range(40)]
    merged_user, anonymous_id = f"{prefix}-ada", f"{prefix}-anon"
    moments: list[datetime] = []
    for begin, end in WINDOWS:
        span_ms = int((end - begin).total_seconds() * 1000)
        moments += [begin + timedelta(milliseconds=rng.randrange(span_ms)) for _ in range(1500)]
    for change in DST_CHANGES:
        moments += [change + timedelta(seconds=rng.randint(-108_000, 108_000)) for _ in range(150)]
        # exactly at the change, and the millisecond before
        moments += [change, change - timedelta(milliseconds=1)]
    rows: list[Row] = []
    for n, moment in enumerate(moments):
        event = rng.choices(EVENT_NAMES, weights=(6, 1, 3))[0]
        user = rng.choice(users)
        rows.append(Row(f"{prefix}-m{n}", user, event, _ms(moment), _properties(rng)))
    # the merged user: events under its own id and under the anonymous id it was known by
    for n in range(60):
        moment = WINDOWS[1][0] + timedelta(hours=rng.randint(0, 900), milliseconds=n)
        stored_under = anonymous_id if n % 3 == 0 else merged_user
        rows.append(
            Row(f"{prefix}-ada{n}", stored_under, rng.choice(EVENT_NAMES), moment, _properties(rng))
        )
    return Dataset(tuple(rows), merged_user, anonymous_id)


def edge_rows(prefix: str, moments: Iterable[datetime], event: str = VIEWED) -> list[Row]:
    """Rows exactly at each of `moments` and 1 ms to either side (a range's edges)."""
    rows = []
    for n, moment in enumerate(moments):
        for k, delta in enumerate((-1, 0, 1)):
            at = moment.astimezone(UTC) + timedelta(milliseconds=delta)
            rows.append(Row(f"{prefix}-edge{n}-{k}", f"{prefix}-u00", event, at, {"plan": "pro"}))
    return rows


def insert_rows(client: Any, rows: Sequence[Row]) -> None:
    """An INSERT naming its columns, as the worker's, so ClickHouse computes the materialized
    ones (properties_typed)."""
    received = datetime(2026, 12, 1, tzinfo=UTC)
    values = {
        "type": "track",
        "name": "",
        "received_at": received,
        "traits": "{}",
        "context": "{}",
        "source": "test",
        "kafka_partition": 0,
    }
    data = [
        [
            {
                "message_id": row.message_id,
                "user_id": row.user_id,
                "anonymous_id": "",
                "event": row.event,
                "timestamp": row.timestamp,
                "properties": json.dumps(row.properties),
                "kafka_offset": n,
            }.get(column, values.get(column))
            for column in EVENT_COLUMNS
        ]
        for n, row in enumerate(rows)
    ]
    client.insert(
        EVENTS_TABLE,
        data,
        column_names=list(EVENT_COLUMNS),
        column_type_names=[EVENT_COLUMN_TYPES[c] for c in EVENT_COLUMNS],
    )


# --- the oracle -----------------------------------------------------------------------------


def lookup(properties: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, None when absent."""
    node: Any = properties
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def text_of(value: Any) -> str | None:
    """A property's text as the contract compares it: strings as is, numbers as ClickHouse
    prints them, true/false; None when absent or null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


# What ClickHouse's toFloat64OrNull reads as a number, finite (inf and nan are not compared).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class Where:
    path: str
    op: str
    value: str | None

    @classmethod
    def parse(cls, text: str) -> Where:
        parts = text.split(":", 2)
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, properties: Mapping[str, Any]) -> bool:
        text = text_of(lookup(properties, self.path))
        if self.op == "set":
            return text is not None
        if self.op == "not_set":
            return text is None
        assert self.value is not None
        if self.op == "eq":
            return text == self.value
        if self.op == "neq":
            return text != self.value
        if self.op == "contains":
            return text is not None and self.value.lower() in text.lower()
        if text is None or not _NUMBER.fullmatch(text):
            return False
        number, bound = float(text), float(self.value)
        return number > bound if self.op == "gt" else number < bound


def _quarter_floor(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)


def period_of(moment: datetime, interval: str, zone: ZoneInfo, week_start: int) -> str:
    """The label of the local period holding `moment`. An hour runs from one instant whose local
    time is on the hour to the next (every offset is whole quarter hours), so Lord Howe's
    30-minute changes make a 90-minute and a 60-minute-with-a-gap hour, no period starting at a
    time that does not exist."""
    moment = moment.astimezone(UTC)
    if interval == "hour":
        start = _quarter_floor(moment)
        while start.astimezone(zone).minute != 0:
            start -= timedelta(minutes=15)
        return start.astimezone(zone).isoformat()
    day = moment.astimezone(zone).date()
    if interval == "week":
        day -= timedelta(days=(day.isoweekday() - week_start) % 7)
    elif interval == "month":
        day = day.replace(day=1)
    return day.isoformat()


def period_labels(
    start: datetime, end: datetime, interval: str, zone: ZoneInfo, week_start: int
) -> list[str]:
    """Every period overlapping [start, end), in order: the periods of `start` and of every UTC
    quarter hour after it (each local period starts on one)."""
    labels = {period_of(start, interval, zone, week_start): None}
    moment = _quarter_floor(start.astimezone(UTC)) + timedelta(minutes=15)
    while moment < end:
        labels.setdefault(period_of(moment, interval, zone, week_start))
        moment += timedelta(minutes=15)
    return list(labels)


class AmbiguousTopN(AssertionError):
    """Two breakdown values tie at the top-N cut: a case whose answer the contract leaves open."""


@dataclass(frozen=True)
class Counts:
    """One GET /v1/insights/counts: its parameters and its answer over given rows."""

    start: datetime  # aware; sent as `from` in ISO with its offset
    end: datetime  # aware; sent as `to`
    tz: str = "UTC"
    interval: str = "day"
    measure: str = "events"
    week_start: str = "monday"
    events: tuple[str, ...] | None = None
    where: tuple[str, ...] = ()
    breakdown: str | None = None
    breakdown_limit: int | None = None
    user: str | None = None
    user_ids: frozenset[str] = field(default=frozenset())  # the ids `user` is stored under

    def params(self) -> list[tuple[str, str]]:
        zone = service_zone(self.tz)
        found = [
            ("from", self.start.astimezone(zone).isoformat()),
            ("to", self.end.astimezone(zone).isoformat()),
            ("tz", self.tz),
            ("interval", self.interval),
            ("measure", self.measure),
            ("week_start", self.week_start),
        ]
        found += [("event", name) for name in self.events or ()]
        found += [("where", text) for text in self.where]
        if self.breakdown is not None:
            found.append(("breakdown", self.breakdown))
        if self.breakdown_limit is not None:
            found.append(("breakdown_limit", str(self.breakdown_limit)))
        if self.user is not None:
            found.append(("user", self.user))
        return found

    def selected(self, rows: Iterable[Row]) -> list[Row]:
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        wheres = [Where.parse(text) for text in self.where]
        return [
            row
            for row in rows
            if start <= row.timestamp < end
            and (self.events is None or row.event in self.events)
            and (self.user is None or row.user_id in self.user_ids)
            and all(w.matches(row.properties) for w in wheres)
        ]

    def _measure(self, rows: Sequence[Row]) -> int | float:
        users = len({row.user_id for row in rows})
        if self.measure == "events":
            return len(rows)
        if self.measure == "users":
            return users
        return round(len(rows) / users, 4) if users else 0.0

    def _top_values(self, rows: Sequence[Row]) -> list[str | None]:
        assert self.breakdown is not None
        tally: dict[str | None, int] = {}
        for row in rows:
            value = text_of(lookup(row.properties, self.breakdown))
            tally[value] = tally.get(value, 0) + 1
        ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0] or ""))
        limit = self.breakdown_limit or 10
        if len(ranked) > limit and ranked[limit - 1][1] == ranked[limit][1]:
            raise AmbiguousTopN(f"a tie at the top-{limit} cut: {ranked[limit - 1 : limit + 1]}")
        return [value for value, _ in ranked[:limit]]

    def answer(self, rows: Iterable[Row]) -> dict[str, Any]:
        """The JSON answer the contract asks for."""
        zone = service_zone(self.tz)
        week_start = WEEKDAYS.index(self.week_start) + 1
        labels = period_labels(
            self.start.astimezone(UTC), self.end.astimezone(UTC), self.interval, zone, week_start
        )
        chosen = self.selected(rows)
        series: list[dict[str, Any]] = []
        top = self._top_values(chosen) if self.breakdown is not None else []
        for event in self.events if self.events is not None else (None,):
            of_event = [row for row in chosen if event is None or row.event == event]
            base = event if event is not None else "All events"
            if self.breakdown is None:
                series.append(self._series(event, None, False, base, of_event, labels, zone))
                continue
            path = self.breakdown
            by_value = [
                self._series(
                    event,
                    value,
                    False,
                    f"{base}{SEP}{value if value is not None else NOT_SET}",
                    [r for r in of_event if text_of(lookup(r.properties, path)) == value],
                    labels,
                    zone,
                )
                for value in top
            ]
            by_value = [s for s in by_value if s["rows"]]
            # ties: by value, "(not set)" after the values (the contract leaves it open)
            by_value.sort(
                key=lambda s: (
                    -s["total"],
                    s["breakdown_value"] is None,
                    s["breakdown_value"] or "",
                )
            )
            series += by_value
            rest = [r for r in of_event if text_of(lookup(r.properties, path)) not in top]
            if rest:
                series.append(
                    self._series(event, None, True, f"{base}{SEP}{OTHER}", rest, labels, zone)
                )
        for entry in series:
            del entry["rows"]
        return {
            "interval": self.interval,
            "measure": self.measure,
            "tz": self.tz,
            "week_start": self.week_start,
            "from": self.start.astimezone(zone).isoformat(),
            "to": self.end.astimezone(zone).isoformat(),
            "events": list(self.events) if self.events is not None else None,
            "where": list(self.where),
            "breakdown": self.breakdown,
            "user": self.user,
            "periods": labels,
            "series": series,
        }

    def _series(
        self,
        event: str | None,
        value: str | None,
        other: bool,
        label: str,
        rows: Sequence[Row],
        labels: Sequence[str],
        zone: ZoneInfo,
    ) -> dict[str, Any]:
        week_start = WEEKDAYS.index(self.week_start) + 1
        by_period: dict[str, list[Row]] = {}
        for row in rows:
            key = period_of(row.timestamp, self.interval, zone, week_start)
            assert key in labels, f"{row} falls in {key}, not a period of the range"
            by_period.setdefault(key, []).append(row)
        return {
            "event": event,
            "breakdown_value": value,
            "other": other,
            "label": label,
            "values": [self._measure(by_period.get(key, [])) for key in labels],
            "total": self._measure(rows),
            "rows": len(rows),
        }


# --- comparing answers ----------------------------------------------------------------------


def assert_same_answer(got: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Equal, per_user values to their 4 decimals; on a difference, the first period and
    series that differ (a whole answer is too long to read in a diff)."""
    assert got.keys() >= expected.keys(), sorted(expected.keys() - got.keys())
    for key in expected:
        if key in ("from", "to"):
            # the same instant shown with the same offset ("Z" or "+00:00" alike)
            moment, want = datetime.fromisoformat(got[key]), datetime.fromisoformat(expected[key])
            assert (moment, moment.utcoffset()) == (want, want.utcoffset()), (key, got[key], want)
        elif key != "series":
            assert got[key] == expected[key], (key, got[key], expected[key])
    got_series = [(s["label"], s["event"], s["breakdown_value"], s["other"]) for s in got["series"]]
    want_series = [
        (s["label"], s["event"], s["breakdown_value"], s["other"]) for s in expected["series"]
    ]
    assert got_series == want_series
    for mine, theirs in zip(got["series"], expected["series"], strict=True):
        _same_numbers(mine["total"], theirs["total"], f"{theirs['label']} total")
        assert len(mine["values"]) == len(theirs["values"]), theirs["label"]
        wrong = [
            (period, a, b)
            for period, a, b in zip(
                expected["periods"], mine["values"], theirs["values"], strict=True
            )
            if not _equal(a, b)
        ]
        assert not wrong, f"{theirs['label']}: (period, got, expected) {wrong[:6]}"


def _equal(got: object, expected: object) -> bool:
    if isinstance(expected, float):
        return isinstance(got, float) and math.isclose(got, expected, abs_tol=1.5e-4)
    return type(got) is type(expected) and got == expected


def _same_numbers(got: object, expected: object, what: str) -> None:
    assert _equal(got, expected), (what, got, expected)


CSV_MEASURE = {"events": "events", "users": "users", "per_user": "events_per_user"}


def csv_rows_of(answer: Mapping[str, Any]) -> list[list[str]]:
    """The contract's CSV of a JSON answer (header first), the cells as text; the formula
    guard's `'` on a breakdown value that would start a formula."""
    rows = [["event", "breakdown", "period", CSV_MEASURE[answer["measure"]]]]
    for series in answer["series"]:
        if series["other"]:
            breakdown = "(other)"
        elif answer["breakdown"] is None:
            breakdown = ""
        elif series["breakdown_value"] is None:
            breakdown = NOT_SET
        else:
            breakdown = _guarded(series["breakdown_value"])
        for period, value in zip(answer["periods"], series["values"], strict=True):
            rows.append([series["event"] or "", breakdown, period, str(value)])
    return rows


def _guarded(text: str) -> str:
    number = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text)
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) and not number else text


def parse_csv(body: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body)))


def assert_same_csv(got: list[list[str]], expected: list[list[str]]) -> None:
    """Row by row; numbers compared as numbers (per_user to its 4 decimals)."""
    assert got[0] == expected[0]
    assert len(got) == len(expected)
    for mine, theirs in zip(got[1:], expected[1:], strict=True):
        assert mine[:3] == theirs[:3], (mine, theirs)
        assert math.isclose(float(mine[3]), float(theirs[3]), abs_tol=1.5e-4), (mine, theirs)


def local(text: str, tz: str) -> datetime:
    """An aware local time from `YYYY-MM-DDTHH:MM` (fold 0) in `tz`."""
    return datetime.fromisoformat(text).replace(tzinfo=service_zone(tz))


def midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=service_zone(tz))
