"""The query benchmark's rows have bench/workload.py's shape (event mix, skew, properties, 30
days), so that its figures are about realistic events; loaded into a copy of the events table
of the session's chDB (one chDB per process), never into the table other tests count."""

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import workload
from progress import Phases
from queries import load
from rich.console import Console

TABLE = "bench_query_rows"
EVENTS = 40_000
USERS = 2_000


@pytest.fixture(scope="module")
def loaded(chdb_client: Any) -> Any:
    chdb_client.command(f"DROP TABLE IF EXISTS {TABLE}")
    chdb_client.command(f"CREATE TABLE {TABLE} AS events")
    with Phases(Console(file=io.StringIO())) as phases:
        load(chdb_client, EVENTS, USERS, 30, phases, table=TABLE)
    yield chdb_client
    chdb_client.command(f"DROP TABLE {TABLE}")


def rows(client: Any, sql: str) -> list[tuple[Any, ...]]:
    """`sql` run on the loaded copy, named `{rows}` in it."""
    return list(client.query(sql.format(rows=TABLE)).result_rows)


def test_the_event_mix_is_the_workloads(loaded: Any) -> None:
    shares = dict(rows(loaded, "SELECT event, count() / 40000 FROM {rows} GROUP BY event"))
    assert set(shares) == {"$identify", "$page", "$config_served", *workload.TRACKS}
    assert shares["$identify"] == pytest.approx(0.2, abs=0.01)
    assert shares["$page"] == pytest.approx(0.3, abs=0.01)
    assert shares["$config_served"] == pytest.approx(0.05, abs=0.005)
    for track in workload.TRACKS:
        assert shares[track] == pytest.approx(0.09, abs=0.006)
    types = rows(loaded, "SELECT DISTINCT event, type FROM {rows}")
    assert {event: kind for event, kind in types if event.startswith("$")} == {
        "$identify": "identify",
        "$page": "page",
        "$config_served": "track",
    }


def test_a_tenth_of_the_users_send_half_the_events(loaded: Any) -> None:
    [(users, hot_share)] = rows(
        loaded,
        "SELECT uniqExact(user_id), countIf(toUInt32(substring(user_id, 2)) < 200) / count() "
        "FROM {rows}",
    )
    assert users > USERS * 0.95
    assert hot_share == pytest.approx(0.5, abs=0.02)


def test_events_spread_over_the_last_30_days(loaded: Any) -> None:
    [(first, last, days)] = rows(
        loaded, "SELECT min(timestamp), max(timestamp), uniqExact(toDate(timestamp)) FROM {rows}"
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    assert now - timedelta(days=30, minutes=5) < first < now - timedelta(days=29, hours=23)
    assert now - timedelta(minutes=5) < last <= now
    assert days in (30, 31)


def test_properties_are_the_workloads(loaded: Any) -> None:
    samples = rows(loaded, "SELECT event, name, properties FROM {rows} LIMIT 3 BY event")
    paths = [path for path, _ in workload.PAGES]
    for event, name, text in samples:
        properties = json.loads(text)
        if event == "$page":
            assert properties["path"] in paths
            assert name == properties["title"]
            assert properties["url"] == f"https://acme.example{properties['path']}"
        elif event == "$config_served":
            assert properties["config"] == "checkout-flow"
            assert properties["variation"] in ("A", "B")
        elif event == "$identify":
            assert properties == {}
        else:
            assert set(properties) == {
                "product_id",
                "price",
                "currency",
                "quantity",
                "category",
                "coupon",
            }
            assert properties["coupon"] is None
    [(skus, low, high, quantities, over_100)] = rows(
        loaded,
        "SELECT uniqExact(properties_typed.product_id), min(properties_typed.price::Float64), "
        "max(properties_typed.price::Float64), groupUniqArray(properties_typed.quantity::Int64), "
        "countIf(properties_typed.price::Float64 > 100) / count() "
        "FROM {rows} WHERE event = 'Product Viewed'",
    )
    assert skus > 2000  # of sku-0..4999, over 3,600 events: spread, not tied to the event
    assert low >= 5 and high <= 500
    assert sorted(quantities) == [1, 2, 3]
    assert over_100 == pytest.approx(0.8, abs=0.03)
