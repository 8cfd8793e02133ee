"""Request dependencies: settings, clients and the admin-token check."""

from __future__ import annotations

from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from infra.http import ApiError, matching_secret
from infra.settings import Settings

_bearer = HTTPBearer(auto_error=False)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.redis
    return client


async def get_clickhouse(request: Request) -> Any:
    return request.app.state.clickhouse


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
