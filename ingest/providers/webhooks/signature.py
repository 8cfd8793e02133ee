"""Segment's webhook signature: `X-Signature: hex(HMAC-SHA1(shared secret, JSON body))`.

Segment Webhooks (Classic) and the Actions destination unbatched sign the body as sent. The
Actions destination with batching on sends a JSON array but signs `JSON.stringify` of its first
element only (segmentio/action-destinations, destinations/webhook/index.ts `extendRequest`:
`payload.length ? payload[0]['data'] : payload['data']`). So a signature is checked against, in
turn: the whole body; the raw bytes of the array's first element; that element re-serialised
as JavaScript's JSON.stringify writes it (for a proxy that reformatted the body); the last two
only for the sources configured as batching. Pure."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

from ingest.limits import MAX_NESTING, nesting_depth

SIGNATURE_HEADER = "X-Signature"
JSON_WHITESPACE = b" \t\r\n"
_DECODER = json.JSONDecoder()


def sign(secret: str, payload: bytes) -> str:
    """What Segment sends in X-Signature for `payload` (tests and docs use it too)."""
    return hmac.new(secret.encode(), payload, hashlib.sha1).hexdigest()


def first_element(body: bytes) -> bytes | None:
    """The raw bytes of the first element of a JSON array body, as sent (None: not an array,
    empty, or not JSON up to the end of that element)."""
    start = len(body) - len(body.lstrip(JSON_WHITESPACE))
    if body[start : start + 1] != b"[":
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    index = start + 1
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    try:
        _, end = _DECODER.raw_decode(text, index)
    except (ValueError, RecursionError):
        return None
    # Valid UTF-8 round-trips: these are the bytes of the element as they came in.
    return text[index:end].encode("utf-8")


def _js_number(value: float) -> str:
    """A finite float as JavaScript's Number#toString writes it (ECMA-262 Number::toString)."""
    if value == 0:
        return "0"
    if value < 0:
        return "-" + _js_number(-value)
    mantissa, _, exponent = repr(value).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = 0.d1d2... * 10**point, the decimal point after `point` digits
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        return digits + "0" * (point - k)
    if 0 < point <= 21:
        return digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return "0." + "0" * -point + digits
    shown = point - 1
    sign_ = "+" if shown >= 0 else "-"
    rest = "." + digits[1:] if k > 1 else ""
    return f"{digits[0]}{rest}e{sign_}{abs(shown)}"


def _js_parts(value: Any) -> Iterator[str]:
    if value is None or value is True or value is False:
        yield "null" if value is None else ("true" if value else "false")
    elif isinstance(value, str):
        yield json.dumps(value, ensure_ascii=False)
    elif isinstance(value, int):
        # JavaScript numbers are doubles: a large integer prints as its nearest double does.
        yield str(value) if abs(value) < 2**53 else _js_number(float(value))
    elif isinstance(value, float):
        yield _js_number(value) if math.isfinite(value) else "null"
    elif isinstance(value, list):
        yield "["
        for n, item in enumerate(value):
            if n:
                yield ","
            yield from _js_parts(item)
        yield "]"
    elif isinstance(value, dict):
        yield "{"
        for n, (key, item) in enumerate(value.items()):
            if n:
                yield ","
            yield json.dumps(str(key), ensure_ascii=False)
            yield ":"
            yield from _js_parts(item)
        yield "}"
    else:
        yield "null"


def js_stringify(value: Any) -> bytes:
    """`JSON.stringify(value)` as Node writes it, UTF-8: no spaces, keys in their order, numbers
    in JavaScript's shortest form (1 not 1.0, 1e+21, 1e-7)."""
    return "".join(_js_parts(value)).encode("utf-8")


def _reserialised_first(body: bytes) -> bytes | None:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, list) or not value or nesting_depth(value[0]) > MAX_NESTING:
        return None
    return js_stringify(value[0])


def first_element_payloads(body: bytes) -> Iterator[bytes]:
    """What a batched Actions request's signature may cover, cheapest first, each computed only
    when asked for."""
    steps: tuple[Callable[[bytes], bytes | None], ...] = (first_element, _reserialised_first)
    for step in steps:
        payload = step(body)
        if payload is not None:
            yield payload


def _signer(payload: bytes, given: bytes, secrets: Mapping[str, str]) -> str | None:
    found: str | None = None
    for secret, source in secrets.items():  # every secret, in constant time
        if hmac.compare_digest(sign(secret, payload).encode(), given):
            found = source
    return found


def signing_source(
    body: bytes,
    signature: str,
    secrets: Mapping[str, str],
    batched: frozenset[str] = frozenset(),
) -> str | None:
    """The source whose shared secret signed `body` (`secrets`: secret -> source), or None.

    The whole body, for every source. The first element of an array body only for the sources
    in `batched` (PS_SEGMENT_WEBHOOK_BATCHED_SOURCES): Segment signs nothing else of a batch, so
    whoever saw one signed request of such a source can append events to it; a source that
    does not batch must not take that risk."""
    given = signature.strip().lower().encode()
    found = _signer(body, given, secrets)
    if found is not None or not batched:
        return found
    batching = {secret: source for secret, source in secrets.items() if source in batched}
    for payload in first_element_payloads(body):
        found = _signer(payload, given, batching)
        if found is not None:
            return found
    return None
