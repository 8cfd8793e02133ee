"""Ingest's app in this process over a RecordingPublisher (no broker), for the route tests: a
client to it, and what it published, decoded."""

from __future__ import annotations

from typing import Any

import httpx

from ingest.app import create_app
from schemas.events import Event
from schemas.messages import RejectionMessage
from tests.support.messages import produced_events
from tests.support.publishers import RecordingPublisher


def ingest_client(
    publisher: RecordingPublisher, base_url: str = "http://ingest", **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx client to ingest's app, built on `publisher` and the settings it was made with,
    without a socket; other keyword arguments (auth, headers) go to the client."""
    transport = httpx.ASGITransport(app=create_app(publisher.settings, publisher))
    return httpx.AsyncClient(transport=transport, base_url=base_url, **kwargs)


def published_events(publisher: RecordingPublisher) -> list[Event]:
    """The events the app published, in record order (request order for each user; the events
    of a request are grouped by partition, tests.support.messages)."""
    return produced_events(publisher.records, publisher.settings.events_topic)


def published_rejections(publisher: RecordingPublisher) -> list[RejectionMessage]:
    """The rejections the app published, in order."""
    return [
        RejectionMessage.model_validate_json(value)
        for topic, _, value in publisher.records
        if topic == publisher.settings.rejections_topic
    ]
