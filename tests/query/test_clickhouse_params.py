"""query/clickhouse_params.py and the 400 of a query stopped at its limits
(query/routes/common.py run_analytics)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.http import ApiError
from query.clickhouse_params import LimitedClient, over_limits
from query.routes.common import run_analytics

HEAVY = "SELECT uniqExact(number) FROM numbers(20000000)"


def test_a_query_past_the_memory_limit_is_stopped(chdb_client: Any) -> None:
    limited = LimitedClient(chdb_client, max_seconds=60, max_memory_mb=1)
    with pytest.raises(Exception) as info:
        limited.query(HEAVY)
    assert over_limits(info.value)
    # the same query without the limit runs: the limit is what stopped it
    assert chdb_client.query(HEAVY).result_rows == [(20_000_000,)]


def test_the_query_own_settings_come_on_top_of_the_limits(chdb_client: Any) -> None:
    limited = LimitedClient(chdb_client, max_seconds=60, max_memory_mb=1)
    result = limited.query(HEAVY, settings={"max_memory_usage": 0})
    assert result.result_rows == [(20_000_000,)]


async def test_a_stopped_query_is_a_400_naming_from(chdb_client: Any) -> None:
    limited = LimitedClient(chdb_client, max_seconds=60, max_memory_mb=1)
    with pytest.raises(ApiError) as info:
        await run_analytics(limited.query, HEAVY)
    assert info.value.status == 400
    assert info.value.errors is not None
    assert info.value.errors[0].field == "from"


async def test_other_errors_stay_what_they_are(chdb_client: Any) -> None:
    with pytest.raises(Exception) as info:
        await run_analytics(chdb_client.query, "SELECT no_such_column FROM numbers(1)")
    assert not isinstance(info.value, ApiError)
    assert not over_limits(info.value)
