"""The apply script's rules, one row per case (Valkey only: wire-format changes through the
profile store's writer; no materializer, no ClickHouse).

Each row: an op (its two writes are in WRITES, with the Lua file holding its rule), when the
second write happens relative to the first (event time: older, same, newer), where the writes
land, and the state after both:

    one profile     both writes on the identified profile
    first merged    the first write on an anonymous profile, merged into the identified one,
                    then the second write on the identified profile
    second merged   the first write on the identified profile, the second on an anonymous
                    profile, then the merge (merge.lua decides between the two)

To change a rule: edit its Lua file and its rows. Where today's rule surprises, the row says why.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
import pytest
import redis.asyncio as aioredis

from profilestore.layout import ANONYMOUS_ID_PREFIX, PROPERTY_PREFIX, TAG_PREFIX, text
from profilestore.read import ProfileFields, configs_from_fields
from profilestore.wire import (
    APPEND,
    INCREMENT,
    PREPEND,
    REMOVE,
    SET,
    SET_ONCE,
    UNION,
    UNION_FRONT,
    UNSET,
    Change,
)
from profilestore.writer import ProfileWriter
from tests.support.profiles import TODAY, T, change, fields_of, uid

pytestmark = pytest.mark.integration

LATER = {"older": -1, "same": 0, "newer": +1}  # the second write's time minus the first's
WHERE = ("one profile", "first merged", "second merged")


def property_value(name: str) -> Callable[[ProfileFields], Any]:
    def read(fields: ProfileFields) -> Any:
        raw = fields[PROPERTY_PREFIX].get(name)
        return None if raw is None else orjson.loads(raw)

    return read


def tag_state(fields: ProfileFields) -> str | None:
    raw = fields[TAG_PREFIX].get("vip")
    return None if raw is None else ("on" if text(raw).endswith(":1") else "off")


def status(fields: ProfileFields) -> str | None:
    raw = fields[""].get("status")
    return None if raw is None else text(raw)


def served(fields: ProfileFields) -> tuple[str, int]:
    (config,) = configs_from_fields(fields)
    return config.variation, config.times_served


def served_each(fields: ProfileFields) -> dict[str, tuple[str, int]]:
    return {c.config: (c.variation, c.times_served) for c in configs_from_fields(fields)}


class Writes(NamedTuple):
    lua: str  # the file of profilestore/lua/ holding the rule
    first: dict[str, Any]  # the change's fields (it also gets a messageId and its time)
    second: dict[str, Any]
    read: Callable[[ProfileFields], Any]  # the state the rows give


def ops(*op: dict[str, Any]) -> dict[str, Any]:
    return {"ops": list(op)}


def items(*values: Any) -> list[str]:
    """List-op items as the wire carries them: each pre-encoded JSON."""
    return [orjson.dumps(v).decode() for v in values]


CLEAR_ALL: dict[str, Any] = {"ca": []}  # a clear-all keeping nothing


WRITES = {
    "set": Writes(
        "time.lua",
        ops({"o": SET, "k": "plan", "v": '"first"'}),
        ops({"o": SET, "k": "plan", "v": '"second"'}),
        property_value("plan"),
    ),
    "set_once": Writes(
        "time.lua",
        ops({"o": SET_ONCE, "k": "plan", "v": '"first"'}),
        ops({"o": SET_ONCE, "k": "plan", "v": '"second"'}),
        property_value("plan"),
    ),
    "unset": Writes(
        "time.lua",
        ops({"o": SET, "k": "plan", "v": '"first"'}),
        ops({"o": UNSET, "k": "plan"}),
        property_value("plan"),
    ),
    "increment": Writes(
        "ops.lua",
        ops({"o": INCREMENT, "k": "logins", "d": 1}),
        ops({"o": INCREMENT, "k": "logins", "d": 10}),
        property_value("logins"),
    ),
    "union": Writes(
        "ops.lua",
        ops({"o": UNION, "k": "devices", "items": items("a")}),
        ops({"o": UNION, "k": "devices", "items": items("b")}),
        property_value("devices"),
    ),
    "union_front": Writes(
        "ops.lua",
        ops({"o": UNION, "k": "devices", "items": items("a", "b")}),
        ops({"o": UNION_FRONT, "k": "devices", "items": items("c", "b", "d")}),
        property_value("devices"),
    ),
    "append": Writes(
        "ops.lua",
        ops({"o": APPEND, "k": "devices", "items": items("a")}),
        ops({"o": APPEND, "k": "devices", "items": items("b", "a")}),
        property_value("devices"),
    ),
    "prepend": Writes(
        "ops.lua",
        ops({"o": PREPEND, "k": "devices", "items": items("a")}),
        ops({"o": PREPEND, "k": "devices", "items": items("b", "c")}),
        property_value("devices"),
    ),
    "remove": Writes(
        "ops.lua",
        ops({"o": UNION, "k": "devices", "items": items("a", "b")}),
        ops({"o": REMOVE, "k": "devices", "items": items("a")}),
        property_value("devices"),
    ),
    "clear_all": Writes(
        "ops.lua",
        ops({"o": SET, "k": "plan", "v": '"first"'}),
        CLEAR_ALL,
        property_value("plan"),
    ),
    "set_after_clear": Writes(
        "ops.lua",
        CLEAR_ALL,
        ops({"o": SET, "k": "plan", "v": '"second"'}),
        property_value("plan"),
    ),
    "set_once_after_clear": Writes(
        "ops.lua",
        CLEAR_ALL,
        ops({"o": SET_ONCE, "k": "plan", "v": '"second"'}),
        property_value("plan"),
    ),
    "append_after_clear": Writes(
        "ops.lua",
        CLEAR_ALL,
        ops({"o": APPEND, "k": "devices", "items": items("a")}),
        property_value("devices"),
    ),
    "increment_after_set": Writes(
        "ops.lua",
        ops({"o": SET, "k": "logins", "v": "5"}),
        ops({"o": INCREMENT, "k": "logins", "d": 10}),
        property_value("logins"),
    ),
    "tag": Writes("tags_and_status.lua", {"ta": ["vip"]}, {"tr": ["vip"]}, tag_state),
    "status": Writes("tags_and_status.lua", {"st": "active"}, {"st": "disabled"}, status),
    "config": Writes("config.lua", {"cfg": ["checkout", "A"]}, {"cfg": ["checkout", "B"]}, served),
    # one change serving several configs
    "configs": Writes(
        "config.lua",
        {"cfg": ["checkout", "A", "banner", "X"]},
        {"cfg": ["checkout", "B", "banner", "X"]},
        served_each,
    ),
}

# fmt: off
RULES: list[tuple[str, str, str, Any]] = [
    # op           second    where            state after both writes
    ("set",        "older",  "one profile",   "first"),
    ("set",        "same",   "one profile",   "second"),  # same time: the write applied last
    ("set",        "newer",  "one profile",   "second"),
    ("set",        "older",  "first merged",  "first"),
    ("set",        "same",   "first merged",  "second"),
    ("set",        "newer",  "first merged",  "second"),
    ("set",        "older",  "second merged", "first"),
    ("set",        "same",   "second merged", "second"),  # the merged-in write counts as later
    ("set",        "newer",  "second merged", "second"),

    ("set_once",   "older",  "one profile",   "second"),  # the earliest set_once wins
    ("set_once",   "same",   "one profile",   "first"),
    ("set_once",   "newer",  "one profile",   "first"),
    ("set_once",   "older",  "first merged",  "second"),
    ("set_once",   "same",   "first merged",  "first"),
    ("set_once",   "newer",  "first merged",  "first"),
    ("set_once",   "older",  "second merged", "second"),
    ("set_once",   "same",   "second merged", "first"),
    ("set_once",   "newer",  "second merged", "first"),

    # the first write is a set
    ("unset",      "older",  "one profile",   "first"),
    ("unset",      "same",   "one profile",   None),
    ("unset",      "newer",  "one profile",   None),
    ("unset",      "older",  "first merged",  "first"),
    ("unset",      "same",   "first merged",  None),
    ("unset",      "newer",  "first merged",  None),
    ("unset",      "older",  "second merged", "first"),
    ("unset",      "same",   "second merged", None),  # the tombstone is merged as a write
    ("unset",      "newer",  "second merged", None),

    # An increment (union, remove, ...) is void when older than the newest set; a value made
    # by increments alone (a time of kind "a") takes a late older increment: it is added.
    ("increment",  "older",  "one profile",   11),
    ("increment",  "same",   "one profile",   11),
    ("increment",  "newer",  "one profile",   11),
    ("increment",  "older",  "first merged",  11),
    ("increment",  "same",   "first merged",  11),
    ("increment",  "newer",  "first merged",  11),
    # A merge takes the newer counter whole (like a set); only event totals add up.
    ("increment",  "older",  "second merged", 1),
    ("increment",  "same",   "second merged", 10),
    ("increment",  "newer",  "second merged", 10),

    ("union",      "older",  "one profile",   ["a", "b"]),
    ("union",      "same",   "one profile",   ["a", "b"]),
    ("union",      "newer",  "one profile",   ["a", "b"]),
    ("union",      "older",  "first merged",  ["a", "b"]),
    ("union",      "same",   "first merged",  ["a", "b"]),
    ("union",      "newer",  "first merged",  ["a", "b"]),
    # A merge takes the newer list whole: the two lists are not united.
    ("union",      "older",  "second merged", ["a"]),
    ("union",      "same",   "second merged", ["b"]),
    ("union",      "newer",  "second merged", ["b"]),

    # A set, then an increment: older than the set, the increment is void (the set's value
    # already holds what happened before it); a merge takes the newer value whole.
    ("increment_after_set", "older",  "one profile",   5),
    ("increment_after_set", "same",   "one profile",   15),
    ("increment_after_set", "newer",  "one profile",   15),
    ("increment_after_set", "older",  "first merged",  5),
    ("increment_after_set", "same",   "first merged",  15),
    ("increment_after_set", "newer",  "first merged",  15),
    ("increment_after_set", "older",  "second merged", 5),
    ("increment_after_set", "same",   "second merged", 10),
    ("increment_after_set", "newer",  "second merged", 10),

    # the first write is a union of a and b; the second puts c and d in front, b is there
    ("union_front", "older",  "one profile",   ["c", "d", "a", "b"]),
    ("union_front", "same",   "one profile",   ["c", "d", "a", "b"]),
    ("union_front", "newer",  "one profile",   ["c", "d", "a", "b"]),
    ("union_front", "older",  "first merged",  ["c", "d", "a", "b"]),
    ("union_front", "same",   "first merged",  ["c", "d", "a", "b"]),
    ("union_front", "newer",  "first merged",  ["c", "d", "a", "b"]),
    # a merge takes the newer list whole
    ("union_front", "older",  "second merged", ["a", "b"]),
    ("union_front", "same",   "second merged", ["c", "b", "d"]),
    ("union_front", "newer",  "second merged", ["c", "b", "d"]),

    # a, then b and a: duplicates kept
    ("append",     "older",  "one profile",   ["a", "b", "a"]),
    ("append",     "same",   "one profile",   ["a", "b", "a"]),
    ("append",     "newer",  "one profile",   ["a", "b", "a"]),
    ("append",     "older",  "first merged",  ["a", "b", "a"]),
    ("append",     "same",   "first merged",  ["a", "b", "a"]),
    ("append",     "newer",  "first merged",  ["a", "b", "a"]),
    ("append",     "older",  "second merged", ["a"]),
    ("append",     "same",   "second merged", ["b", "a"]),
    ("append",     "newer",  "second merged", ["b", "a"]),

    # a, then b and c in front, in their order
    ("prepend",    "older",  "one profile",   ["b", "c", "a"]),
    ("prepend",    "same",   "one profile",   ["b", "c", "a"]),
    ("prepend",    "newer",  "one profile",   ["b", "c", "a"]),
    ("prepend",    "older",  "first merged",  ["b", "c", "a"]),
    ("prepend",    "same",   "first merged",  ["b", "c", "a"]),
    ("prepend",    "newer",  "first merged",  ["b", "c", "a"]),
    ("prepend",    "older",  "second merged", ["a"]),
    ("prepend",    "same",   "second merged", ["b", "c"]),
    ("prepend",    "newer",  "second merged", ["b", "c"]),

    # the first write is a union of a and b
    ("remove",     "older",  "one profile",   ["b"]),
    ("remove",     "same",   "one profile",   ["b"]),
    ("remove",     "newer",  "one profile",   ["b"]),
    ("remove",     "older",  "first merged",  ["b"]),
    ("remove",     "same",   "first merged",  ["b"]),
    ("remove",     "newer",  "first merged",  ["b"]),
    # The remove made an empty list on the anonymous profile, and the merge takes it whole.
    ("remove",     "older",  "second merged", ["a", "b"]),
    ("remove",     "same",   "second merged", []),
    ("remove",     "newer",  "second merged", []),

    # A set, then a clear-all: it removes what was written at or before its time, and a
    # clear-all merged in from an anonymous profile does so on the identified one too (as if
    # they had been one profile); a newer write survives it, even one applied before it.
    ("clear_all",  "older",  "one profile",   "first"),
    ("clear_all",  "same",   "one profile",   None),
    ("clear_all",  "newer",  "one profile",   None),
    ("clear_all",  "older",  "first merged",  "first"),
    ("clear_all",  "same",   "first merged",  None),
    ("clear_all",  "newer",  "first merged",  None),
    ("clear_all",  "older",  "second merged", "first"),
    ("clear_all",  "same",   "second merged", None),  # the merged-in clear counts as later
    ("clear_all",  "newer",  "second merged", None),

    # A clear-all, then a set of a property the profile never had: older than the clear, it is
    # void, as after an unset. The clear's time survives a merge either way (merge.lua).
    ("set_after_clear",  "older",  "one profile",   None),
    ("set_after_clear",  "same",   "one profile",   "second"),
    ("set_after_clear",  "newer",  "one profile",   "second"),
    ("set_after_clear",  "older",  "first merged",  None),
    ("set_after_clear",  "same",   "first merged",  "second"),
    ("set_after_clear",  "newer",  "first merged",  "second"),
    ("set_after_clear",  "older",  "second merged", None),
    ("set_after_clear",  "same",   "second merged", "second"),
    ("set_after_clear",  "newer",  "second merged", "second"),

    ("set_once_after_clear",  "older",  "one profile",   None),
    ("set_once_after_clear",  "same",   "one profile",   "second"),
    ("set_once_after_clear",  "newer",  "one profile",   "second"),
    ("set_once_after_clear",  "older",  "first merged",  None),
    ("set_once_after_clear",  "same",   "first merged",  "second"),
    ("set_once_after_clear",  "newer",  "first merged",  "second"),
    ("set_once_after_clear",  "older",  "second merged", None),
    ("set_once_after_clear",  "same",   "second merged", "second"),
    ("set_once_after_clear",  "newer",  "second merged", "second"),

    # a list op older than a clear-all is void too
    ("append_after_clear",  "older",  "one profile",   None),
    ("append_after_clear",  "same",   "one profile",   ["a"]),
    ("append_after_clear",  "newer",  "one profile",   ["a"]),
    ("append_after_clear",  "older",  "first merged",  None),
    ("append_after_clear",  "same",   "first merged",  ["a"]),
    ("append_after_clear",  "newer",  "first merged",  ["a"]),
    ("append_after_clear",  "older",  "second merged", None),
    ("append_after_clear",  "same",   "second merged", ["a"]),
    ("append_after_clear",  "newer",  "second merged", ["a"]),

    # tagged, then untagged
    ("tag",        "older",  "one profile",   "on"),
    ("tag",        "same",   "one profile",   "off"),
    ("tag",        "newer",  "one profile",   "off"),
    ("tag",        "older",  "first merged",  "on"),
    ("tag",        "same",   "first merged",  "off"),
    ("tag",        "newer",  "first merged",  "off"),
    ("tag",        "older",  "second merged", "on"),
    ("tag",        "same",   "second merged", "on"),  # a merge needs a strictly newer tag
    ("tag",        "newer",  "second merged", "off"),

    ("status",     "older",  "one profile",   "active"),
    ("status",     "same",   "one profile",   "disabled"),
    ("status",     "newer",  "one profile",   "disabled"),
    # A merge does not carry the anonymous profile's status (merge.lua): the identified
    # profile has none yet, so even an older status lands.
    ("status",     "older",  "first merged",  "disabled"),
    ("status",     "same",   "first merged",  "disabled"),
    ("status",     "newer",  "first merged",  "disabled"),
    # ... and the identified profile's own status stands, whatever the times.
    ("status",     "older",  "second merged", "active"),
    ("status",     "same",   "second merged", "active"),
    ("status",     "newer",  "second merged", "active"),

    # (variation, times served): the variation served at the newest time; same time: the last
    ("config",     "older",  "one profile",   ("A", 2)),
    ("config",     "same",   "one profile",   ("B", 2)),
    ("config",     "newer",  "one profile",   ("B", 2)),
    ("config",     "older",  "first merged",  ("A", 2)),
    ("config",     "same",   "first merged",  ("B", 2)),
    ("config",     "newer",  "first merged",  ("B", 2)),
    ("config",     "older",  "second merged", ("A", 2)),
    ("config",     "same",   "second merged", ("B", 2)),
    ("config",     "newer",  "second merged", ("B", 2)),

    # two configs in each change: each as if served alone
    ("configs",    "older",  "one profile",   {"checkout": ("A", 2), "banner": ("X", 2)}),
    ("configs",    "same",   "one profile",   {"checkout": ("B", 2), "banner": ("X", 2)}),
    ("configs",    "newer",  "one profile",   {"checkout": ("B", 2), "banner": ("X", 2)}),
    ("configs",    "older",  "first merged",  {"checkout": ("A", 2), "banner": ("X", 2)}),
    ("configs",    "same",   "first merged",  {"checkout": ("B", 2), "banner": ("X", 2)}),
    ("configs",    "newer",  "first merged",  {"checkout": ("B", 2), "banner": ("X", 2)}),
    ("configs",    "older",  "second merged", {"checkout": ("A", 2), "banner": ("X", 2)}),
    ("configs",    "same",   "second merged", {"checkout": ("B", 2), "banner": ("X", 2)}),
    ("configs",    "newer",  "second merged", {"checkout": ("B", 2), "banner": ("X", 2)}),
]
# fmt: on


def test_the_table_has_one_row_per_case() -> None:
    cases = [row[:3] for row in RULES]
    assert len(cases) == len(set(cases))
    assert set(cases) == set(itertools.product(WRITES, LATER, WHERE))


async def apply(writer: ProfileWriter, user: str, *changes: Change) -> None:
    await writer.apply_changes({user: list(changes)}, today=TODAY)


@pytest.mark.parametrize(
    ("op", "second", "where", "expected"),
    RULES,
    ids=[f"{op}-{second}-{where.replace(' ', '_')}" for op, second, where, _ in RULES],
)
async def test_rule(redis: aioredis.Redis, op: str, second: str, where: str, expected: Any) -> None:
    writes = WRITES[op]
    writer = ProfileWriter(redis)
    user, anon = uid(), uid("anon")
    first_write = change(T, **writes.first)
    second_write = change(T + LATER[second], **writes.second)
    merge = change(T + 60_000, kn=1, mg=anon)
    if where == "one profile":
        await apply(writer, user, change(T - 60_000, kn=1), first_write)
        await apply(writer, user, second_write)
    elif where == "first merged":
        await apply(writer, anon, first_write)
        await apply(writer, user, merge)
        await apply(writer, user, second_write)
    else:
        await apply(writer, user, change(T - 60_000, kn=1), first_write)
        await apply(writer, anon, second_write)
        await apply(writer, user, merge)
        assert (await fields_of(redis, user))[ANONYMOUS_ID_PREFIX] == {anon: merge["ts"].encode()}
    assert writes.read(await fields_of(redis, user)) == expected, f"rule in {writes.lua}"
