"""The embedded broker keeps its logs in memory: after a restart every partition's offsets start
again at 0, while Valkey (on disk) still holds the previous life's applied marks. A write's
position names the topic's id, so those marks vouch for nothing in the new life: a create
answers 201 only once it is readable, and `after=` waits (or says the position is gone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from profilestore.layout import applied_offsets_key, parse_applied
from tests.support.polling import eventually
from tests.support.stack import RunningStack, restart_broker_and_services, start_stack

pytestmark = pytest.mark.e2e

POSITION = "X-Profilestream-Position"


@pytest.fixture(scope="module")
def restart_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # A write waits up to 30 s for the worker, which after a restart first joins its group.
    running = start_stack(tmp_path_factory.mktemp("restart"), PS_APPLIED_WAIT_S="30")
    try:
        yield running
    finally:
        running.stack.stop()


def applied_marks(running: RunningStack) -> dict[int, tuple[str, int]]:
    client = redis.Redis.from_url(running.settings.redis_url)
    try:
        raw = client.hgetall(applied_offsets_key(running.settings.events_topic))
    finally:
        client.close()
    marks = {int(p): parse_applied(v) for p, v in raw.items()}
    return {p: (m.topic_id, m.offset) for p, m in marks.items() if m is not None}


def user_events(query: httpx.Client, user: str) -> list[str]:
    response = query.get(f"/v1/users/{user}/events")
    if response.status_code == 404:  # the profile is not applied yet: poll again
        return []
    response.raise_for_status()
    return sorted(e["messageId"] for e in response.json()["events"])


def create(query: httpx.Client, email: str) -> httpx.Response:
    response = query.post("/v1/users", json={"email": email})
    assert response.status_code == 201, response.text
    return response


def test_writes_after_a_broker_restart_answer_once_applied(restart_stack: RunningStack) -> None:
    run = uuid.uuid4().hex[:8]
    steady = f"{run}-steady"
    partitions = restart_stack.settings.topic_partitions
    with restart_stack.ingest() as ingest, restart_stack.query() as query:
        # Before: traffic on every partition, so each holds an applied mark (offsets > 0).
        # Two requests: ingest puts a request's events for one partition in one message, so
        # the second request's messages are at offset 1 or more.
        for half in range(2):
            batch = [
                {
                    "type": "track",
                    "userId": f"{run}-u{i}",
                    "event": "Before",
                    "messageId": f"{run}-before-{half}-{i}",
                }
                for i in range(40)
            ]
            ingest.post("/v1/batch", json={"batch": batch}).raise_for_status()
        ingest.post(
            "/v1/track",
            json={"userId": steady, "event": "Before", "messageId": f"{steady}-1"},
        ).raise_for_status()
        eventually(lambda: len(applied_marks(restart_stack)) == partitions, timeout=60)
        eventually(lambda: user_events(query, steady) == [f"{steady}-1"], timeout=60)
        earlier = create(query, f"{run}-earlier@example.com")
        old_marks = applied_marks(restart_stack)
        assert all(offset > 0 for _, offset in old_marks.values()), old_marks

    restart_broker_and_services(restart_stack)

    with restart_stack.ingest() as ingest, restart_stack.query() as query:
        # Straight after the restart, before the worker has joined its group: the old marks
        # (offsets > 0) must not make this write look applied at offset 0.
        created = create(query, f"{run}-after@example.com")
        user_id = created.json()["user_id"]
        assert query.get(f"/v1/users/{user_id}").status_code == 200
        new_topic_id = created.headers[POSITION].rsplit("@", 1)[1]
        assert new_topic_id != earlier.headers[POSITION].rsplit("@", 1)[1]

        # Each write after it is readable the moment it answers, too.
        for n in range(3):
            again = create(query, f"{run}-again{n}@example.com").json()["user_id"]
            assert query.get(f"/v1/users/{again}").status_code == 200

        # `after=` with a position of this life answers once applied. One of the previous life
        # that its partition's mark does not cover (a write the restart lost) names a log that
        # is gone: 410, at once, not a wait that cannot end.
        waited = query.get(f"/v1/users/{user_id}", params={"after": created.headers[POSITION]})
        assert waited.status_code == 200, waited.text
        old_topic_id = earlier.headers[POSITION].rsplit("@", 1)[1]
        for partition in range(partitions):
            lost = f"{partition}:{10**6}@{old_topic_id}"
            gone = query.get(f"/v1/users/{user_id}", params={"after": lost})
            assert gone.status_code == 410, gone.text
            assert gone.json()["errors"][0]["field"] == "after"

        # The user created before the restart is still there, and an event sent before the
        # restart and one after are each counted once.
        assert query.get(f"/v1/users/{earlier.json()['user_id']}").status_code == 200
        ingest.post(
            "/v1/track", json={"userId": steady, "event": "After", "messageId": f"{steady}-2"}
        ).raise_for_status()
        eventually(lambda: len(user_events(query, steady)) == 2, timeout=60)
        assert user_events(query, steady) == [f"{steady}-1", f"{steady}-2"]
        profile = query.get(f"/v1/users/{steady}").json()
        assert profile["event_count"] == 2
        assert profile["event_totals"] == {"Before": 1, "After": 1}

        # Marks the new life wrote name its topic id.
        new_marks = applied_marks(restart_stack)
        assert new_marks, new_marks
        written = {p: m for p, m in new_marks.items() if m[0] == new_topic_id}
        assert written, (new_marks, new_topic_id)
