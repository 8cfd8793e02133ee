"""Named operator tokens on a real Valkey: made, used, listed, revoked; stored only as hashes."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest

from profilestore.layout import OPERATOR_NAMES, OPERATOR_TOKENS
from query.operators import BadName, NameTaken, check_name, could_be_stored, new_token
from tests.support.operators import ADMIN_TOKEN, client_of, made_token, operators_app


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_made_tokens_are_long_random_and_recognisable() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(t.startswith("ps_") and len(t) == 46 and could_be_stored(t) for t in tokens)
    assert not could_be_stored("dev-admin-token")


@pytest.mark.parametrize("name", ["", "x" * 65, "has space", "ümlaut", "a/b"])
def test_names_outside_the_pattern_are_refused(name: str) -> None:
    with pytest.raises(BadName):
        check_name(name)


@pytest.mark.parametrize("name", ["admin", "ADMIN"])
def test_the_bootstrap_admins_name_is_taken(name: str) -> None:
    with pytest.raises(NameTaken):
        check_name(name)


async def test_a_token_lives_from_creation_to_revocation(redis: Any) -> None:
    app = operators_app(redis)
    name = unique("ada.laptop")
    token = await made_token(app, name, "analyst")
    assert token.startswith("ps_")

    async with client_of(app, token) as analyst, client_of(app, ADMIN_TOKEN) as admin:
        me = await analyst.get("/v1/me")
        assert me.status_code == 200 and me.json() == {"name": name, "role": "analyst"}
        assert (await admin.get("/v1/me")).json() == {"name": "admin", "role": "admin"}

        listed = (await admin.get("/v1/tokens")).json()
        [mine] = [t for t in listed if t["name"] == name]
        assert mine["role"] == "analyst" and mine["created_by"] == "admin"
        assert set(mine) == {"name", "role", "created_at", "created_by"}

        revoked = await admin.delete(f"/v1/tokens/{name}")
        assert revoked.status_code == 204
        refused = await analyst.get("/v1/me")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert name not in [t["name"] for t in (await admin.get("/v1/tokens")).json()]
        again = await admin.delete(f"/v1/tokens/{name}")
        assert again.status_code == 404


async def test_a_stored_admin_token_can_make_tokens_and_is_named_as_their_maker(
    redis: Any,
) -> None:
    app = operators_app(redis)
    maker = unique("grace")
    token = await made_token(app, maker, "admin")
    made = unique("made-by-grace")
    async with client_of(app, token) as admin:
        response = await admin.post("/v1/tokens", json={"name": made, "role": "analyst"})
        assert response.status_code == 201
        [entry] = [t for t in (await admin.get("/v1/tokens")).json() if t["name"] == made]
    assert entry["created_by"] == maker


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "admin", "role": "analyst"}, 409, "name"),
        ({"name": "bad name", "role": "analyst"}, 400, "name"),
        ({"name": "x" * 65, "role": "analyst"}, 400, "name"),
        ({"name": "ok-name", "role": "owner"}, 400, "role"),
        ({"role": "analyst"}, 400, "name"),
    ],
)
async def test_bad_token_requests_name_the_field(
    redis: Any, body: dict[str, str], status: int, field: str
) -> None:
    async with client_of(operators_app(redis), ADMIN_TOKEN) as admin:
        response = await admin.post("/v1/tokens", json=body)
    assert response.status_code == status, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_a_name_is_unique(redis: Any) -> None:
    app = operators_app(redis)
    name = unique("twice")
    await made_token(app, name, "analyst")
    async with client_of(app, ADMIN_TOKEN) as admin:
        response = await admin.post("/v1/tokens", json={"name": name, "role": "admin"})
    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "name", "reason": "already taken"}]


async def test_a_wrong_token_of_the_right_shape_is_refused(redis: Any) -> None:
    async with client_of(operators_app(redis), new_token()) as stranger:
        response = await stranger.get("/v1/me")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_redis_holds_hashes_only(redis: Any) -> None:
    """Every key and value in the store, read back: the plain token is nowhere, its SHA-256
    is what the look-up hash is keyed by."""
    app = operators_app(redis)
    name = unique("hashed")
    token = await made_token(app, name, "admin")
    dump = []
    async for key in redis.scan_iter(count=1000):
        dump.append(key)
        kind = (await redis.type(key)).decode()
        if kind == "hash":
            for field, value in (await redis.hgetall(key)).items():
                dump += [field, value]
        elif kind == "string":
            dump.append(await redis.get(key))
        elif kind == "stream":
            for _id, fields in await redis.xrange(key):
                dump += [*fields.keys(), *fields.values()]
        elif kind in ("set", "zset", "list"):
            members = {
                "set": redis.smembers,
                "zset": lambda k: redis.zrange(k, 0, -1),
                "list": lambda k: redis.lrange(k, 0, -1),
            }
            dump += list(await members[kind](key))
    everything = b"\n".join(dump)
    assert token.encode() not in everything
    assert token.removeprefix("ps_").encode() not in everything
    digest = hashlib.sha256(token.encode()).hexdigest().encode()
    assert await redis.hget(OPERATOR_NAMES, name) == digest
    assert await redis.hexists(OPERATOR_TOKENS, digest)


async def test_a_revoked_token_is_refused_on_the_very_next_request(redis: Any) -> None:
    """No cache: revoking in Redis directly (another replica's revoke) is seen at once."""
    app = operators_app(redis)
    name = unique("elsewhere")
    token = await made_token(app, name, "admin")
    async with client_of(app, token) as holder:
        assert (await holder.get("/v1/me")).status_code == 200
        digest = await redis.hget(OPERATOR_NAMES, name)
        await redis.hdel(OPERATOR_TOKENS, digest)
        assert (await holder.get("/v1/me")).status_code == 401
