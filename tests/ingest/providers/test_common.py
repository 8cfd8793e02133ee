"""ingest/providers/common.py: body decodings, time units, stable ids, normalization of mapped
events, and which provider renders an error."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi import Request
from starlette.responses import PlainTextResponse, Response

from infra.http import ApiError
from ingest.normalize import InvalidEvent, Limits
from ingest.providers.common import (
    Received,
    decode_base64,
    epoch_to_datetime,
    form_fields,
    json_or_base64_json,
    looks_like_form,
    map_items,
    normalized,
    rendered_by_prefix,
    stable_message_id,
    text_id,
)

AT = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
RECEIVED = Received(received_at=AT, source="web", protocol="posthog", limits=Limits())
PAYLOAD = [{"event": "a+b/c", "n": 1}]


def test_base64_in_its_variants() -> None:
    data = orjson.dumps(PAYLOAD)
    standard = base64.b64encode(data).decode()
    assert decode_base64(standard) == data
    assert decode_base64(standard.rstrip("=")) == data  # padding optional
    assert decode_base64(base64.urlsafe_b64encode(data).decode()) == data
    # a form decoder turned '+' into ' '
    with_plus = base64.b64encode(b"\xfb\xef\xbe" * 4).decode()
    assert "+" in with_plus and decode_base64(with_plus.replace("+", " ")) == b"\xfb\xef\xbe" * 4
    assert decode_base64("not base64 at all!") is None


def test_json_or_base64_json_reads_every_form_data_takes() -> None:
    data = orjson.dumps(PAYLOAD)
    assert json_or_base64_json(data.decode(), "data", 10_000) == PAYLOAD
    assert json_or_base64_json(base64.b64encode(data), "data", 10_000) == PAYLOAD
    assert json_or_base64_json(base64.b64encode(gzip.compress(data)), "data", 10_000) == PAYLOAD
    for bad, reason in (("%%%", "neither JSON nor base64"), ("{nope", "not valid JSON")):
        with pytest.raises(ApiError, match=reason) as caught:
            json_or_base64_json(bad, "data", 10_000)
        assert caught.value.status == 400 and caught.value.errors[0].field == "data"
    bomb = base64.b64encode(gzip.compress(b"[" + b" " * 100_000 + b"]"))
    with pytest.raises(ApiError) as too_large:
        json_or_base64_json(bomb, "data", 10_000)
    assert too_large.value.status == 413


def test_forms() -> None:
    assert form_fields(b"data=eyJ9&verbose=1&data=second") == {"data": "eyJ9", "verbose": "1"}
    assert form_fields("a=%2B+b") == {"a": "+ b"}
    with pytest.raises(ApiError) as caught:
        form_fields("&".join(f"f{n}=1" for n in range(100)))
    assert caught.value.status == 400
    assert looks_like_form(b"data=abc") and not looks_like_form(b'{"a": "b=c"}')
    assert not looks_like_form(b"[1]")


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (1_700_000_000, "auto", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1_700_000_000.5, "auto", datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)),
        (1_700_000_000_000, "auto", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1_700_000_000_000, "ms", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (1_700_000_000, "s", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("1700000000", "auto", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        (True, "auto", None),
        (float("nan"), "auto", None),
        ("soon", "auto", None),
        (1e300, "s", None),
        (None, "auto", None),
    ],
)
def test_epochs_in_seconds_and_milliseconds(value: Any, unit: str, expected: Any) -> None:
    assert epoch_to_datetime(value, unit) == expected


def test_stable_message_ids_and_text_ids() -> None:
    first = stable_message_id("Signed Up", 1700000000.5, "user-1")
    assert first == stable_message_id("Signed Up", 1700000000.5, "user-1")
    assert first != stable_message_id("Signed Up", 1700000000.5, "user-2")
    assert len(first) == 36
    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(InvalidEvent, match="nests deeper"):
        stable_message_id("E", deep)
    assert [text_id(v) for v in ("u", 7, 1.5, True, None, " ", {"a": 1})] == [
        "u",
        "7",
        "1.5",
        None,
        None,
        None,
        None,
    ]


def test_normalized_tags_the_protocol_and_keeps_the_context() -> None:
    (event,) = normalized(
        [{"type": "track", "userId": "u1", "event": "E", "context": {"ip": "1.2.3.4"}}], RECEIVED
    )
    assert event.context == {"ip": "1.2.3.4", "protocol": "posthog"}
    assert event.source == "web" and event.received_at == AT
    with pytest.raises(InvalidEvent) as refused:
        normalized([{"type": "track", "userId": "u1", "event": "E", "context": "x"}], RECEIVED)
    assert [e.field for e in refused.value.errors] == ["context"]


def test_map_items_keeps_each_items_index_and_reasons() -> None:
    def mapping(item: Any) -> list[dict[str, Any]]:
        if item == "refuse":
            raise InvalidEvent([], "m-refused")
        return [{"type": "track", "userId": "u1", "event": str(item)}] * 2

    results = map_items(["a", "refuse", {"no": "userId"}], mapping, RECEIVED)
    assert [len(r) if isinstance(r, list) else type(r).__name__ for r in results] == [
        2,
        "InvalidEvent",
        2,
    ]
    refused = map_items([None], lambda _: [{"type": "track", "event": "E"}], RECEIVED)[0]
    assert isinstance(refused, InvalidEvent)
    assert [e.field for e in refused.errors] == ["userId"]


def _request(path: str) -> Request:
    return Request({"type": "http", "path": path, "headers": [], "query_string": b""})


def test_errors_are_rendered_by_the_provider_whose_prefix_the_path_has() -> None:
    def posthog(_: Request, error: ApiError) -> Response:
        return PlainTextResponse(f"posthog {error.status}")

    render = rendered_by_prefix([("/posthog", posthog)])
    rendered = render(_request("/posthog/e/"), ApiError(401, "no"))
    assert rendered is not None and rendered.body == b"posthog 401"
    assert render(_request("/posthog"), ApiError(404, "no")) is not None
    assert render(_request("/posthogx/e"), ApiError(404, "no")) is None
    assert render(_request("/v1/track"), ApiError(404, "no")) is None
