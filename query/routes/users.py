"""Profiles: GET /v1/users/{user_id}."""

from __future__ import annotations

from fastapi import APIRouter

from infra.http import ApiError
from query.deps import RedisDep
from query.profiles import read_profile
from schemas.profiles import Profile

router = APIRouter(prefix="/v1/users", tags=["users"])


@router.get("/{user_id}", response_model=Profile)
async def get_user(user_id: str, redis: RedisDep) -> Profile:
    profile = await read_profile(redis, user_id)
    if profile is None:
        raise ApiError(404, f"no user {user_id!r}")
    return profile
