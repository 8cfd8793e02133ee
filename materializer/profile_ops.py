"""Pure: what an event or a management command does to a profile, as operations the Redis apply
script executes in event-time order (the wire format is profilestore.wire).

SDKs ask for each operation with reserved keys, in identify traits or in any event's
`profileOps` (the same syntax; the third-party mappings of ingest/providers use both):

    plain keys     set          {"plan": "pro"}
    "$set"         set          {"$set": {"plan": "pro"}}
    "$set_once"    set_once     {"$set_once": {"first_plan": "free"}}
    "$unset"       unset        {"$unset": ["coupon"]}
    "$increment"   increment    {"$increment": {"logins": 1}}
    "$union"       union        {"$union": {"devices": ["ios"]}}  (the missing ones, at the end)
    "$union_front" union_front  {"$union_front": {"devices": ["ios"]}}  (... at the front)
    "$append"      append       {"$append": {"visits": ["home"]}}  (at the end, duplicates kept)
    "$prepend"     prepend      {"$prepend": {"visits": ["home"]}}  (at the front)
    "$remove"      remove       {"$remove": {"devices": ["android"]}}  (every occurrence)
    "$clear_all"   clear all    {"$clear_all": true}  (every property but the required ones)

List items are JSON scalars: strings, finite numbers, booleans. Every value is checked against
its property's definition here; a value that breaks it becomes a rejection recorded on the
profile instead of an operation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from materializer.decode import WireEvent
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
    Op,
    OpCode,
)
from schemas.commands import UserCommand
from schemas.properties import (
    DEFAULT_PROPERTIES,
    INTEGER_RANGE,
    MAX_LIST_ITEMS,
    SEGMENT_TRAIT_ALIASES,
    SYSTEM_FIELDS,
    PropertyDefinition,
    definition_for,
    value_problem,
)

Definitions = Mapping[str, PropertyDefinition]

# In the order their operations are applied within one event (a clear-all comes first of all).
OPERATION_KEYS = (
    "$set",
    "$set_once",
    "$unset",
    "$increment",
    "$union",
    "$union_front",
    "$append",
    "$prepend",
    "$remove",
    "$clear_all",
)
_OPERATION_KEY_SET = frozenset(OPERATION_KEYS)
# The list operations: op code, and the verb their rejections use.
LIST_OPERATIONS: dict[str, tuple[OpCode, str]] = {
    "$union": (UNION, "union into"),
    "$union_front": (UNION_FRONT, "union into"),
    "$append": (APPEND, "append to"),
    "$prepend": (PREPEND, "prepend to"),
    "$remove": (REMOVE, "remove from"),
}
# The largest integer a float holds exactly: an integral float item below it is sent as an
# integer, so 1.0 and 1 are the same item.
EXACT_FLOAT_INTEGERS = 2**53
CONFIG_SERVED_EVENT = "$config_served"
SEGMENT_EXPERIMENT_EVENT = "Experiment Viewed"
MAX_CONFIG_KEY_LENGTH = 255


@dataclass
class ProfileOps:
    ops: list[Op] = field(default_factory=list)
    # (field, reason): writes refused, recorded on the profile with the event's messageId
    rejections: list[tuple[str, str]] = field(default_factory=list)
    # a clear-all: the properties it keeps (the required ones); None: no clear-all
    clear_keeping: list[str] | None = None

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
    definition = definition_for(name, defs)
    if definition is not None:
        problem = value_problem(definition, value)
        if problem:
            out.reject(where, problem)
            return
    out.ops.append({"o": SET_ONCE if once else SET, "k": name, "v": _json(value)})


def _unset(name: str, where: str, defs: Definitions, out: ProfileOps) -> None:
    if not _writable(name, where, out):
        return
    definition = definition_for(name, defs)
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
    definition = definition_for(name, defs)
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


def _list_item(item: Any) -> Any:
    """The item as sent on the wire (a JSON scalar; an integral float as an integer), or None
    when it is not a string, a finite number or a boolean."""
    if isinstance(item, str | bool):
        return item
    if isinstance(item, int):
        return item if INTEGER_RANGE[0] <= item <= INTEGER_RANGE[1] else None
    if isinstance(item, float) and math.isfinite(item):
        return int(item) if item.is_integer() and abs(item) < EXACT_FLOAT_INTEGERS else item
    return None


def _list_op(
    name: str, items: Any, key: str, where: str, defs: Definitions, out: ProfileOps
) -> None:
    if not _writable(name, where, out):
        return
    code, verb = LIST_OPERATIONS[key]
    sent = [_list_item(i) for i in items] if isinstance(items, list) else None
    if sent is None or any(i is None for i in sent):
        out.reject(where, "expected a list of strings, finite numbers or booleans")
        return
    definition = definition_for(name, defs)
    op: Op = {"o": code, "k": name, "items": [_json(i) for i in sent]}
    if definition is not None and definition.type != "list":
        out.reject(where, f"cannot {verb} a {definition.type} property")
        return
    if code != REMOVE:
        if definition is not None:
            problem = value_problem(definition.model_copy(update={"max_items": None}), sent)
            if problem:
                out.reject(where, problem)
                return
        limit = definition.max_items if definition is not None else None
        op["max"] = MAX_LIST_ITEMS if limit is None else limit
    out.ops.append(op)


def _clear_all(value: Any, where: str, defs: Definitions, out: ProfileOps) -> None:
    if value is False:
        return
    if value is not True:
        out.reject(where, "expected true")
        return
    definitions = {**defs, **DEFAULT_PROPERTIES}
    out.clear_keeping = sorted(name for name, d in definitions.items() if d.required)


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


def trait_operations(
    traits: Mapping[str, Any],
    defs: Definitions,
    where: str = "traits",
    out: ProfileOps | None = None,
) -> ProfileOps:
    """Identify traits, or an event's profileOps (`where` = "profileOps"), -> operations
    (plain keys are sets), added to `out`. Rejections name `<where>.<key>.<name>`."""
    out = ProfileOps() if out is None else out
    plain = canonical_traits({k: v for k, v in traits.items() if k not in _OPERATION_KEY_SET})
    for name, value in plain.items():
        if name.startswith("$"):
            out.reject(f"{where}.{name}", "unknown operation")
            continue
        _set(name, value, False, f"{where}.{name}", defs, out)
    for key in OPERATION_KEYS:
        if key not in traits:
            continue
        value = traits[key]
        if key == "$clear_all":
            _clear_all(value, f"{where}.$clear_all", defs, out)
            continue
        if key == "$unset":
            names = value if isinstance(value, list) else None
            if names is None or not all(isinstance(n, str) for n in names):
                out.reject(f"{where}.$unset", "expected a list of property names")
                continue
            for name in names:
                canonical = SEGMENT_TRAIT_ALIASES.get(name) or name
                _unset(canonical, f"{where}.$unset.{name}", defs, out)
            continue
        for name, item in canonical_traits(_mapping(value, f"{where}.{key}", out)).items():
            item_where = f"{where}.{key}.{name}"
            if key in ("$set", "$set_once"):
                _set(name, item, key == "$set_once", item_where, defs, out)
            elif key == "$increment":
                _increment(name, item, item_where, defs, out)
            else:
                _list_op(name, item, key, item_where, defs, out)
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


def served_config(event: WireEvent, out: ProfileOps) -> tuple[str, str] | None:
    """(config, variation) when the event reports a served variation of a dynamic config:
    `$config_served` {config, variation}, or Segment's `Experiment Viewed`
    {experiment_id | experiment_name, variation_name | variation_id}."""
    if event.type != "track" or event.event not in (CONFIG_SERVED_EVENT, SEGMENT_EXPERIMENT_EVENT):
        return None
    props = event.properties_dict()  # parsed only for these two events
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


def configs_served(event: WireEvent, out: ProfileOps) -> dict[str, str]:
    """Every config the event reports served, {config: variation}: `served_config`, then the
    event's own `configs` (any event type; for a config named in both, `configs` wins: one
    event serves one variation of a config)."""
    served: dict[str, str] = {}
    pair = served_config(event, out)
    if pair is not None:
        served[pair[0]] = pair[1]
    reason = f"not a string of 1..{MAX_CONFIG_KEY_LENGTH} characters"
    for config, variation in (event.configs or {}).items():
        key, value = _config_text(config), _config_text(variation)
        if key is None:
            out.reject("configs", f"a config key is {reason}")
        elif value is None:
            out.reject(f"configs.{key}", f"the variation is {reason}")
        else:
            served[key] = value
    return served
