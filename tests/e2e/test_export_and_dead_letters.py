"""The operator's data-access commands against the running stack, run as an operator runs them
(`python -m profilestream ...` with the stack's settings): a user's export after an anonymous id
was merged into it, the user's deletion, and a poison message dead-lettered, shown, replayed
unchanged (dead-lettered again) and replayed repaired (stored once, however often)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.dead_letters import event_message, letters_of, produce_raw, run_profilestream
from tests.support.polling import eventually
from tests.support.queries import uid
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stored_message_ids(query: httpx.Client, user: str) -> list[str]:
    response = query.get(f"/v1/users/{user}/events", params={"limit": 1000})
    if response.status_code != 200:
        return []
    return [event["messageId"] for event in response.json()["events"]]


def daily_total(query: httpx.Client, event: str) -> int:
    days = query.get("/v1/events/daily", params={"event": event, "days": 2}).json()
    return sum(day["count"] for day in days)


def test_export_after_a_merge_then_delete(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    anonymous, user = uid("anon"), uid("user")
    name = f"Exported {uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(minutes=30)
    ids = [f"{user}-m{n}" for n in range(4)]
    sent: list[tuple[str, dict[str, Any]]] = [
        ("track", {"anonymousId": anonymous, "event": name, "properties": {"n": 0}}),
        ("track", {"anonymousId": anonymous, "event": name, "properties": {"n": 1}}),
        ("identify", {"userId": user, "anonymousId": anonymous, "traits": {"plan": "pro"}}),
        ("track", {"userId": user, "event": name, "properties": {"n": 3}}),
    ]
    for n, (path, body) in enumerate(sent):
        moment = iso(start + timedelta(minutes=n))
        event = {**body, "messageId": ids[n], "timestamp": moment}
        ingest.post(f"/v1/{path}", json=event).raise_for_status()
    eventually(lambda: sorted(stored_message_ids(query, user)) == sorted(ids), timeout=60)

    exported = run_profilestream(running_stack, "export", user)
    assert exported.returncode == 0, exported.stderr.decode()
    lines = [orjson.loads(line) for line in exported.stdout.splitlines()]
    assert lines[0]["kind"] == "profile" and lines[0]["profile"]["user_id"] == user
    assert anonymous in lines[0]["profile"]["anonymous_ids"]
    events = lines[1:]
    # Both ids' events, each once, oldest first, with every stored field.
    assert [e["messageId"] for e in events] == ids
    assert all(e["kind"] == "event" for e in events)
    assert events[0]["anonymousId"] == anonymous and events[0]["userId"] is None
    assert events[1]["properties"] == {"n": 1} and events[1]["event"] == name
    assert events[2]["type"] == "identify" and events[2]["traits"] == {"plan": "pro"}
    assert events[3]["userId"] == user and isinstance(events[3]["context"], dict)

    document_path = tmp_path / "export.json"
    written = run_profilestream(
        running_stack, "export", user, "--format", "json", "-o", str(document_path)
    )
    assert written.returncode == 0, written.stderr.decode()
    document = orjson.loads(document_path.read_bytes())
    assert document["profile"] == lines[0]["profile"]
    assert document["events"] == [{k: v for k, v in e.items() if k != "kind"} for e in events]

    # Without a terminal and without --yes, nothing is deleted.
    refused = run_profilestream(running_stack, "users", "delete", user)
    assert refused.returncode == 2 and b"--yes" in refused.stderr
    assert query.get(f"/v1/users/{user}").status_code == 200
    assert daily_total(query, name) == 3

    deleted = run_profilestream(running_stack, "users", "delete", user, "--yes")
    assert deleted.returncode == 0, deleted.stderr.decode()
    assert f"deleted user {user}" in deleted.stdout.decode()
    assert anonymous in deleted.stdout.decode()
    # The command returned once the deletion was applied: no waiting here.
    gone = run_profilestream(running_stack, "export", user)
    assert gone.returncode == 1 and f"no user '{user}'" in gone.stderr.decode()
    assert gone.stdout == b""
    assert query.get(f"/v1/users/{user}/export").status_code == 404
    assert daily_total(query, name) == 0  # the anonymous id's events too


def test_dead_letter_shown_replayed_unchanged_then_repaired(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    user = uid("poisoned")
    message_id = f"{user}-m"
    poison = event_message(user, message_id, "Repaired Later", type="not-a-type")
    produce_raw(running_stack, user, orjson.dumps(poison))
    [letter] = eventually(lambda: letters_of(query, user), timeout=60)
    assert letter["topic"] == running_stack.settings.events_topic
    assert "validation error" in letter["reason"] and "type" in letter["reason"]
    assert letter["replayed"] is None

    listed = run_profilestream(running_stack, "dead-letters", "list", "--limit", "1000")
    assert listed.returncode == 0, listed.stderr.decode()
    assert letter["id"] in listed.stdout.decode() and user in listed.stdout.decode()

    shown = run_profilestream(running_stack, "dead-letters", "show", letter["id"])
    assert shown.returncode == 0, shown.stderr.decode()
    detail = orjson.loads(shown.stdout)
    assert detail["encoding"] == "json" and detail["value"] == poison

    # Replayed as it is, it fails again: a second letter, from the replay's own offset.
    again = run_profilestream(running_stack, "dead-letters", "replay", letter["id"])
    assert again.returncode == 0, again.stderr.decode()
    assert f"replayed {letter['id']}" in again.stdout.decode()

    def two_letters() -> list[dict[str, Any]] | None:
        found = letters_of(query, user)
        return found if len(found) == 2 else None

    letters = eventually(two_letters)
    assert letters[0]["offset"] != letters[1]["offset"]
    assert letters[1]["replayed"]["by"] == "admin"
    assert stored_message_ids(query, user) == []

    repaired = tmp_path / "repaired.json"
    repaired.write_bytes(orjson.dumps(event_message(user, message_id, "Repaired Later")))
    for _ in range(2):
        fixed = run_profilestream(
            running_stack, "dead-letters", "replay", letter["id"], "--value-file", str(repaired)
        )
        assert fixed.returncode == 0, fixed.stderr.decode()
    # A later event of the user (same partition, after both replays) marks when both are in.
    ingest.post("/v1/track", json={"userId": user, "event": "After Replays"}).raise_for_status()
    eventually(lambda: len(stored_message_ids(query, user)) >= 2, timeout=60)
    assert stored_message_ids(query, user).count(message_id) == 1
    assert len(letters_of(query, user)) == 2


def test_dead_letter_api_refusals(query: httpx.Client) -> None:
    assert query.get("/v1/dead-letters/not-an-id").status_code == 400
    missing = query.get("/v1/dead-letters/0-999999999")
    assert missing.status_code == 404, missing.text
    unknown = query.post("/v1/dead-letters/replay", json={"ids": ["0-999999999"]})
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["field"] == "ids.0"
    both = query.post("/v1/dead-letters/replay", json={"ids": ["0-1"], "all": True})
    assert both.status_code == 400 and both.json()["errors"][0]["field"] == "ids"
