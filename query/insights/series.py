"""Pure: the query's cells -> zero-filled series in the order an analyst reads them."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime

from query.insights import periods
from query.insights.params import WEEKDAYS, CountsQuery
from query.insights.sql import CountRow
from schemas.api import InsightCounts, InsightSeries

ALL_EVENTS = "All events"
NOT_SET = "(not set)"
OTHER = "Other"

SeriesKey = tuple[str | None, str | None, bool]  # event, breakdown value, other


def _period_index(
    key: object, query: CountsQuery, starts: Sequence[datetime], by_label: dict[str, int]
) -> int:
    if query.interval == "hour":
        # The hour key is the period's start instant (query/insights/sql.py).
        assert isinstance(key, datetime)
        moment = key if key.tzinfo is not None else key.replace(tzinfo=UTC)
        return max(bisect_right(starts, moment) - 1, 0)
    return by_label[periods.key_label(key, query.interval, query.range.zone)]


def _label(key: SeriesKey, query: CountsQuery) -> str:
    event, value, other = key
    name = event if event is not None else ALL_EVENTS
    if query.breakdown is None:
        return name
    return f"{name} · {OTHER if other else (NOT_SET if value is None else value)}"


def _ratio(events: int, users: int) -> float:
    return round(events / users, 4) if users else 0.0


def assemble(query: CountsQuery, rows: Sequence[CountRow]) -> InsightCounts:
    starts = query.period_starts
    size = len(starts)
    zone = query.range.zone
    labels = [periods.label(start, query.interval, zone) for start in starts]
    by_label = {label: i for i, label in enumerate(labels)}
    if query.interval != "hour":
        for i, label in enumerate(labels):
            by_label.setdefault(
                periods.nominal_key(label, query.interval, query.range.week_start), i
            )
    events: dict[SeriesKey, list[int]] = {}
    users: dict[SeriesKey, list[int]] = {}
    totals: dict[SeriesKey, tuple[int, int]] = {}
    if query.breakdown is None:
        for name in query.events or (None,):
            events[(name, None, False)] = [0] * size
            users[(name, None, False)] = [0] * size
            totals[(name, None, False)] = (0, 0)
    for row in rows:
        key = (row.event, row.value, row.other)
        if key not in events:
            events[key], users[key], totals[key] = [0] * size, [0] * size, (0, 0)
        if row.period is None:
            totals[key] = (row.events, row.users)
            continue
        index = _period_index(row.period, query, starts, by_label)
        events[key][index] += row.events
        users[key][index] += row.users  # one key per period: no unique user counted twice
    series: list[InsightSeries] = []
    for key in events:
        total_events, total_users = totals[key]
        values: list[int] | list[float]
        total: int | float
        if query.measure == "events":
            values, total = events[key], total_events
        elif query.measure == "users":
            values, total = users[key], total_users
        else:
            values = [_ratio(n, u) for n, u in zip(events[key], users[key], strict=True)]
            total = _ratio(total_events, total_users)
        series.append(
            InsightSeries(
                event=key[0],
                breakdown_value=key[1],
                other=key[2],
                label=_label(key, query),
                values=values,
                total=total,
            )
        )
    order = {name: i for i, name in enumerate(query.events)}
    series.sort(
        key=lambda s: (
            order.get(s.event, 0) if s.event is not None else 0,
            s.other,
            -s.total,
            s.breakdown_value is None,
            s.breakdown_value or "",
        )
    )
    return InsightCounts(
        interval=query.interval,
        measure=query.measure,
        tz=query.range.tz,
        week_start=WEEKDAYS[query.range.week_start - 1],
        from_=query.range.start.astimezone(zone),
        to=query.range.end.astimezone(zone),
        events=list(query.events) or None,
        where=[str(f) for f in query.filters],
        breakdown=query.breakdown,
        user=query.user,
        periods=labels,
        series=series,
    )
