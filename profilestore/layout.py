"""The Redis layout of a profile, shared by its writer (materializer) and readers (query).

A user has two keys (and maybe an old third), all carrying the hash tag `{user}` so that on Redis
Cluster they share a slot and one script can update them atomically:

    ps:{user}:profile  hash   first_seen, last_seen, created_at (event time, ms), event_count,
                              last_event (json), status, status_ts, known (1: identified),
                              merged_into (an anonymous id folded into that user),
                              rejections (json list), cleared (json {t: "<ms>", keep:
                              {name: true}}: the newest clear-all, older writes to any
                              property but `keep` are void), and prefixed fields:
                              t:<event name> -> total, p:<property> -> json value,
                              pt:<property> -> "<ms>" of the write that set it, "<ms>:o" for a
                              set_once, "<ms>:u" for an unset (a tombstone), "<ms>:a" for a
                              value made by increments or list ops alone,
                              g:<tag> -> "<ms>:1" tagged or "<ms>:0" untagged,
                              c:<config> -> json {v, f, l, n, h} (served variation),
                              a:<anonymousId> -> ms of the merge,
                              ax:<anonymousId> -> ms of a refused merge (never retried)
    ps:{user}:ids      hash   messageId (or command id) -> the day number (days since
                              1970-01-01 UTC) until which it is remembered (the change's `kp`):
                              the ids applied, exact dedup within the window. Field "" (never an
                              id: ids are not empty) holds "<expiry day>:<prune day>": the key
                              expires at the end of <expiry day> (EXPIREAT, the largest kp it
                              has held: it only grows), and its entries older than today are
                              deleted when the user is touched on a day after <prune day> (the
                              smallest kp it holds), so at most about once a day.
    ps:{user}:seen     set    (before the ids hash) every messageId applied, kept forever. Read
                              no more: deleted when the script first creates the user's ids
                              hash, and with the user's data.

and there are three shared keys:

    ps:users           zset   user -> last activity (ms): the users list, newest first
    ps:customer_ids    hash   json customer_id -> user (customer_id is unique)
    ps:property_definitions  hash  name -> PropertyDefinition json

and two per topic, written by the materializer, whose values name the topic's id (one life of
the topic: offsets restart at 0 when it is created anew, see infra.topic_ids):

    ps:applied:<topic>   hash  partition -> "<topic id>:<offset>", the highest offset applied
    ps:inflight:<topic>  hash  partition -> "<topic id>:<first>:<last>", offsets a worker may
                               have inserted into ClickHouse but not yet applied to Redis

and the query service's operators (query.operators, query.audit), whose two hashes share the
hash tag `{operators}` so one script updates both:

    ps:{operators}:names   hash    operator name -> SHA-256 hex of its token
    ps:{operators}:tokens  hash    SHA-256 hex of a token -> json {name, role, created_at,
                                   created_by}: the look-up of a bearer token, one HGET
    ps:audit               stream  one entry per management write: time, operator, role,
                                   action, target, request_id
    ps:dead_letters_replayed:<topic id>  hash  dead letter id -> json {at, by} of its last
                                   replay (query.dead_letters), one per life of the topic

Merges and the shared keys touch keys of other users, which Redis Cluster refuses in one
script: identity merge and the users list need a single Redis (or Valkey) primary.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.topic_ids import TopicId

PREFIX = "ps"

TOTAL_PREFIX = "t:"
PROPERTY_PREFIX = "p:"
PROPERTY_TIME_PREFIX = "pt:"
ANONYMOUS_ID_PREFIX = "a:"
MERGE_REFUSED_PREFIX = "ax:"
TAG_PREFIX = "g:"
CONFIG_PREFIX = "c:"

# Every field family of the profile hash, by the name the Lua script knows it by (`${name}`,
# filled in by profilestore.script).
FAMILIES = {
    "total": TOTAL_PREFIX,
    "property": PROPERTY_PREFIX,
    "property_time": PROPERTY_TIME_PREFIX,
    "tag": TAG_PREFIX,
    "config": CONFIG_PREFIX,
    "anonymous_id": ANONYMOUS_ID_PREFIX,
    "merge_refused": MERGE_REFUSED_PREFIX,
}

USERS_INDEX = f"{PREFIX}:users"
CUSTOMER_IDS = f"{PREFIX}:customer_ids"
PROPERTY_DEFINITIONS = f"{PREFIX}:property_definitions"
OPERATOR_NAMES = f"{PREFIX}:{{operators}}:names"
OPERATOR_TOKENS = f"{PREFIX}:{{operators}}:tokens"
AUDIT_LOG = f"{PREFIX}:audit"


def dead_letters_replayed_key(topic_id: str) -> str:
    return f"{PREFIX}:dead_letters_replayed:{topic_id}"


# The field of the ids hash holding its expiry and prune days (an id is never empty).
IDS_META_FIELD = ""


@dataclass(frozen=True)
class ProfileKeys:
    profile: str
    ids: str


def profile_keys(user_id: str) -> ProfileKeys:
    base = f"{PREFIX}:{{{user_id}}}:"
    return ProfileKeys(profile=base + "profile", ids=base + "ids")


def legacy_seen_key(user_id: str) -> str:
    """The set of every messageId the user applied, from before the ids hash: never read,
    only deleted."""
    return f"{PREFIX}:{{{user_id}}}:seen"


def inflight_key(topic: str) -> str:
    """Hash partition -> in-flight mark (`encode_in_flight`): offsets a worker may have
    inserted into ClickHouse but not yet applied to Redis. It survives a crash, so the replay
    knows which events to look up in ClickHouse before inserting them again."""
    return f"{PREFIX}:inflight:{topic}"


def applied_offsets_key(topic: str) -> str:
    """Hash partition -> applied mark (`encode_applied`): the highest offset whose events are
    in ClickHouse and Redis."""
    return f"{PREFIX}:applied:{topic}"


@dataclass(frozen=True)
class AppliedMark:
    topic_id: TopicId
    offset: int


@dataclass(frozen=True)
class InFlightMark:
    topic_id: TopicId | None  # None: written before marks named their topic id
    first: int
    last: int


def text(value: bytes | str) -> str:
    """A Redis reply as text (clients here are made with decode_responses=False)."""
    return value.decode() if isinstance(value, bytes) else value


def encode_applied(topic_id: TopicId, offset: int) -> str:
    return f"{topic_id}:{offset}"


def parse_applied(value: bytes | str | None) -> AppliedMark | None:
    """None when absent, or written before marks named their topic id: such a mark cannot
    tell which life of the partition it belongs to, so it vouches for nothing."""
    if value is None:
        return None
    topic_id, separator, offset = text(value).partition(":")
    if not separator:
        return None
    return AppliedMark(topic_id, int(offset))


def encode_in_flight(topic_id: TopicId, first: int, last: int) -> str:
    return f"{topic_id}:{first}:{last}"


def parse_in_flight(value: bytes | str | None) -> InFlightMark | None:
    if value is None:
        return None
    parts = text(value).split(":")
    if len(parts) == 2:  # an older worker's mark: honoured, a look-up too many costs little
        return InFlightMark(None, int(parts[0]), int(parts[1]))
    topic_id, first, last = parts
    return InFlightMark(topic_id, int(first), int(last))
