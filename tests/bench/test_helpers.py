"""The bench's pure helpers: the progress protocol, the prepared-messages file, the ratios and
the targets of the report."""

from datetime import UTC, datetime
from pathlib import Path

from components import with_ratios
from prepare import Spec, count_events, read_prepared, write_prepared
from progress import parse_phase, parse_progress
from run import targets

START = datetime(2026, 11, 1, tzinfo=UTC)


def test_progress_lines() -> None:
    assert parse_progress("PROGRESS 1200\n") == 1200
    assert parse_progress("PROGRESS many") is None
    assert parse_progress("some log line") is None
    assert parse_phase("PHASE 5000 floor: Redis apply\n") == ("floor: Redis apply", 5000)
    assert parse_phase("PHASE x y") is None
    assert parse_phase("PROGRESS 3") is None


def test_prepared_file_holds_ingest_messages(tmp_path: Path) -> None:
    path = tmp_path / "prepared.bin"
    spec = Spec(200, "t", 7, START, START, 4)
    messages, size = write_prepared(path, spec, 450, processes=1)
    items = list(read_prepared(path))
    assert len(items) == messages
    assert sum(len(i.value) for i in items) == size
    assert sum(i.events for i in items) == 450
    assert all(i.events == count_events(i.value) for i in items)
    assert all(i.value.startswith(b'{"v":2,"kind":"events"') for i in items)
    # 100 events a request, one message per partition it touches: about 4 a request
    assert 5 * 3 <= messages <= 5 * 4


def test_ratios_name_the_slowest_floor() -> None:
    figures = with_ratios(
        {
            "materializer_events_per_s": 9000,
            "baseline_events_per_s": 10000,
            "broker_read_events_per_s": 90000,
            "clickhouse_insert_events_per_s": 30000,
            "redis_apply_events_per_s": 12000,
        }
    )
    assert figures["materializer_to_baseline"] == 0.9
    assert figures["slowest_floor"] == "Redis apply"
    assert figures["materializer_to_slowest_floor"] == 0.75
    assert "serial_floor_events_per_s" not in figures  # decode + plan not measured
    serial = with_ratios(
        {
            "materializer_events_per_s": 4000,
            "broker_read_events_per_s": 40000,
            "decode_plan_events_per_s": 40000,
            "clickhouse_insert_events_per_s": 20000,
            "redis_apply_events_per_s": 10000,
        }
    )
    assert serial["serial_floor_events_per_s"] == 5000
    assert serial["materializer_to_serial_floor"] == 0.8
    assert "slowest_floor" not in with_ratios({"materializer_events_per_s": 1})


def test_targets_met_not_met_and_not_measured() -> None:
    goals = {
        t.name: t
        for t in targets(
            {
                "materializer_events_per_s": 26000,
                "ingest_events_per_s": 20000,
                "freshness_at_5000_p99_ms": 450.0,
                "dedup_day_45_ids_entries": 1000,
                "dedup_day_60_ids_entries": 1020,
                "dedup_resent_events": 10,
                "dedup_resent_users_whose_count_moved": 1,
                "dedup_resent_rows_added": 0,
            }
        )
    }
    assert goals["materializer, preloaded topic"].met is True
    assert goals["ingest, one process, gzip batches"].met is False
    assert goals["freshness p99 at 5,000 events/s"].met is True
    assert goals["freshness p99 at 10,000 events/s"].met is None
    assert goals["dedup state bounded (ids entries, day 45 -> 60)"].met is True
    assert goals["resent events counted once"].met is False
    grown = targets({"dedup_day_45_ids_entries": 1000, "dedup_day_60_ids_entries": 1500})
    assert grown[-1].met is False


def test_query_targets_after_the_load_and_merged() -> None:
    goals = {
        t.name: t
        for t in targets(
            {
                "insights_events_p99_ms": 49.0,
                "insights_events_merged_p99_ms": 51.0,
                "insights_users_p99_ms": 150.0,
                "insights_filter_breakdown_merged_p99_ms": 280.0,
                "catalog_p99_ms": 120.0,
            }
        )
    }
    events = "insights, 30 days by day, one event, events"
    assert goals[f"{events}, after the bulk load"].met is True
    assert goals[f"{events}, merged"].met is False
    assert goals[f"{events}, merged"].target == "p99 <= 50 ms"
    assert goals["insights, the same, unique users, after the bulk load"].met is True
    assert goals["insights, the same, unique users, merged"].met is None
    breakdown = "insights, price > 100, by product_id (top 10 + other)"
    assert goals[f"{breakdown}, merged"].met is True
    assert goals[f"{breakdown}, merged"].target == "p99 <= 300 ms"
    assert goals["event catalog, 30 days, after the bulk load"].met is False
    assert goals["event catalog, 30 days, after the bulk load"].target == "p99 <= 100 ms"
