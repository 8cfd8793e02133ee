"""A tiny run of `make bench` so the benchmark keeps working. It asserts that the report is
written and every figure was measured, never how fast anything was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_bench_writes_a_report_with_every_figure(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            *("--users", "50", "--samples", "3", "--rates", "400", "--load-seconds", "2"),
            *("--clients", "2", "--ingest-requests", "4"),
            *("--component-events", "2000", "--component-users", "50"),
            *("--memory-users", "200", "--memory-events", "400"),
            *("--dedup-users", "20", "--per-day", "50", "--days", "4", "--resend", "20"),
            *("--query-events", "20000", "--query-users", "200", "--query-samples", "10"),
            *("--out", str(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    reports = sorted(tmp_path.glob("*.json"))
    assert len(reports) == 1 and reports[0].with_suffix(".md").exists()
    report = json.loads(reports[0].read_text())
    figures = report["results"]
    assert figures["ingest_events"] == 4 * 100
    assert figures["query_events"] == 20000
    for name in (
        "ingest_events_per_s",
        "freshness_idle_p99_ms",
        "freshness_at_400_p99_ms",
        "materializer_events_per_s",
        "baseline_events_per_s",
        "processor_events_per_s",
        "broker_read_events_per_s",
        "clickhouse_insert_events_per_s",
        "redis_apply_events_per_s",
        "decode_plan_events_per_s",
        "materializer_to_slowest_floor",
        "memory_bytes_per_user",
        "memory_bytes_per_event",
        "dedup_day_4_ids_entries",
        "sequence_p99_ms",
        "user_daily_p99_ms",
        "all_users_daily_p99_ms",
        *(
            f"{query}{state}_p99_ms"
            for query in (
                "insights_events",
                "insights_users",
                "insights_filter_breakdown",
                "insights_filter_breakdown_few",
                "catalog",
                "catalog_properties",
            )
            for state in ("", "_merged")
        ),
    ):
        assert figures[name] > 0, name
    # issue 14's query targets, after the load and merged, each measured (met or not)
    query_goals = [t for t in report["targets"] if t["name"].startswith(("insights", "event "))]
    assert len(query_goals) == 10
    assert all(t["met"] is not None for t in query_goals)
    assert "## Queries over 20,000 events of 200 users" in completed.stdout
    # duplicates are counted once, whatever the speed
    assert figures["dedup_resent_users_whose_count_moved"] == 0
    assert figures["dedup_resent_rows_added"] == 0
    assert report["settings"]["dedup_window_days"] == 30
    assert report["machine"]["versions"]["faust-streaming"]
    assert "| ingest_events_per_s |" in completed.stdout
