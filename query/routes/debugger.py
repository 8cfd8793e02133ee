"""The live debugger (docs/debugger.md): the events arriving now and the items ingest refused,
for any operator. Polled (the dashboard asks every second): simpler than server-sent events
through proxies, and EventSource cannot send the Authorization header."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from query.debugger import Filters, feed_of
from query.deps import require_reader
from schemas.debugger import DebuggerKind, DebuggerPage
from schemas.events import EventType

router = APIRouter(prefix="/v1", tags=["debugger"])

Text = Annotated[str | None, Query(min_length=1, max_length=255)]


@router.get(
    "/debugger/events",
    dependencies=[Depends(require_reader)],
    response_model=DebuggerPage,
    summary="The events and rejections arriving now",
)
async def debugger_events(
    request: Request,
    after: Annotated[
        int, Query(ge=0, description="the `next` of the previous answer; 0 for what is kept")
    ] = 0,
    kind: Annotated[DebuggerKind | None, Query()] = None,
    source: Text = None,
    type: Annotated[EventType | None, Query()] = None,
    event: Annotated[
        str | None, Query(min_length=1, max_length=255, description="a part of the name")
    ] = None,
    user: Annotated[
        str | None, Query(min_length=1, max_length=255, description="a part of the user id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DebuggerPage:
    """The records newer than `after` that match, oldest first (the newest `limit` of them),
    and where to continue. The first call starts the reader (it reads from the topics' end:
    what arrives from then on; `live` turns true once it does); it stops a minute after the
    last call."""
    feed = feed_of(request.app)
    feed.touch()
    return feed.page(after, Filters(kind, source, type, event, user), limit)
