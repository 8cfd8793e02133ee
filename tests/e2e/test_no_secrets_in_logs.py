"""Logs never carry event contents or credentials: after events, a refused event, a constraint
violation, wrong credentials and a poison message, no marker sent in any of them appears in any
process's log, and neither do the configured write key and admin token."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support.polling import eventually
from tests.support.stack import ADMIN_TOKEN, WRITE_KEY, RunningStack

pytestmark = pytest.mark.e2e


def test_no_event_contents_or_credentials_in_any_log(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client
) -> None:
    marker = f"SECRET{uuid.uuid4().hex}"
    user = f"logs-{uuid.uuid4().hex[:8]}"
    ingest.post(
        "/v1/track",
        json={"userId": user, "event": "Paid", "properties": {"card": f"{marker}-card"}},
    ).raise_for_status()
    ingest.post(
        "/v1/identify",
        json={"userId": user, "traits": {"email": f"{marker}@example.com", "note": marker}},
    ).raise_for_status()
    # refused events (a rejection is logged and produced, without contents)
    batch = {
        "batch": [
            {"type": "track", "userId": user, "properties": {"why": f"{marker}-refused"}},
            {"type": "track", "userId": user, "event": "Kept", "properties": {"k": marker}},
        ]
    }
    assert ingest.post("/v1/batch", json=batch).json()["rejected"]
    # wrong credentials carrying the marker
    with httpx.Client(base_url=running_stack.ingest_url) as anonymous:
        anonymous.post("/v1/track", json={"userId": user, "event": "x"}, auth=(marker, ""))
    with httpx.Client(base_url=running_stack.query_url) as anonymous:
        anonymous.get(f"/v1/users/{user}", headers={"Authorization": f"Bearer {marker}"})
    # a management write that breaks a constraint, with the marker as the value
    query.post("/v1/users", json={"email": f"{marker} not an email"})
    eventually(lambda: query.get(f"/v1/users/{user}").json().get("event_count") == 3 or None)

    logs = {
        path.name: path.read_text(errors="replace")
        for path in (running_stack.settings.data_dir / "logs").glob("*.log")
    }
    assert {"ingest.log", "materializer.log"} <= set(logs), sorted(logs)
    for name, text in logs.items():
        assert marker not in text, f"{name} logs event contents or a presented credential"
        assert WRITE_KEY not in text, f"{name} logs the write key"
        assert ADMIN_TOKEN not in text, f"{name} logs the admin token"
