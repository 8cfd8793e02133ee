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
            "--clients",
            "2",
            "--batches",
            "2",
            "--drain-batches",
            "2",
            "--users",
            "50",
            "--samples",
            "3",
            "--load-rate",
            "400",
            "--load-seconds",
            "2",
            "--hot-rate",
            "400",
            "--component-events",
            "2000",
            "--component-users",
            "50",
            "--query-events",
            "20000",
            "--query-users",
            "200",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    reports = sorted(tmp_path.glob("*.json"))
    assert len(reports) == 1 and reports[0].with_suffix(".md").exists()
    report = json.loads(reports[0].read_text())
    figures = report["results"]
    assert figures["events"] == 2 * 2 * 100
    assert figures["query_events"] == 20000
    for name in (
        "ingest_events_per_s",
        "end_to_end_events_per_s",
        "materializer_events_per_s",
        "freshness_p50_ms",
        "freshness_p99_ms",
        "faust_take_events_per_s",
        "processor_events_per_s",
        "preloaded_materializer_events_per_s",
        "preloaded_baseline_events_per_s",
        "materializer_to_baseline",
        "freshness_at_400_p99_ms",
        "freshness_at_400_hot_user_75pct_p99_ms",
        "sequence_p99_ms",
        "user_daily_p99_ms",
        "all_users_daily_p99_ms",
    ):
        assert figures[name] > 0, name
    assert report["machine"]["versions"]["faust-streaming"]
    assert "| ingest_events_per_s |" in completed.stdout
