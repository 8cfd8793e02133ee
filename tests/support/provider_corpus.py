"""The malformed-request corpus for the third-party endpoints (/posthog, /mixpanel, /amplitude,
/webhooks), each case with the answer it must get, in that provider's own shape.

Why: each provider's SDKs and services send bodies in encodings of their own (gzip found by its
magic bytes, base64, `data=` forms, NDJSON, signed arrays), and a broken one must get a 4xx in
the shape that provider's clients read (PostHog `{type, code, detail}`, Mixpanel
`{status: 0, error}`, Amplitude `{code}` equal to the HTTP status, the webhooks' ErrorBody),
always with our `errors: [{field, reason}]`, never a 5xx; and the valid events of the same
request must be kept. The cases run in-process (tests/ingest/test_bad_input_corpus.py) and a
selection against the live stack (tests/e2e/test_bad_input_live.py).

Nothing here is random without `SEED`: the same arguments give the same cases."""

from __future__ import annotations

import base64
import gzip
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import orjson

from ingest.providers.webhooks.signature import sign
from tests.support.corpus import EDGE_DEEP_NESTING, Kept, event_defects, nested
from tests.support.corpus import encode as splice

SEED = 20_261_202
PROTOCOLS = ("posthog", "mixpanel", "amplitude", "webhooks")
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TEXT = {"Content-Type": "text/plain"}
# A fixed event time (2025-11-24T16:00:00Z): inside every provider's accepted range.
EPOCH_S = 1_764_000_000
ISO_TIME = "2025-11-24T16:00:00Z"

# The limits the providers' routes declare (their modules), which the corpus crosses.
POSTHOG_EVENT_BYTES = 2 * 1024 * 1024
MIXPANEL_MAX_RECORDS = 2000
AMPLITUDE_MAX_EVENTS = 2000
AMPLITUDE_HTTP_API_BYTES = 1024 * 1024
WEBHOOK_MAX_EVENTS = 4000

# Values of every wrong type, put in each field of an otherwise valid event.
WRONG_TYPES: dict[str, Any] = {
    "list": [1, "a"],
    "object": {"a": 1},
    "number": 42,
    "float": 1.5,
    "true": True,
    "null": None,
    "empty": "",
    "300-chars": "x" * 300,
}


@dataclass(frozen=True)
class Refuse:
    """The whole request is refused with one of `status`; no event is published. The errors
    must name a field (one of `fields` when given: equal, or a dotted prefix of it)."""

    status: tuple[int, ...]
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Keep:
    """The valid events `kept` are published exactly once; each index of `rejected` is refused
    (recorded on the rejections topic; its errors naming the field, where the provider's answer
    lists them and a field is given); each index of `either` may be taken or refused; `unnamed`
    more events without a known messageId are published. `status`: the answer's status when it
    is not the provider's success (Amplitude answers 400 naming the refused events)."""

    kept: tuple[Kept, ...]
    rejected: dict[int, str | None] = field(default_factory=dict)
    either: tuple[int, ...] = ()
    status: tuple[int, ...] | None = None


ProviderExpectation = Refuse | Keep


@dataclass(frozen=True)
class ProviderRequest:
    name: str
    protocol: str
    category: str
    method: str
    path: str  # with its query string
    body: bytes
    headers: dict[str, str]
    expect: ProviderExpectation
    edge: str | None = None

    def __repr__(self) -> str:  # pytest shows this on failure; bodies can be megabytes
        return f"ProviderRequest({self.name!r}, {self.method} {self.path}, {len(self.body)} B)"


def gz(data: bytes) -> bytes:
    return gzip.compress(data, 9, mtime=0)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def basic(user: str, password: str = "") -> str:
    return "Basic " + b64(f"{user}:{password}".encode())


@lru_cache(maxsize=1)
def gzip_bombs() -> dict[str, bytes]:
    """Past every provider's limit once inflated (PostHog's /batch/ takes 20 MB)."""
    return {
        "50mb-of-zeros": gz(b"\0" * (50 * 1024 * 1024)),
        "21mb-of-spaces": gz(b'{"batch": [' + b" " * (21 * 1024 * 1024) + b"]}"),
    }


# A request: (method, path with query, body, headers).
Request = tuple[str, str, bytes, dict[str, str]]
# One encoding of a provider's request: its events -> the request.
Encoder = Callable[[list[Any]], Request]


def valid_event(protocol: str, write_key: str, message_id: str, user: str) -> dict[str, Any]:
    """A valid event of `protocol` for `user`, its dedup id `message_id` (PostHog `uuid`,
    Mixpanel `$insert_id`, Amplitude `insert_id`, Segment `messageId`)."""
    mid = message_id
    if protocol == "posthog":
        return {
            "event": "Corpus Checked",
            "distinct_id": user,
            "uuid": mid,
            "properties": {"mid": mid, "token": write_key},
            "timestamp": ISO_TIME,
        }
    if protocol == "mixpanel":
        return {
            "event": "Corpus Checked",
            "properties": {
                "token": write_key,
                "distinct_id": user,
                "time": EPOCH_S,
                "$insert_id": mid,
                "mid": mid,
            },
        }
    if protocol == "amplitude":
        return {
            "user_id": user,
            "event_type": "Corpus Checked",
            "insert_id": mid,
            "time": EPOCH_S * 1000,
            "event_properties": {"mid": mid},
        }
    return {
        "type": "track",
        "messageId": mid,
        "userId": user,
        "event": "Corpus Checked",
        "properties": {"mid": mid},
        "timestamp": ISO_TIME,
    }


def encoders_for(protocol: str, write_key: str, secret: str) -> dict[str, Encoder]:
    """Every encoding of `protocol`'s requests the corpus uses, by name."""
    return _Builder(write_key, secret, "encoders").encoders(protocol)


@dataclass
class _Builder:
    write_key: str
    secret: str
    run: str
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    cases: list[ProviderRequest] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def user(self, protocol: str) -> str:
        return f"{self.run}-{protocol}-user"

    def message_id(self) -> str:
        return f"{self.run}-p{next(self._ids):05d}"

    def add(
        self,
        protocol: str,
        category: str,
        name: str,
        request: Request,
        expect: ProviderExpectation,
        edge: str | None = None,
    ) -> None:
        method, path, body, headers = request
        self.cases.append(
            ProviderRequest(
                f"{protocol}/{category}/{name}",
                protocol,
                category,
                method,
                path,
                body,
                headers,
                expect,
                edge,
            )
        )

    # --- valid events, one per protocol --------------------------------------------------

    def valid(self, protocol: str) -> dict[str, Any]:
        return valid_event(protocol, self.write_key, self.message_id(), self.user(protocol))

    def kept(self, protocol: str, event: dict[str, Any]) -> Kept:
        mid = {
            "posthog": lambda: event["uuid"],
            "mixpanel": lambda: event["properties"]["$insert_id"],
            "amplitude": lambda: event["insert_id"],
            "webhooks": lambda: event["messageId"],
        }[protocol]()
        return Kept(mid, self.user(protocol))

    # --- encodings --------------------------------------------------------------------------

    def encoders(self, protocol: str) -> dict[str, Encoder]:
        key, secret = self.write_key, self.secret
        if protocol == "posthog":
            return {
                "batch-json": lambda items: (
                    "POST",
                    "/posthog/batch/",
                    splice({"api_key": key, "batch": items}),
                    JSON,
                ),
                "array-gzip-magic": lambda items: (
                    "POST",
                    "/posthog/e/?compression=gzip-js",
                    gz(splice(items)),
                    TEXT,
                ),
                "form-base64": lambda items: (
                    "POST",
                    "/posthog/e/",
                    f"data={quote(b64(splice(items)))}".encode(),
                    FORM,
                ),
                "body-base64": lambda items: (
                    "POST",
                    "/posthog/i/v0/e/?compression=base64",
                    b64(splice(items)).encode(),
                    TEXT,
                ),
                "content-encoding-gzip": lambda items: (
                    "POST",
                    "/posthog/capture/",
                    gz(splice({"api_key": key, "batch": items})),
                    {**JSON, "Content-Encoding": "gzip"},
                ),
            }
        if protocol == "mixpanel":
            return {
                "form-json": lambda items: (
                    "POST",
                    "/mixpanel/track?verbose=1",
                    f"data={quote(splice(items).decode())}".encode(),
                    FORM,
                ),
                "form-base64": lambda items: (
                    "POST",
                    "/mixpanel/track/",
                    f"data={quote(b64(splice(items)))}".encode(),
                    FORM,
                ),
                "raw-json-gzip-magic": lambda items: (
                    "POST",
                    "/mixpanel/track",
                    gz(splice(items)),
                    JSON,
                ),
                "import-ndjson": lambda items: (
                    "POST",
                    "/mixpanel/import",
                    b"\n".join(splice(i) for i in items) + b"\n",
                    {"Content-Type": "application/x-ndjson", "Authorization": basic(secret)},
                ),
                "import-form-secret-as-password": lambda items: (
                    "POST",
                    "/mixpanel/import",
                    f"data={quote(splice(items).decode())}&verbose=1".encode(),
                    {**FORM, "Authorization": basic("service-account", secret)},
                ),
            }
        if protocol == "amplitude":
            return {
                "http-api": lambda items: (
                    "POST",
                    "/amplitude/2/httpapi",
                    splice({"api_key": key, "events": items}),
                    JSON,
                ),
                "batch-gzip": lambda items: (
                    "POST",
                    "/amplitude/batch",
                    gz(splice({"api_key": key, "events": items})),
                    {**JSON, "Content-Encoding": "gzip"},
                ),
                "http-api-gzip-magic": lambda items: (
                    "POST",
                    "/amplitude/2/httpapi",
                    gz(splice({"api_key": key, "events": items})),
                    TEXT,
                ),
            }
        return {
            "segment-signed-array": lambda items: (
                "POST",
                "/webhooks/segment",
                splice(items),
                {**JSON, "X-Signature": sign(secret, splice(items[0]))},
            ),
            "rudderstack-batch-string": lambda items: (
                "PUT",
                f"/webhooks/rudderstack?writeKey={key}",
                orjson.dumps({"batch": splice(items).decode()}),
                JSON,
            ),
            "rudderstack-array-bearer": lambda items: (
                "POST",
                "/webhooks/rudderstack",
                splice(items),
                {**JSON, "Authorization": f"Bearer {key}"},
            ),
        }

    def mixed(
        self, protocol: str, bad: list[Any], rejected: list[str | None] | None, either: bool
    ) -> tuple[list[Any], Keep]:
        """`bad` items shuffled among 1..4 valid ones (a valid one first: a Segment batch is
        signed over its first element); each bad one refused naming its field from
        `rejected`, or (`either`) taken or refused."""
        goods = [self.valid(protocol) for _ in range(self.rng.randint(1, 4))]
        slots: list[tuple[Any, bool]] = [(g, True) for g in goods[1:]]
        slots += [(b, False) for b in bad]
        self.rng.shuffle(slots)
        items = [goods[0], *(item for item, _ in slots)]
        bad_indices = [n + 1 for n, (_, good) in enumerate(slots) if not good]
        if either:
            return items, Keep(
                tuple(self.kept(protocol, g) for g in goods), either=tuple(bad_indices)
            )
        fields = rejected or [None] * len(bad)
        return items, Keep(
            tuple(self.kept(protocol, g) for g in goods),
            rejected=dict(zip(bad_indices, fields, strict=True)),
        )

    def keep_status(self, protocol: str, expect: Keep) -> Keep:
        """Amplitude answers 400 (naming the refused indices) when any event was refused."""
        if protocol != "amplitude" or not (expect.rejected or expect.either):
            return expect
        statuses = (400,) if expect.rejected else (200, 400)
        return Keep(expect.kept, expect.rejected, expect.either, statuses)

    # --- cases --------------------------------------------------------------------------

    def item_cases(self, protocol: str) -> None:
        """Bad items among valid ones, in every encoding: wrong types in every field, wrong
        time units, refused items; the valid ones kept."""
        encoders = list(self.encoders(protocol).items())
        for n, (label, bad, fields, either) in enumerate(self.item_defects(protocol)):
            encoding, encode = encoders[n % len(encoders)]
            items, expect = self.mixed(protocol, bad, fields, either)
            self.add(
                protocol,
                "wrong-item" if not either else "odd-item",
                f"{label}/{encoding}",
                encode(items),
                self.keep_status(protocol, expect),
            )
        for encoding, encode in encoders:
            goods = [self.valid(protocol) for _ in range(3)]
            self.add(
                protocol,
                "valid",
                f"three-valid/{encoding}",
                encode(goods),
                Keep(tuple(self.kept(protocol, g) for g in goods)),
            )

    def item_defects(
        self, protocol: str
    ) -> Iterator[tuple[str, list[Any], list[str | None] | None, bool]]:
        """(label, bad items, the field each must be refused for, or None when it may be taken
        or refused: `either`)."""
        valid = self.valid

        def with_field(name: str, value: Any, container: str | None = None) -> dict[str, Any]:
            event = valid(protocol)
            if container is None:
                event[name] = value
            else:
                event[container] = {**event[container], name: value}
            return event

        def without(name: str, container: str | None = None) -> dict[str, Any]:
            event = valid(protocol)
            if container is None:
                event.pop(name, None)
            else:
                event[container] = {k: v for k, v in event[container].items() if k != name}
            return event

        for label, value in {"number": 42, "string": "event", "null": None, "list": []}.items():
            yield f"not-an-object-{label}", [value], [None], False
        if protocol == "posthog":
            fields: dict[str, tuple[str | None, set[str]]] = {
                # field: (container, the wrong types surely refused)
                "event": (None, {"list", "object", "number", "float", "true", "null", "empty"}),
                "distinct_id": (None, {"list", "object", "true", "empty"}),
                "properties": (None, {"list", "number", "float", "true", "empty", "300-chars"}),
                "uuid": (None, set()),
                "timestamp": (None, {"list", "object", "true", "300-chars"}),
                "offset": (None, set()),
                "$set": (None, set()),
                "$set_once": ("properties", set()),
                "$feature/checkout": ("properties", set()),
            }
            yield "no-event", [without("event")], ["event"], False
            yield "no-distinct-id", [without("distinct_id")], ["distinct_id"], False
            yield "delete-person", [with_field("event", "$delete")], ["event"], False
            for label, value in {
                "words": "yesterday",
                "ms-number": EPOCH_S * 1000,
                "seconds-number": EPOCH_S,
                "far-future": "9999-01-01T00:00:00Z",
                "year-1": "0001-01-01T00:00:00+01:00",
            }.items():
                yield f"timestamp-{label}", [with_field("timestamp", value)], None, True
            for label, value in {"huge": 1e300, "negative": -1e15, "text": "10"}.items():
                event = without("timestamp")
                event["offset"] = value
                yield f"offset-{label}", [event], None, True
        elif protocol == "mixpanel":
            fields = {
                "event": (None, {"list", "object", "number", "float", "true", "null", "empty"}),
                "properties": (None, {"list", "number", "float", "true", "empty", "300-chars"}),
                "distinct_id": ("properties", set()),
                "time": ("properties", {"list", "object", "true", "empty", "300-chars"}),
                "$insert_id": ("properties", {"list", "object", "true", "empty"}),
                "token": ("properties", set()),
                "$set": ("properties", set()),
            }
            yield "no-event", [without("event")], ["event"], False
            for label, value in {
                "words": "yesterday",
                "ms": EPOCH_S * 1000,
                "float-s": EPOCH_S + 0.5,
                "huge": 1e20,
                "negative": -1,
                "iso": ISO_TIME,
            }.items():
                yield f"time-{label}", [with_field("time", value, "properties")], None, True
        elif protocol == "amplitude":
            fields = {
                "event_type": (
                    None,
                    {"list", "object", "number", "float", "true", "null", "empty", "300-chars"},
                ),
                "user_id": (None, {"list", "object", "true", "null", "empty"}),
                "event_properties": (
                    None,
                    {"list", "number", "float", "true", "empty", "300-chars"},
                ),
                "user_properties": (None, set()),
                "time": (None, {"list", "object", "true", "empty", "300-chars"}),
                "insert_id": (None, set()),
                "device_id": (None, set()),
                "session_id": (None, set()),
                "groups": (None, set()),
            }
            yield "no-event-type", [without("event_type")], ["event_type"], False
            yield "no-ids", [without("user_id")], ["user_id"], False
            for label, value in {
                "seconds": EPOCH_S,
                "iso": ISO_TIME,
                "words": "yesterday",
                "huge": 1e300,
                "negative": -1,
            }.items():
                yield f"time-{label}", [with_field("time", value)], None, True
        else:
            # The Segment defects of the /v1 corpus, in forwarded messages.
            for defect in event_defects():
                if defect.breaks_body or "track" not in defect.kinds:
                    continue
                broken = defect.apply(valid(protocol))
                uncertain = defect.category == "bad-timestamp" or defect.edge is not None
                yield defect.name, [broken], [defect.field], uncertain
            delete = {
                "type": "delete",
                "userId": self.user(protocol),
                "messageId": self.message_id(),
            }
            yield "type-delete", [delete], ["type"], False
            return
        for name, (container, refused) in fields.items():
            for label, value in WRONG_TYPES.items():
                bad = with_field(name, value, container)
                sure = label in refused
                yield f"{name}-{label}", [bad], [name] if sure else None, not sure

    def body_cases(self, protocol: str) -> None:
        """Malformed bodies in each encoding: not JSON, bad base64, bad forms, truncated and
        bomb gzip, other encodings; a request-level 4xx naming a field, nothing published."""
        bad_body = Refuse((400,))
        for encoding, encode in self.encoders(protocol).items():
            method, path, _, headers = encode([self.valid(protocol)])

            def signed(
                data: bytes, headers: dict[str, str] = headers, path: str = path
            ) -> dict[str, str]:
                """The headers, and a signature of `data` for the Segment webhook: what is
                tested is then the decoding, not the signature check."""
                if path.startswith("/webhooks/segment"):
                    return {**headers, "X-Signature": sign(self.secret, data)}
                return headers

            raw = orjson.dumps([self.valid(protocol)])
            variants: dict[str, tuple[bytes, dict[str, str]]] = {
                "truncated-gzip-magic": (gz(raw)[:20], signed(gz(raw)[:20])),
                "gzip-header-only": (gz(raw)[:10], signed(gz(raw)[:10])),
                "garbage-after-gzip": (gz(raw) + b"!!", signed(gz(raw) + b"!!")),
                "truncated-content-encoding-gzip": (
                    gz(raw)[:25],
                    {**signed(gz(raw)[:25]), "Content-Encoding": "gzip"},
                ),
                "not-json": (b"{not json", signed(b"{not json")),
                "invalid-utf8": (b'[{"event": "\xff\xfe"}]', signed(b'[{"event": "\xff\xfe"}]')),
                "empty": (b"", signed(b"")),
                "json-null": (b"null", signed(b"null")),
                "json-number": (b"42", signed(b"42")),
                "deep-arrays": (b"[" * 5000 + b"]" * 5000, signed(b"[" * 5000 + b"]" * 5000)),
            }
            if method == "POST" and protocol != "webhooks":
                variants |= {
                    "bad-base64-form": (b"data=!!!not*base64@@", {**headers, **FORM}),
                    "base64-of-truncated-json": (
                        f"data={quote(b64(raw[:-5]))}".encode(),
                        {**headers, **FORM},
                    ),
                    "form-without-data": (b"foo=bar&x=1", {**headers, **FORM}),
                    "form-empty-data": (b"data=", {**headers, **FORM}),
                    "form-bad-percent": (b"data=%ZZ%E9%", {**headers, **FORM}),
                    "form-200-fields": (
                        "&".join(f"f{i}=1" for i in range(200)).encode(),
                        {**headers, **FORM},
                    ),
                    "base64-of-garbage": (b64(b"\x00\xffgarbage").encode(), headers),
                }
            for label, (data, with_headers) in variants.items():
                self.add(
                    protocol,
                    "bad-body",
                    f"{label}/{encoding}",
                    (method, path, data, with_headers),
                    bad_body,
                )
            for label, bomb in gzip_bombs().items():
                for how, bomb_headers in (
                    ("content-encoding", {**headers, "Content-Encoding": "gzip"}),
                    ("magic-bytes", headers),
                ):
                    self.add(
                        protocol,
                        "gzip-bomb",
                        f"{label}-{how}/{encoding}",
                        (method, path, bomb, bomb_headers),
                        Refuse((413,)),
                    )
            for content_encoding in ("br", "deflate"):
                self.add(
                    protocol,
                    "bad-encoding",
                    f"content-encoding-{content_encoding}/{encoding}",
                    (method, path, gz(raw), {**headers, "Content-Encoding": content_encoding}),
                    Refuse((415,), ("Content-Encoding", "body")),
                )

    def size_cases(self, protocol: str) -> None:
        """Huge batches: over the count limit (413), or exactly at it with ten valid events
        among thousands of bad ones (kept)."""
        encoders = self.encoders(protocol)
        encode = next(iter(encoders.values()))
        tiny: dict[str, Any] = {
            "posthog": {"event": ""},
            "mixpanel": {"event": ""},
            "amplitude": {"event_type": ""},
            "webhooks": {"type": "track"},
        }[protocol]
        limit = {
            "posthog": None,
            "mixpanel": MIXPANEL_MAX_RECORDS,
            "amplitude": AMPLITUDE_MAX_EVENTS,
            "webhooks": WEBHOOK_MAX_EVENTS,
        }[protocol]
        if limit is not None:
            first = self.valid(protocol)
            self.add(
                protocol,
                "huge-batch",
                f"{limit + 1}-items",
                encode([first, *[tiny] * limit]),
                Refuse((413,)),
            )
        count = limit or 3000
        goods = [self.valid(protocol) for _ in range(10)]
        positions = [0, *sorted(self.rng.sample(range(1, count), len(goods) - 1))]
        items: list[Any] = [tiny] * (count - len(goods))
        for at, good in zip(positions, goods, strict=True):
            items.insert(at, good)
        expect = Keep(
            tuple(self.kept(protocol, g) for g in goods),
            rejected={i: None for i in range(count) if i not in positions},
        )
        self.add(
            protocol,
            "huge-batch",
            f"{count}-items-10-valid",
            encode(items),
            self.keep_status(protocol, expect),
        )
        self.add(
            protocol, "huge-batch", "10000-bad-items", encode([tiny] * 10_000), Refuse((400, 413))
        )
        if protocol == "posthog":
            big = {**self.valid(protocol), "properties": {"blob": "x" * POSTHOG_EVENT_BYTES}}
            method, _, body, headers = encoders["form-base64"]([big])
            self.add(
                protocol,
                "huge-batch",
                "event-over-2mb",
                (method, "/posthog/e/", body, headers),
                Refuse((413,)),
            )
        if protocol == "amplitude":
            big = {
                **self.valid(protocol),
                "event_properties": {"blob": "x" * AMPLITUDE_HTTP_API_BYTES},
            }
            self.add(protocol, "huge-batch", "http-api-over-1mb", encode([big]), Refuse((413,)))

    def auth_cases(self, protocol: str) -> None:
        valid = self.valid(protocol)
        key = self.write_key
        cases: dict[str, tuple[Request, tuple[str, ...]]]
        if protocol == "posthog":
            anonymous = {**valid, "properties": {"mid": "x"}}
            other = {**valid, "properties": {**valid["properties"], "token": "second-token"}}
            cases = {
                "no-token": (
                    ("POST", "/posthog/e/", orjson.dumps(anonymous), JSON),
                    ("token", "api_key"),
                ),
                "unknown-api-key": (
                    (
                        "POST",
                        "/posthog/batch/",
                        orjson.dumps({"api_key": "nope", "batch": [valid]}),
                        JSON,
                    ),
                    ("api_key", "token"),
                ),
                "two-tokens": (
                    ("POST", "/posthog/e/", orjson.dumps([valid, other]), JSON),
                    ("token", "api_key"),
                ),
            }
            statuses: tuple[int, ...] = (401,)
        elif protocol == "mixpanel":
            anonymous = {
                **valid,
                "properties": {k: v for k, v in valid["properties"].items() if k != "token"},
            }
            form = f"data={quote(orjson.dumps([anonymous]).decode())}".encode()
            unknown = {**valid, "properties": {**valid["properties"], "token": "nope"}}
            cases = {
                "no-token": (
                    ("POST", "/mixpanel/track", form, FORM),
                    ("properties.token", "token"),
                ),
                "unknown-token": (
                    (
                        "POST",
                        "/mixpanel/track",
                        f"data={quote(b64(orjson.dumps(unknown)))}".encode(),
                        FORM,
                    ),
                    ("properties.token", "token"),
                ),
                "import-without-secret": (
                    ("POST", "/mixpanel/import", orjson.dumps([valid]), JSON),
                    ("Authorization",),
                ),
                "import-with-write-key": (
                    (
                        "POST",
                        "/mixpanel/import",
                        orjson.dumps([valid]),
                        {**JSON, "Authorization": basic(key)},
                    ),
                    ("Authorization",),
                ),
                "import-bad-basic": (
                    (
                        "POST",
                        "/mixpanel/import",
                        orjson.dumps([valid]),
                        {**JSON, "Authorization": "Basic !!!"},
                    ),
                    ("Authorization",),
                ),
            }
            statuses = (401,)
        elif protocol == "amplitude":
            cases = {
                "no-api-key": (
                    ("POST", "/amplitude/2/httpapi", orjson.dumps({"events": [valid]}), JSON),
                    ("api_key",),
                ),
                "unknown-api-key": (
                    (
                        "POST",
                        "/amplitude/2/httpapi",
                        orjson.dumps({"api_key": "nope", "events": [valid]}),
                        JSON,
                    ),
                    ("api_key",),
                ),
                "api-key-number": (
                    (
                        "POST",
                        "/amplitude/batch",
                        orjson.dumps({"api_key": 42, "events": [valid]}),
                        JSON,
                    ),
                    ("api_key",),
                ),
                "identify-no-api-key": (
                    (
                        "POST",
                        "/amplitude/identify",
                        f"identification={quote(orjson.dumps(valid).decode())}".encode(),
                        FORM,
                    ),
                    ("api_key",),
                ),
            }
            statuses = (400, 401)
        else:
            body = orjson.dumps(valid)
            cases = {
                "segment-unsigned": (("POST", "/webhooks/segment", body, JSON), ("X-Signature",)),
                "segment-wrong-secret": (
                    (
                        "POST",
                        "/webhooks/segment",
                        body,
                        {**JSON, "X-Signature": sign("nope", body)},
                    ),
                    ("X-Signature",),
                ),
                "segment-write-key-instead": (
                    ("POST", "/webhooks/segment", body, {**JSON, "Authorization": basic(key)}),
                    ("X-Signature",),
                ),
                "rudderstack-no-key": (
                    ("POST", "/webhooks/rudderstack", body, JSON),
                    ("writeKey", "Authorization"),
                ),
                "rudderstack-unknown-bearer": (
                    (
                        "POST",
                        "/webhooks/rudderstack",
                        body,
                        {**JSON, "Authorization": "Bearer nope"},
                    ),
                    ("Authorization",),
                ),
                "rudderstack-secret-as-key": (
                    ("POST", f"/webhooks/rudderstack?writeKey={self.secret}", body, JSON),
                    ("writeKey",),
                ),
            }
            statuses = (401,)
        for label, (request, fields) in cases.items():
            self.add(protocol, "auth", label, request, Refuse(statuses, fields))

    def structure_cases(self, protocol: str) -> None:
        """Bodies of the right encoding but the wrong shape, and wrong methods and paths."""
        key, valid = self.write_key, self.valid(protocol)
        shapes: dict[str, Request]
        if protocol == "posthog":
            shapes = {
                "batch-not-a-list": (
                    "POST",
                    "/posthog/batch/",
                    orjson.dumps({"api_key": key, "batch": {"a": 1}}),
                    JSON,
                ),
                "batch-empty": (
                    "POST",
                    "/posthog/batch/",
                    orjson.dumps({"api_key": key, "batch": []}),
                    JSON,
                ),
                "lz64": ("POST", "/posthog/e/?compression=lz64", b"N4Ig", TEXT),
                "unknown-compression": (
                    "POST",
                    "/posthog/e/?compression=zstd",
                    orjson.dumps(valid),
                    JSON,
                ),
                "get-without-data": ("GET", "/posthog/e/", b"", {}),
                "get-bad-data": ("GET", "/posthog/e/?data=%%%", b"", {}),
            }
            wrong = {
                "PUT /posthog/e/": (405, "method"),
                "DELETE /posthog/batch/": (405, "method"),
                "POST /posthog/nope": (404, "path"),
                "POST /posthog/e/x/y": (404, "path"),
            }
        elif protocol == "mixpanel":
            shapes = {
                "garbage-body": ("POST", "/mixpanel/track", b"\x00\x01garbage", TEXT),
                "data-array-empty": ("POST", "/mixpanel/track", b"data=%5B%5D", FORM),
                "ndjson-bad-line-alone": (
                    "POST",
                    "/mixpanel/import",
                    b"{bad\n{worse\n",
                    {**JSON, "Authorization": basic(self.secret)},
                ),
                "get-without-data": ("GET", "/mixpanel/track", b"", {}),
            }
            self.add(
                protocol,
                "bad-shape",
                "engage-not-objects",
                ("POST", "/mixpanel/engage", f"data={quote('[1, 2]')}".encode(), FORM),
                Refuse((400, 401)),
            )
            wrong = {
                "GET /mixpanel/import": (405, "method"),
                "DELETE /mixpanel/track": (405, "method"),
                "POST /mixpanel/export": (404, "path"),
            }
        elif protocol == "amplitude":
            shapes = {
                "events-not-a-list": (
                    "POST",
                    "/amplitude/2/httpapi",
                    orjson.dumps({"api_key": key, "events": valid}),
                    JSON,
                ),
                "events-missing": (
                    "POST",
                    "/amplitude/2/httpapi",
                    orjson.dumps({"api_key": key}),
                    JSON,
                ),
                "events-empty": (
                    "POST",
                    "/amplitude/batch",
                    orjson.dumps({"api_key": key, "events": []}),
                    JSON,
                ),
                "body-a-list": ("POST", "/amplitude/2/httpapi", orjson.dumps([valid]), JSON),
                "upload-time-words": (
                    "POST",
                    "/amplitude/2/httpapi",
                    orjson.dumps({"api_key": key, "events": [valid], "client_upload_time": "soon"}),
                    JSON,
                ),
                "identify-not-json": (
                    "POST",
                    "/amplitude/identify",
                    f"api_key={key}&identification=%7Bnot".encode(),
                    FORM,
                ),
                "identify-missing": (
                    "POST",
                    "/amplitude/identify",
                    f"api_key={key}".encode(),
                    FORM,
                ),
                "identify-bad-form": ("POST", "/amplitude/identify", b"%ZZ=%ZZ&&&=", FORM),
            }
            wrong = {
                "GET /amplitude/2/httpapi": (405, "method"),
                "PUT /amplitude/batch": (405, "method"),
                "POST /amplitude/3/httpapi": (404, "path"),
            }
        else:
            empty = b"[]"
            shapes = {
                "segment-empty-array": (
                    "POST",
                    "/webhooks/segment",
                    empty,
                    {**JSON, "X-Signature": sign(self.secret, empty)},
                ),
                "segment-string": (
                    "POST",
                    "/webhooks/segment",
                    b'"track"',
                    {**JSON, "X-Signature": sign(self.secret, b'"track"')},
                ),
                "rudderstack-batch-not-json": (
                    "POST",
                    f"/webhooks/rudderstack?writeKey={key}",
                    orjson.dumps({"batch": "[{"}),
                    JSON,
                ),
                "rudderstack-batch-number": (
                    "POST",
                    f"/webhooks/rudderstack?writeKey={key}",
                    orjson.dumps({"batch": 7}),
                    JSON,
                ),
                "rudderstack-batch-object-string": (
                    "POST",
                    f"/webhooks/rudderstack?writeKey={key}",
                    orjson.dumps({"batch": "{}"}),
                    JSON,
                ),
            }
            wrong = {
                "GET /webhooks/segment": (405, "method"),
                "DELETE /webhooks/rudderstack": (405, "method"),
                "POST /webhooks/zapier": (404, "path"),
            }
        for label, request in shapes.items():
            self.add(protocol, "bad-shape", label, request, Refuse((400,)))
        for label, (status, name) in wrong.items():
            method, path = label.split(" ")
            self.add(
                protocol,
                "wrong-method" if status == 405 else "unknown-path",
                label.replace(" ", "-"),
                (method, path, orjson.dumps(valid), JSON),
                Refuse((status,), (name,)),
            )

    def edge_cases(self, protocol: str) -> None:
        """Nesting past orjson.dumps' limit (~253 levels) among valid events, with and without
        the id the providers would otherwise derive by hashing the event with orjson."""
        encoding = {
            "posthog": "batch-json",
            "mixpanel": "import-ndjson",
            "amplitude": "http-api",
            "webhooks": "segment-signed-array",
        }[protocol]
        encode = self.encoders(protocol)[encoding]
        container, id_field = {
            "posthog": ("properties", "uuid"),
            "mixpanel": ("properties", "$insert_id"),
            "amplitude": ("event_properties", "insert_id"),
            "webhooks": ("properties", "messageId"),
        }[protocol]
        for label in ("with-id", "without-id"):
            event = self.valid(protocol)
            event[container] = {**event[container], "deep": nested(300)}
            if label == "without-id":
                holder = event["properties"] if protocol == "mixpanel" else event
                holder.pop(id_field)
            items, expect = self.mixed(protocol, [event], [None], either=False)
            self.add(
                protocol,
                "deep-nesting",
                f"depth-300-{label}/{encoding}",
                encode(items),
                self.keep_status(protocol, expect),
                edge=EDGE_DEEP_NESTING,
            )


def build_provider_corpus(
    write_key: str, secret: str, run: str = "pcorpus"
) -> list[ProviderRequest]:
    """Every provider case, in a fixed order. `run` prefixes the messageIds and user ids, so
    a live stack can tell one run's events from another's. `secret` is the source's
    PS_SOURCE_SECRETS secret (Mixpanel /import, Segment webhook signatures)."""
    builder = _Builder(write_key, secret, run)
    for protocol in PROTOCOLS:
        builder.item_cases(protocol)
        builder.body_cases(protocol)
        builder.size_cases(protocol)
        builder.auth_cases(protocol)
        builder.structure_cases(protocol)
        builder.edge_cases(protocol)
    names = [c.name for c in builder.cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return builder.cases


# --- checking an answer -----------------------------------------------------------------------


def _names(errors: list[dict[str, Any]], name: str) -> bool:
    return any(e["field"] == name or e["field"].startswith(name + ".") for e in errors)


def _errors_problems(body: dict[str, Any]) -> list[str]:
    """Our house rule on every provider's 4xx: `errors`, a non-empty list of {field, reason},
    each naming a field."""
    errors = body.get("errors")
    if (
        isinstance(errors, list)
        and errors
        and all(
            isinstance(e, dict)
            and isinstance(e.get("field"), str)
            and e["field"]
            and isinstance(e.get("reason"), str)
            and e["reason"]
            for e in errors
        )
    ):
        return []
    return [f"errors is not a non-empty list of {{field, reason}}: {str(errors)[:200]}"]


def _shape_problems(case: ProviderRequest, status: int, body: dict[str, Any]) -> list[str]:
    return error_shape_problems(case.protocol, case.path, status, body)


def error_shape_problems(protocol: str, path: str, status: int, body: dict[str, Any]) -> list[str]:
    """The provider's own error shape, as its clients read it."""
    if protocol == "posthog":
        missing = [k for k in ("type", "code", "detail") if not isinstance(body.get(k), str)]
        return [f"PostHog error body lacks {missing}"] if missing else []
    if protocol == "mixpanel":
        problems = [] if isinstance(body.get("error"), str) and body["error"] else ["no error"]
        if path.startswith("/mixpanel/import"):
            if body.get("code") != status:
                problems.append(f"/import error code {body.get('code')!r} != {status}")
        elif body.get("status") not in (0, "error"):
            problems.append(f"Mixpanel error status {body.get('status')!r}, not 0")
        return problems
    if protocol == "amplitude":
        return [] if body.get("code") == status else [f"code {body.get('code')!r} != {status}"]
    problems = [] if body.get("success") is False else ["success is not false"]
    return problems + [f"no {k}" for k in ("code", "message") if not isinstance(body.get(k), str)]


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _refused_problems(
    case: ProviderRequest, expect: Refuse, status: int, content: bytes
) -> list[str]:
    if status not in expect.status:
        return [f"expected {expect.status}, got {status}: {content[:300]!r}"]
    body = _json_object(content)
    if body is None:
        return [f"{status} with a body that is not a JSON object: {content[:200]!r}"]
    problems = _shape_problems(case, status, body) + _errors_problems(body)
    if not problems and expect.fields and not any(_names(body["errors"], f) for f in expect.fields):
        problems.append(f"errors name none of {expect.fields}: {body['errors'][:5]}")
    return problems


def _amplitude_named(body: dict[str, Any]) -> set[int]:
    named: set[int] = set()
    for key in ("events_with_invalid_fields", "events_with_missing_fields"):
        for indices in (body.get(key) or {}).values():
            named |= set(indices)
    return named


def _kept_problems(case: ProviderRequest, expect: Keep, status: int, content: bytes) -> list[str]:
    statuses = expect.status or (200,)
    if status not in statuses:
        return [f"expected {statuses}, got {status}: {content[:300]!r}"]
    body = _json_object(content)
    if case.protocol == "posthog":
        return (
            []
            if body == {"status": 1}
            else [f"PostHog needs exactly {{'status': 1}}: {content[:200]!r}"]
        )
    if case.protocol == "mixpanel":
        if case.path.startswith("/mixpanel/import"):
            if body is None or body.get("code") != 200:
                return [f"/import answer {content[:200]!r}"]
            imported = body.get("num_records_imported")
            return (
                []
                if isinstance(imported, int) and imported >= len(expect.kept)
                else [f"num_records_imported {imported!r}"]
            )
        if "verbose=1" in case.path:
            return (
                []
                if body is not None and body.get("status") == 1
                else [f"verbose answer {content[:200]!r}"]
            )
        return [] if content == b"1" else [f"expected the text 1, got {content[:200]!r}"]
    if body is None:
        return [f"answer is not a JSON object: {content[:200]!r}"]
    if case.protocol == "amplitude":
        if body.get("code") != status:
            return [f"code {body.get('code')!r} != {status}"]
        ingested = body.get("events_ingested")
        problems = (
            []
            if isinstance(ingested, int) and ingested >= len(expect.kept)
            else [f"events_ingested {ingested!r}"]
        )
        if status == 400:
            problems += _errors_problems(body)
            named = _amplitude_named(body)
            missing = sorted(set(expect.rejected) - named)[:10]
            unexpected = sorted(named - set(expect.rejected) - set(expect.either))[:10]
            if missing or unexpected:
                problems.append(f"refused indices: missing {missing}, unexpected {unexpected}")
        return problems
    # webhooks: our IngestResponse
    items = len(expect.kept) + len(expect.rejected) + len(expect.either)
    listed = {r["index"]: r for r in body.get("rejected", [])}
    problems = []
    if body.get("success") is not True or body.get("accepted") != items - len(listed):
        problems.append(f"accepted {body.get('accepted')!r} of {items} with {len(listed)} rejected")
    missing = sorted(set(expect.rejected) - set(listed))[:10]
    unexpected = sorted(set(listed) - set(expect.rejected) - set(expect.either))[:10]
    if missing or unexpected:
        problems.append(f"rejected indices: missing {missing}, unexpected {unexpected}")
    for index, name in expect.rejected.items():
        got = listed.get(index)
        if got is not None and name and not _names(got.get("errors", []), name):
            problems.append(f"rejected[{index}] does not name {name!r}: {got.get('errors')}")
    return problems


def provider_answer_problems(case: ProviderRequest, status: int, content: bytes) -> list[str]:
    """What is wrong with the answer `status`/`content` to `case`; empty if it is right."""
    if status >= 500:
        return [f"server error {status}: {content[:300]!r}"]
    if isinstance(case.expect, Refuse):
        return _refused_problems(case, case.expect, status, content)
    return _kept_problems(case, case.expect, status, content)


def live_provider_selection(cases: list[ProviderRequest], size: int = 160) -> list[ProviderRequest]:
    """A deterministic spread of `size` cases over every protocol and category (edge cases
    and the biggest bodies left out), for the live stack."""
    columns: dict[tuple[str, str], list[ProviderRequest]] = {}
    for case in cases:
        if case.edge is None and len(case.body) < 1024 * 1024:
            columns.setdefault((case.protocol, case.category), []).append(case)
    spread = [iter(v[:: max(1, len(v) // 8)]) for v in columns.values()]
    chosen: list[ProviderRequest] = []
    while len(chosen) < size and spread:
        for column in list(spread):
            picked = next(column, None)
            if picked is None:
                spread.remove(column)
            elif len(chosen) < size:
                chosen.append(picked)
    return chosen


def provider_error_problems(protocol: str, path: str, status: int, content: bytes) -> list[str]:
    """What is wrong with a 4xx answer of `protocol` (no 5xx at all): a JSON object in the
    provider's error shape with our `errors` naming fields."""
    if status >= 500:
        return [f"server error {status}: {content[:300]!r}"]
    if status < 400:
        return []
    body = _json_object(content)
    if body is None:
        return [f"{status} with a body that is not a JSON object: {content[:200]!r}"]
    return error_shape_problems(protocol, path, status, body) + _errors_problems(body)
