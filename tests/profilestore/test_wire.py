"""Both sides of the wire format against its declaration (profilestore/wire.py): every field the
Lua reads from a change, an op or a rejection is declared, every declared field is read, and
the materializer builds changes with declared keys and op codes only."""

from __future__ import annotations

import re
from typing import Any, get_args

import orjson
import pytest

from materializer.processing import command_change, profile_change
from profilestore import wire
from profilestore.script import read_sources
from schemas.commands import UserCommand
from schemas.properties import PropertyDefinition
from tests.support.builders import TS, make_event

# In the Lua, a change is always `change`, an op `op` and a rejection `rejection`.
READERS = {"change": wire.Change, "op": wire.Op, "rejection": wire.Rejection}


def _code(source: str) -> str:
    """The Lua without its comments (which may name fields in prose)."""
    return "\n".join(line.split("--", 1)[0] for line in source.splitlines())


def fields_read(variable: str) -> set[str]:
    pattern = re.compile(rf"\b{variable}(?:\.(\w+)|\[['\"](\w+)['\"]\])")
    found: set[str] = set()
    for source in read_sources().values():
        for dotted, indexed in pattern.findall(_code(source)):
            found.add(dotted or indexed)
    return found


@pytest.mark.parametrize("variable", READERS)
def test_the_lua_reads_exactly_the_declared_fields(variable: str) -> None:
    declared = set(READERS[variable].__annotations__)
    read = fields_read(variable)
    assert read - declared == set(), f"the Lua reads {variable} fields wire.py does not declare"
    assert declared - read == set(), f"wire.py declares {variable} fields the Lua never reads"


def test_the_lua_compares_op_codes_the_wire_declares() -> None:
    spelled = {
        code
        for source in read_sources().values()
        for code in re.findall(r"\bop\.o == '([^']*)'", _code(source))
    }
    assert spelled and spelled <= set(get_args(wire.OpCode))


def test_the_op_code_constants_are_the_declared_codes() -> None:
    constants = {
        wire.SET,
        wire.SET_ONCE,
        wire.UNSET,
        wire.INCREMENT,
        wire.UNION,
        wire.UNION_FRONT,
        wire.APPEND,
        wire.PREPEND,
        wire.REMOVE,
    }
    assert constants == set(get_args(wire.OpCode))


def test_required_keys_are_the_ones_every_change_and_op_carries() -> None:
    assert wire.Change.__required_keys__ == {"m", "ts"}
    assert wire.Op.__required_keys__ == {"o", "k"}


def _assert_declared(change: dict[str, Any]) -> None:
    assert set(change) <= set(wire.Change.__annotations__)
    assert {"m", "ts"} <= set(change)
    for op in change.get("ops", []):
        assert set(op) <= set(wire.Op.__annotations__)
        assert op["o"] in get_args(wire.OpCode)
    for rejection in change.get("x", []):
        assert set(rejection) == set(wire.Rejection.__annotations__)


def test_the_materializer_builds_changes_with_declared_keys_only() -> None:
    defs = {
        "logins": PropertyDefinition(name="logins", type="integer", min=0, max=9),
        "devices": PropertyDefinition(name="devices", type="list", max_items=3),
    }
    traits = {
        "plan": "pro",
        "email": "not an email",
        "$set_once": {"source": "ads"},
        "$unset": ["coupon"],
        "$increment": {"logins": 1},
        "$union": {"devices": ["ios"]},
        "$remove": {"devices": ["web"]},
        "$clear_all": True,
    }
    profile_ops = {
        "$union_front": {"devices": ["web"]},
        "$append": {"visits": [1, "home", True]},
        "$prepend": {"visits": [1.5]},
    }
    identify = make_event(
        type="identify", event=None, anonymous_id="a1", traits=traits, profile_ops=profile_ops
    )
    served = make_event(event="$config_served", properties={"config": "c", "variation": "v"})
    command = UserCommand(
        command_id="c1",
        op="update",
        user_id="u1",
        issued_at=TS,
        set={"plan": "pro"},
        unset=["city"],
        tags_add=["a"],
        tags_remove=["b"],
        status="disabled",
    )
    changes = [profile_change(identify, defs), profile_change(served), command_change(command)]
    for change in changes:
        _assert_declared(dict(change))
    every_key = {key for change in changes for key in change}
    assert every_key == set(wire.Change.__annotations__)
    every_code = {op["o"] for change in changes for op in change.get("ops", [])}
    assert every_code == set(get_args(wire.OpCode))
    for change in changes:
        for op in change.get("ops", []):
            for item in op.get("items", []):
                orjson.loads(item)  # each item is pre-encoded JSON
