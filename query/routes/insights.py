"""GET /v1/insights/counts: what analysts ask of event counts (query/insights/)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from infra.http import ApiError, bad_parameter
from profilestore.read import stored_ids
from query.csv_export import CSV_RESPONSE_DOC, csv_response, safe_filename_part, wants_csv
from query.deps import AfterDep, RedisDep, require_reader
from query.insights import run_counts
from query.insights.params import (
    MAX_BREAKDOWN_LIMIT,
    MAX_EVENTS,
    MAX_FILTERS,
    BadParameter,
    TimeRange,
    parse_counts_query,
)
from query.insights.series import NOT_SET, OTHER
from query.routes.common import AnalyticsDep, Format, TimeRangeDep, run_analytics
from schemas.api import InsightCounts, InsightSeries

router = APIRouter(prefix="/v1/insights", tags=["insights"], dependencies=[Depends(require_reader)])

CSV_MEASURE_COLUMNS = {"events": "events", "users": "users", "per_user": "events_per_user"}


def _breakdown_cell(answer: InsightCounts, series: InsightSeries) -> str:
    """Empty without a breakdown; `(other)` and `(not set)` for those two series."""
    if answer.breakdown is None:
        return ""
    if series.other:
        return f"({OTHER.lower()})"
    return NOT_SET if series.breakdown_value is None else series.breakdown_value


def _csv(answer: InsightCounts, time_range: TimeRange) -> Response:
    header = ["event", "breakdown", "period", CSV_MEASURE_COLUMNS[answer.measure]]
    rows = (
        [series.event or "", _breakdown_cell(answer, series), period, value]
        for series in answer.series
        for period, value in zip(answer.periods, series.values, strict=True)
    )
    what = "-".join(answer.events) if answer.events else "all-events"
    first, last = (day.isoformat() for day in time_range.days())
    filename = (
        f"insights_{safe_filename_part(what)}_{answer.measure}_by_{answer.interval}"
        f"_{first}_{last}.csv"
    )
    return csv_response(header, rows, filename)


@router.get("/counts", response_model=InsightCounts, responses=CSV_RESPONSE_DOC)
async def counts(
    request: Request,
    clickhouse: AnalyticsDep,
    redis: RedisDep,
    _after: AfterDep,
    period: TimeRangeDep,
    event: Annotated[
        list[str], Query(description=f"event names (at most {MAX_EVENTS}); all events if none")
    ] = [],  # noqa: B006 - FastAPI copies defaults
    interval: Annotated[str, Query(description="hour, day, week or month")] = "day",
    measure: Annotated[str, Query(description="events, users or per_user")] = "events",
    where: Annotated[
        list[str], Query(description=f"property:op[:value], at most {MAX_FILTERS}, all must hold")
    ] = [],  # noqa: B006
    breakdown: Annotated[str | None, Query(description="an event property")] = None,
    breakdown_limit: Annotated[int, Query(ge=1, le=MAX_BREAKDOWN_LIMIT)] = 10,
    user: Annotated[str | None, Query(description="one user, merged ids included")] = None,
    format: Format = None,
) -> Response:
    try:
        query = parse_counts_query(
            now=datetime.now(UTC),
            event=event,
            interval=interval,
            measure=measure,
            where=where,
            breakdown=breakdown,
            breakdown_limit=breakdown_limit,
            user=user,
            time_range=period,
        )
    except BadParameter as exc:
        raise bad_parameter(exc.field, exc) from None
    user_ids = None
    if query.user is not None:
        found = await stored_ids(redis, query.user)
        if found is None:
            raise ApiError(404, f"no user {query.user!r}")
        user_ids = found[1]
    answer = await run_analytics(run_counts, clickhouse, query, user_ids)
    if wants_csv(request, format):
        return _csv(answer, query.range)
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")
