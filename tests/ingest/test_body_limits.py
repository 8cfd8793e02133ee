"""Unit tests for the pure parts of body reading (ingest/limits.py), write-key extraction
(ingest/auth.py) and constant-time secret matching (infra/http.py)."""

from __future__ import annotations

import base64
import gzip
import tracemalloc
from typing import Any

import orjson
import pytest
from starlette.requests import Request

from infra.http import ApiError, matching_secret
from ingest.auth import authenticate_source, write_key_from
from ingest.limits import gunzip_bounded, parse_json_object

# --- gunzip_bounded -------------------------------------------------------------------------


def test_gunzip_round_trip() -> None:
    payload = orjson.dumps({"batch": [{"type": "track", "event": "E", "userId": "u"}] * 50})
    assert gunzip_bounded(gzip.compress(payload), limit=len(payload)) == payload
    assert gunzip_bounded(gzip.compress(payload), limit=10 * len(payload)) == payload


def test_gunzip_empty_payload_round_trip() -> None:
    assert gunzip_bounded(gzip.compress(b""), limit=10) == b""


def test_gunzip_one_byte_over_limit_is_413() -> None:
    payload = b"a" * 1000
    with pytest.raises(ApiError) as info:
        gunzip_bounded(gzip.compress(payload), limit=999)
    assert info.value.status == 413
    assert info.value.code == "payload_too_large"
    assert "999" in info.value.message


def test_gzip_bomb_is_413_without_inflating_everything() -> None:
    bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 100 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ApiError) as info:
            gunzip_bounded(bomb, limit=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.status == 413
    # Stopping at the limit keeps memory near the limit, nowhere near the 10 MB it inflates to.
    assert peak < 2 * 1024 * 1024


def test_gunzip_garbage_is_400() -> None:
    with pytest.raises(ApiError) as info:
        gunzip_bounded(b"this is not gzip at all", limit=1000)
    assert info.value.status == 400
    assert "gzip" in info.value.message


def test_gunzip_plain_json_is_400() -> None:
    with pytest.raises(ApiError) as info:
        gunzip_bounded(b'{"batch": []}', limit=1000)
    assert info.value.status == 400


@pytest.mark.parametrize("keep", [5, 12, -8, -1])
def test_gunzip_truncated_stream_is_400(keep: int) -> None:
    compressed = gzip.compress(orjson.dumps({"k": "v" * 500}))
    with pytest.raises(ApiError) as info:
        gunzip_bounded(compressed[:keep], limit=10_000)
    assert info.value.status == 400
    assert "gzip" in info.value.message


def test_gunzip_empty_body_is_400() -> None:
    with pytest.raises(ApiError) as info:
        gunzip_bounded(b"", limit=1000)
    assert info.value.status == 400


def test_gunzip_multi_member_is_not_silently_cut_short() -> None:
    # RFC 1952: a gzip body is a series of members (what `cat a.gz b.gz` or pigz produce).
    # Decompressing only the first member and dropping the rest would lose data silently.
    first, second = b'{"batch": [', b"]}"
    body = gzip.compress(first) + gzip.compress(second)
    try:
        result = gunzip_bounded(body, limit=1000)
    except ApiError as exc:
        assert exc.status == 400
    else:
        assert result == first + second


# --- parse_json_object ----------------------------------------------------------------------


def test_parse_json_object_returns_dict() -> None:
    assert parse_json_object(b'{"writeKey": "k", "batch": [1, 2]}') == {
        "writeKey": "k",
        "batch": [1, 2],
    }


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b'{"a": 1,}',
        b"\xff\xfe\x00{",
        b'{"a": "\xc3\x28"}',
        b"[1, 2, 3]",
        b'[{"type": "track"}]',
        b'"a string"',
        b"42",
        b"null",
        b"   ",
    ],
)
def test_parse_json_object_rejects_with_400(body: bytes) -> None:
    with pytest.raises(ApiError) as info:
        parse_json_object(body)
    assert info.value.status == 400
    assert info.value.code == "bad_request"
    assert info.value.message


def test_parse_json_object_messages_say_what_is_wrong() -> None:
    with pytest.raises(ApiError) as info:
        parse_json_object(b"")
    assert "empty" in info.value.message
    with pytest.raises(ApiError) as info:
        parse_json_object(b"{oops")
    assert "JSON" in info.value.message
    with pytest.raises(ApiError) as info:
        parse_json_object(b"[]")
    assert "object" in info.value.message


# --- write_key_from -------------------------------------------------------------------------


def request_with(headers: dict[str, str] | None = None) -> Request:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "path": "/v1/track",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ],
    }
    return Request(scope)


def basic(credentials: str | bytes) -> dict[str, str]:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_basic_auth_key_with_empty_password() -> None:
    assert write_key_from(request_with(basic("key:")), {}) == "key"


def test_basic_auth_ignores_password() -> None:
    assert write_key_from(request_with(basic("key:secret")), {}) == "key"


def test_basic_auth_without_colon() -> None:
    assert write_key_from(request_with(basic("justkey")), {}) == "justkey"


def test_basic_scheme_is_case_insensitive() -> None:
    header = {"Authorization": "basic " + base64.b64encode(b"key:").decode()}
    assert write_key_from(request_with(header), {}) == "key"


def test_header_wins_over_body_write_key() -> None:
    assert write_key_from(request_with(basic("header-key:")), {"writeKey": "body-key"}) == (
        "header-key"
    )


def test_body_write_key_used_without_header() -> None:
    assert write_key_from(request_with(), {"writeKey": "body-key"}) == "body-key"


def test_body_write_key_used_with_other_auth_scheme() -> None:
    request = request_with({"Authorization": "Bearer token"})
    assert write_key_from(request, {"writeKey": "body-key"}) == "body-key"


@pytest.mark.parametrize("body", [{}, {"writeKey": ""}, {"writeKey": 123}, {"writeKey": None}])
def test_no_usable_key_is_none(body: dict[str, Any]) -> None:
    assert write_key_from(request_with(), body) is None


@pytest.mark.parametrize("credentials", ["!!!not-base64!!!", "a", "abc", "a b c d"])
def test_malformed_base64_is_none(credentials: str) -> None:
    request = request_with({"Authorization": f"Basic {credentials}"})
    assert write_key_from(request, {"writeKey": "body-key"}) is None


def test_non_utf8_credentials_are_none() -> None:
    assert write_key_from(request_with(basic(b"\xff\xfe:")), {}) is None


def test_empty_user_name_is_none() -> None:
    assert write_key_from(request_with(basic(":password")), {}) is None


def test_authenticate_source_maps_key_to_source() -> None:
    keys = {"key-a": "web", "key-b": "ios"}
    assert authenticate_source(request_with(basic("key-b:")), {}, keys) == "ios"
    with pytest.raises(ApiError) as info:
        authenticate_source(request_with(basic("key-c:")), {}, keys)
    assert info.value.status == 401
    with pytest.raises(ApiError) as info:
        authenticate_source(request_with(), {}, keys)
    assert info.value.status == 401
    assert info.value.headers and "WWW-Authenticate" in info.value.headers


# --- matching_secret ------------------------------------------------------------------------


def test_matching_secret_finds_the_equal_secret() -> None:
    assert matching_secret("beta", ["alpha", "beta", "gamma"]) == "beta"


def test_matching_secret_none_when_absent() -> None:
    assert matching_secret("delta", ["alpha", "beta"]) is None
    assert matching_secret("alpha", []) is None


def test_matching_secret_is_exact() -> None:
    assert matching_secret("alph", ["alpha"]) is None
    assert matching_secret("alphaa", ["alpha"]) is None
    assert matching_secret("ALPHA", ["alpha"]) is None
    assert matching_secret("", ["alpha"]) is None


def test_matching_secret_accepts_any_iterable_and_unicode() -> None:
    assert matching_secret("clé", iter(["cle", "clé"])) == "clé"
    assert matching_secret("k", {"k": "source"}) == "k"
