"""ops.lua beyond the rule table, on a real Valkey: the list ops (union, union_front, append,
prepend, remove) keep every item's JSON exactly (numbers are never re-encoded by cjson), refuse
what they cannot do and record it, and a clear-all removes what it should, keeps the required
properties, releases the customer id, and keeps its time through merges."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from profilestore.identity import owner_of
from profilestore.layout import PROPERTY_PREFIX, profile_keys
from profilestore.read import read_profile
from profilestore.wire import APPEND, PREPEND, REMOVE, SET, UNION, UNION_FRONT, Change, Op
from profilestore.writer import ProfileWriter
from tests.support.profiles import TODAY, T, change, event, fields_of, uid

pytestmark = pytest.mark.integration

# Each kind of JSON scalar, and numbers cjson would round or reformat when re-encoding.
SCALARS: list[Any] = [
    1,
    1.5,
    12345678901234,
    123456789012345678,
    -9007199254740993,
    0.30000000000000004,
    1e300,
    True,
    False,
    "a/b",
    'é " \\ \n',
    "",
]


def items(*values: Any) -> list[str]:
    return [orjson.dumps(v).decode() for v in values]


def list_op(code: str, name: str, *values: Any, **extra: Any) -> Op:
    op: dict[str, Any] = {"o": code, "k": name, "items": items(*values), **extra}
    return op  # type: ignore[return-value]  # built like the materializer's


async def apply(writer: ProfileWriter, user: str, *changes: Change) -> None:
    await writer.apply_changes({user: list(changes)}, today=TODAY)


async def stored(redis: aioredis.Redis, user: str, name: str) -> Any:
    raw = (await fields_of(redis, user))[PROPERTY_PREFIX].get(name)
    return None if raw is None else orjson.loads(raw)


async def stored_text(redis: aioredis.Redis, user: str, name: str) -> bytes | None:
    value = await redis.hget(profile_keys(user).profile, PROPERTY_PREFIX + name)
    return value if isinstance(value, bytes) else None


async def cleared(redis: aioredis.Redis, user: str) -> Any:
    raw = await redis.hget(profile_keys(user).profile, "cleared")
    assert isinstance(raw, bytes), f"{user} has no clear-all time"
    return orjson.loads(raw)


async def reasons(redis: aioredis.Redis, user: str) -> list[tuple[str, str]]:
    profile = await read_profile(redis, user)
    assert profile is not None
    return [(r.field, r.reason) for r in profile.rejections]


# --- list ops -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", [UNION, UNION_FRONT, APPEND, PREPEND])
async def test_items_of_every_json_scalar_survive_exactly(redis: aioredis.Redis, code: str) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(writer, user, change(T, ops=[list_op(code, "l", *SCALARS)]))
    assert await stored(redis, user, "l") == SCALARS
    assert await stored_text(redis, user, "l") == orjson.dumps(SCALARS)


async def test_the_list_ops_in_order_on_one_profile(redis: aioredis.Redis) -> None:
    writer, user = ProfileWriter(redis), uid()
    steps: list[tuple[Op, list[Any]]] = [
        (list_op(APPEND, "l", 1, "a", 1), [1, "a", 1]),
        (list_op(UNION, "l", "a", 2, 2, True), [1, "a", 1, 2, True]),
        (list_op(UNION_FRONT, "l", 3, True, "b"), [3, "b", 1, "a", 1, 2, True]),
        (list_op(PREPEND, "l", "a", "z"), ["a", "z", 3, "b", 1, "a", 1, 2, True]),
        (list_op(REMOVE, "l", 1, "a", "absent"), ["z", 3, "b", 2, True]),
        (list_op(APPEND, "l"), ["z", 3, "b", 2, True]),
    ]
    for step, (op, expected) in enumerate(steps):
        await apply(writer, user, change(T + step, ops=[op]))
        assert await stored(redis, user, "l") == expected, op


async def test_items_are_told_apart_by_json_type(redis: aioredis.Redis) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(writer, user, change(T, ops=[list_op(UNION, "l", 1, "1", True, "true")]))
    await apply(writer, user, change(T + 1, ops=[list_op(UNION, "l", "1", 1, "true", True)]))
    assert await stored(redis, user, "l") == [1, "1", True, "true"]
    await apply(writer, user, change(T + 2, ops=[list_op(REMOVE, "l", "1", True)]))
    assert await stored(redis, user, "l") == [1, "true"]


async def test_an_integral_number_is_one_item_with_or_without_its_fraction(
    redis: aioredis.Redis,
) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(writer, user, change(T, ops=[{"o": SET, "k": "l", "v": "[1.0,-2.0,2.5]"}]))
    await apply(writer, user, change(T + 1, ops=[list_op(UNION, "l", 1, -2, 2.5, 3)]))
    assert await stored_text(redis, user, "l") == b"[1.0,-2.0,2.5,3]"
    await apply(writer, user, change(T + 2, ops=[list_op(REMOVE, "l", 1, 3)]))
    assert await stored_text(redis, user, "l") == b"[-2.0,2.5]"


async def test_a_list_set_by_a_write_keeps_its_items_as_written(redis: aioredis.Redis) -> None:
    """A set stores any JSON list: nested items are kept whole, strings are compared by value
    whatever their escapes (a list cjson encoded writes '/' as '\\/')."""
    writer, user = ProfileWriter(redis), uid()
    written = '[ {"a": [1, "]"]}, "x\\/y" ,[2,{}], "q\\"]" ,null ]'
    await apply(writer, user, change(T, ops=[{"o": SET, "k": "l", "v": written}]))
    await apply(writer, user, change(T + 1, ops=[list_op(UNION, "l", "x/y", 'q"]', "new")]))
    assert await stored(redis, user, "l") == [
        {"a": [1, "]"]},
        "x/y",
        [2, {}],
        'q"]',
        None,
        "new",
    ]
    await apply(writer, user, change(T + 2, ops=[list_op(REMOVE, "l", "x/y")]))
    assert await stored(redis, user, "l") == [{"a": [1, "]"]}, [2, {}], 'q"]', None, "new"]


@pytest.mark.parametrize("code", [UNION, UNION_FRONT, APPEND, PREPEND])
async def test_more_than_max_items_is_refused_and_recorded(
    redis: aioredis.Redis, code: str
) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(writer, user, change(T, ops=[list_op(APPEND, "l", "a", "b")]))
    await apply(writer, user, change(T + 1, ops=[list_op(code, "l", "c", max=2)]))
    assert await stored(redis, user, "l") == ["a", "b"]
    assert await reasons(redis, user) == [("l", "would hold more than max_items 2")]


@pytest.mark.parametrize("code", [UNION, UNION_FRONT, APPEND, PREPEND, REMOVE])
@pytest.mark.parametrize("current", ['"text"', "7", '{"a": 1}', "null", "true"])
async def test_a_value_that_is_not_a_list_is_refused_and_recorded(
    redis: aioredis.Redis, code: str, current: str
) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(writer, user, change(T, ops=[{"o": SET, "k": "l", "v": current}]))
    await apply(writer, user, change(T + 1, ops=[list_op(code, "l", "a")]))
    assert await stored_text(redis, user, "l") == current.encode()
    assert await reasons(redis, user) == [("l", "the current value is not a list")]


# --- clear-all ------------------------------------------------------------------------------


async def test_a_clear_all_removes_properties_and_nothing_else(redis: aioredis.Redis) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(
        writer,
        user,
        event(
            T,
            kn=1,
            ops=[
                {"o": SET, "k": "plan", "v": '"pro"'},
                {"o": SET, "k": "tier", "v": '"gold"'},
                {"o": SET, "k": "email", "v": '"ada@example.com"'},
                {"o": "u", "k": "coupon"},
            ],
            cfg=["checkout", "A"],
        ),
        change(T, ta=["vip"]),
    )
    await apply(writer, user, event(T + 10, name="Cleared", ca=["tier"]))
    profile = await read_profile(redis, user)
    assert profile is not None
    assert profile.custom == {"tier": "gold"}  # the kept (required) property
    assert profile.email is None
    assert profile.tags == ["vip"] and profile.event_count == 2 and profile.identified
    assert profile.event_totals == {"Played": 1, "Cleared": 1}
    fields = await fields_of(redis, user)
    assert set(fields["c:"]) == {"checkout"}
    time_fields = await redis.hkeys(profile_keys(user).profile)
    assert b"pt:coupon" not in time_fields and b"pt:plan" not in time_fields  # the clear's time
    # stands for them
    assert await cleared(redis, user) == {
        "t": str(T + 10),
        "keep": {"tier": True},
    }


async def test_a_kept_property_keeps_its_own_event_time_order(redis: aioredis.Redis) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(writer, user, change(T, ops=[{"o": SET, "k": "tier", "v": '"a"'}]))
    await apply(writer, user, change(T + 10, ca=["tier"]))
    await apply(writer, user, change(T + 5, ops=[{"o": SET, "k": "tier", "v": '"b"'}]))
    assert await stored(redis, user, "tier") == "b"


async def test_a_late_clear_all_leaves_newer_writes(redis: aioredis.Redis) -> None:
    writer, user = ProfileWriter(redis), uid()
    await apply(
        writer,
        user,
        change(T, ops=[{"o": SET, "k": "old", "v": "1"}]),
        change(T + 20, ops=[{"o": SET, "k": "new", "v": "2"}, list_op(APPEND, "l", 3)]),
    )
    await apply(writer, user, change(T + 10, ca=[]))
    profile = await read_profile(redis, user)
    assert profile is not None and profile.custom == {"new": 2, "l": [3]}
    # and an older clear-all arriving after it leaves the newer clear's time
    await apply(writer, user, change(T + 5, ca=[]))
    await apply(writer, user, change(T + 7, ops=[{"o": SET, "k": "old", "v": "3"}]))
    assert await stored(redis, user, "old") is None


async def test_a_clear_all_releases_the_customer_id(redis: aioredis.Redis) -> None:
    writer, user, other = ProfileWriter(redis), uid(), uid()
    customer_id = f"C-{user}"
    encoded = orjson.dumps(customer_id).decode()
    await apply(writer, user, change(T, ops=[{"o": SET, "k": "customer_id", "v": encoded}]))
    assert await owner_of(redis, customer_id) == user
    await apply(writer, user, change(T + 1, ca=[]))
    assert await owner_of(redis, customer_id) is None
    await apply(writer, other, change(T + 2, ops=[{"o": SET, "k": "customer_id", "v": encoded}]))
    assert await owner_of(redis, customer_id) == other
    assert await reasons(redis, other) == []


async def test_a_clear_all_merged_in_takes_the_customer_id_it_removes(
    redis: aioredis.Redis,
) -> None:
    writer, user, anon = ProfileWriter(redis), uid(), uid("anon")
    customer_id = f"C-{user}"
    encoded = orjson.dumps(customer_id).decode()
    await apply(writer, user, change(T, kn=1, ops=[{"o": SET, "k": "customer_id", "v": encoded}]))
    await apply(writer, anon, change(T + 1, ca=[]))
    await apply(writer, user, change(T + 2, kn=1, mg=anon))
    assert await owner_of(redis, customer_id) is None
    profile = await read_profile(redis, user)
    assert profile is not None and profile.customer_id is None


@pytest.mark.parametrize(
    ("own_clear", "anon_clear", "floor"),
    [(10, 20, 20), (20, 10, 20), (None, 10, 10), (10, None, 10)],
)
async def test_a_merge_keeps_the_newer_clear_all(
    redis: aioredis.Redis, own_clear: int | None, anon_clear: int | None, floor: int
) -> None:
    writer, user, anon = ProfileWriter(redis), uid(), uid("anon")
    await apply(writer, user, change(T - 100, kn=1))
    if own_clear is not None:
        await apply(writer, user, change(T + own_clear, ca=[]))
    await apply(writer, anon, event(T))
    if anon_clear is not None:
        await apply(writer, anon, change(T + anon_clear, ca=[]))
    await apply(writer, user, change(T + 100, kn=1, mg=anon))
    assert (await cleared(redis, user))["t"] == str(T + floor)
    # a write just older than the floor is void, one at it applies
    await apply(writer, anon, change(T + floor - 1, ops=[{"o": SET, "k": "a", "v": "1"}]))
    await apply(writer, user, change(T + floor, ops=[{"o": SET, "k": "b", "v": "2"}]))
    profile = await read_profile(redis, user)
    assert profile is not None and profile.custom == {"b": 2}


def sets(ts: int, *names: str) -> Change:
    return change(ts, ops=[{"o": SET, "k": name, "v": "1"} for name in names])


@pytest.mark.parametrize("clears", ["identified", "anonymous"])
async def test_a_merge_applies_a_clear_all_to_the_other_profiles_older_writes_only(
    redis: aioredis.Redis, clears: str
) -> None:
    """As if both profiles had been one: the clear-all of either removes the other's writes
    older than it, but not the ones it keeps, nor newer ones."""
    writer, user, anon = ProfileWriter(redis), uid(), uid("anon")
    clearing, other = (user, anon) if clears == "identified" else (anon, user)
    await apply(writer, user, change(T - 100, kn=1))
    await apply(writer, other, sets(T + 10, "old", "kept"), sets(T + 30, "other_new"))
    await apply(writer, clearing, change(T + 20, ca=["kept"]), sets(T + 25, "clearing_new"))
    await apply(writer, user, change(T + 100, kn=1, mg=anon))
    profile = await read_profile(redis, user)
    assert profile is not None
    assert sorted(profile.custom) == ["clearing_new", "kept", "other_new"]
    assert await cleared(redis, user) == {
        "t": str(T + 20),
        "keep": {"kept": True},
    }
