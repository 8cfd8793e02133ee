"""Write keys: HTTP Basic auth (key as user name, empty password) or a `writeKey` body field."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import Request

from infra.http import ApiError, matching_secret


def has_basic_auth(request: Request) -> bool:
    return request.headers.get("authorization", "").lower().startswith("basic ")


def write_key_from(request: Request, body: dict[str, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "basic" and credentials:
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    key = body.get("writeKey")
    return key if isinstance(key, str) and key else None


def authenticate_source(request: Request, body: dict[str, Any], keys: dict[str, str]) -> str:
    """The source name of the request's write key; 401 if it is missing or unknown."""
    key = write_key_from(request, body)
    if key is None:
        raise ApiError(
            401,
            "missing write key: send it as the HTTP Basic user name or as `writeKey`",
            headers={"WWW-Authenticate": 'Basic realm="profilestream"'},
        )
    matched = matching_secret(key, keys)
    if matched is None:
        raise ApiError(
            401, "unknown write key", headers={"WWW-Authenticate": 'Basic realm="profilestream"'}
        )
    return keys[matched]
