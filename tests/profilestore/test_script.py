"""The apply script's loader (profilestore/script.py): every Lua file is part of the script,
every key name and field prefix comes from profilestore.layout, none is left unfilled."""

from __future__ import annotations

import re

import pytest

from profilestore.layout import CUSTOMER_IDS, FAMILIES, PREFIX, USERS_INDEX
from profilestore.script import (
    APPLY_SCRIPT_FILES,
    LUA_DIR,
    fill_in,
    load_apply_script,
    read_sources,
)


def test_every_lua_file_is_part_of_the_script_once() -> None:
    assert sorted(APPLY_SCRIPT_FILES) == sorted(p.name for p in LUA_DIR.glob("*.lua"))
    assert len(set(APPLY_SCRIPT_FILES)) == len(APPLY_SCRIPT_FILES)


@pytest.mark.parametrize("name", APPLY_SCRIPT_FILES)
def test_no_lua_file_spells_a_key_or_a_field_prefix(name: str) -> None:
    literals = [*FAMILIES.values(), f"{PREFIX}:", USERS_INDEX, CUSTOMER_IDS]
    quoted = re.compile("['\"](?:" + "|".join(map(re.escape, literals)) + ")")
    source = read_sources()[name]
    found = [line for line in source.splitlines() if quoted.search(line)]
    assert found == [], f"{name} spells what profilestore.layout declares: use its ${{name}}"


def test_the_loaded_script_has_nothing_left_to_fill_in() -> None:
    script = load_apply_script()
    assert "${" not in script
    for prefix in FAMILIES.values():
        assert f"'{prefix}'" in script


def test_a_name_the_loader_does_not_know_fails_the_load() -> None:
    with pytest.raises(KeyError, match="nobody"):
        fill_in("local X = '${nobody}'", {"somebody": "x"})


@pytest.mark.parametrize(("name", "prefix"), FAMILIES.items())
def test_field_families_have_the_shape_merge_lua_matches(name: str, prefix: str) -> None:
    # merge.lua finds a field's family with the Lua pattern '^(%a+:)'
    assert re.fullmatch(r"[A-Za-z]+:", prefix), name


def test_every_family_is_known_to_the_lua_by_its_layout_name() -> None:
    placeholders = {
        name for source in read_sources().values() for name in re.findall(r"\$\{(\w+)\}", source)
    }
    assert set(FAMILIES) <= placeholders
