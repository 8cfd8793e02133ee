"""Pure: one PostHog event (as posthog-js, posthog-python or posthog-node send it to /e/ or
/batch/) -> the Segment-spec events it stands for. No I/O; the routes decode the body and find
the token, `common.map_items` validates what this returns.

Which id is a user's: posthog-js says so on every event (`$is_identified`); the server SDKs do
not, and their `distinct_id` is the id the application chose, so it is a user id, unless the
event is personless (`$process_person_profile: false`, which posthog-python sets when it made
the id up). A personless event is stored and counted under its id but changes no profile: its
`$set`s are dropped and it links no ids, as PostHog creates no person for it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from ingest.limits import MAX_NESTING, nesting_depth
from ingest.providers.common import (
    DELETE_REFUSED,
    config_text,
    invalid,
    iso,
    stable_message_id,
    text_id,
)
from schemas.events import STORABLE_UNTIL

PROTOCOL = "posthog"
# PostHog's capture truncates a distinct_id to 200 characters.
MAX_DISTINCT_ID = 200
# Query `_`/`sent_at` values before this are ignored, as PostHog's capture does.
EARLIEST_SENT_AT = datetime(2021, 1, 1, tzinfo=UTC)

IDENTIFY_EVENTS = ("$identify", "$set", "$set_once", "$unset")
FLAG_EVENTS = ("$feature_flag_called", "$experiment_exposure")
REPLAY_EVENTS = ("$snapshot", "$snapshot_items")
DELETE_EVENTS = ("$delete", "$delete_person")
FEATURE_PREFIX = "$feature/"
PERSON_OPS = ("$set", "$set_once", "$unset")
# PostHog's own person-property names that have a default property of ours; every other
# `$`-name in `$set`/`$set_once`/`$unset` is PostHog's bookkeeping (`$initial_*` campaign
# properties, `$referrer`, `$current_url`, ...) and is dropped: our profile store refuses
# `$`-names.
PERSON_PROPERTY_NAMES = {
    "$email": "email",
    "$name": "name",
    "$first_name": "first_name",
    "$last_name": "last_name",
    "$phone": "phone",
    "$avatar": "avatar",
}
# Not kept in the stored properties: the write key, and what the mapping moved elsewhere.
MOVED_PROPERTIES = ("token", "$token", "api_key", "distinct_id", "$distinct_id", *PERSON_OPS)


@dataclass(frozen=True)
class Envelope:
    """What the request tells about all its events: when it arrived and when the SDK sent it
    (body `sent_at`, else the `_` query parameter), for the clock-skew correction."""

    received_at: datetime
    sent_at: datetime | None = None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _person_name(name: str) -> str | None:
    if name.startswith("$"):
        return PERSON_PROPERTY_NAMES.get(name)
    return name or None


def _person_values(values: Mapping[str, Any], once: bool) -> dict[str, Any]:
    """`$set`/`$set_once` with PostHog's `$`-bookkeeping dropped (or mapped to ours), and
    without `null`s in a set-once (PostHog's campaign properties are mostly null there)."""
    kept: dict[str, Any] = {}
    for name, value in values.items():
        ours = _person_name(name)
        if ours is None or (once and value is None):
            continue
        kept[ours] = value
    return kept


def person_operations(item: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """`$set`, `$set_once` and `$unset` of an event, each from `properties` or top level (the
    top level wins: posthog-js puts them there), as our profile operations."""
    ops: dict[str, Any] = {}
    for key in ("$set", "$set_once"):
        merged: dict[str, Any] = {}
        for where in (props, item):
            value = where.get(key)
            if isinstance(value, dict):
                merged.update(value)
        values = _person_values(merged, once=key == "$set_once")
        if values:
            ops[key] = values
    names: list[str] = []
    for where in (props, item):
        value = where.get("$unset")
        if isinstance(value, list):
            names += [n for n in (_person_name(v) for v in value if isinstance(v, str)) if n]
    if names:
        ops["$unset"] = list(dict.fromkeys(names))
    return ops


def served_configs(name: str, props: Mapping[str, Any]) -> dict[str, str]:
    """{flag: value served}: every `$feature/<key>` property (posthog-js adds one per active
    flag to each event), and the flag of a `$feature_flag_called`/`$experiment_exposure`."""
    configs: dict[str, str] = {}
    for key, value in props.items():
        if key.startswith(FEATURE_PREFIX):
            flag, served = config_text(key[len(FEATURE_PREFIX) :]), config_text(value)
            if flag is not None and served is not None:
                configs[flag] = served
    if name in FLAG_EVENTS:
        flag = config_text(props.get("$feature_flag"))
        served = config_text(props.get("$feature_flag_response"))
        if served is None:
            served = config_text(props.get("$feature_flag_variant_key"))
        if flag is not None and served is not None:
            configs[flag] = served
    return configs


def event_time(
    item: Mapping[str, Any], props: Mapping[str, Any], envelope: Envelope
) -> dict[str, Any]:
    """`timestamp` (ISO) with the SDK's send time as `sentAt` for the skew correction, unless
    `$ignore_sent_at`; else the legacy `offset` (ms before the request); else nothing (the
    time received)."""
    timestamp = item.get("timestamp")
    if timestamp is not None:
        fields: dict[str, Any] = {"timestamp": timestamp}
        if envelope.sent_at is not None and props.get("$ignore_sent_at") is not True:
            fields["sentAt"] = iso(envelope.sent_at)
        return fields
    offset = item.get("offset")
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        try:
            return {"timestamp": iso(envelope.received_at - timedelta(milliseconds=offset))}
        except OverflowError:
            raise invalid("offset", "outside the representable range") from None
    return {}


def page_properties(props: Mapping[str, Any]) -> dict[str, Any]:
    """Segment's page properties from PostHog's (`$current_url`, `$pathname`, `$referrer`,
    `title`); `$referrer` "$direct" means none."""
    page: dict[str, Any] = {}
    url = _text(props.get("$current_url"))
    if url is not None:
        page["url"] = url
        query = urlsplit(url).query
        if query:
            page["search"] = f"?{query}"
    if (path := _text(props.get("$pathname"))) is not None:
        page["path"] = path
    referrer = _text(props.get("$referrer"))
    if referrer is not None and referrer != "$direct":
        page["referrer"] = referrer
    if (title := _text(props.get("title"))) is not None:
        page["title"] = title
    return page


def event_context(props: Mapping[str, Any]) -> dict[str, Any]:
    """Segment's context fields from PostHog's library, browser and group properties."""
    context: dict[str, Any] = {}
    if (lib := _text(props.get("$lib"))) is not None:
        context["library"] = {"name": lib, "version": props.get("$lib_version")}
    page = page_properties(props)
    if page:
        context["page"] = page
    for ours, theirs in (
        ("userAgent", "$raw_user_agent"),
        ("timezone", "$timezone"),
        ("locale", "$browser_language"),
        ("ip", "$ip"),
    ):
        if (value := _text(props.get(theirs))) is not None:
            context[ours] = value
    if (os_name := _text(props.get("$os"))) is not None:
        context["os"] = {"name": os_name, "version": props.get("$os_version")}
    if isinstance(props.get("$groups"), dict) and props["$groups"]:
        context["groups"] = props["$groups"]
    return context


def distinct_id_of(item: Mapping[str, Any], props: Mapping[str, Any]) -> str | None:
    """Where PostHog's capture looks: top level `distinct_id`, `$distinct_id`, then
    `properties.distinct_id`; numbers as text, truncated to 200 characters."""
    for value in (item.get("distinct_id"), item.get("$distinct_id"), props.get("distinct_id")):
        found = text_id(value)
        if found is not None:
            return found[:MAX_DISTINCT_ID]
    return None


def message_id_of(item: Mapping[str, Any], props: Mapping[str, Any]) -> str:
    """`uuid`, else posthog-js's `$insert_id`, else a hash of the event (without the legacy
    `offset`, which changes when an SDK resends)."""
    for value in (item.get("uuid"), props.get("$insert_id")):
        if isinstance(value, str) and value.strip():
            return value
    return stable_message_id(PROTOCOL, {k: v for k, v in item.items() if k != "offset"})


def map_event(item: Any, envelope: Envelope) -> list[dict[str, Any]]:
    """One PostHog event -> one Segment-spec event (research 1.8). Raises InvalidEvent for an
    item that cannot be one."""
    if not isinstance(item, dict):
        raise invalid("event", "an event must be a JSON object")
    raw_props = item.get("properties")
    if raw_props is not None and not isinstance(raw_props, dict):
        raise invalid("properties", "expected an object", _text(item.get("uuid")))
    props: dict[str, Any] = raw_props or {}
    if nesting_depth(item) > MAX_NESTING:  # before the hash of the event, which would fail
        raise invalid("event", f"nests deeper than {MAX_NESTING} levels", _text(item.get("uuid")))
    message_id = message_id_of(item, props)
    name = item.get("event")
    if not isinstance(name, str) or not name:
        raise invalid("event", "missing: every PostHog event has a name", message_id)
    if name in REPLAY_EVENTS:
        raise invalid("event", "session replay is not supported", message_id)
    if name in DELETE_EVENTS:
        raise invalid("event", DELETE_REFUSED, message_id)
    distinct_id = distinct_id_of(item, props)
    if distinct_id is None:
        raise invalid("distinct_id", "missing: a string or number is required", message_id)

    personless = props.get("$process_person_profile") is False
    identified = props.get("$is_identified")
    is_user = identified if isinstance(identified, bool) else not personless
    ops = {} if personless else person_operations(item, props)
    properties = {k: v for k, v in props.items() if k not in MOVED_PROPERTIES}
    event: dict[str, Any] = {
        "messageId": message_id,
        "properties": properties,
        "context": event_context(props),
        **event_time(item, props, envelope),
    }
    event["userId" if is_user else "anonymousId"] = distinct_id
    configs = served_configs(name, props)
    if configs:
        event["configs"] = configs

    if name in IDENTIFY_EVENTS:
        event["type"] = "identify"
        event["traits"] = ops
        if name == "$identify":
            # $identify is the log-in: distinct_id is the user, $anon_distinct_id the
            # anonymous id it had before, whose profile folds into the user's
            event.pop("anonymousId", None)
            event["userId"] = distinct_id
            anonymous = text_id(props.get("$anon_distinct_id"))
            if anonymous is not None and anonymous != distinct_id and not personless:
                event["anonymousId"] = anonymous[:MAX_DISTINCT_ID]
        return [event]
    if ops:
        event["profileOps"] = ops
    if name == "$create_alias":
        alias = text_id(props.get("alias"))
        if alias is None:
            raise invalid("properties.alias", "missing: the id to link", message_id)
        # The anonymous side is the previous id: posthog-js's current id when it is not
        # identified, else the alias; the server SDKs' distinct_id is the previous id.
        user, previous = (distinct_id, alias) if identified is True else (alias, distinct_id)
        event.pop("anonymousId", None)
        # both truncated as every distinct_id is, so each names the profile its events are on
        event.update(
            type="alias", userId=user[:MAX_DISTINCT_ID], previousId=previous[:MAX_DISTINCT_ID]
        )
    elif name == "$groupidentify":
        group_key = text_id(props.get("$group_key"))
        if group_key is None:
            raise invalid("properties.$group_key", "missing: the group's key", message_id)
        group_set = props.get("$group_set")
        event.update(
            type="group",
            groupId=group_key,
            traits=group_set if isinstance(group_set, dict) else {},
            properties={
                **{k: v for k, v in properties.items() if not k.startswith("$group_")},
                "group_type": props.get("$group_type"),
            },
        )
    elif name == "$pageview":
        page = page_properties(props)
        event.update(type="page", name=page.get("title"), properties={**properties, **page})
    elif name == "$screen":
        event.update(type="screen", name=_text(props.get("$screen_name")))
    else:
        event.update(type="track", event=name)
    return [event]


def sent_at_from(body_sent_at: Any, query_ms: str | None) -> datetime | None:
    """The SDK's send time: the body's ISO `sent_at`, else the query's `_` (ms); a value
    before 2021 is ignored, as PostHog's capture does, and one past what can be stored too."""
    found: datetime | None = None
    if isinstance(body_sent_at, str) and body_sent_at:
        try:
            found = datetime.fromisoformat(body_sent_at.replace("Z", "+00:00"))
        except ValueError:
            found = None
        if found is not None and found.tzinfo is None:
            found = found.replace(tzinfo=UTC)
    elif query_ms:
        try:
            found = datetime.fromtimestamp(float(query_ms) / 1000, UTC)
        except (ValueError, OverflowError, OSError):
            found = None
    if found is None or found < EARLIEST_SENT_AT:
        return None
    try:  # a send time no event could be corrected by (year 9999 at UTC-1) is no send time
        found = found.astimezone(UTC)
    except OverflowError:
        return None
    return found if found <= STORABLE_UNTIL else None
