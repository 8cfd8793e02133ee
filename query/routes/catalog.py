"""The event catalog: GET /v1/events/names (names with volume and last seen, searchable, for
autocomplete) and GET /v1/events/{name}/properties (the properties one event carries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from query import catalog
from query.csv_export import CSV_RESPONSE_DOC, csv_response, iso_utc, wants_csv
from query.deps import AfterDep, require_reader
from query.insights.params import TimeRange
from query.routes.common import AnalyticsDep, Format, TimeRangeDep, run_analytics
from schemas.api import EventName, EventNames, EventProperties, EventProperty, TopValue

router = APIRouter(prefix="/v1", tags=["catalog"], dependencies=[Depends(require_reader)])


def _names_csv(found: list[catalog.EventNameCount], period: TimeRange) -> Response:
    first, last = (day.isoformat() for day in period.days())
    rows = ([item.name, item.count, iso_utc(item.last_seen)] for item in found)
    return csv_response(["name", "count", "last_seen"], rows, f"event-names_{first}_{last}.csv")


@router.get("/events/names", response_model=EventNames, responses=CSV_RESPONSE_DOC)
async def event_names(
    request: Request,
    clickhouse: AnalyticsDep,
    period: TimeRangeDep,
    _after: AfterDep,
    q: Annotated[
        str | None, Query(max_length=255, description="part of the name, any case")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    format: Format = None,
) -> EventNames | Response:
    found = await run_analytics(
        catalog.event_names, clickhouse, period.start, period.end, q or None, limit
    )
    if wants_csv(request, format):
        return _names_csv(found, period)
    return EventNames(
        from_=period.local(period.start),
        to=period.local(period.end),
        events=[EventName(name=i.name, count=i.count, last_seen=i.last_seen) for i in found],
    )


@router.get("/events/{name:path}/properties", response_model=EventProperties)
async def event_properties(
    clickhouse: AnalyticsDep,
    period: TimeRangeDep,
    _after: AfterDep,
    name: Annotated[str, Path(min_length=1, max_length=255, description="an event name")],
) -> EventProperties:
    sampled, found = await run_analytics(
        catalog.event_properties, clickhouse, name, period.start, period.end
    )
    return EventProperties(
        event=name,
        sampled=sampled,
        properties=[
            EventProperty(
                property=stats.property,
                types=stats.types,
                count=stats.count,
                top_values=[TopValue(value=v, count=n) for v, n in stats.top_values],
            )
            for stats in found
        ],
    )
