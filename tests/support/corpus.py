"""A deterministic corpus of malformed Segment-spec requests, each with the answer it must get.

Why: ingest faces every client there is. Each kind of broken input (invalid JSON, wrong types,
deep nesting, 1 MB strings, invalid UTF-8, bad and far-future timestamps, oversized batches, a
gzip bomb, unknown types, missing and oversized ids) must get a 4xx naming the problem, never a
5xx, and the valid events sent in the same batch must be kept. The same cases run in-process
(tests/ingest/test_bad_input_corpus.py) and against the live stack
(tests/e2e/test_bad_input_live.py), so the expectations live here, next to the inputs.

Nothing here is random without `SEED`: the same arguments always give the same cases.
"""

from __future__ import annotations

import base64
import gzip
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

SEED = 20_240_601
EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
# Valid filler events of these types sit next to bad ones in batches (alias would merge ids).
FILLER_TYPES = ("track", "identify", "page", "screen", "group")
BATCH_PATH = "/v1/batch"
SINGLE_PATHS = {t: f"/v1/{t}" for t in EVENT_TYPES}
ALL_PATHS = (*SINGLE_PATHS.values(), BATCH_PATH)

# The service defaults (infra/settings.py); the corpus is built against them.
MAX_EVENT_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID_LENGTH = 100
MAX_ID_LENGTH = 255

# Edge cases: inputs at the limits of the libraries ingest relies on, where an unguarded call
# raises past the service's own checks. Their cases name the edge (`edge`) and also run live, each
# on a connection of its own (tests/e2e/test_bad_input_live.py).
# Nesting deeper than ~253 levels (orjson.dumps' recursion limit, far below orjson.loads' 1024)
# makes normalize_event's size check raise TypeError, or PydanticSerializationError when it comes
# from the batch-level context.
EDGE_DEEP_NESTING = (
    "an event nested deeper than ~253 levels (orjson.dumps' recursion limit) is refused with a "
    "4xx, never a 500, and the batch's valid events are kept"
)
# to_utc_ms (year 1 with a positive offset, year 9999 with a negative one) and
# corrected_timestamp (originalTimestamp and sentAt millennia apart) overflow datetime.
EDGE_TIMESTAMP_OVERFLOW = (
    "a valid ISO 8601 timestamp that leaves datetime's range once converted to UTC or "
    "clock-skew corrected is refused with a 4xx, never a 500, and the batch's valid events "
    "are kept"
)
# pydantic refuses a messageId that is empty or over 255 characters before the 100-character
# check runs; echoing that raw value would put up to ~500 KB of client text in the response and
# on the rejections topic.
EDGE_INVALID_MESSAGE_ID_ECHO = (
    "a rejection echoes only a valid messageId, never an empty one or one over 255 "
    "characters (normalize.py's promise)"
)
SERVER_ERROR_EDGES = (EDGE_DEEP_NESTING, EDGE_TIMESTAMP_OVERFLOW)


@dataclass(frozen=True)
class Refused:
    """The whole request is refused with one of `status`; no event is produced."""

    status: tuple[int, ...]
    # An errors[].field the body must carry (equal, or a dotted prefix of it).
    field: str | None = None
    # Text the message or a reason must contain (case-insensitive).
    mentions: str | None = None


@dataclass(frozen=True)
class Rejected:
    """One refused event of a partially accepted batch."""

    field: str | None  # the field its errors must name, if known
    message_id: str | None  # the messageId the rejection must echo


@dataclass(frozen=True)
class Kept:
    """One valid event that must be produced (and stored) exactly once."""

    message_id: str
    profile_key: str


@dataclass(frozen=True)
class Partial:
    """200: exactly `kept` are produced, and every index of `rejected` is listed."""

    kept: tuple[Kept, ...]
    rejected: dict[int, Rejected] = field(default_factory=dict)


Expectation = Refused | Partial


@dataclass(frozen=True)
class BadRequest:
    name: str
    category: str
    path: str
    body: bytes
    headers: dict[str, str]
    expect: Expectation
    method: str = "POST"
    edge: str | None = None

    def __repr__(self) -> str:  # pytest shows this on failure; bodies can be megabytes
        return f"BadRequest({self.name!r}, {self.method} {self.path}, {len(self.body)} bytes)"


def _gz(data: bytes, level: int = 9) -> bytes:
    """gzip without a timestamp in the header, so the bytes are the same on every build."""
    return gzip.compress(data, level, mtime=0)


def basic_auth(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


# --- raw fragments --------------------------------------------------------------------------
# Some inputs cannot be built as Python values and serialized (invalid UTF-8, NaN, nesting deeper
# than orjson.dumps allows). A value may hold a token string instead, replaced by raw bytes.

_RAW: dict[str, bytes] = {}


def raw(fragment: bytes) -> str:
    """A placeholder for `fragment`, spliced into the body by `encode`."""
    token = f"@@raw{len(_RAW)}@@"
    for existing, value in _RAW.items():
        if value == fragment:
            return existing
    _RAW[token] = fragment
    return token


def nested(depth: int, kind: str = "list") -> str:
    opening, closing = (b"[", b"]") if kind == "list" else (b'{"a":', b"}")
    return raw(opening * depth + b"0" + closing * depth)


def encode(value: Any) -> bytes:
    body = orjson.dumps(value)
    if b"@@raw" in body:
        for token, fragment in _RAW.items():
            body = body.replace(b'"' + token.encode() + b'"', fragment)
    return body


# --- event-level defects ------------------------------------------------------------------------


@dataclass(frozen=True)
class Defect:
    """One way to break a valid event of `kinds`, and what its rejection must say."""

    name: str
    category: str
    apply: Callable[[dict[str, Any]], Any]
    field: str | None
    kinds: tuple[str, ...] = EVENT_TYPES
    # The rejection echoes the event's messageId (False: it must echo none).
    echo: bool = True
    single_status: int = 400
    # The body stops being JSON: the whole request is refused, in a batch too.
    breaks_body: bool = False
    batch_only: bool = False
    edge: str | None = None


def _set(name: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda event: {**event, name: value}


def _update(**values: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda event: {**event, **values}


def _drop(*names: str) -> Callable[[dict[str, Any]], Any]:
    return lambda event: {k: v for k, v in event.items() if k not in names}


def _set_in(container: str, key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda event: {**event, container: {**event.get(container, {}), key: value}}


def _constant(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda _event: value


def _wrong_type_defects() -> Iterator[Defect]:
    ids = {
        "list": ["u"],
        "object": {"id": "u"},
        "true": True,
        "false": False,
        "empty-list": [],
        "empty-string": "",
    }
    for name in ("userId", "anonymousId", "groupId", "previousId"):
        for label, value in ids.items():
            yield Defect(f"{name}-{label}", "wrong-type", _set(name, value), name)
    names = {"number": 42, "float": 1.5, "true": True, "list": ["E"], "object": {"n": "E"}}
    for name in ("event", "name"):
        for label, value in names.items():
            yield Defect(f"{name}-{label}", "wrong-type", _set(name, value), name)
    yield Defect("event-empty-string", "wrong-type", _set("event", ""), "event")
    for label, value in {"number": 42, "true": True, "list": ["m"], "object": {}}.items():
        yield Defect(
            f"messageId-{label}", "wrong-type", _set("messageId", value), "messageId", echo=False
        )
    yield Defect(
        "messageId-empty-string",
        "wrong-type",
        _set("messageId", ""),
        "messageId",
        echo=False,
        edge=EDGE_INVALID_MESSAGE_ID_ECHO,
    )
    objects = {"string": "x", "number": 1, "true": True, "list": [1, 2], "empty-list": []}
    for name in ("properties", "traits", "context", "integrations"):
        for label, value in objects.items():
            yield Defect(f"{name}-{label}", "wrong-type", _set(name, value), name)
    times = {
        "words": "yesterday",
        "month-13": "2024-13-01T00:00:00Z",
        "feb-30": "2024-02-30T00:00:00Z",
        "hour-25": "2024-01-01T25:00:00Z",
        "offset-25h": "2024-01-01T00:00:00+25:00",
        "empty": "",
        "padded": " 2024-01-01T00:00:00Z",
        "year-10000": "10000-01-01T00:00:00Z",
        "huge-number": 1e300,
        "true": True,
        "list": [],
        "object": {},
    }
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        for label, value in times.items():
            yield Defect(f"{name}-{label}", "bad-timestamp", _set(name, value), name)


def _missing_id_defects() -> Iterator[Defect]:
    yield Defect("no-user-or-anonymous-id", "missing-id", _drop("userId", "anonymousId"), "userId")
    yield Defect("null-ids", "missing-id", _update(userId=None, anonymousId=None), "userId")
    yield Defect("empty-ids", "missing-id", _update(userId="", anonymousId=""), "userId")
    yield Defect("no-event", "missing-id", _drop("event"), "event", kinds=("track",))
    yield Defect("null-event", "missing-id", _set("event", None), "event", kinds=("track",))
    yield Defect("no-group-id", "missing-id", _drop("groupId"), "groupId", kinds=("group",))
    yield Defect("null-group-id", "missing-id", _set("groupId", None), "groupId", kinds=("group",))
    yield Defect(
        "no-previous-id", "missing-id", _drop("previousId"), "previousId", kinds=("alias",)
    )
    yield Defect(
        "null-previous-id", "missing-id", _set("previousId", None), "previousId", kinds=("alias",)
    )
    yield Defect(
        "alias-anonymous-only",
        "missing-id",
        lambda e: {**_drop("userId")(e), "anonymousId": "anon-1"},
        "userId",
        kinds=("alias",),
    )


def _unknown_type_defects() -> Iterator[Defect]:
    """Only a batch item carries its own type; the single endpoints set it from the path."""
    values: dict[str, Any] = {
        "foo": "foo",
        "empty": "",
        "null": None,
        "number": 1,
        "capitalized": "Track",
        "upper": "TRACK",
        "leading-space": " track",
        "trailing-nul": "track\u0000",
        "batch": "batch",
        "import": "import",
        "list": ["track"],
        "object": {"type": "track"},
    }
    for label, value in values.items():
        yield Defect(f"type-{label}", "unknown-type", _set("type", value), "type", batch_only=True)
    yield Defect("type-missing", "unknown-type", _drop("type"), "type", batch_only=True)
    for label, value in {
        "number": 42,
        "string": "track",
        "null": None,
        "list": [],
        "true": True,
    }.items():
        yield Defect(
            f"not-an-object-{label}",
            "wrong-type",
            _constant(value),
            "event",
            echo=False,
            batch_only=True,
        )


def _oversized_defects() -> Iterator[Defect]:
    for length in (MAX_MESSAGE_ID_LENGTH + 1, MAX_ID_LENGTH, MAX_ID_LENGTH + 1, 10_000):
        yield Defect(
            f"messageId-{length}-chars",
            "oversized-id",
            _set("messageId", "m" * length),
            "messageId",
            echo=False,
            edge=EDGE_INVALID_MESSAGE_ID_ECHO if length > MAX_ID_LENGTH else None,
        )
    for name in ("userId", "anonymousId", "groupId", "previousId", "event", "name"):
        yield Defect(
            f"{name}-{MAX_ID_LENGTH + 1}-chars",
            "oversized-id",
            _set(name, "x" * (MAX_ID_LENGTH + 1)),
            name,
        )
    yield Defect("userId-10000-chars", "oversized-id", _set("userId", "u" * 10_000), "userId")
    too_large = {
        "properties-40kb": _set_in("properties", "blob", "x" * (40 * 1024)),
        "traits-40kb": _set_in("traits", "blob", "x" * (40 * 1024)),
        "context-40kb": _set_in("context", "blob", "x" * (40 * 1024)),
        "string-400kb": _set_in("properties", "blob", "x" * (400 * 1024)),
        "3000-properties": lambda e: {**e, "properties": {f"key{i:05d}": i for i in range(3000)}},
        "one-byte-over": lambda e: _padded(e, MAX_EVENT_BYTES + 1),
    }
    for label, apply in too_large.items():
        yield Defect(label, "oversized-event", apply, "event", single_status=413)


def _padded(event: dict[str, Any], size: int) -> dict[str, Any]:
    """`event` with a property that makes its compact JSON exactly `size` bytes."""
    base = {**event, "properties": {**event.get("properties", {}), "pad": ""}}
    missing = size - len(orjson.dumps(base))
    assert missing >= 0
    return {**base, "properties": {**base["properties"], "pad": "p" * missing}}


def _timestamp_defects() -> Iterator[Defect]:
    rejected: dict[str, dict[str, Any]] = {
        "far-future": {"timestamp": "9999-12-31T23:59:59Z"},
        "year-2299": {"timestamp": "2299-12-31T00:00:00Z"},
        "year-2100": {"timestamp": "2100-01-01T00:00:00Z"},
        "year-3000-date-only": {"timestamp": "3000-01-01"},
        "epoch-ms-2100": {"timestamp": 4_102_444_800_000},
        "before-2000": {"timestamp": "1999-12-31T23:59:59.999Z"},
        "unix-epoch": {"timestamp": "1970-01-01T00:00:00Z"},
        "year-1": {"timestamp": "0001-01-01T00:00:00Z"},
        "zero": {"timestamp": 0},
        "negative": {"timestamp": -1},
        "original-far-future": {"originalTimestamp": "9999-12-31T00:00:00Z"},
        # Clock-skew correction: receivedAt - (sentAt - originalTimestamp).
        "skew-into-future": {
            "originalTimestamp": "2000-06-01T00:00:00Z",
            "sentAt": "2000-01-01T00:00:00Z",
        },
        "skew-into-past": {
            "originalTimestamp": "2001-01-01T00:00:00Z",
            "sentAt": "2290-01-01T00:00:00Z",
        },
        "original-year-1-skew": {
            "originalTimestamp": "0001-01-01T00:00:00Z",
            "sentAt": "2020-01-01T00:00:00Z",
        },
    }
    for label, values in rejected.items():
        yield Defect(f"timestamp-{label}", "bad-timestamp", _update(**values), "timestamp")
    overflowing: dict[str, dict[str, Any]] = {
        "year-1-plus-offset": {"timestamp": "0001-01-01T00:00:00+01:00"},
        "year-9999-minus-offset": {"timestamp": "9999-12-31T23:59:59-01:00"},
        "sentAt-year-1-plus-offset": {"sentAt": "0001-01-01T00:00:00+00:01"},
        "skew-9999-to-year-1": {
            "originalTimestamp": "9999-12-31T00:00:00Z",
            "sentAt": "0001-01-02T00:00:00Z",
        },
        "skew-year-1-to-9999": {
            "originalTimestamp": "0001-01-02T00:00:00Z",
            "sentAt": "9999-12-31T00:00:00Z",
        },
        "sentAt-9999": {
            "originalTimestamp": "2024-01-01T00:00:00Z",
            "sentAt": "9999-12-31T00:00:00Z",
        },
    }
    for label, values in overflowing.items():
        yield Defect(
            f"timestamp-{label}",
            "bad-timestamp",
            _update(**values),
            None,
            edge=EDGE_TIMESTAMP_OVERFLOW,
        )


def _deep_nesting_defects() -> Iterator[Defect]:
    for depth, kind, container in (
        (300, "list", "properties"),
        (300, "object", "traits"),
        (600, "list", "context"),
        (1000, "object", "properties"),
        (1000, "list", "integrations"),
    ):
        yield Defect(
            f"{container}-{kind}-depth-{depth}",
            "deep-nesting",
            _set_in(container, "deep", nested(depth, kind)),
            None,
            edge=EDGE_DEEP_NESTING,
        )
    # Past orjson's parse limit (1024) the body is refused as JSON, before any of our code.
    for depth, kind in ((1100, "list"), (5000, "object"), (100_000, "list")):
        yield Defect(
            f"properties-{kind}-depth-{depth}",
            "deep-nesting",
            _set_in("properties", "deep", nested(depth, kind)),
            None,
            breaks_body=True,
        )


INVALID_UTF8 = {
    "byte-ff": b'"\xff"',
    "bad-continuation": b'"\xc3\x28"',
    "overlong-slash": b'"\xc0\xaf"',
    "utf8-surrogate": b'"\xed\xa0\x80"',
    "above-max-code-point": b'"\xf4\x90\x80\x80"',
    "truncated-sequence": b'"abc\xe2\x82"',
    "latin-1": b'"caf\xe9"',
    "escaped-lone-high-surrogate": b'"\\ud800"',
    "escaped-lone-low-surrogate": b'"\\udc00"',
    "escaped-bad-pair": b'"\\ud800\\u0041"',
}
INVALID_JSON_VALUES = {
    "nan": b"NaN",
    "infinity": b"Infinity",
    "minus-infinity": b"-Infinity",
    "huge-exponent": b"1e999",
    "leading-zero": b"01",
    "hex": b"0x1F",
    "undefined": b"undefined",
    "python-none": b"None",
    "single-quoted": b"'x'",
    "trailing-comma": b"[1,]",
    "raw-newline": b'"a\nb"',
    "raw-tab": b'"a\tb"',
    "bad-escape": b'"\\x41"',
    "short-unicode-escape": b'"\\u12"',
}


def _body_breaking_defects() -> Iterator[Defect]:
    for label, fragment in INVALID_UTF8.items():
        token = raw(fragment)
        yield Defect(
            f"utf8-{label}-in-name", "invalid-utf8", _set("name", token), None, breaks_body=True
        )
        yield Defect(
            f"utf8-{label}-in-property",
            "invalid-utf8",
            _set_in("properties", "p", token),
            None,
            breaks_body=True,
        )
        yield Defect(
            f"utf8-{label}-as-key",
            "invalid-utf8",
            _set_in("properties", token, 1),
            None,
            breaks_body=True,
        )
    for label, fragment in INVALID_JSON_VALUES.items():
        yield Defect(
            f"json-{label}-in-property",
            "invalid-json",
            _set_in("properties", "p", raw(fragment)),
            None,
            breaks_body=True,
        )


def event_defects() -> list[Defect]:
    return [
        *_wrong_type_defects(),
        *_missing_id_defects(),
        *_unknown_type_defects(),
        *_oversized_defects(),
        *_timestamp_defects(),
        *_deep_nesting_defects(),
        *_body_breaking_defects(),
    ]


# --- whole bodies ------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _gzip_bombs() -> dict[str, bytes]:
    spaces = _gz(b'{"batch": [' + b" " * (20 * 1024 * 1024) + b"]}")
    zeros = _gz(b"\0" * (50 * 1024 * 1024))
    member = _gz(b" " * (300 * 1024))
    return {
        "20mb-of-spaces": spaces,
        "50mb-of-zeros": zeros,
        "concatenated-members": member * 4,
    }


@dataclass
class _Builder:
    write_key: str
    run: str
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    cases: list[BadRequest] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def user(self) -> str:
        return f"{self.run}-user"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": basic_auth(self.write_key), "Content-Type": "application/json"}

    def message_id(self) -> str:
        return f"{self.run}-m{next(self._ids):05d}"

    def valid(self, kind: str) -> dict[str, Any]:
        """A valid event of `kind` for the corpus user, with a unique messageId."""
        mid = self.message_id()
        event: dict[str, Any] = {"type": kind, "messageId": mid, "userId": self.user}
        if kind == "track":
            event |= {"event": "Corpus Checked", "properties": {"mid": mid}}
        elif kind == "identify":
            event["traits"] = {"corpus_plan": "pro"}
        elif kind in ("page", "screen"):
            event |= {"name": "Home", "properties": {"mid": mid}}
        elif kind == "group":
            event["groupId"] = f"{self.run}-group"
        elif kind == "alias":
            event["previousId"] = f"{self.run}-anon"
        return event

    def kept(self, event: dict[str, Any]) -> Kept:
        return Kept(event["messageId"], str(event.get("userId") or event.get("anonymousId")))

    def add(
        self,
        name: str,
        category: str,
        path: str,
        body: bytes,
        expect: Expectation,
        *,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        edge: str | None = None,
    ) -> None:
        self.cases.append(
            BadRequest(
                name=f"{category}/{name}",
                category=category,
                path=path,
                body=body,
                headers=self.headers if headers is None else headers,
                expect=expect,
                method=method,
                edge=edge,
            )
        )

    # -- event defects: alone on each endpoint, and in batches among valid events --

    def single_event_cases(self, defects: list[Defect]) -> None:
        for defect in defects:
            if defect.batch_only:
                continue
            # A refused single event's answer carries no messageId: the echo edge cannot show.
            edge = defect.edge if defect.edge in SERVER_ERROR_EDGES else None
            for kind in defect.kinds:
                # The endpoint sets the type: a single event is sent without one.
                event = {k: v for k, v in self.valid(kind).items() if k != "type"}
                if defect.breaks_body:
                    expect: Expectation = Refused((400,), mentions="JSON")
                elif edge:
                    expect = Refused((400, 413))
                else:
                    expect = Refused((defect.single_status,), field=defect.field)
                body = encode(defect.apply(event))
                self.add(
                    f"{defect.name}/{kind}",
                    defect.category,
                    SINGLE_PATHS[kind],
                    body,
                    expect,
                    edge=edge,
                )

    def _batch_item(self, defect: Defect, index: int) -> tuple[Any, Rejected]:
        kind = defect.kinds[index % len(defect.kinds)]
        event = self.valid(kind)
        broken = defect.apply(event)
        echo = event["messageId"] if defect.echo else None
        return broken, Rejected(defect.field, echo)

    def batch_cases(self, defects: list[Defect]) -> None:
        # The random mixes leave the edge cases out, so they keep checking the rest.
        usable = [d for d in defects if not d.breaks_body and d.edge is None]
        for n, defect in enumerate(defects):
            goods = [
                self.valid(self.rng.choice(FILLER_TYPES)) for _ in range(self.rng.randint(1, 4))
            ]
            broken, rejected = self._batch_item(defect, n)
            at = self.rng.randint(0, len(goods))
            items: list[Any] = [*goods[:at], broken, *goods[at:]]
            if defect.breaks_body:
                expect: Expectation = Refused((400,), mentions="JSON")
            else:
                expect = Partial(tuple(self.kept(g) for g in goods), {at: rejected})
            self.add(
                f"{defect.name}/among-{len(goods)}-valid",
                defect.category,
                BATCH_PATH,
                encode({"batch": items}),
                expect,
                edge=defect.edge,
            )
        # Several defects at once, shuffled among valid events.
        for n in range(200):
            chosen = self.rng.sample(usable, self.rng.randint(2, 6))
            goods = [
                self.valid(self.rng.choice(FILLER_TYPES)) for _ in range(self.rng.randint(1, 6))
            ]
            slots: list[tuple[Any, Rejected | None]] = [(g, None) for g in goods]
            slots += [self._batch_item(d, n + i) for i, d in enumerate(chosen)]
            self.rng.shuffle(slots)
            listed = {i: r for i, (_, r) in enumerate(slots) if r is not None}
            self.add(
                f"mixed-{n:03d}/{len(chosen)}-bad-{len(goods)}-valid",
                "mixed-batch",
                BATCH_PATH,
                encode({"batch": [item for item, _ in slots]}),
                Partial(tuple(self.kept(g) for g in goods), listed),
            )
        # Nothing valid at all: the whole batch is refused, naming each event's problem.
        for n in range(40):
            chosen = self.rng.sample([d for d in usable if d.field], self.rng.randint(1, 4))
            items = [self._batch_item(d, n + i)[0] for i, d in enumerate(chosen)]
            self.add(
                f"all-bad-{n:02d}/{len(chosen)}-bad",
                "all-bad-batch",
                BATCH_PATH,
                encode({"batch": items}),
                Refused((400,), field=f"batch.0.{chosen[0].field}", mentions="no valid event"),
            )

    # -- request-level defects, on every endpoint --

    def body_for(self, path: str) -> dict[str, Any]:
        """A valid body for `path`, to break at the request level."""
        if path == BATCH_PATH:
            return {"batch": [self.valid("track"), self.valid("page")]}
        kind = path.rsplit("/", 1)[1]
        return {k: v for k, v in self.valid(kind).items() if k != "type"}

    def request_cases(self) -> None:
        not_json = Refused((400,), mentions="JSON")
        for path in ALL_PATHS:
            where = path.rsplit("/", 1)[1]
            valid = encode(self.body_for(path))
            invalid_json = {
                "truncated": valid[: len(valid) // 2],
                "trailing-garbage": valid + b"x",
                "two-objects": valid + valid,
                "unquoted-keys": b"{userId: 1, event: 'E'}",
                "single-quotes": b"{'userId': 'u', 'event': 'E'}",
                "trailing-comma": valid[:-1] + b",}",
                "block-comment": b"/* c */" + valid,
                "line-comment": b"// c\n" + valid,
                "byte-order-mark": b"\xef\xbb\xbf" + valid,
                "utf16": valid.decode().encode("utf-16"),
                "form-encoded": b"userId=u&event=E&type=track",
                "xml": b"<event><userId>u</userId></event>",
                "whitespace-only": b" \n\t ",
                "nul-bytes": b"\0" * 16,
                "open-brace": b"{",
                "missing-value": b'{"userId":}',
                "deep-arrays": b"[" * 5000 + b"]" * 5000,
            }
            for label, body in invalid_json.items():
                self.add(f"{label}/{where}", "invalid-json", path, body, not_json)
            self.add(f"empty/{where}", "invalid-json", path, b"", Refused((400,), mentions="empty"))
            not_object = Refused((400,), mentions="JSON object")
            for label, body in {
                "null": b"null",
                "true": b"true",
                "number": b"42",
                "string": b'"track"',
                "empty-array": b"[]",
                "array-of-events": b"[" + valid + b"]",
            }.items():
                self.add(f"{label}/{where}", "wrong-type", path, body, not_object)
            for label, fragment in INVALID_UTF8.items():
                body = valid.replace(b"userId", b"user" + fragment[1:-1] + b"Id", 1)
                self.add(f"{label}-in-key/{where}", "invalid-utf8", path, body, not_json)
            latin1 = valid.replace(b"{", b'{"note":"caf\xe9",', 1)
            self.add(f"whole-body-latin-1/{where}", "invalid-utf8", path, latin1, not_json)
            self._size_cases(path, where)
            self._gzip_cases(path, where, valid)
            self._auth_cases(path, where, valid)

    def _size_cases(self, path: str, where: str) -> None:
        too_large = Refused((413,), mentions="limit")
        body = self.body_for(path)
        megabyte = "x" * (1024 * 1024)
        if path == BATCH_PATH:
            variants = {
                "1mb-event-name": {
                    **body,
                    "batch": [*body["batch"], {**self.valid("track"), "event": megabyte}],
                },
                "1mb-property": {
                    **body,
                    "batch": [{**self.valid("track"), "properties": {"s": megabyte}}],
                },
                "1mb-messageId": {
                    **body,
                    "batch": [{**self.valid("track"), "messageId": megabyte}],
                },
                "1mb-context": {**body, "context": {"s": megabyte}},
            }
        else:
            variants = {
                "1mb-userId": {**body, "userId": megabyte},
                "1mb-property": {**body, "properties": {"s": megabyte}},
                "1mb-messageId": {**body, "messageId": megabyte},
                "1mb-unknown-field": {**body, "junk": megabyte},
            }
        for label, value in variants.items():
            self.add(f"{label}/{where}", "1mb-string", path, encode(value), too_large)
        padded = encode(body)[:-1] + b" " * (MAX_REQUEST_BYTES) + b"}"
        self.add(f"whitespace-padding-over-limit/{where}", "1mb-string", path, padded, too_large)

    def _gzip_cases(self, path: str, where: str, valid: bytes) -> None:
        gz = {**self.headers, "Content-Encoding": "gzip"}
        too_large = Refused((413,), mentions="limit")
        for label, bomb in _gzip_bombs().items():
            self.add(f"bomb-{label}/{where}", "gzip-bomb", path, bomb, too_large, headers=gz)
        not_gzip = Refused((400,), mentions="gzip")
        compressed = _gz(valid)
        for label, body in {
            "plain-json-labelled-gzip": valid,
            "truncated": compressed[: len(compressed) // 2],
            "header-only": compressed[:10],
            "garbage-after-member": compressed + b"garbage!",
            "zero-bytes": b"",
            "zlib-not-gzip": _gz(valid)[10:],
        }.items():
            self.add(f"{label}/{where}", "bad-gzip", path, body, not_gzip, headers=gz)
        for label, body in {
            "gzipped-invalid-json": _gz(valid[:-3]),
            "gzipped-invalid-utf8": _gz(valid.replace(b"userId", b"user\xffId", 1)),
            "double-gzipped": _gz(compressed),
        }.items():
            self.add(
                f"{label}/{where}",
                "bad-gzip",
                path,
                body,
                Refused((400,), mentions="JSON"),
                headers=gz,
            )
        self.add(
            f"gzipped-empty/{where}",
            "bad-gzip",
            path,
            _gz(b""),
            Refused((400,), mentions="empty"),
            headers=gz,
        )
        for encoding in ("br", "deflate", "compress", "gzip, gzip", "x-gzip"):
            self.add(
                f"content-encoding-{encoding.replace(', ', '-')}/{where}",
                "bad-encoding",
                path,
                compressed,
                Refused((415,), mentions="Content-Encoding"),
                headers={**self.headers, "Content-Encoding": encoding},
            )

    def _auth_cases(self, path: str, where: str, valid: bytes) -> None:
        refused = Refused((401,), mentions="write key")
        plain = {"Content-Type": "application/json"}
        body = self.body_for(path)
        for label, headers in {
            "no-key": plain,
            "unknown-key": {**plain, "Authorization": basic_auth("not-a-key")},
            "bad-base64": {**plain, "Authorization": "Basic !!!not-base64!!!"},
            "non-utf8-key": {
                **plain,
                "Authorization": "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
            },
            "empty-basic": {**plain, "Authorization": "Basic"},
            "empty-user": {**plain, "Authorization": basic_auth("")},
            "bearer-key": {**plain, "Authorization": f"Bearer {self.write_key}"},
            "key-with-whitespace": {**plain, "Authorization": basic_auth(f" {self.write_key} ")},
        }.items():
            self.add(f"{label}/{where}", "auth", path, valid, refused, headers=headers)
        for label, key in {
            "writeKey-list": [self.write_key],
            "writeKey-number": 42,
            "writeKey-empty": "",
            "writeKey-unknown": "nope",
            "writeKey-null": None,
        }.items():
            self.add(
                f"{label}/{where}",
                "auth",
                path,
                encode({**body, "writeKey": key}),
                refused,
                headers=plain,
            )

    def batch_structure_cases(self) -> None:
        batch_field = Refused((400,), field="batch")
        for label, body in {
            "missing": {"events": [self.valid("track")]},
            "null": {"batch": None},
            "object": {"batch": self.valid("track")},
            "string": {"batch": "[]"},
            "number": {"batch": 1},
            "empty": {"batch": []},
        }.items():
            self.add(f"batch-{label}", "batch-structure", BATCH_PATH, encode(body), batch_field)
        too_many = Refused((413,), field="batch")
        tiny = {"type": "track"}
        self.add(
            "10000-events", "huge-batch", BATCH_PATH, encode({"batch": [tiny] * 10_000}), too_many
        )
        self.add(
            "10000-empty-objects",
            "huge-batch",
            BATCH_PATH,
            encode({"batch": [{}] * 10_000}),
            too_many,
        )
        self.add(
            "10000-nulls", "huge-batch", BATCH_PATH, encode({"batch": [None] * 10_000}), too_many
        )
        self.add(
            f"{MAX_BATCH_EVENTS + 1}-events",
            "huge-batch",
            BATCH_PATH,
            encode({"batch": [tiny] * (MAX_BATCH_EVENTS + 1)}),
            too_many,
        )
        valid = self.valid("track")
        self.add(
            "10000-valid-events",
            "huge-batch",
            BATCH_PATH,
            encode({"batch": [{**valid, "messageId": f"{self.run}-x{i}"} for i in range(10_000)]}),
            # Over the batch count and the byte limit: either may answer.
            Refused((413,), mentions="limit"),
        )
        # Exactly the limit: each bad one listed, the valid ones kept.
        goods = [self.valid("track") for _ in range(10)]
        items: list[Any] = [tiny] * (MAX_BATCH_EVENTS - len(goods))
        positions = sorted(self.rng.sample(range(MAX_BATCH_EVENTS), len(goods)))
        for at, good in zip(positions, goods, strict=True):
            items.insert(at, good)
        rejected = {
            i: Rejected("userId", None) for i in range(MAX_BATCH_EVENTS) if i not in positions
        }
        self.add(
            f"{MAX_BATCH_EVENTS}-events-10-valid",
            "huge-batch",
            BATCH_PATH,
            encode({"batch": items}),
            Partial(tuple(self.kept(g) for g in goods), rejected),
        )
        # Batch-level fields that break every event, or that are ignored.
        event = self.valid("track")
        self.add(
            "batch-sentAt-not-a-date",
            "bad-timestamp",
            BATCH_PATH,
            encode({"batch": [event], "sentAt": "soon"}),
            Refused((400,), field="batch.0.sentAt"),
        )
        self.add(
            "batch-sentAt-list",
            "wrong-type",
            BATCH_PATH,
            encode({"batch": [self.valid("track")], "sentAt": []}),
            Refused((400,), field="batch.0.sentAt"),
        )
        self.add(
            "batch-sentAt-year-9999",
            "bad-timestamp",
            BATCH_PATH,
            encode(
                {
                    "batch": [{**self.valid("track"), "timestamp": "2024-01-01T00:00:00Z"}],
                    "sentAt": "9999-12-31T00:00:00Z",
                }
            ),
            Refused((400,)),
            edge=EDGE_TIMESTAMP_OVERFLOW,
        )
        for label, value in {
            "context-depth-300": nested(300),
            "integrations-depth-600": nested(600, "object"),
        }.items():
            goods = [self.valid("track"), self.valid("page")]
            name = label.split("-", 1)[0]
            self.add(
                f"batch-{label}",
                "deep-nesting",
                BATCH_PATH,
                encode({"batch": goods, name: {"deep": value}}),
                Refused((400,)),
                edge=EDGE_DEEP_NESTING,
            )

    # -- weird but valid: kept, so the refusals above are not just "refuse everything" --

    def tolerated_cases(self) -> None:
        user = self.user
        singles: dict[str, tuple[str, dict[str, Any]]] = {
            "numeric-user-id": ("track", {"userId": 4242, "event": "E"}),
            "float-anonymous-id": ("page", {"anonymousId": 1.5, "userId": user}),
            "null-properties": ("track", {"userId": user, "event": "E", "properties": None}),
            "unknown-fields": ("track", {"userId": user, "event": "E", "junk": {"a": [1]}}),
            "type-in-body-ignored": ("page", {"userId": user, "type": "bogus"}),
            "empty-page-name": ("page", {"userId": user, "name": ""}),
            "unix-seconds": ("track", {"userId": user, "event": "E", "timestamp": 1_700_000_000}),
            "offset-timestamp": (
                "track",
                {"userId": user, "event": "E", "timestamp": "2024-01-01T12:00:00+05:30"},
            ),
            "naive-timestamp": ("screen", {"userId": user, "timestamp": "2024-01-01T12:00:00"}),
            "offset-23-59": (
                "track",
                {"userId": user, "event": "E", "timestamp": "2024-06-01T00:00:00+23:59"},
            ),
            "year-2000-exactly": (
                "track",
                {"userId": user, "event": "E", "timestamp": "2000-01-01T00:00:00Z"},
            ),
            "small-skew": (
                "track",
                {
                    "userId": user,
                    "event": "E",
                    "originalTimestamp": "2020-01-01T00:00:00Z",
                    "sentAt": "2020-01-01T00:00:05Z",
                },
            ),
            "unicode": (
                "track",
                {
                    "userId": user,
                    "event": "Ünïcødé 🎉",
                    "properties": {"rtl": "שלום", "nul": "a\u0000b"},
                },
            ),
            "depth-100": ("identify", {"userId": user, "traits": {"deep": nested(100, "object")}}),
            "messageId-100-chars": ("track", {"userId": user, "event": "E"}),
            "huge-integer": (
                "track",
                {
                    "userId": user,
                    "event": "E",
                    "properties": {"n": raw(b"123456789012345678901234567890")},
                },
            ),
            "exactly-32kb": ("track", {"userId": user, "event": "E"}),
            "groupId-255-chars": ("group", {"userId": user, "groupId": "g" * MAX_ID_LENGTH}),
        }
        for label, (kind, fields) in singles.items():
            for path, event in (
                (SINGLE_PATHS[kind], {**fields}),
                (BATCH_PATH, {**fields, "type": kind}),
            ):
                event["messageId"] = self.message_id()
                if label == "messageId-100-chars":
                    event["messageId"] = event["messageId"].ljust(MAX_MESSAGE_ID_LENGTH, "m")
                if label == "exactly-32kb":
                    event = _padded(event, MAX_EVENT_BYTES)
                where = kind if path != BATCH_PATH else "in-batch"
                body = encode(event if path != BATCH_PATH else {"batch": [event]})
                self.add(f"{label}/{where}", "tolerated", path, body, Partial((self.kept(event),)))
        headers = {"Content-Type": "application/json"}
        event = {**self.body_for("/v1/track"), "writeKey": self.write_key}
        self.add(
            "writeKey-in-body/track",
            "tolerated",
            "/v1/track",
            encode(event),
            Partial((self.kept(event),)),
            headers=headers,
        )
        event = self.body_for("/v1/track")
        self.add(
            "text-plain/track",
            "tolerated",
            "/v1/track",
            encode(event),
            Partial((self.kept(event),)),
            headers={**self.headers, "Content-Type": "text/plain"},
        )
        goods = [self.valid("track") for _ in range(3)]
        compressed = _gz(encode({"batch": goods}))
        self.add(
            "gzipped-batch",
            "tolerated",
            BATCH_PATH,
            compressed,
            Partial(tuple(self.kept(g) for g in goods)),
            headers={**self.headers, "Content-Encoding": "gzip"},
        )
        body = encode({"batch": [self.valid("track")]})
        half = len(body) // 2
        goods_body = orjson.loads(body)["batch"]
        self.add(
            "gzip-two-members",
            "tolerated",
            BATCH_PATH,
            _gz(body[:half]) + _gz(body[half:]),
            Partial(tuple(self.kept(g) for g in goods_body)),
            headers={**self.headers, "Content-Encoding": "GZIP "},
        )
        goods = [self.valid("track"), self.valid("screen")]
        self.add(
            "batch-context-not-an-object",
            "tolerated",
            BATCH_PATH,
            encode({"batch": goods, "context": "x", "integrations": [1], "sentAt": None}),
            Partial(tuple(self.kept(g) for g in goods)),
        )

    def method_and_path_cases(self) -> None:
        for path in ALL_PATHS:
            self.add(
                f"GET{path}",
                "wrong-method",
                path,
                b"",
                Refused((405,), mentions="method"),
                method="GET",
            )
            self.add(
                f"PUT{path}",
                "wrong-method",
                path,
                encode(self.body_for(path)),
                Refused((405,), mentions="method"),
                method="PUT",
            )
        for path in ("/v1/import", "/v1/Track", "/v1/trak", "/v2/track", "/v1/batch/1", "/track"):
            self.add(
                f"POST{path}",
                "unknown-path",
                path,
                encode(self.body_for("/v1/track")),
                Refused((404,), mentions="not found"),
            )


def build_corpus(write_key: str, run: str = "corpus") -> list[BadRequest]:
    """Every case, in a fixed order. `run` prefixes messageIds and the user id, so a live
    stack can tell one run's events from another's."""
    builder = _Builder(write_key, run)
    defects = event_defects()
    builder.single_event_cases(defects)
    builder.batch_cases(defects)
    builder.request_cases()
    builder.batch_structure_cases()
    builder.tolerated_cases()
    builder.method_and_path_cases()
    names = [c.name for c in builder.cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return builder.cases


# --- checking an answer -----------------------------------------------------------------------


def _error_body_problems(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["error body is not a JSON object"]
    problems = []
    if body.get("success") is not False:
        problems.append("error body lacks success: false")
    for key in ("code", "message"):
        if not isinstance(body.get(key), str) or not body[key]:
            problems.append(f"error body lacks a {key}")
    return problems + _errors_problems(body.get("errors"))


def _errors_problems(errors: Any) -> list[str]:
    if isinstance(errors, list) and all(
        isinstance(e, dict)
        and isinstance(e.get("field"), str)
        and isinstance(e.get("reason"), str)
        and e["reason"]
        for e in errors
    ):
        return []
    return [f"errors is not a list of {{field, reason}}: {str(errors)[:200]}"]


def _names_field(errors: list[dict[str, Any]], name: str) -> bool:
    return any(e["field"] == name or e["field"].startswith(name + ".") for e in errors)


def response_problems(case: BadRequest, status: int, content: bytes) -> list[str]:
    """What is wrong with the answer `status`/`content` to `case`; empty if it is right."""
    problems: list[str] = []
    if status >= 500:
        problems.append(f"server error {status}")
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return [*problems, f"{status} with a body that is not JSON: {content[:200]!r}"]
    expect = case.expect
    if 400 <= status < 500:
        problems += _error_body_problems(body)
    if isinstance(expect, Refused):
        if status not in expect.status:
            problems.append(f"expected {expect.status}, got {status}: {content[:300]!r}")
            return problems
        if problems:
            return problems
        errors = body["errors"]
        if expect.field and not _names_field(errors, expect.field):
            problems.append(f"errors do not name {expect.field!r}: {errors[:5]}")
        if expect.mentions:
            text = " ".join([body["message"], *(e["reason"] for e in errors)]).lower()
            if expect.mentions.lower() not in text:
                problems.append(
                    f"message does not mention {expect.mentions!r}: {body['message']!r}"
                )
        return problems
    if status != 200:
        return [*problems, f"expected 200, got {status}: {content[:300]!r}"]
    if body.get("success") is not True or body.get("accepted") != len(expect.kept):
        problems.append(f"expected success and accepted={len(expect.kept)}, got {str(body)[:300]}")
    listed = {r["index"]: r for r in body.get("rejected", [])}
    if set(listed) != set(expect.rejected):
        missing = sorted(set(expect.rejected) - set(listed))[:10]
        extra = sorted(set(listed) - set(expect.rejected))[:10]
        problems.append(f"rejected indices differ: missing {missing}, unexpected {extra}")
    for index, rejected in expect.rejected.items():
        got = listed.get(index)
        if got is None:
            continue
        if not got.get("errors") or _errors_problems(got["errors"]):
            problems.append(f"rejected[{index}] has no proper errors: {got}")
        elif rejected.field and not _names_field(got["errors"], rejected.field):
            problems.append(f"rejected[{index}] does not name {rejected.field!r}: {got['errors']}")
        if got.get("messageId") != rejected.message_id:
            echoed = str(got.get("messageId"))[:60]
            problems.append(
                f"rejected[{index}] echoes messageId {echoed!r}, expected {rejected.message_id!r}"
            )
    return problems


def live_selection(cases: list[BadRequest], size: int = 300) -> list[BadRequest]:
    """A deterministic spread of `size` cases over every category, for the live stack (edge
    cases left out: the live test sends those separately)."""
    by_category: dict[str, list[BadRequest]] = {}
    for case in cases:
        if case.edge is None:
            by_category.setdefault(case.category, []).append(case)
    chosen: list[BadRequest] = []
    columns = [iter(v[:: max(1, len(v) // 25)]) for v in by_category.values()]
    while len(chosen) < size and columns:
        for column in list(columns):
            picked = next(column, None)
            if picked is None:
                columns.remove(column)
            elif len(chosen) < size:
                chosen.append(picked)
    return chosen
