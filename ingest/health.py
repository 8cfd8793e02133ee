"""Ingest's /healthz and /readyz (infra.health): ready while the broker answers a metadata
request for the events topic, asked anew each time through the publisher's own connection
(a producer started earlier says nothing about the broker now)."""

from __future__ import annotations

from fastapi import APIRouter

from infra.health import Readiness, health_router
from infra.publisher import KafkaPublisher
from infra.settings import Settings


def ingest_readiness(settings: Settings, publisher: KafkaPublisher) -> Readiness:
    async def broker() -> None:
        await publisher.current_topic_id(settings.events_topic)

    return Readiness({"broker": broker})


def router(settings: Settings, publisher: KafkaPublisher) -> APIRouter:
    return health_router(ingest_readiness(settings, publisher))
