"""The wire format between the materializer, which builds profile changes, and the Lua script that
applies them (profilestore/lua/): one `Change` per event or management command, sent as JSON.

Keys stay one or two letters: a batch carries thousands of changes, and their encoding and
decoding (orjson here, cjson in Redis) is paid per byte on the hot path. These TypedDicts are
the only place the keys are spelled out with their meaning; tests/profilestore/test_wire.py
fails when the Lua reads a key declared nowhere here, or never reads one declared here.

A change's "identified" flag is `kn` (it sets the profile's `known` field) and not `k`, which
on an op is the property name: one letter, one meaning."""

# No `from __future__ import annotations`: on Python 3.11 it hides Required[...] from
# __required_keys__, which the tests read.
from typing import Final, Literal, Required, TypedDict

from schemas.commands import CommandOp, Status

# Op codes (`Op.o`): what an op does to its property.
SET: Final = "s"  # replace the value, if the write is not older than the property's time
SET_ONCE: Final = "o"  # set only if unset; the earliest set_once wins; a set always wins
UNSET: Final = "u"  # delete the value, leaving a tombstone time that older sets cannot pass
INCREMENT: Final = "i"  # add `d` to a number, within [lo, hi]
UNION: Final = "+"  # add `items` missing from a list, at the end, refusing more than `max` items
UNION_FRONT: Final = "f"  # add `items` missing from a list, at the front (in their order)
APPEND: Final = "a"  # add `items` at the end of a list, duplicates kept
PREPEND: Final = "p"  # insert `items` at the front of a list (in their order), duplicates kept
REMOVE: Final = "-"  # remove every occurrence of `items` from a list

OpCode = Literal["s", "o", "u", "i", "+", "f", "a", "p", "-"]


class Op(TypedDict, total=False):
    """One property write, checked against the property's definition before it is sent."""

    o: Required[OpCode]  # op code (above)
    k: Required[str]  # property name (the `p:<k>` and `pt:<k>` fields)
    v: str  # set, set_once: the value, pre-encoded JSON (cjson would turn 1 into 1.0)
    d: int | float  # increment: the amount added
    lo: float  # increment: the definition's min, refused below it
    hi: float  # increment: the definition's max, refused above it
    # list ops: the items, each pre-encoded JSON (a string, number or boolean): the script
    # splices them into the stored list's text, so numbers are never re-encoded
    items: list[str]
    max: int  # union, union_front, append, prepend: the most items the list may hold


class Rejection(TypedDict):
    """A write refused before it reached Redis; the script records it on the profile with the
    change's `m` and `ts`."""

    f: str  # field path in the message, e.g. "traits.email"
    r: str  # reason (never quoting the value)


class Change(TypedDict, total=False):
    """What one event or command does to its user's profile. Every key but `m` and `ts` is
    left out when it has nothing to say (an absent key costs no bytes)."""

    m: Required[str]  # messageId (an event) or command id: kept in the ids hash, dedups replays
    ts: Required[str]  # event time, ms since the epoch as text: orders every write
    # the day number (days since 1970-01-01 UTC) until which `m` is remembered: for an event
    # inside the dedup window, its day + the window's days; for an older one (an import),
    # today + 1. The materializer sets it on every change; without it, today + 1
    kp: int
    n: str  # event name: counts one event (event_count, t:<n>, first/last_seen)
    le: str  # the event as `last_event` JSON {message_id, type, name, timestamp}
    kn: Literal[1]  # the profile is an identified user's (sets the `known` field)
    mg: str  # an anonymous (or previous) id whose profile is folded into this one
    # clear all: every property goes but these (the required ones), as if each were unset at
    # `ts`; applied before `ops`. The profile keeps the time (field `cleared`): a later-arriving
    # write older than it is void, for any property but these
    ca: list[str]
    ops: list[Op]  # property writes, in order
    x: list[Rejection]  # writes refused by the materializer, recorded on the profile
    # served variations of dynamic configs: [config, variation, config, variation, ...]
    cfg: list[str]
    cmd: CommandOp  # a management command: create, update (only an existing profile), delete
    ta: list[str]  # tags added
    tr: list[str]  # tags removed
    st: Status  # status
