"""Request dependencies: settings, clients and the admin-token check."""

from __future__ import annotations

from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra.http import ApiError, bad_parameter, matching_secret
from infra.publisher import BrokerUnavailable, KafkaPublisher, Position
from infra.settings import Settings
from profilestore.marks import applied_mark
from query.consistency import BadPosition, covers, parse_position, wait_applied
from schemas.messages import FieldError

_bearer = HTTPBearer(auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.redis
    return client


async def get_clickhouse(request: Request) -> Any:
    return request.app.state.clickhouse


async def get_publisher(request: Request) -> KafkaPublisher:
    publisher: KafkaPublisher = request.app.state.publisher
    return publisher


async def require_admin(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    unauthorized = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise ApiError(
            401, "missing admin token: send Authorization: Bearer <token>", headers=unauthorized
        )
    if matching_secret(credentials.credentials, [settings.admin_token.get_secret_value()]) is None:
        raise ApiError(401, "invalid admin token", headers=unauthorized)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
ClickHouseDep = Annotated[Any, Depends(get_clickhouse)]
PublisherDep = Annotated[KafkaPublisher, Depends(get_publisher)]


async def wait_for_write(
    redis: RedisDep,
    settings: SettingsDep,
    publisher: PublisherDep,
    after: Annotated[
        str | None,
        Query(
            max_length=80,
            description="a write's position (X-Profilestream-Position): answer only once the "
            "materializer has applied it",
        ),
    ] = None,
) -> None:
    if after is None:
        return
    try:
        position = parse_position(after)
    except BadPosition as exc:
        raise bad_parameter("after", exc) from None
    topic = settings.events_topic
    mark = await applied_mark(redis, topic, position.partition)
    if covers(mark, position):
        return
    # Not applied yet, or never will be: a position of a life of the topic that is gone
    # (whose partition may still hold that life's mark, if nothing new reached it).
    if await _names_a_gone_log(publisher, topic, position):
        reason = (
            "names an earlier life of the events topic (the broker restarted or the topic was "
            "created anew): that write was applied then or is lost; read without `after`"
        )
        raise ApiError(410, f"`after` {reason}", [FieldError(field="after", reason=reason)])
    if not await wait_applied(redis, topic, position, settings.applied_wait_s):
        raise ApiError(
            503,
            "the write at this position is not applied yet; retry",
            headers={"Retry-After": "1"},
        )


async def _names_a_gone_log(publisher: KafkaPublisher, topic: str, position: Position) -> bool:
    try:
        return await publisher.current_topic_id(topic) != position.topic_id
    except BrokerUnavailable:
        return False  # cannot tell: "not applied yet" is the safe answer


AfterDep = Annotated[None, Depends(wait_for_write)]
