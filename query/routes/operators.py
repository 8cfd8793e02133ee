"""The operators: who is signed in (/v1/me), named tokens with a role (/v1/tokens, admins) and
the audit log of management writes (/v1/audit, admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from infra.http import ApiError
from query import operators as store
from query.audit import ENTRY_ID, read_entries, record_audit
from query.deps import AdminDep, ReaderDep, RedisDep, require_admin
from query.operators import Role
from schemas.messages import FieldError

router = APIRouter(prefix="/v1")


class Me(BaseModel):
    name: str
    role: Role


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1-64 of letters, digits, '.', '_', '-'; unique")
    role: Role


class TokenCreated(BaseModel):
    name: str
    role: Role
    token: str = Field(description="shown this once: only its SHA-256 is stored")


class TokenPublic(BaseModel):
    name: str
    role: Role
    created_at: str
    created_by: str


class AuditEntryPublic(BaseModel):
    id: str
    time: str
    operator: str
    role: str
    action: str
    target: str
    request_id: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntryPublic]
    next: str | None = Field(description="`before` for the next (older) page; null at the end")


@router.get("/me", response_model=Me, tags=["operators"])
async def me(operator: ReaderDep) -> Me:
    return Me(name=operator.name, role=operator.role)


@router.get(
    "/tokens",
    response_model=list[TokenPublic],
    tags=["operators"],
    dependencies=[Depends(require_admin)],
)
async def list_tokens(redis: RedisDep) -> list[TokenPublic]:
    return [TokenPublic(**o.as_json()) for o in await store.list_operators(redis)]


@router.post("/tokens", status_code=201, response_model=TokenCreated, tags=["operators"])
async def create_token(
    operator: AdminDep, body: TokenCreate, request: Request, redis: RedisDep
) -> TokenCreated:
    try:
        created, token = await store.create_operator(redis, body.name, body.role, operator.name)
    except store.BadName as exc:
        reason = str(exc)
        raise ApiError(
            400, "invalid token name", [FieldError(field="name", reason=reason)]
        ) from None
    except store.NameTaken as exc:
        taken = [FieldError(field="name", reason="already taken")]
        raise ApiError(409, str(exc), taken) from None
    await record_audit(request, operator, "token.create", created.name)
    return TokenCreated(name=created.name, role=created.role, token=token)


@router.delete("/tokens/{name}", status_code=204, tags=["operators"])
async def revoke_token(
    operator: AdminDep, name: str, request: Request, redis: RedisDep
) -> Response:
    if not await store.revoke_operator(redis, name):
        raise ApiError(404, f"no token named {name!r}")
    await record_audit(request, operator, "token.revoke", name)
    return Response(status_code=204)


@router.get(
    "/audit", response_model=AuditPage, tags=["operators"], dependencies=[Depends(require_admin)]
)
async def audit_log(
    redis: RedisDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        str | None, Query(max_length=41, description="the `next` of the previous page")
    ] = None,
) -> AuditPage:
    if before is not None and not ENTRY_ID.fullmatch(before):
        reason = "an audit entry id such as 1764700000000-0 (the previous page's `next`)"
        raise ApiError(400, "invalid `before`", [FieldError(field="before", reason=reason)])
    entries, next_before = await read_entries(redis, limit, before)
    return AuditPage(
        entries=[AuditEntryPublic.model_validate(e, from_attributes=True) for e in entries],
        next=next_before,
    )
