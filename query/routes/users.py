"""Users: read, list, create, update, delete. Writes are produced to the events topic keyed by
user, so the materializer applies them in one order with the user's SDK events; they answer
once the materializer applied them (bounded by PS_APPLIED_WAIT_S; 202 with the position if it
has not yet)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from infra.http import ApiError, bad_parameter
from infra.publisher import BrokerUnavailable, Position
from profilestore import identity
from profilestore.definitions import all_definitions
from profilestore.read import configs_from_fields, profile_exists, read_fields, read_profile
from query.audit import record_audit
from query.consistency import POSITION_HEADER, format_position, wait_applied
from query.cursor import BadCursor, decode_cursor
from query.deps import (
    AdminDep,
    AfterDep,
    PublisherDep,
    RedisDep,
    SettingsDep,
    require_reader,
)
from query.management import (
    UserCreate,
    UserUpdate,
    create_command,
    delete_command,
    update_command,
)
from query.users_list import list_users
from schemas.commands import Status, UserCommand
from schemas.messages import CommandMessage, FieldError
from schemas.profiles import ConfigAssignment, Profile, UserPage
from schemas.properties import DEFAULT_PROPERTY_NAMES

# Reads for every operator; each write takes `AdminDep` and leaves an audit entry.
router = APIRouter(prefix="/v1/users", tags=["users"], dependencies=[Depends(require_reader)])


async def _profile_or_404(redis: RedisDep, user_id: str) -> Profile:
    profile = await read_profile(redis, user_id)
    if profile is None:
        raise ApiError(404, f"no user {user_id!r}")
    return profile


@router.get("", response_model=UserPage)
async def list_or_search(
    redis: RedisDep,
    settings: SettingsDep,
    _after: AfterDep,
    q: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    status: Status | None = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="next_cursor")] = None,
) -> UserPage:
    try:
        after = decode_cursor(cursor) if cursor else None
    except BadCursor as exc:
        raise bad_parameter("cursor", exc) from None
    return await list_users(
        redis, q=q, status=status, tag=tag, limit=min(limit, settings.max_page_size), after=after
    )


@router.get("/{user_id}", response_model=Profile)
async def get_user(user_id: str, redis: RedisDep, _after: AfterDep) -> Profile:
    return await _profile_or_404(redis, user_id)


@router.get("/{user_id}/configs", response_model=list[ConfigAssignment])
async def get_configs(user_id: str, redis: RedisDep, _after: AfterDep) -> list[ConfigAssignment]:
    found = await read_fields(redis, user_id)
    if found is None:
        raise ApiError(404, f"no user {user_id!r}")
    return configs_from_fields(found[1])


async def _publish(
    publisher: PublisherDep, settings: SettingsDep, command: UserCommand
) -> Position:
    value = CommandMessage(command=command).model_dump_json().encode()
    try:
        [position] = await publisher.publish_with_positions(
            [(settings.events_topic, command.user_id.encode(), value)]
        )
    except BrokerUnavailable as exc:
        raise ApiError(
            503, str(exc), headers={"Retry-After": str(settings.retry_after_s)}
        ) from None
    return position


async def _answer(
    redis: RedisDep,
    settings: SettingsDep,
    position: Position,
    user_id: str,
    status_code: int,
    deleted: bool = False,
) -> Response:
    """The profile once the materializer applied the write, or 202 with the position."""
    headers = {POSITION_HEADER: format_position(position)}
    applied = await wait_applied(redis, settings.events_topic, position, settings.applied_wait_s)
    if not applied:
        body = {"status": "accepted", "user_id": user_id, "position": headers[POSITION_HEADER]}
        return JSONResponse(body, status_code=202, headers=headers)
    if deleted:
        return JSONResponse({"deleted": user_id}, status_code=status_code, headers=headers)
    profile = await read_profile(redis, user_id)
    body_json: Any = profile.model_dump(mode="json") if profile else {"user_id": user_id}
    return JSONResponse(body_json, status_code=status_code, headers=headers)


async def _reserve_customer_id(redis: RedisDep, customer_id: str, user_id: str) -> None:
    """Claim the customer id for the user before producing, so two creates cannot both get
    it; the reservation is what the materializer's index then holds."""
    try:
        await identity.reserve(redis, customer_id, user_id)
    except identity.CustomerIdTaken as taken:
        raise ApiError(
            409,
            "customer_id already belongs to another user",
            [FieldError(field="customer_id", reason=f"belongs to user {taken.owner}")],
        ) from None


async def _publish_claiming(
    redis: RedisDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    command: UserCommand,
    customer_id: str | None,
) -> Position:
    """Publish the command, first reserving `customer_id` (if any) for its user; a failed
    publish gives the reservation back."""
    if customer_id is not None:
        await _reserve_customer_id(redis, customer_id, command.user_id)
    try:
        return await _publish(publisher, settings, command)
    except ApiError:
        if customer_id is not None:
            await identity.release(redis, customer_id, command.user_id)
        raise


@router.post("", status_code=201, response_model=Profile)
async def create_user(
    operator: AdminDep,
    request: Request,
    body: UserCreate,
    redis: RedisDep,
    settings: SettingsDep,
    publisher: PublisherDep,
) -> Response:
    command, errors = create_command(body, await all_definitions(redis), datetime.now(UTC))
    if command is None:
        raise ApiError(400, "the user breaks property constraints", errors)
    if await profile_exists(redis, command.user_id):
        raise ApiError(
            409,
            "user_id already exists",
            [FieldError(field="user_id", reason="a user with this id exists")],
        )
    position = await _publish_claiming(
        redis, publisher, settings, command, command.set.get("customer_id")
    )
    await record_audit(request, operator, "user.create", command.user_id)
    return await _answer(redis, settings, position, command.user_id, 201)


@router.patch("/{user_id}", response_model=Profile)
async def update_user(
    operator: AdminDep,
    request: Request,
    user_id: str,
    body: UserUpdate,
    redis: RedisDep,
    settings: SettingsDep,
    publisher: PublisherDep,
) -> Response:
    profile = await _profile_or_404(redis, user_id)
    current = {name: getattr(profile, name) for name in DEFAULT_PROPERTY_NAMES}
    command, errors = update_command(
        profile.user_id, body, current, await all_definitions(redis), datetime.now(UTC)
    )
    if command is None:
        raise ApiError(400, "the update breaks property constraints", errors)
    new_customer_id = command.set.get("customer_id")
    claim = new_customer_id if new_customer_id != profile.customer_id else None
    position = await _publish_claiming(redis, publisher, settings, command, claim)
    await record_audit(request, operator, "user.update", profile.user_id)
    return await _answer(redis, settings, position, profile.user_id, 200)


@router.delete("/{user_id}")
async def delete_user(
    operator: AdminDep,
    request: Request,
    user_id: str,
    redis: RedisDep,
    settings: SettingsDep,
    publisher: PublisherDep,
) -> Response:
    """A data deletion request: the profile and every stored event of the user (including
    those sent under anonymous ids merged into it)."""
    profile = await _profile_or_404(redis, user_id)
    position = await _publish(
        publisher, settings, delete_command(profile.user_id, datetime.now(UTC))
    )
    await record_audit(request, operator, "user.delete", profile.user_id)
    return await _answer(redis, settings, position, profile.user_id, 200, deleted=True)
