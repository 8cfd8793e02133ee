"""Reading a request body within the size limits: bounded streaming read, bounded gunzip (a gzip
bomb stops at the limit), then JSON."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from fastapi import Request

from infra.http import ApiError


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body is over the {limit}-byte limit (decompressed)")


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member (concatenated members are valid gzip), stopping at `limit`."""
    out = bytearray()
    remaining = data
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(remaining, limit + 1 - len(out))
        except zlib.error as exc:
            raise ApiError(400, f"body is not valid gzip: {exc}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise _too_large(limit)
        if not inflater.eof:
            raise ApiError(400, "body is not valid gzip: truncated stream")
        remaining = inflater.unused_data
        if not remaining:
            return bytes(out)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        return gunzip_bounded(bytes(body), limit)
    if encoding not in ("", "identity"):
        raise ApiError(415, f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    return bytes(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise ApiError(400, "request body is empty: expected a JSON object")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "body must be a JSON object")
    return value


# orjson refuses to encode deeper than 254 levels (and parses up to 1024): anything accepted must
# be re-encodable, and nothing real nests this deep.
MAX_NESTING = 128


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """How deeply `value` nests lists and objects, counted up to `limit + 1` (then it stops)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
