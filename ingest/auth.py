"""Write keys: HTTP Basic auth (key as user name, empty password) or a `writeKey` body field,
and the browser origins each key may be used from."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from infra.http import ApiError, matching_secret
from infra.settings import normalized_origin
from schemas.messages import FieldError

BASIC_CHALLENGE = 'Basic realm="profilestream"'


def has_basic_auth(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("basic ")


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user name, password) of an `Authorization: Basic` header; None when there is none or it
    does not decode."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, _, password = decoded.partition(":")
    return user, password


def write_key_from(request: Request, body: dict[str, Any]) -> str | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and encoded:
        credentials = basic_credentials(request)
        return (credentials[0] or None) if credentials else None
    key = body.get("writeKey")
    return key if isinstance(key, str) and key else None


def authenticate_source(
    request: Request,
    body: dict[str, Any],
    keys: dict[str, str],
    origins: Mapping[str, frozenset[str]] | None = None,
) -> str:
    """The source name of the request's write key; 401 if it is missing or unknown, 403 if the
    key is limited to browser origins (`origins`) and the request's Origin is not one."""
    # No Basic challenge to a browser page (it has an Origin): the browser would prompt its
    # user and then send the typed credentials by itself on later requests.
    challenge = {} if "origin" in request.headers else {"WWW-Authenticate": BASIC_CHALLENGE}
    key = write_key_from(request, body)
    if key is None:
        raise ApiError(
            401,
            "missing write key: send it as the HTTP Basic user name or as `writeKey`",
            headers=challenge,
        )
    matched = matching_secret(key, keys)
    if matched is None:
        raise ApiError(401, "unknown write key", headers=challenge)
    origin = request.headers.get("origin")
    problem = origin_problem(origin, (origins or {}).get(matched))
    if problem is not None:
        raise ApiError(
            403,
            f"origin {origin} may not use this write key",
            [FieldError(field="Origin", reason=problem)],
        )
    return keys[matched]


def origin_problem(origin: str | None, allowed: frozenset[str] | None) -> str | None:
    """Why a request from browser `origin` may not use a key limited to `allowed` origins (None:
    it may). Requests without an Origin header come from servers and apps, not browsers."""
    if origin is None or allowed is None or "*" in allowed or normalized_origin(origin) in allowed:
        return None
    return "this write key is limited to other origins (PS_WRITE_KEY_ORIGINS)"
