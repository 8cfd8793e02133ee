"""Query latency over a large events table, through the same functions the query API calls, on
chDB in a temporary directory: a user's sequence, one user's daily counts and everyone's daily
counts (query/sql.py); the analyst's insights counts (query/insights: 30 days by day of one event
in Europe/Paris, as events, as unique users, with a property filter and a breakdown by a
property of many values and of few) and the event catalog (query/catalog). Each right after the
bulk load (unmerged parts, the worst case) and again once the parts are merged.

The rows are realistic and generated inside ClickHouse (INSERT ... SELECT FROM numbers; 10M in
one to two minutes here, most of it ClickHouse writing the typed properties and projections):
bench/workload.py's event mix (1 in 5 `$identify`, 3 in 10 `$page`, 1 in 20 `$config_served`,
the rest its five track names), its skew (10% of the users send half the events) and its
properties, spread evenly over the last 30 days, so a 30-day query reads nearly every row.
Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import workload  # noqa: E402
from progress import Phases  # noqa: E402

from infra.clients import clickhouse_client  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.warehouse import EVENT_COLUMNS, EVENTS_TABLE, ensure_schema  # noqa: E402
from query import sql  # noqa: E402
from query.catalog import event_names, event_properties  # noqa: E402
from query.daily import day_window  # noqa: E402
from query.insights import run_counts  # noqa: E402
from query.insights.params import TimeRange, counts_query_from_params, parse_time_range  # noqa: E402
from query.zones import zone  # noqa: E402

DAYS = 30
LOAD_CHUNK = 1_000_000  # rows per INSERT, so the load shows its progress
EVENT = "Product Viewed"
TZ = "Europe/Paris"
# The properties of an event: about 2 s a call at 10M events, and no target.
FEWER_SAMPLES = frozenset({"catalog_properties"})
CATALOG_LIMIT = 200  # GET /v1/events/names' default

# One row per number: `kind` picks the event type as workload.py does, `h` the user (hot or
# not, then which), `p` the track name and, from other digits, the properties; the quantity has
# a hash of its own. Independent hashes, so that no property follows the event name, the user
# or another property (a breakdown's top values are then as spread as real ones). Values are
# bound parameters; toJSONString writes the JSON (a price of 7.00 as 7, as JavaScript does).
_LOAD_SQL = f"""
INSERT INTO {{table:Identifier}} ({", ".join(EVENT_COLUMNS)})
SELECT
    toString(generateUUIDv4()),
    user,
    concat('anon-', user),
    multiIf(kind < 0.2, 'identify', kind < 0.5, 'page', 'track'),
    multiIf(kind < 0.2, '$identify', kind < 0.5, '$page', kind < 0.55, '$config_served',
            {{tracks:Array(String)}}[1 + p % length({{tracks:Array(String)}})]),
    if(kind >= 0.2 AND kind < 0.5, page_title, ''),
    at,
    at + toIntervalMillisecond(20 + p % 200),
    multiIf(
        kind < 0.2, '{{}}',
        kind < 0.5, toJSONString(map('path', page_path, 'title', page_title,
                                     'url', concat('https://acme.example', page_path))),
        kind < 0.55, toJSONString(map('config', 'checkout-flow',
                                      'variation', if(p % 2 = 0, 'A', 'B'))),
        toJSONString(CAST(
            (concat('sku-', toString(intDiv(p, 5) % 5000)),
             round(5 + intDiv(p, 25000) % 49501 / 100, 2), 'EUR',
             toUInt8(1 + cityHash64(number, 4) % 3), 'tools', NULL),
            'Tuple(product_id String, price Float64, currency String, quantity UInt8,
                   category String, coupon Nullable(String))'))),
    if(kind < 0.2,
       toJSONString(map('email', concat(user, '@acme.example'),
                        'plan', {{plans:Array(String)}}[1 + p % length({{plans:Array(String)}})])),
       '{{}}'),
    toJSONString(map('library', 'analytics.js', 'locale', 'en-US', 'timezone', 'Europe/Paris')),
    'bench',
    number % 4,
    number
FROM (
    SELECT
        number,
        (cityHash64(number, 1) % 1000000) / 1e6 AS kind,
        cityHash64(number, 2) AS h,
        cityHash64(number, 3) AS p,
        concat('u', toString(
            if((h % 1000000) / 1e6 < {{hot_share:Float64}},
               intDiv(h, 1000000) % {{hot:UInt64}},
               {{hot:UInt64}} + intDiv(h, 1000000) % {{cold:UInt64}}))) AS user,
        {{paths:Array(String)}}[1 + intDiv(p, 7) % length({{paths:Array(String)}})] AS page_path,
        {{titles:Array(String)}}[1 + intDiv(p, 7) % length({{titles:Array(String)}})]
            AS page_title,
        {{now:DateTime64(3, 'UTC')}}
            - toIntervalMillisecond(intDiv(number * {{span_ms:UInt64}}, {{events:UInt64}})) AS at
    FROM numbers({{first:UInt64}}, {{count:UInt64}})
)
"""  # noqa: S608 - the column names are constants


def load_parameters(events: int, users: int, days: int, now: datetime) -> dict[str, Any]:
    """The bound parameters of the load: workload.py's names, pages and skew."""
    hot = max(1, int(users * workload.HOT_USERS))
    cold = users - hot
    return {
        "tracks": workload.TRACKS,
        "plans": workload.PLANS,
        "paths": [path for path, _ in workload.PAGES],
        "titles": [title for _, title in workload.PAGES],
        "hot_share": workload.HOT_SHARE if cold else 1.0,
        "hot": hot,
        "cold": max(1, cold),
        "now": now,
        "span_ms": days * 86_400_000,
        "events": events,
    }


def load(
    client: Any, events: int, users: int, days: int, phases: Phases, table: str = EVENTS_TABLE
) -> float:
    """`events` realistic rows over `users` users and the last `days` days, into `table` (a
    copy of the events table in tests); the seconds it took."""
    parameters = load_parameters(events, users, days, datetime.now(UTC)) | {"table": table}
    started = time.perf_counter()
    with phases.phase(f"queries: load {events:,} events", events) as phase:
        for first in range(0, events, LOAD_CHUNK):
            count = min(LOAD_CHUNK, events - first)
            client.command(
                _LOAD_SQL,
                parameters={**parameters, "first": first, "count": count},
                settings={"output_format_json_escape_forward_slashes": 0},
            )
            phase.update(first + count)
    return time.perf_counter() - started


def latency(
    call: Callable[[], object], samples: int, update: Callable[[int], None] = lambda done: None
) -> tuple[float, float]:
    """p50 and p99 in ms of `samples` calls, one at a time, after one warm-up call."""
    call()  # the first call of a query pays for loading marks and the parser's caches
    times = []
    for n in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
        update(n + 1)
    times.sort()
    return statistics.median(times), times[round(0.99 * (len(times) - 1))]


def insights_checks(client: Any) -> dict[str, Callable[[], object]]:
    """The analyst's queries, parsed and run as GET /v1/insights/counts and /v1/events/names
    do: 30 days by day of one event in Europe/Paris."""
    base: dict[str, str | list[str]] = {
        "event": [EVENT],
        "interval": "day",
        "last": f"{DAYS}d",
        "tz": TZ,
    }
    return {
        "insights_events": counts_call(client, {**base, "measure": "events"}),
        "insights_users": counts_call(client, {**base, "measure": "users"}),
        "insights_filter_breakdown": counts_call(
            client, {**base, "where": ["price:gt:100"], "breakdown": "product_id"}
        ),
        "insights_filter_breakdown_few": counts_call(
            client, {**base, "where": ["price:gt:100"], "breakdown": "quantity"}
        ),
        "catalog": catalog_call(client, {"last": f"{DAYS}d", "tz": TZ}),
        "catalog_properties": properties_call(client, EVENT, {"last": f"{DAYS}d", "tz": TZ}),
    }


def counts_call(client: Any, parameters: Mapping[str, str | list[str]]) -> Callable[[], object]:
    """GET /v1/insights/counts as its route runs it: parse (with the time of the call), query,
    assemble, and the answer as JSON-ready data."""

    def call() -> object:
        query = counts_query_from_params(parameters, datetime.now(UTC))
        return run_counts(client, query).model_dump(mode="json", by_alias=True)

    return call


def catalog_call(client: Any, parameters: Mapping[str, str]) -> Callable[[], object]:
    """GET /v1/events/names (no search, the default limit) as its route runs it."""

    def call() -> object:
        span = _time_range(parameters)
        names = event_names(client, span.start, span.end, None, CATALOG_LIMIT)
        return [(n.name, n.count, n.last_seen.isoformat()) for n in names]

    return call


def properties_call(client: Any, event: str, parameters: Mapping[str, str]) -> Callable[[], object]:
    """GET /v1/events/{name}/properties as its route runs it (no target: for autocomplete)."""

    def call() -> object:
        span = _time_range(parameters)
        return event_properties(client, event, span.start, span.end)

    return call


def _time_range(parameters: Mapping[str, str]) -> TimeRange:
    return parse_time_range(
        parameters.get("from"),
        parameters.get("to"),
        parameters.get("last"),
        parameters.get("tz", "UTC"),
        parameters.get("week_start", "monday"),
        datetime.now(UTC),
    )


def measure(events: int, users: int, samples: int, phases: Phases) -> dict[str, float]:
    rng = random.Random(7)
    # the sequence and a user's counts ask for users as the API is asked: mostly the active ones
    traffic = workload.Workload(users, run="x", seed=7)

    def user() -> str:
        return traffic.user_of(rng).removeprefix("x-")

    with tempfile.TemporaryDirectory(prefix="ps-queries-") as tmp:
        client = clickhouse_client(
            Settings.from_environment({"PS_CLICKHOUSE_DSN": f"chdb://{tmp}"})
        )
        ensure_schema(client)
        load_s = load(client, events, users, DAYS, phases)
        _, start = day_window(DAYS, zone("UTC"), datetime.now(UTC))
        paris = zone(TZ)
        figures: dict[str, float] = {
            "query_events": events,
            "query_users": users,
            "query_samples": samples,
            "query_load_s": round(load_s, 1),
        }
        checks: dict[str, Callable[[], object]] = {
            "sequence": lambda: sql.user_sequence(client, [user()], 100, None),
            "user_daily": lambda: sql.user_daily_counts(
                client, [user()], EVENT, start, datetime.now(UTC), zone("UTC")
            ),
            "all_users_daily": lambda: sql.all_users_daily_counts(
                client, EVENT, start, datetime.now(UTC), paris
            ),
            **insights_checks(client),
        }
        figures.update(run_checks(checks, samples, "", phases))
        # Right after a bulk load the parts are unmerged (the worst case); ClickHouse merges
        # them in the background. Measure again once merged, as a steady state.
        started = time.perf_counter()
        with phases.phase("queries: OPTIMIZE FINAL", None):
            client.command(f"OPTIMIZE TABLE {EVENTS_TABLE} FINAL")
        figures["query_merge_s"] = round(time.perf_counter() - started, 1)
        figures.update(run_checks(checks, samples, "_merged", phases))
    return figures


def run_checks(
    checks: Mapping[str, Callable[[], object]], samples: int, suffix: str, phases: Phases
) -> dict[str, float]:
    """p50/p99 of each check, and how busy the rest of the machine was meanwhile."""
    figures: dict[str, float] = {}
    state = "merged" if suffix else "unmerged"
    others = OtherCpu()
    for name, call in checks.items():
        # a slow query without a target gets fewer calls (its p99 is then about its maximum)
        count = max(1, samples // 10) if name in FEWER_SAMPLES else samples
        with phases.phase(f"queries: {name}, {state}", count) as phase:
            p50, p99 = latency(call, count, phase.update)
        figures[f"{name}{suffix}_p50_ms"] = round(p50, 1)
        figures[f"{name}{suffix}_p99_ms"] = round(p99, 1)
    figures[f"query{suffix}_other_processes_cpu_pct"] = others.percent()
    return figures


class OtherCpu:
    """The CPU the machine's other processes used since it was made, in % of one core: this
    machine is shared, and the queries' latencies move with it."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._machine = _busy(psutil.cpu_times())
        self._own = _busy(psutil.Process().cpu_times())

    def percent(self) -> float:
        machine = _busy(psutil.cpu_times()) - self._machine
        own = _busy(psutil.Process().cpu_times()) - self._own
        return round(100 * max(0.0, machine - own) / (time.perf_counter() - self._started))


def _busy(times: Any) -> float:
    """User and system seconds (of a process, or of the whole machine)."""
    return float(times.user + times.system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    with Phases() as phases:
        figures = measure(args.events, args.users, args.samples, phases)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
