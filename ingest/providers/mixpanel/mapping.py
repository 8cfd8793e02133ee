"""Pure: Mixpanel's ingestion payloads (/track events, /engage and /groups records, /import
events) -> Segment-spec event dicts, which ingest.providers.common normalizes like any other.

Ids follow Mixpanel's simplified ID merge: a `distinct_id` of "$device:<id>" is anonymous,
`$device_id` is the anonymous id and `$user_id` the user id, so an event carrying both merges
the device's profile into the user's. `$identify` and `$create_alias` (original ID merge) and
`/import`'s `$merge` become identify and alias events. Engage operators become the profile
operations of identify traits; `$experiment_started` feeds the profile's configs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ingest.limits import MAX_NESTING, nesting_depth
from ingest.normalize import InvalidEvent
from ingest.providers.common import (
    DELETE_REFUSED,
    config_text,
    epoch_to_datetime,
    invalid,
    iso,
    stable_message_id,
    text_id,
)
from schemas.messages import FieldError

PROTOCOL = "mixpanel"
# Mixpanel's documented limits per request (research 2.5): 2000 events, 10 MB uncompressed.
MAX_RECORDS = 2000
MAX_REQUEST_BYTES = 10 * 1024 * 1024

DEVICE_PREFIX = "$device:"
# distinct_id (and $insert_id) values Mixpanel refuses as placeholders (its /import docs).
PLACEHOLDER_IDS = frozenset(
    {
        "00000000-0000-0000-0000-000000000000",
        "anon",
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        "<nil>",
        "0",
        "-1",
        "true",
        "false",
        "[]",
        "{}",
    }
)
GROUP_DELETE_REFUSED = "group deletion is not accepted from SDKs"

IDENTIFY_EVENT = "$identify"
ALIAS_EVENT = "$create_alias"
MERGE_EVENT = "$merge"
PAGE_VIEW_EVENT = "$mp_web_page_view"
EXPERIMENT_EVENT = "$experiment_started"

# Event properties that became ids, the timestamp, the messageId or context.library.
CONSUMED_PROPERTIES = frozenset(
    {"token", "distinct_id", "time", "$insert_id", "mp_lib", "$lib_version", "$device_id"}
    | {"$user_id"}
)
# Mixpanel's reserved profile properties that have a Profilestream name (default properties,
# schemas/properties.py, or a plain custom name); every other "$" name is Mixpanel's own
# ($browser, $initial_referrer, $transactions, $created ...) and is not kept: the
# materializer refuses "$" names.
PROFILE_NAMES = {
    "$email": "email",
    "$phone": "phone",
    "$first_name": "first_name",
    "$last_name": "last_name",
    "$name": "name",
    "$avatar": "avatar",
    "$city": "city",
    "$region": "region",
    "$country_code": "country",
    "$timezone": "timezone",
}
# Engage operators -> the profile operations of identify traits (materializer.profile_ops).
OBJECT_OPERATORS = {
    "$set": "$set",
    "$set_once": "$set_once",
    "$add": "$increment",
    "$append": "$append",
    "$union": "$union",
    "$remove": "$remove",
}
# Operators whose value is one item (Mixpanel) and a list of items (ours).
ONE_ITEM_OPERATORS = frozenset({"$append", "$remove"})
OPERATORS = (*OBJECT_OPERATORS, "$unset")

# Segment-spec field names that normalization reports -> where Mixpanel had them.
TRACK_FIELDS = {
    "messageId": "properties.$insert_id",
    "userId": "properties.distinct_id",
    "anonymousId": "properties.$device_id",
    "timestamp": "properties.time",
    "originalTimestamp": "properties.time",
    "previousId": "properties.distinct_id",
    "configs": "properties.Experiment name",
}
RECORD_FIELDS = {
    "messageId": "$insert_id",
    "userId": "$distinct_id",
    "anonymousId": "$device_id",
    "timestamp": "$time",
    "originalTimestamp": "$time",
    "groupId": "$group_id",
}


@dataclass(frozen=True)
class Unparsed:
    """An NDJSON line that is not JSON: refused as its own item, the other lines kept."""

    reason: str


def records_of(data: Any) -> list[Any]:
    """A `data` payload's records: one object, or an array of them."""
    return data if isinstance(data, list) else [data]


def token_of(record: Any, endpoint: str) -> Any:
    """The project token of a record: properties.token on events, $token on engage/groups."""
    if not isinstance(record, dict):
        return None
    if endpoint in ("engage", "groups"):
        return record.get("$token")
    properties = record.get("properties")
    return properties.get("token") if isinstance(properties, dict) else None


def sent_at_of(value: str | None) -> str | None:
    """mixpanel-js's `_` query parameter: its clock when it sent the request, epoch ms
    (`src/mixpanel-core.js` `_send_request`). None when absent or not a number."""
    if not value or not value.isdigit():
        return None
    sent = epoch_to_datetime(int(value), "ms")
    return iso(sent) if sent is not None else None


def renamed_fields(error: InvalidEvent, endpoint: str) -> InvalidEvent:
    """A normalization refusal with the Segment field names it reports put back in Mixpanel's
    terms (messageId -> properties.$insert_id, ...)."""
    names = TRACK_FIELDS if endpoint in ("track", "import") else RECORD_FIELDS
    return InvalidEvent(
        [FieldError(field=_renamed(e.field, names), reason=e.reason) for e in error.errors],
        error.message_id,
    )


def _renamed(field: str, names: Mapping[str, str]) -> str:
    head, dot, rest = field.partition(".")
    return names[head] + dot + rest if head in names else field


# --- ids and times ----------------------------------------------------------------------------


def _checked_id(value: Any, field: str) -> str | None:
    identifier = text_id(value)
    if identifier is not None and identifier.strip().lower() in PLACEHOLDER_IDS:
        raise invalid(field, f"{identifier!r} is a placeholder, not an id (Mixpanel refuses it)")
    return identifier


def _without_device_prefix(identifier: str | None) -> str | None:
    if identifier is not None and identifier.startswith(DEVICE_PREFIX):
        return identifier[len(DEVICE_PREFIX) :] or None
    return identifier


def _ids(
    distinct: Any, device: Any, user: Any, fields: tuple[str, str, str]
) -> tuple[str | None, str | None]:
    """(userId, anonymousId) under the simplified ID merge."""
    distinct_id = _checked_id(distinct, fields[0])
    device_id = _without_device_prefix(_checked_id(device, fields[1]))
    user_id = _checked_id(user, fields[2])
    if distinct_id is not None and distinct_id.startswith(DEVICE_PREFIX):
        return user_id, device_id or _without_device_prefix(distinct_id)
    return user_id or distinct_id, device_id


def _time(value: Any, field: str, required: bool = False) -> str | None:
    """Epoch seconds (floats too) or milliseconds as ISO; refused when present but unusable."""
    if value is None:
        if required:
            raise invalid(field, "is required (epoch seconds or milliseconds)")
        return None
    at = epoch_to_datetime(value)
    if at is None:
        raise invalid(field, "is not a time: expected epoch seconds or milliseconds")
    return iso(at)


def _insert_id(value: Any, field: str) -> str | None:
    if value is None:
        return None
    identifier = _checked_id(value, field)
    if identifier is None:
        raise invalid(field, "expected a non-empty string")
    return identifier


def _library(properties: Mapping[str, Any]) -> dict[str, Any]:
    name = properties.get("mp_lib")
    if not isinstance(name, str) or not name:
        return {}
    version = properties.get("$lib_version")
    library: dict[str, Any] = {"name": f"mixpanel-{name}"}
    if isinstance(version, str):
        library["version"] = version
    return {"library": library}


# --- events (/track, /import) -----------------------------------------------------------------


def _event_parts(record: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(record, Unparsed):
        raise invalid("event", record.reason)
    if not isinstance(record, dict):
        raise invalid("event", "an event must be a JSON object")
    name = record.get("event")
    if not isinstance(name, str) or not name:
        raise invalid("event", "is required: the event's name")
    properties = record.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise invalid("properties", "must be an object")
    return name, properties


def _experiment_configs(properties: Mapping[str, Any]) -> dict[str, str]:
    """{Experiment name: Variant name} of an $experiment_started exposure, when both are
    usable texts (a boolean flag's variant is "true"/"false")."""
    key = config_text(properties.get("Experiment name"))
    variant = config_text(properties.get("Variant name"))
    if key is None or variant is None:
        return {}
    return {key: variant}


def event_events(
    record: Any, sent_at: str | None = None, *, historical: bool = False
) -> list[dict[str, Any]]:
    """One /track (or, `historical`, /import) event -> Segment-spec events. Raises
    InvalidEvent naming the Mixpanel field."""
    name, properties = _event_parts(record)
    # python's merge() sends no time; every other /import event needs one
    required = historical and name != MERGE_EVENT
    timestamp = _time(properties.get("time"), "properties.time", required=required)
    message_id = _insert_id(properties.get("$insert_id"), "properties.$insert_id")
    if message_id is None and timestamp is not None:
        # The whole event, not only (event, time, distinct_id): two purchases in one second
        # with other amounts are two events. A resend is the same bytes, so it still dedups.
        message_id = stable_message_id(
            PROTOCOL, name, {k: v for k, v in properties.items() if k != "token"}
        )
    base: dict[str, Any] = {"messageId": message_id, "timestamp": timestamp}
    if sent_at is not None and timestamp is not None:
        base["sentAt"] = sent_at
    context = _library(properties)
    if context:
        base["context"] = context
    rest = {k: v for k, v in properties.items() if k not in CONSUMED_PROPERTIES}

    if name == MERGE_EVENT:
        if not historical:
            raise invalid("event", "$merge is accepted on /import only (with a secret)")
        return [{**base, **_merge(properties)}]
    if name == ALIAS_EVENT:
        return [{**base, **_alias(properties)}]
    if name == IDENTIFY_EVENT:
        return [{**base, **_identify(properties, rest)}]

    user_id, anonymous_id = _ids(
        properties.get("distinct_id"),
        properties.get("$device_id"),
        properties.get("$user_id"),
        ("properties.distinct_id", "properties.$device_id", "properties.$user_id"),
    )
    base.update(userId=user_id, anonymousId=anonymous_id)
    if name == PAGE_VIEW_EVENT:
        return [{**base, "type": "page", **_page(rest)}]
    event: dict[str, Any] = {**base, "type": "track", "event": name, "properties": rest}
    if name == EXPERIMENT_EVENT:
        configs = _experiment_configs(properties)
        if configs:
            event["configs"] = configs
    return [event]


def _identify(properties: Mapping[str, Any], rest: Mapping[str, Any]) -> dict[str, Any]:
    """`$identify`: the user id (distinct_id, or original ID merge's $identified_id) with the
    anonymous id it was known by before ($anon_distinct_id or $anon_id, "$device:" stripped)."""
    identified = "$identified_id" if "$identified_id" in properties else "distinct_id"
    user_id = _checked_id(properties.get(identified), f"properties.{identified}")
    if user_id is None or user_id.startswith(DEVICE_PREFIX):
        raise invalid(f"properties.{identified}", "is required: the identified user's id")
    anonymous = "$anon_id" if "$anon_id" in properties else "$anon_distinct_id"
    anonymous_id = _without_device_prefix(
        _checked_id(properties.get(anonymous), f"properties.{anonymous}")
    ) or _without_device_prefix(_checked_id(properties.get("$device_id"), "properties.$device_id"))
    kept = {
        k: v
        for k, v in rest.items()
        if k not in ("$anon_distinct_id", "$anon_id", "$identified_id")
    }
    return {
        "type": "identify",
        "userId": user_id,
        "anonymousId": anonymous_id,
        "properties": kept,
    }


def _alias(properties: Mapping[str, Any]) -> dict[str, Any]:
    """`$create_alias`: the alias becomes the id the profile is known by (mixpanel-js
    identifies with it next); the current distinct_id's profile folds into it."""
    alias = _without_device_prefix(_checked_id(properties.get("alias"), "properties.alias"))
    previous = _without_device_prefix(
        _checked_id(properties.get("distinct_id"), "properties.distinct_id")
    )
    if alias is None:
        raise invalid("properties.alias", "is required: the new id")
    if previous is None:
        raise invalid("properties.distinct_id", "is required: the id being aliased")
    return {"type": "alias", "userId": alias, "previousId": previous}


def _merge(properties: Mapping[str, Any]) -> dict[str, Any]:
    """/import's `$merge` of `$distinct_ids` [a, b]: b folds into a (our merge has a
    direction; it is refused, and recorded, when both are identified users)."""
    ids = properties.get("$distinct_ids")
    if not isinstance(ids, list) or len(ids) != 2:
        raise invalid("properties.$distinct_ids", "expected a list of two distinct ids")
    first = _without_device_prefix(_checked_id(ids[0], "properties.$distinct_ids.0"))
    second = _without_device_prefix(_checked_id(ids[1], "properties.$distinct_ids.1"))
    if first is None or second is None:
        raise invalid("properties.$distinct_ids", "expected two non-empty ids")
    return {"type": "alias", "userId": first, "previousId": second}


def _page(properties: Mapping[str, Any]) -> dict[str, Any]:
    """$mp_web_page_view -> a page: name = the title; url, path, referrer, title and search in
    Segment's names beside Mixpanel's own properties."""
    title = properties.get("current_page_title")
    page = {
        "url": properties.get("$current_url"),
        "path": properties.get("current_url_path"),
        "referrer": properties.get("$referrer"),
        "title": title,
        "search": properties.get("current_url_search"),
    }
    page_fields = {k: v for k, v in page.items() if isinstance(v, str)}
    name = title if isinstance(title, str) and title else None
    return {"name": name, "properties": {**properties, **page_fields}}


# --- profile records (/engage, /groups) -------------------------------------------------------


def _profile_name(name: str) -> str | None:
    """A Mixpanel profile property name as ours; None for Mixpanel's own "$" names."""
    if name.startswith("$"):
        return PROFILE_NAMES.get(name)
    return name


def _operations(record: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Engage/groups operators -> identify-traits operations, and whether any property was
    left out (Mixpanel's own "$" names)."""
    operations: dict[str, Any] = {}
    dropped = False
    for operator, ours in OBJECT_OPERATORS.items():
        if operator not in record:
            continue
        values = record[operator]
        if not isinstance(values, dict):
            raise invalid(operator, "expected an object of property names")
        converted: dict[str, Any] = {}
        for name, value in values.items():
            target = _profile_name(name)
            if target is None:
                dropped = True
            elif operator == "$set_once" and value is None:
                continue  # mixpanel-js sends null initial_utm_* values: nothing to set
            elif operator in ONE_ITEM_OPERATORS:
                converted[target] = [value]
            elif operator == "$union":
                converted[target] = value if isinstance(value, list) else [value]
            else:
                converted[target] = value
        if converted:
            operations[ours] = converted
    if "$unset" in record:
        names = record["$unset"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise invalid("$unset", "expected a list of property names")
        kept = [t for t in (_profile_name(n) for n in names) if t is not None]
        dropped = dropped or len(kept) < len(names)
        if kept:
            operations["$unset"] = kept
    return operations, dropped


def _checked_operations(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record's operations; None when it only touched Mixpanel's own properties
    (mixpanel-js's $set_once of $initial_referrer, python's track_charge of $transactions):
    nothing to do, and nothing wrong with the record."""
    operations, dropped = _operations(record)
    if operations:
        return operations
    if dropped:
        return None
    raise invalid("$set", f"no profile operation: expected one of {', '.join(OPERATORS)}")


def _record(record: Any) -> dict[str, Any]:
    if isinstance(record, Unparsed):
        raise invalid("record", record.reason)
    if not isinstance(record, dict):
        raise invalid("record", "a record must be a JSON object")
    return record


def _record_base(record: Mapping[str, Any], sent_at: str | None) -> dict[str, Any]:
    """messageId and times of an engage/groups record. Without $insert_id the id is derived
    from the record with its $time, so a resend dedups; a record without $time (mixpanel-js
    sends none) gets a fresh id, or two equal increments would count once."""
    timestamp = _time(record.get("$time"), "$time")
    message_id = _insert_id(record.get("$insert_id"), "$insert_id")
    if message_id is None and timestamp is not None:
        if nesting_depth(record) > MAX_NESTING:  # beyond what can be hashed (orjson)
            raise invalid("record", f"nests deeper than {MAX_NESTING} levels")
        message_id = stable_message_id(
            "$engage", {k: v for k, v in record.items() if k != "$token"}
        )
    base: dict[str, Any] = {"messageId": message_id, "timestamp": timestamp}
    if sent_at is not None and timestamp is not None:
        base["sentAt"] = sent_at
    return base


def engage_events(record: Any, sent_at: str | None = None) -> list[dict[str, Any]]:
    """One /engage record -> an identify whose traits are the profile operations. $ip,
    $ignore_time and $ignore_alias are read by nobody: we do no GeoIP, every event counts for
    last seen, and aliases are merges already."""
    data = _record(record)
    if "$delete" in data:
        raise invalid("$delete", DELETE_REFUSED)
    user_id, anonymous_id = _ids(
        data.get("$distinct_id"),
        data.get("$device_id"),
        data.get("$user_id"),
        ("$distinct_id", "$device_id", "$user_id"),
    )
    traits = _checked_operations(data)
    if traits is None:
        return []
    return [
        {
            **_record_base(data, sent_at),
            "type": "identify",
            "userId": user_id,
            "anonymousId": anonymous_id,
            "traits": traits,
        }
    ]


def group_anonymous_id(group_key: str, group_id: str) -> str:
    """The id a group's events are stored under: a group is not a user, and its records
    carry no user."""
    return f"$group:{group_key}:{group_id}"


def group_events(record: Any, sent_at: str | None = None) -> list[dict[str, Any]]:
    """One /groups record -> a group event: groupId = $group_id, properties.group_type =
    $group_key, traits = the $set properties (other operators in the identify-traits syntax)."""
    data = _record(record)
    group_key = text_id(data.get("$group_key"))
    group_id = text_id(data.get("$group_id"))
    if group_key is None:
        raise invalid("$group_key", "is required: the group type, e.g. company")
    if group_id is None:
        raise invalid("$group_id", "is required: the group's id")
    if "$delete" in data:
        raise invalid("$delete", GROUP_DELETE_REFUSED)
    operations = _checked_operations(data)
    if operations is None:
        return []
    traits = {**operations.pop("$set", {}), **operations}
    return [
        {
            **_record_base(data, sent_at),
            "type": "group",
            "anonymousId": group_anonymous_id(group_key, group_id),
            "groupId": group_id,
            "traits": traits,
            "properties": {"group_type": group_key},
        }
    ]
