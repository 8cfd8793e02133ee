"""Query latency over a large events table: the user sequence, one user's daily counts and
everyone's daily counts, through the same functions the query API calls (query/sql.py), on chDB
in a temporary directory: right after the bulk load, and again once its parts are merged. Rows
are generated inside ClickHouse (INSERT ... SELECT FROM numbers)
so 10,000,000 take seconds, not minutes. Prints one JSON object."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from infra.clients import clickhouse_client  # noqa: E402
from infra.settings import Settings  # noqa: E402
from infra.warehouse import EVENTS_TABLE, ensure_schema  # noqa: E402
from query import sql  # noqa: E402
from query.daily import day_window, zone  # noqa: E402


def load(client: Any, events: int, users: int, days: int) -> float:
    started = time.perf_counter()
    client.command(
        f"""
        INSERT INTO {EVENTS_TABLE}
        SELECT toString(generateUUIDv4()), concat('u', toString(number % {users})), '',
               'track', concat('Event ', toString(number % 30)), '',
               now64(3, 'UTC') - toIntervalSecond(number % {days * 86400}), now64(3, 'UTC'),
               '{{"plan":"pro","path":"/pricing"}}', '{{}}', '{{"library":{{"name":"bench"}}}}',
               'bench', number % 4, number
        FROM numbers({events})
        """  # noqa: S608 - constants only
    )
    return time.perf_counter() - started


def latency(call: Callable[[], object], samples: int) -> tuple[float, float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[round(0.99 * (len(times) - 1))]


def measure(events: int, users: int, samples: int) -> dict[str, float]:
    rng = random.Random(7)

    def user() -> str:
        return f"u{rng.randrange(users)}"

    with tempfile.TemporaryDirectory(prefix="ps-queries-") as tmp:
        client = clickhouse_client(
            Settings.from_environment({"PS_CLICKHOUSE_DSN": f"chdb://{tmp}"})
        )
        ensure_schema(client)
        load_s = load(client, events, users, days=90)
        _, start = day_window(30, zone("UTC"), datetime.now(UTC))
        figures: dict[str, float] = {"query_events": events, "query_load_s": round(load_s, 1)}
        checks: dict[str, Callable[[], object]] = {
            "sequence": lambda: sql.user_sequence(client, [user()], 100, None),
            "user_daily": lambda: sql.user_daily_counts(client, [user()], "Event 3", start, "UTC"),
            "all_users_daily": lambda: sql.all_users_daily_counts(
                client, "Event 3", start, "Europe/Paris"
            ),
        }
        for name, call in checks.items():
            p50, p99 = latency(call, samples)
            figures[f"{name}_p50_ms"] = round(p50, 1)
            figures[f"{name}_p99_ms"] = round(p99, 1)
        # Right after a bulk load the parts are unmerged (the worst case); ClickHouse merges
        # them in the background. Measure again once merged, as a steady state.
        started = time.perf_counter()
        client.command(f"OPTIMIZE TABLE {EVENTS_TABLE} FINAL")
        figures["query_merge_s"] = round(time.perf_counter() - started, 1)
        for name, call in checks.items():
            p50, p99 = latency(call, samples)
            figures[f"{name}_merged_p50_ms"] = round(p50, 1)
            figures[f"{name}_merged_p99_ms"] = round(p99, 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(measure(args.events, args.users, args.samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
