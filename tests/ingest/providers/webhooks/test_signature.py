"""Segment's X-Signature: HMAC-SHA1 hex over the body, or over the first element of a batched
Actions array (segmentio/action-destinations destinations/webhook/index.ts, extendRequest)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import orjson
import pytest

from ingest.providers.webhooks.signature import first_element, js_stringify, sign, signing_source
from tests.support.webhooks import segment_message, signed, signed_batch

SECRETS = {"web-secret": "web", "ios-secret": "ios"}
# PS_SEGMENT_WEBHOOK_BATCHED_SOURCES: the sources whose batches are signed over their first element
BATCHED = frozenset({"web", "ios"})
MESSAGE = segment_message("track", "m-1", event="Order Completed", userId="ada")


def test_sign_is_hex_hmac_sha1_of_the_payload() -> None:
    # The Actions destination's own test vector: secret abc123 over JSON.stringify({cool: true}).
    expected = hmac.new(b"abc123", b'{"cool":true}', hashlib.sha1).hexdigest()
    assert sign("abc123", b'{"cool":true}') == expected
    assert len(expected) == 40


def test_a_body_signed_with_a_secret_names_its_source() -> None:
    body, headers = signed(MESSAGE, "web-secret")
    assert signing_source(body, headers["X-Signature"], SECRETS) == "web"


def test_another_sources_secret_names_that_source() -> None:
    body, headers = signed(MESSAGE, "ios-secret")
    assert signing_source(body, headers["X-Signature"], SECRETS) == "ios"


def test_hex_case_and_surrounding_space_do_not_matter() -> None:
    body, headers = signed(MESSAGE, "web-secret")
    assert signing_source(body, f" {headers['X-Signature'].upper()} ", SECRETS) == "web"


@pytest.mark.parametrize(
    "signature",
    [
        sign("wrong-secret", orjson.dumps(MESSAGE)),
        sign("web-secret", orjson.dumps(MESSAGE) + b" "),  # over another body
        "",
        "not hex at all",
        sign("web-secret", orjson.dumps(MESSAGE))[:-1],
    ],
    ids=["wrong secret", "other body", "empty", "garbage", "truncated"],
)
def test_bad_signatures_name_no_source(signature: str) -> None:
    assert signing_source(orjson.dumps(MESSAGE), signature, SECRETS) is None


def test_a_tampered_body_fails() -> None:
    body, headers = signed(MESSAGE, "web-secret")
    tampered = body.replace(b"Order Completed", b"Order Refunded")
    assert signing_source(tampered, headers["X-Signature"], SECRETS) is None


def test_a_batch_is_signed_over_its_first_element() -> None:
    second = segment_message("identify", "m-2", userId="ada", traits={"plan": "pro"})
    body, headers = signed_batch([MESSAGE, second], "web-secret")
    assert signing_source(body, headers["X-Signature"], SECRETS, BATCHED) == "web"
    # ... and only over the first: the second element's signature is not the batch's.
    assert signing_source(body, sign("web-secret", orjson.dumps(second)), SECRETS, BATCHED) is None


def test_a_first_element_signature_counts_only_for_a_source_configured_as_batching() -> None:
    """Segment signs only the first element of a batch: a signed request of a source that does
    not batch, resent as the first element of an array with events appended, must not pass."""
    signed_alone = orjson.dumps(MESSAGE)
    forged = b"[" + signed_alone + b',{"type":"alias","userId":"victim","previousId":"x"}]'
    signature = sign("web-secret", signed_alone)
    assert signing_source(signed_alone, signature, SECRETS) == "web"
    assert signing_source(forged, signature, SECRETS) is None
    assert signing_source(forged, signature, SECRETS, frozenset({"ios"})) is None
    assert signing_source(forged, signature, SECRETS, frozenset({"web"})) == "web"


def test_a_batch_signed_over_the_whole_array_is_taken_too() -> None:
    body = orjson.dumps([MESSAGE])
    assert signing_source(body, sign("web-secret", body), SECRETS) == "web"


def test_first_element_is_the_raw_bytes_as_sent() -> None:
    body = b' [ {"b": 1, "a": "x,]}\\"y"} ,\n 2]'
    assert first_element(body) == b'{"b": 1, "a": "x,]}\\"y"}'
    assert first_element(b'["s", 1]') == b'"s"'
    assert first_element(b"[12 , 3]") == b"12"
    for not_an_array in (b'{"a": 1}', b"[]", b"[", b"", b'["unterminated', b"\xff[1]"):
        assert first_element(not_an_array) is None, not_an_array


def test_a_reformatted_batch_is_checked_against_its_first_element_as_js_writes_it() -> None:
    """A proxy that re-indents the array leaves no raw bytes equal to what was signed: the first
    element is re-serialised as JSON.stringify writes it (floats without a trailing .0)."""
    first = {"type": "track", "userId": "ada", "event": "Paid", "properties": {"total": 10.0}}
    signature = sign("web-secret", b'{"type":"track","userId":"ada","event":"Paid",'
                     b'"properties":{"total":10}}')  # fmt: skip
    reformatted = orjson.dumps([first, MESSAGE], option=orjson.OPT_INDENT_2)
    assert signing_source(reformatted, signature, SECRETS, BATCHED) == "web"


# Checked against Node 20's JSON.stringify when written (2,000 random floats agreed as well).
JS_WRITES: list[tuple[Any, str]] = [
    (1.0, "1"),
    (100.0, "100"),
    (-0.0, "0"),
    (0.1, "0.1"),
    (123.456, "123.456"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (1e-6, "0.000001"),
    (1e-7, "1e-7"),
    (1.5e-10, "1.5e-10"),
    (2**60, "1152921504606847000"),
    (12345678901234567890, "12345678901234567000"),
    ('a\u2028\x7f\x1f"\\é😀', '"a\u2028\x7f\\u001f\\"\\\\é😀"'),
    ({"b": 1, "a": [True, None, "x"]}, '{"b":1,"a":[true,null,"x"]}'),
]


@pytest.mark.parametrize(("value", "written"), JS_WRITES)
def test_js_stringify_writes_what_node_writes(value: Any, written: str) -> None:
    assert js_stringify(value) == written.encode()


def test_a_batch_is_checked_against_the_first_elements_raw_bytes() -> None:
    """The raw slice is checked before any re-serialisation: a signer that wrote `\\u00e9`, or
    a number as `2.50`, signed bytes that no re-serialisation gives back."""
    first = b'{"type":"track","userId":"ren\\u00e9","event":"E","properties":{"p":2.50}}'
    body = b"[" + first + b"," + orjson.dumps(MESSAGE) + b"]"
    assert js_stringify(orjson.loads(first)) != first
    assert signing_source(body, sign("ios-secret", first), SECRETS, BATCHED) == "ios"
