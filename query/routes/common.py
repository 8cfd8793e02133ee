"""Query parameters several routes share."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Query

from infra.http import ApiError, bad_parameter
from query.clickhouse_params import LimitedClient, over_limits
from query.deps import ClickHouseDep, SettingsDep
from query.insights.params import BadParameter, TimeRange, parse_time_range
from schemas.messages import FieldError

P = ParamSpec("P")
R = TypeVar("R")


async def time_range(
    from_: Annotated[
        str | None, Query(alias="from", max_length=64, description="a date or ISO date-time")
    ] = None,
    to: Annotated[
        str | None, Query(max_length=64, description="exclusive; a date: included")
    ] = None,
    last: Annotated[str | None, Query(max_length=8, description="<N>h|d|w|m; default 30d")] = None,
    tz: Annotated[str, Query(max_length=64, description="IANA time zone")] = "UTC",
    week_start: Annotated[str, Query(max_length=16)] = "monday",
) -> TimeRange:
    """The shared time-range parameters (query/insights/params.py), a 400 naming the bad one."""
    try:
        return parse_time_range(from_, to, last, tz, week_start, datetime.now(UTC))
    except BadParameter as exc:
        raise bad_parameter(exc.field, exc) from None


TimeRangeDep = Annotated[TimeRange, Depends(time_range)]
Format = Annotated[str | None, Query(pattern="^(json|csv)$", description="csv, or Accept")]


async def analytics_client(clickhouse: ClickHouseDep, settings: SettingsDep) -> LimitedClient:
    return LimitedClient(
        clickhouse, settings.analytics_max_seconds, settings.analytics_max_memory_mb
    )


AnalyticsDep = Annotated[LimitedClient, Depends(analytics_client)]

TOO_LARGE = (
    "the query went past its limit of time or memory (PS_ANALYTICS_MAX_SECONDS, "
    "PS_ANALYTICS_MAX_MEMORY_MB): ask for a shorter range, fewer events or a breakdown by a "
    "property with fewer values"
)


async def run_analytics(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`call` in a thread; a query ClickHouse stopped at its limits is a 400 (naming `from`:
    the range is what a caller most often narrows), any other error stays what it is."""
    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except Exception as exc:
        if over_limits(exc):
            raise ApiError(400, TOO_LARGE, [FieldError(field="from", reason=TOO_LARGE)]) from None
        raise
