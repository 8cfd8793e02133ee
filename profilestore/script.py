"""The apply script: the Lua files of profilestore/lua/, one concern each, concatenated in the
order below, with every key name and field prefix filled in from profilestore.layout. The Lua
never spells a key or a prefix itself, so the layout is declared once."""

from __future__ import annotations

import re
from pathlib import Path

from profilestore.layout import (
    CUSTOMER_IDS,
    FAMILIES,
    IDS_META_FIELD,
    USERS_INDEX,
    legacy_seen_key,
    profile_keys,
)

LUA_DIR = Path(__file__).parent / "lua"

# A Lua local is visible only below its declaration: each file uses what the files before it
# define, and main.lua runs the batch.
APPLY_SCRIPT_FILES = (
    "layout.lua",  # key names, field families, pkey/ikey, hash_table, chunked calls
    "dedup.lua",  # the ids hash: exact dedup within the window, expiry and prune
    "time.lua",  # parse_time, supersedes: event-time ordering
    "rejections.lua",  # record_rejections, reject
    "customer_ids.lua",  # the unique customer_id index
    "ops.lua",  # property ops: set, set_once, unset, increment, union, remove
    "tags_and_status.lua",  # apply_tag, apply_status
    "config.lua",  # served variations of dynamic configs
    "merge.lua",  # MERGE: folding an anonymous profile into an identified one
    "delete.lua",  # data deletion
    "main.lua",  # apply_change and the loop over the batch
)

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_MARK = "\x00"


def _around_user(key: str) -> tuple[str, str]:
    """A per-user key split around the user id: (what comes before it, what comes after)."""
    start, end = key.split(_MARK)
    return start, end


def script_names() -> dict[str, str]:
    """The value of every `${name}` in the Lua files."""
    keys = profile_keys(_MARK)
    profile_start, profile_end = _around_user(keys.profile)
    ids_start, ids_end = _around_user(keys.ids)
    seen_start, seen_end = _around_user(legacy_seen_key(_MARK))
    names = {
        "users_index": USERS_INDEX,
        "customer_ids": CUSTOMER_IDS,
        "profile_key_start": profile_start,
        "profile_key_end": profile_end,
        "ids_key_start": ids_start,
        "ids_key_end": ids_end,
        "ids_meta_field": IDS_META_FIELD,
        "seen_key_start": seen_start,
        "seen_key_end": seen_end,
        **FAMILIES,
    }
    for name, value in names.items():
        # filled into single-quoted Lua strings
        assert not set(value) & set("'\\\n"), f"{name}: {value!r} cannot go in a Lua string"
    return names


def read_sources() -> dict[str, str]:
    """Each Lua file of the apply script, by name, as written (placeholders unfilled)."""
    return {name: (LUA_DIR / name).read_text() for name in APPLY_SCRIPT_FILES}


def fill_in(source: str, names: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            raise KeyError(f"the Lua names ${{{name}}}, which profilestore.script does not fill in")
        return names[name]

    return _PLACEHOLDER.sub(value, source)


def load_apply_script() -> str:
    """The whole apply script, ready for SCRIPT LOAD / EVALSHA."""
    names = script_names()
    parts = [
        f"-- profilestore/lua/{name}\n{fill_in(source, names)}"
        for name, source in read_sources().items()
    ]
    script = "\n".join(parts)
    assert "${" not in script, "the apply script names a key profilestore.script does not fill in"
    return script
