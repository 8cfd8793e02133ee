"""Pure: Amplitude events (HTTP V2, Batch and Identify APIs, as amplitude-analytics and
@amplitude/analytics-browser send them) -> Segment-spec events with profile operations and
served config variations. No I/O; the routes read, authenticate and publish.

    user_id + device_id                   userId + anonymousId (our merge rule)
    $identify                             identify, traits = user_properties as operations
    $groupidentify                        group: groupId = the group name, traits = its properties
    [Amplitude] Page Viewed               page (url, path, title, search, referrer)
    [Amplitude] Screen Viewed             screen
    $exposure, [Experiment] Exposure,     track, plus configs {flag: variant}
    [Experiment] Assignment
    anything else                         track, event = event_type
    user_properties on any other event    profileOps (a bare object means $set)
    "[Experiment] <flag>" in $set         configs {flag: variant} (not a profile property)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ingest.normalize import InvalidEvent
from ingest.providers.common import (
    config_text,
    epoch_to_datetime,
    invalid,
    iso,
    stable_message_id,
    text_id,
)
from schemas.events import MAX_NAME_LENGTH
from schemas.messages import FieldError

PROTOCOL = "amplitude"

IDENTIFY_EVENT = "$identify"
GROUP_IDENTIFY_EVENT = "$groupidentify"
PAGE_VIEWED_EVENT = "[Amplitude] Page Viewed"
SCREEN_VIEWED_EVENT = "[Amplitude] Screen Viewed"
PAGE_PROPERTY = "[Amplitude] Page {}"
SCREEN_NAME_PROPERTY = "[Amplitude] Screen Name"
# Variants served: experiment-js-client's exposure (web experiments send $impression with the
# same properties), amplitude-experiment's (Python) exposure, and its deprecated assignment.
CLIENT_EXPOSURE_EVENTS = ("$exposure", "$impression")
EXPERIMENT_EXPOSURE_EVENT = "[Experiment] Exposure"
EXPERIMENT_ASSIGNMENT_EVENT = "[Experiment] Assignment"
EXPERIMENT_FLAG_KEY = "[Experiment] Flag Key"
EXPERIMENT_VARIANT = "[Experiment] Variant"
ASSIGNMENT_SUFFIX = ".variant"
# The user property Amplitude keeps per flag: "[Experiment] <flag>" = variant.
EXPERIMENT_PROPERTY_PREFIX = "[Experiment] "
# "ip" when the browser asks the server to use the request's address.
REMOTE_IP = "$remote"

# Amplitude's user-property operations -> ours (materializer.profile_ops).
OPERATIONS: dict[str, str] = {
    "$set": "$set",
    "$setOnce": "$set_once",
    "$add": "$increment",
    "$append": "$append",
    "$prepend": "$prepend",
    "$preInsert": "$union_front",
    "$postInsert": "$union",
    "$remove": "$remove",
    "$unset": "$unset",
    "$clearAll": "$clear_all",
}
LIST_OPERATIONS = ("$append", "$prepend", "$union_front", "$union", "$remove")

# Event fields -> Segment context paths (the rest of the device fields go to context.amplitude).
CONTEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "device_id": ("device", "id"),
    "device_manufacturer": ("device", "manufacturer"),
    "device_brand": ("device", "brand"),
    "device_model": ("device", "model"),
    "platform": ("device", "type"),
    "idfa": ("device", "advertisingId"),
    "adid": ("device", "advertisingId"),
    "os_name": ("os", "name"),
    "os_version": ("os", "version"),
    "app_version": ("app", "version"),
    "version_name": ("app", "build"),
    "carrier": ("network", "carrier"),
    "country": ("location", "country"),
    "region": ("location", "region"),
    "city": ("location", "city"),
    "location_lat": ("location", "latitude"),
    "location_lng": ("location", "longitude"),
    "language": ("locale",),
    "user_agent": ("userAgent",),
    "groups": ("groups",),
}
# Kept as they are under context.amplitude: nothing the SDKs send is lost.
AMPLITUDE_CONTEXT_FIELDS = (
    "session_id",
    "event_id",
    "dma",
    "idfv",
    "android_id",
    "plan",
    "partner_id",
    "ingestion_metadata",
    "group_properties",
)
# Revenue fields an event may carry at the top level; kept as properties.
REVENUE_FIELDS = ("price", "quantity", "revenue", "productId", "revenueType", "currency")

# Segment-spec field names (from normalize_event's errors) -> the Amplitude field they came from.
AMPLITUDE_FIELDS: dict[str, str] = {
    "userId": "user_id",
    "anonymousId": "device_id",
    "timestamp": "time",
    "originalTimestamp": "time",
    "sentAt": "time",
    "messageId": "insert_id",
    "properties": "event_properties",
    "traits": "user_properties",
    "profileOps": "user_properties",
    "configs": "event_properties",
    "groupId": "groups",
    "name": "event_properties",
}


@dataclass(frozen=True)
class Upload:
    """What a request gives each of its events."""

    # client_upload_time (the browser's clock when it sent the request), ISO; None from Python
    sent_at: str | None = None
    # messageIds longer than this are hashed (normalize_event refuses them otherwise)
    max_message_id_length: int = 100
    # /identify: every identification is an $identify, whatever it says
    identify_only: bool = False


def upload_time(value: Any) -> str | None:
    """client_upload_time as an ISO string in UTC (the event's `sentAt`: normalization corrects
    the clock skew by it, unless it is within PS_CLOCK_SKEW_TOLERANCE_S of our clock); None when
    absent or outside datetime's range in UTC. Raises ValueError when it is not an ISO 8601
    date-time."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected an ISO 8601 date-time string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:  # a send time no event could be corrected by (year 1 at UTC+1) is no send time
        return iso(parsed.astimezone(UTC))
    except OverflowError:
        return None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _unset_names(value: Any) -> list[Any]:
    """$unset's names: Amplitude sends {name: "-"}; a list or a single name works too."""
    if isinstance(value, dict):
        return list(value)
    return _as_list(value)


def _add_config(configs: dict[str, str], flag: Any, variant: Any) -> None:
    """A served variation; a variant that is not text (none for a default or fallback) says
    nothing was served, and records nothing."""
    key, value = config_text(flag), config_text(variant)
    if key is not None and value is not None:
        configs[key] = value


def profile_operations(
    user_properties: Any, field: str = "user_properties"
) -> tuple[dict[str, Any], dict[str, str]]:
    """Amplitude user_properties -> (our profile operations, configs). A bare object (no
    operator) is a $set; bare keys beside operators are $set too. `[Experiment] <flag>` in a
    $set is a served variant: it goes to configs, not to the profile's properties, and an
    $unset of it is dropped (a config keeps the variations served, not their absence)."""
    if user_properties is None:
        return {}, {}
    if not isinstance(user_properties, dict):
        raise invalid(field, "expected an object")
    ops: dict[str, Any] = {}
    configs: dict[str, str] = {}
    bare = {k: v for k, v in user_properties.items() if not k.startswith("$")}
    for operator, value in user_properties.items():
        if not operator.startswith("$"):
            continue
        ours = OPERATIONS.get(operator)
        if ours is None:
            raise invalid(f"{field}.{operator}", "not an Amplitude user property operation")
        if ours == "$clear_all":
            ops[ours] = True
            continue
        if ours == "$unset":
            names = [
                n
                for n in _unset_names(value)
                if not (isinstance(n, str) and n.startswith(EXPERIMENT_PROPERTY_PREFIX))
            ]
            if names:
                ops[ours] = names
            continue
        if not isinstance(value, dict):
            raise invalid(f"{field}.{operator}", "expected an object of property names")
        if ours in LIST_OPERATIONS:
            ops[ours] = {name: _as_list(item) for name, item in value.items()}
        else:
            ops[ours] = dict(value)
    if bare:
        ops["$set"] = {**bare, **ops.get("$set", {})}
    sets = ops.get("$set")
    if sets:
        for name in [n for n in sets if n.startswith(EXPERIMENT_PROPERTY_PREFIX)]:
            _add_config(configs, name[len(EXPERIMENT_PROPERTY_PREFIX) :], sets.pop(name))
        if not sets:
            del ops["$set"]
    return {k: v for k, v in ops.items() if v or k == "$clear_all"}, configs


def _group_traits(group_properties: Any) -> dict[str, Any]:
    """A group's properties as Segment group traits: set values flattened (set once under
    set), the other operations kept in our syntax (group traits are stored with the event,
    not applied to a profile)."""
    ops, _ = profile_operations(group_properties, "group_properties")
    traits: dict[str, Any] = {**ops.pop("$set_once", {}), **ops.pop("$set", {})}
    traits.update(ops)
    return traits


def _served_configs(event_type: str, props: Mapping[str, Any]) -> dict[str, str]:
    configs: dict[str, str] = {}
    if event_type in CLIENT_EXPOSURE_EVENTS:
        _add_config(configs, props.get("flag_key"), props.get("variant"))
    elif event_type == EXPERIMENT_EXPOSURE_EVENT:
        _add_config(configs, props.get(EXPERIMENT_FLAG_KEY), props.get(EXPERIMENT_VARIANT))
    elif event_type == EXPERIMENT_ASSIGNMENT_EVENT:
        for name, value in props.items():
            if name.endswith(ASSIGNMENT_SUFFIX):
                _add_config(configs, name[: -len(ASSIGNMENT_SUFFIX)], value)
    return configs


def _context(raw: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for name, path in CONTEXT_FIELDS.items():
        value = raw.get(name)
        if value is None or value == "":
            continue
        target = context
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target.setdefault(path[-1], value)
    ip = raw.get("ip")
    if isinstance(ip, str) and ip and ip != REMOTE_IP:
        context["ip"] = ip
    library = raw.get("library")
    if isinstance(library, str) and library:
        name, _, version = library.partition("/")
        context["library"] = {"name": name, "version": version} if version else {"name": name}
    extra = {n: raw[n] for n in AMPLITUDE_CONTEXT_FIELDS if raw.get(n) is not None}
    if extra:
        context["amplitude"] = extra
    return context


def _page_properties(props: dict[str, Any]) -> dict[str, Any]:
    """[Amplitude] Page Viewed's properties plus Segment's page properties."""
    location = props.get(PAGE_PROPERTY.format("Location"))
    url = location if isinstance(location, str) else props.get(PAGE_PROPERTY.format("URL"))
    segment: dict[str, Any] = {
        "url": url,
        "path": props.get(PAGE_PROPERTY.format("Path")),
        "title": props.get(PAGE_PROPERTY.format("Title")),
        "referrer": props.get("referrer"),
    }
    if isinstance(url, str) and urlsplit(url).query:
        segment["search"] = "?" + urlsplit(url).query
    return {**props, **{k: v for k, v in segment.items() if v is not None and k not in props}}


def _message_id(raw: Mapping[str, Any], upload: Upload) -> str | None:
    """insert_id (hashed when over the length limit, so a resend still dedups); else a hash of
    the event when it has a time (a resend is the same event); else none (nothing to dedup
    on: /identify's identifications have no time, and two may well be alike)."""
    insert_id = text_id(raw.get("insert_id"))
    if insert_id is not None:
        if len(insert_id) <= upload.max_message_id_length:
            return insert_id
        return stable_message_id(PROTOCOL, "insert_id", insert_id)
    if raw.get("time") is not None:
        return stable_message_id(PROTOCOL, dict(raw))
    return None


def _time(raw: Mapping[str, Any], message_id: str | None) -> str | None:
    value = raw.get("time")
    if value is None:
        return None
    at = epoch_to_datetime(value, "ms")
    if at is None:
        raise invalid("time", "expected milliseconds since the epoch (a number)", message_id)
    return iso(at)


def map_event(raw: Any, upload: Upload | None = None) -> list[dict[str, Any]]:
    """One Amplitude event (or /identify identification) -> its Segment-spec event."""
    upload = upload or Upload()
    if not isinstance(raw, dict):
        raise invalid("event", "an event must be a JSON object")
    message_id = _message_id(raw, upload)
    event_type = IDENTIFY_EVENT if upload.identify_only else raw.get("event_type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise invalid("event_type", "is required (a non-empty string)", message_id)
    if len(event_type) > MAX_NAME_LENGTH:
        raise invalid("event_type", f"longer than {MAX_NAME_LENGTH} characters", message_id)
    user_id, device_id = text_id(raw.get("user_id")), text_id(raw.get("device_id"))
    if user_id is None and device_id is None:
        raise invalid("user_id", "user_id or device_id is required", message_id)
    props = raw.get("event_properties")
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise invalid("event_properties", "expected an object", message_id)
    props = dict(props)
    for name in REVENUE_FIELDS:
        if raw.get(name) is not None:
            props.setdefault(name, raw[name])
    try:
        ops, configs = profile_operations(raw.get("user_properties"))
    except InvalidEvent as exc:
        raise InvalidEvent(exc.errors, message_id) from None

    event: dict[str, Any] = {
        "userId": user_id,
        "anonymousId": device_id,
        "properties": props,
        "context": _context(raw),
    }
    if message_id is not None:
        event["messageId"] = message_id
    timestamp = _time(raw, message_id)
    if timestamp is not None:
        event["originalTimestamp"] = timestamp
        if upload.sent_at is not None:
            event["sentAt"] = upload.sent_at

    if event_type == IDENTIFY_EVENT:
        event.update(type="identify", traits=ops)
        ops = {}
    elif event_type == GROUP_IDENTIFY_EVENT:
        groups = raw.get("groups")
        entries = list(groups.items()) if isinstance(groups, dict) else []
        names = _as_list(entries[0][1]) if len(entries) == 1 else []
        group_id = text_id(names[0]) if len(names) == 1 else None
        if group_id is None:
            raise invalid(
                "groups", "a $groupidentify names one group type and one group name", message_id
            )
        try:
            traits = _group_traits(raw.get("group_properties"))
        except InvalidEvent as exc:
            raise InvalidEvent(exc.errors, message_id) from None
        event.update(
            type="group",
            groupId=group_id,
            traits=traits,
            properties={**props, "group_type": entries[0][0]},
        )
        # the group and its properties are the event itself here
        context = event["context"]
        context.pop("groups", None)
        extra = context.get("amplitude", {})
        extra.pop("group_properties", None)
        if not extra:
            context.pop("amplitude", None)
    elif event_type == PAGE_VIEWED_EVENT:
        title = props.get(PAGE_PROPERTY.format("Title"))
        event.update(type="page", properties=_page_properties(props))
        if isinstance(title, str) and title:
            event["name"] = title[:MAX_NAME_LENGTH]
    elif event_type == SCREEN_VIEWED_EVENT:
        screen = props.get(SCREEN_NAME_PROPERTY)
        event["type"] = "screen"
        if isinstance(screen, str) and screen:
            event["name"] = screen[:MAX_NAME_LENGTH]
    else:
        event.update(type="track", event=event_type)
        configs = {**configs, **_served_configs(event_type, props)}
    if ops:
        event["profileOps"] = ops
    if configs:
        event["configs"] = configs
    return [event]


def amplitude_field(field: str) -> str:
    """A Segment-spec field path from normalize_event's errors, named as the Amplitude field it
    came from (the mapping's own errors already are)."""
    head, _, rest = field.partition(".")
    name = AMPLITUDE_FIELDS.get(head)
    if name is None:
        return field
    if head in ("properties", "traits", "profileOps") and rest:
        return f"{name}.{rest}"
    return name


def in_amplitude_terms(error: InvalidEvent) -> InvalidEvent:
    """The same refusal, its fields named as Amplitude's."""
    return InvalidEvent(
        [FieldError(field=amplitude_field(e.field), reason=e.reason) for e in error.errors],
        error.message_id,
    )


def is_missing(reason: str) -> bool:
    return "required" in reason or reason == "missing"
