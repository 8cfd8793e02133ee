"""Named operator tokens with a role, kept in Redis (keys in profilestore.layout).

A token is `ps_` + 43 url-safe characters (256 random bits), made here and never chosen by a
person, so one SHA-256 is a sound way to store it: nobody can search a space that large, and
unlike a slow password hash it keeps the look-up of every request at one HGET by hash. The
plain token is returned once, when it is made, and never stored or logged.

Nothing is cached: every request looks its token up, so a revoked token is refused from the
very next request.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import redis.asyncio as aioredis

from profilestore.layout import OPERATOR_NAMES, OPERATOR_TOKENS, text

Role = Literal["admin", "analyst"]
ROLES: tuple[Role, ...] = get_args(Role)

TOKEN_PREFIX = "ps_"  # noqa: S105 - what every made token starts with, not a secret
NAME_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
# PS_ADMIN_TOKEN signs in as "admin": a stored token may not pass for it in the audit log.
BOOTSTRAP_NAME = "admin"

# Claims the name and stores the token's record in one step, so a revoke running at the same
# time never leaves a token without its name (which nothing could then revoke).
_CREATE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""
_REVOKE = """
local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], digest)
return 1
"""


@dataclass(frozen=True)
class StoredOperator:
    """A stored token's record: everything but the token (and its hash)."""

    name: str
    role: Role
    created_at: str  # ISO 8601, UTC
    created_by: str

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


class NameTaken(Exception):
    """An operator of this name exists (or it is the bootstrap admin's)."""


class BadName(ValueError):
    """A name outside 1-64 of [A-Za-z0-9._-]."""


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def could_be_stored(token: str) -> bool:
    """Only tokens made here can be in the store: anything else is refused without asking
    Redis (a wrong PS_ADMIN_TOKEN costs no round trip)."""
    return token.startswith(TOKEN_PREFIX) and len(token) < 256


def check_name(name: str) -> str:
    """`name` if it may name a stored token; BadName or NameTaken otherwise."""
    if not NAME_PATTERN.fullmatch(name):
        raise BadName("1 to 64 characters of letters, digits, '.', '_' and '-'")
    if name.lower() == BOOTSTRAP_NAME:
        raise NameTaken(f"{BOOTSTRAP_NAME!r} is PS_ADMIN_TOKEN's name")
    return name


def parse_record(raw: bytes | str) -> StoredOperator:
    data: dict[str, Any] = json.loads(text(raw))
    role = data["role"]
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} in the operator store")
    return StoredOperator(
        name=str(data["name"]),
        role=cast(Role, role),
        created_at=str(data["created_at"]),
        created_by=str(data["created_by"]),
    )


async def create_operator(
    redis: aioredis.Redis, name: str, role: Role, created_by: str, now: datetime | None = None
) -> tuple[StoredOperator, str]:
    """A new operator and its plain token (the only time anyone sees it)."""
    check_name(name)
    operator = StoredOperator(
        name=name,
        role=role,
        created_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        created_by=created_by,
    )
    token = new_token()
    record = json.dumps(operator.as_json())
    created = await redis.eval(
        _CREATE, 2, OPERATOR_NAMES, OPERATOR_TOKENS, name, token_digest(token), record
    )
    if not created:
        raise NameTaken(f"an operator named {name!r} exists")
    return operator, token


async def operator_of_token(redis: aioredis.Redis, token: str) -> StoredOperator | None:
    """The stored operator a bearer token belongs to, or None."""
    if not could_be_stored(token):
        return None
    raw = await redis.hget(OPERATOR_TOKENS, token_digest(token))
    return parse_record(raw) if raw is not None else None


async def list_operators(redis: aioredis.Redis) -> list[StoredOperator]:
    stored = await redis.hgetall(OPERATOR_TOKENS)
    return sorted((parse_record(raw) for raw in stored.values()), key=lambda o: o.name)


async def revoke_operator(redis: aioredis.Redis, name: str) -> bool:
    """False when no operator has this name."""
    revoked = await redis.eval(_REVOKE, 2, OPERATOR_NAMES, OPERATOR_TOKENS, name)
    return bool(revoked)
