"""Pure: what an event or a management command does to a profile, as operations the Redis apply
script executes in event-time order (the wire format is profilestore.wire).

SDKs ask for each operation with reserved keys in identify traits:

    plain traits            set          {"plan": "pro"}
    "$set"                  set          {"$set": {"plan": "pro"}}
    "$set_once"             set_once     {"$set_once": {"first_plan": "free"}}
    "$unset"                unset        {"$unset": ["coupon"]}
    "$increment"            increment    {"$increment": {"logins": 1}}
    "$union"                union        {"$union": {"devices": ["ios"]}}
    "$remove"               remove       {"$remove": {"devices": ["android"]}}

Every value is checked against its property's definition here; a value that breaks it becomes
a rejection recorded on the profile instead of an operation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from profilestore.wire import INCREMENT, REMOVE, SET, SET_ONCE, UNION, UNSET, Op
from schemas.commands import UserCommand
from schemas.events import Event
from schemas.properties import (
    SEGMENT_TRAIT_ALIASES,
    SYSTEM_FIELDS,
    PropertyDefinition,
    definition_for,
    value_problem,
)

Definitions = Mapping[str, PropertyDefinition]

OPERATION_KEYS = ("$set", "$set_once", "$unset", "$increment", "$union", "$remove")
CONFIG_SERVED_EVENT = "$config_served"
SEGMENT_EXPERIMENT_EVENT = "Experiment Viewed"
MAX_CONFIG_KEY_LENGTH = 255


@dataclass
class ProfileOps:
    ops: list[Op] = field(default_factory=list)
    # (field, reason): writes refused, recorded on the profile with the event's messageId
    rejections: list[tuple[str, str]] = field(default_factory=list)

    def reject(self, where: str, reason: str) -> None:
        self.rejections.append((where, reason))


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _writable(name: str, where: str, result: ProfileOps) -> bool:
    if name in SYSTEM_FIELDS or name.startswith("$") or not name:
        result.reject(where, f"{name or 'an empty name'} cannot be written")
        return False
    return True


def _set(name: str, value: Any, once: bool, where: str, defs: Definitions, out: ProfileOps) -> None:
    if not _writable(name, where, out):
        return
    if value is None:
        if once:
            out.reject(where, "set_once needs a value (null would unset)")
        else:
            _unset(name, where, defs, out)
        return
    definition = definition_for(name, dict(defs))
    if definition is not None:
        problem = value_problem(definition, value)
        if problem:
            out.reject(where, problem)
            return
    out.ops.append({"o": SET_ONCE if once else SET, "k": name, "v": _json(value)})


def _unset(name: str, where: str, defs: Definitions, out: ProfileOps) -> None:
    if not _writable(name, where, out):
        return
    definition = definition_for(name, dict(defs))
    if definition is not None and definition.required:
        out.reject(where, "is required and cannot be unset")
        return
    out.ops.append({"o": UNSET, "k": name})


def _increment(name: str, delta: Any, where: str, defs: Definitions, out: ProfileOps) -> None:
    if not _writable(name, where, out):
        return
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not math.isfinite(delta):
        out.reject(where, "an increment must be a finite number")
        return
    definition = definition_for(name, dict(defs))
    op: Op = {"o": INCREMENT, "k": name, "d": delta}
    if definition is not None:
        if definition.type not in ("integer", "number"):
            out.reject(where, f"cannot increment a {definition.type} property")
            return
        if definition.type == "integer" and not isinstance(delta, int):
            out.reject(where, "an integer property takes whole increments")
            return
        if definition.min is not None:
            op["lo"] = definition.min
        if definition.max is not None:
            op["hi"] = definition.max
    out.ops.append(op)


def _list_op(
    name: str, items: Any, removing: bool, where: str, defs: Definitions, out: ProfileOps
) -> None:
    if not _writable(name, where, out):
        return
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        out.reject(where, "expected a list of strings")
        return
    definition = definition_for(name, dict(defs))
    op: Op = {"o": REMOVE if removing else UNION, "k": name, "items": items}
    if definition is not None:
        if definition.type != "list":
            out.reject(
                where,
                f"cannot {'remove from' if removing else 'union into'} a "
                f"{definition.type} property",
            )
            return
        if not removing:
            problem = value_problem(definition.model_copy(update={"max_items": None}), items)
            if problem:
                out.reject(where, problem)
                return
            if definition.max_items is not None:
                op["max"] = definition.max_items
    out.ops.append(op)


def canonical_traits(traits: Mapping[str, Any]) -> dict[str, Any]:
    """Segment spec trait names mapped to the default properties (firstName -> first_name,
    address.city -> city, address.country -> country)."""
    result: dict[str, Any] = {}
    for name, value in traits.items():
        if name == "address" and isinstance(value, dict):
            rest = dict(value)
            for part in ("city", "country"):
                if part in rest:
                    result[part] = rest.pop(part)
            if rest:
                result["address"] = rest
            continue
        result[SEGMENT_TRAIT_ALIASES.get(name, name)] = value
    return result


def _mapping(value: Any, where: str, out: ProfileOps) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    out.reject(where, "expected an object of property names")
    return {}


def trait_operations(traits: Mapping[str, Any], defs: Definitions) -> ProfileOps:
    """Identify traits -> operations (plain traits are sets)."""
    out = ProfileOps()
    plain = canonical_traits({k: v for k, v in traits.items() if k not in OPERATION_KEYS})
    for name, value in plain.items():
        if name.startswith("$"):
            out.reject(f"traits.{name}", "unknown operation")
            continue
        _set(name, value, False, f"traits.{name}", defs, out)
    for key in OPERATION_KEYS:
        if key not in traits:
            continue
        value = traits[key]
        if key == "$unset":
            names = value if isinstance(value, list) else None
            if names is None or not all(isinstance(n, str) for n in names):
                out.reject("traits.$unset", "expected a list of property names")
                continue
            for name in names:
                canonical = SEGMENT_TRAIT_ALIASES.get(name) or name
                _unset(canonical, f"traits.$unset.{name}", defs, out)
            continue
        for name, item in canonical_traits(_mapping(value, f"traits.{key}", out)).items():
            where = f"traits.{key}.{name}"
            if key in ("$set", "$set_once"):
                _set(name, item, key == "$set_once", where, defs, out)
            elif key == "$increment":
                _increment(name, item, where, defs, out)
            else:
                _list_op(name, item, key == "$remove", where, defs, out)
    return out


def command_operations(command: UserCommand) -> list[Op]:
    """A management command's property writes (already checked by the API)."""
    ops: list[Op] = [{"o": SET, "k": k, "v": _json(v)} for k, v in command.set.items()]
    ops += [{"o": UNSET, "k": name} for name in command.unset]
    return ops


def _config_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_CONFIG_KEY_LENGTH:
        return value
    return None


def served_config(event: Event, out: ProfileOps) -> tuple[str, str] | None:
    """(config, variation) when the event reports a served variation of a dynamic config:
    `$config_served` {config, variation}, or Segment's `Experiment Viewed`
    {experiment_id | experiment_name, variation_name | variation_id}."""
    if event.type != "track":
        return None
    props = event.properties
    if event.event == CONFIG_SERVED_EVENT:
        config, variation = _config_text(props.get("config")), _config_text(props.get("variation"))
        names = ("properties.config", "properties.variation")
    elif event.event == SEGMENT_EXPERIMENT_EVENT:
        config = _config_text(props.get("experiment_id")) or _config_text(
            props.get("experiment_name")
        )
        variation = _config_text(props.get("variation_name")) or _config_text(
            props.get("variation_id")
        )
        names = ("properties.experiment_id", "properties.variation_name")
    else:
        return None
    if config is None:
        out.reject(names[0], f"missing, or not a string of 1..{MAX_CONFIG_KEY_LENGTH} characters")
    if variation is None:
        out.reject(names[1], f"missing, or not a string of 1..{MAX_CONFIG_KEY_LENGTH} characters")
    if config is None or variation is None:
        return None
    return config, variation
