"""Secrets out of what the live debugger shows: ingest removes them from a refused item before
producing its rejection (RejectionMessage.body), and the query service again from what it
shows, in case a producer did not. Pure functions."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

REDACTED = "[redacted]"
# Where Segment-spec clients put the write key in a body (analytics.js sends it in every
# event); a key's value is replaced wherever else it appears (`without_secrets`).
WRITE_KEY_MEMBER = "writeKey"
# A secret at least this long is also replaced inside longer strings.
MIN_PART_LENGTH = 8


def without_secrets(item: Any, secrets: Collection[str]) -> Any:
    """`item` without its top-level `writeKey` member, and with each of `secrets` (write keys:
    a Mixpanel `token` or a PostHog `api_key` is one) replaced by REDACTED in every string, at
    any depth: a whole value, or a part of one (a page URL that carries the key in its query).
    Secrets shorter than MIN_PART_LENGTH are replaced only as whole values, so that a short
    test key does not blank out ordinary text. A copy: `item` is unchanged."""
    if isinstance(item, dict):
        item = {k: v for k, v in item.items() if k != WRITE_KEY_MEMBER}
    whole = frozenset(s for s in secrets if s)
    parts = tuple(s for s in whole if len(s) >= MIN_PART_LENGTH)
    return _redacted(item, whole, parts) if whole else item


def _redacted(value: Any, whole: frozenset[str], parts: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        if value in whole:
            return REDACTED
        for secret in parts:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redacted(v, whole, parts) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, whole, parts) for v in value]
    return value
