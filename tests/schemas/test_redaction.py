"""Secrets out of what the debugger shows (schemas.redaction)."""

from __future__ import annotations

from schemas.redaction import REDACTED, without_secrets

KEY = "a-long-write-key"


def test_the_write_key_member_goes_and_secret_values_are_replaced_anywhere() -> None:
    item = {
        "writeKey": "whatever",
        "type": "track",
        "properties": {"token": KEY, "list": [KEY, 1, None]},
        "context": {"page": {"url": f"https://shop.example/?writeKey={KEY}&a=1"}},
    }
    assert without_secrets(item, [KEY]) == {
        "type": "track",
        "properties": {"token": REDACTED, "list": [REDACTED, 1, None]},
        "context": {"page": {"url": f"https://shop.example/?writeKey={REDACTED}&a=1"}},
    }
    assert item["writeKey"] == "whatever"  # a copy


def test_a_short_secret_is_replaced_only_as_a_whole_value() -> None:
    assert without_secrets({"a": "k1", "b": "k1 and more"}, ["k1", ""]) == {
        "a": REDACTED,
        "b": "k1 and more",
    }
    assert without_secrets(["writeKey"], []) == ["writeKey"]  # only an object's member goes
