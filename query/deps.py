"""Request dependencies: settings, clients, and who the operator is (token, role, throttle)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra.http import ApiError, bad_parameter, matching_secret
from infra.publisher import BrokerUnavailable, KafkaPublisher, Position
from infra.settings import Settings
from profilestore.marks import applied_mark
from query.consistency import BadPosition, covers, parse_position, wait_applied
from query.metrics import AUTH_FAILURES, AUTH_THROTTLED
from query.operators import BOOTSTRAP_NAME, Role, operator_of_token
from query.throttle import AuthThrottle, throttled_address
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


@dataclass(frozen=True)
class Operator:
    """Who a request's bearer token belongs to: its name (written to the audit log) and role
    (admin: everything; analyst: reads only)."""

    name: str
    role: Role


BOOTSTRAP_OPERATOR = Operator(name=BOOTSTRAP_NAME, role="admin")  # PS_ADMIN_TOKEN
UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


def auth_throttle(request: Request) -> AuthThrottle:
    """This app's throttle, made on first use (tests put their own, with a clock, in
    `app.state.auth_throttle` first)."""
    throttle: AuthThrottle | None = getattr(request.app.state, "auth_throttle", None)
    if throttle is None:
        settings: Settings = request.app.state.settings
        throttle = AuthThrottle(settings.auth_failures_per_minute)
        request.app.state.auth_throttle = throttle
    return throttle


def client_address(request: Request) -> str:
    return throttled_address(request.client.host) if request.client else "unknown"


async def authenticate_operator(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Operator:
    """The operator of the request's bearer token: PS_ADMIN_TOKEN's or a stored one. 401
    without one or for an unknown one; 429 first, whatever the token, for an address that
    failed too often in the last minute."""
    throttle = auth_throttle(request)
    address = client_address(request)
    retry_after = throttle.retry_after_s(address)
    if retry_after is not None:
        AUTH_THROTTLED.inc()
        raise ApiError(
            429,
            "too many failed authentications from this address; retry later",
            headers={"Retry-After": str(retry_after)},
        )
    operator = await _operator_of(request, settings, credentials)
    if operator is None:
        AUTH_FAILURES.inc()
        throttle.record_failure(address)
        if credentials is None:
            raise ApiError(
                401, "missing token: send Authorization: Bearer <token>", headers=UNAUTHORIZED
            )
        raise ApiError(401, "invalid token", headers=UNAUTHORIZED)
    return operator


async def _operator_of(
    request: Request, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> Operator | None:
    if credentials is None:
        return None
    token = credentials.credentials
    if matching_secret(token, [settings.admin_token.get_secret_value()]) is not None:
        return BOOTSTRAP_OPERATOR
    stored = await operator_of_token(request.app.state.redis, token)
    return Operator(stored.name, stored.role) if stored is not None else None


async def require_reader(
    operator: Annotated[Operator, Depends(authenticate_operator)],
) -> Operator:
    """Any operator: reads are open to every role."""
    return operator


async def require_admin(
    operator: Annotated[Operator, Depends(authenticate_operator)],
) -> Operator:
    """An admin: every write, and the operators' own management."""
    if operator.role != "admin":
        raise ApiError(
            403,
            f"the {operator.role} role may only read: this needs the admin role",
            code="forbidden",
        )
    return operator


ReaderDep = Annotated[Operator, Depends(require_reader)]
AdminDep = Annotated[Operator, Depends(require_admin)]


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
