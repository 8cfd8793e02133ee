"""Requests the official PostHog SDKs sent to a loopback recorder (copied unchanged from the
protocol research): posthog (PyPI) 7.91.1 in posthog_py.jsonl, posthog-js 1.449.2 (jsdom) in
phjs.txt. `requests(name)` reads either as (method, path, query, decoded JSON body)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PYTHON_SDK = "posthog_py.jsonl"
JS_SDK = "phjs.txt"


@dataclass(frozen=True)
class Captured:
    method: str
    path: str
    query: dict[str, Any]
    body: Any


def _python_requests() -> list[Captured]:
    found = []
    for line in (HERE / PYTHON_SDK).read_text().splitlines():
        row = json.loads(line)
        found.append(Captured(row["method"], row["path"], row["query"], row.get("json")))
    return found


def _js_requests() -> list[Captured]:
    """phjs.txt: `===== METHOD PATH {query} {headers} ...` then `json {...}` per request."""
    found = []
    for chunk in (HERE / JS_SDK).read_text().split("===== ")[1:]:
        head, _, rest = chunk.partition("\n")
        method, path = head.split(" ")[:2]
        query = {"v": ["2"]} if path == "/flags/" else {}
        body = json.loads(rest.removeprefix("json ").strip())
        found.append(Captured(method, path, query, body))
    return found


def requests(name: str) -> list[Captured]:
    return _python_requests() if name == PYTHON_SDK else _js_requests()


def batches(name: str) -> list[dict[str, Any]]:
    """The event uploads' bodies ({api_key, batch, sent_at}) of the v0 protocol."""
    return [r.body for r in requests(name) if r.path in ("/batch/", "/e/")]


def events(name: str) -> list[dict[str, Any]]:
    return [event for batch in batches(name) for event in batch["batch"]]


def event_named(name: str, sdk: str) -> dict[str, Any]:
    return next(e for e in events(sdk) if e["event"] == name)
