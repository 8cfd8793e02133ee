"""`profilestream import` against the running stack, run as an operator runs it (a subprocess
with the stack's environment): each format imported twice (the second time with --restart, so
every record is sent again) is stored once; the users CSV makes profiles with their traits;
refusals are summed up with their line numbers; an import stopped by Ctrl-C resumes and stores
the file's events exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from profilestream.importing.checkpoint import FileIdentity, checkpoint_path
from tests.support.import_files import (
    amplitude_events,
    mixpanel_events,
    segment_events,
    write_amplitude_zip,
    write_batch_document,
    write_json_array,
    write_lines,
    write_ndjson,
    write_users_csv,
)
from tests.support.polling import eventually
from tests.support.queries import profile_when, uid
from tests.support.query_checks import SENTINEL
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
IMPORT_TIMEOUT_S = 600
DRAIN_TIMEOUT_S = 180.0


def import_command(running_stack: RunningStack, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "profilestream", "import", *map(str, args)]


def run_import(running_stack: RunningStack, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        import_command(running_stack, *args),
        env={**os.environ, **running_stack.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
    )


def imported(running_stack: RunningStack, *args: str | Path) -> str:
    """Run an import that must accept everything; its output (progress and summary)."""
    done = run_import(running_stack, *args)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "\x1b[" not in output  # not a terminal: no escape codes
    return output


def all_events(query: httpx.Client, user: str) -> list[dict[str, Any]]:
    """Every stored event of the user, page after page."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        response = query.get(f"/v1/users/{user}/events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        events.extend(page["events"])
        if not page["next_cursor"]:
            return events
        params["before"] = page["next_cursor"]


def events_once_drained(
    ingest: httpx.Client, query: httpx.Client, user: str
) -> list[dict[str, Any]]:
    """The user's stored events (sentinels left out) once the worker has processed everything
    sent for the user before this call: a sentinel sent now lands on the user's partition
    after them."""
    mark = uuid.uuid4().hex
    sent = ingest.post(
        "/v1/track", json={"userId": user, "event": SENTINEL, "properties": {"mark": mark}}
    )
    assert sent.status_code == 200, sent.text

    def drained() -> list[dict[str, Any]] | None:
        found = all_events(query, user) if query.get(f"/v1/users/{user}").is_success else []
        marks = [e["properties"].get("mark") for e in found if e["name"] == SENTINEL]
        return found if mark in marks else None

    found = eventually(drained, timeout=DRAIN_TIMEOUT_S, interval=0.5)
    return [e for e in found if e["name"] != SENTINEL]


def assert_each_once(events: list[dict[str, Any]], count: int) -> None:
    twice = {k: n for k, n in Counter(e["messageId"] for e in events).items() if n > 1}
    assert twice == {}, "stored twice"
    assert len(events) == count


def test_segment_files_imported_twice_are_stored_once(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    prefix = uid("imp-seg")
    files = {
        f"{prefix}-nd": write_ndjson(tmp_path / "a.ndjson", segment_events(f"{prefix}-nd", 40)),
        f"{prefix}-gz": write_ndjson(
            tmp_path / "b.bin", segment_events(f"{prefix}-gz", 40, ids=False), gz=True
        ),
        f"{prefix}-arr": write_json_array(
            tmp_path / "c.json.gz", segment_events(f"{prefix}-arr", 40), gz=True
        ),
        f"{prefix}-doc": write_batch_document(
            tmp_path / "d.json",
            segment_events(f"{prefix}-doc", 40, ids=False),
            context={"app": {"name": "backfill"}},
        ),
    }
    first = imported(running_stack, *files.values())
    assert first.count("40 accepted") == 4, first
    again = imported(running_stack, *files.values())
    assert again.count("already imported") == 4, again
    imported(running_stack, "--restart", *files.values())  # every record sent a second time

    for prefix_of_file in files:
        assert_each_once(events_once_drained(ingest, query, f"{prefix_of_file}-u0"), 40)


def test_mixpanel_export_imported_twice_is_stored_once(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    prefix = uid("imp-mp")
    events = mixpanel_events(prefix, 30) + mixpanel_events(f"{prefix}x", 20, insert_ids=False)
    for event in events:  # one user for all
        event["properties"]["distinct_id"] = prefix
    path = write_ndjson(tmp_path / "mixpanel-export.txt", events)
    assert "mixpanel (ndjson)" in imported(running_stack, path)  # told from its content
    imported(running_stack, "--restart", path)
    stored = events_once_drained(ingest, query, prefix)
    assert_each_once(stored, 50)
    assert {e["protocol"] for e in stored} == {"mixpanel"}


def test_amplitude_export_imported_twice_is_stored_once(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    prefix = uid("imp-amp")
    zipped = write_amplitude_zip(
        tmp_path / "export.zip", amplitude_events(prefix, 30), per_member=8
    )
    one_hour = write_ndjson(tmp_path / "hour.json.gz", amplitude_events(f"{prefix}h", 10), gz=True)
    imported(running_stack, zipped, one_hour)
    imported(running_stack, "--restart", zipped, one_hour)
    user = f"{prefix}-amp"
    assert_each_once(events_once_drained(ingest, query, user), 30)
    assert_each_once(events_once_drained(ingest, query, f"{prefix}h-amp"), 10)
    profile = profile_when(query, user, lambda p: p["custom"].get("plan") == "pro")
    assert f"{prefix}-device" in profile["anonymous_ids"]


def test_users_csv_creates_profiles_with_their_traits(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    prefix = uid("imp-csv")
    rows = [
        {"user_id": f"{prefix}-ada", "email": "ada@example.com", "plan": "pro", "city": ""},
        {"user_id": f"{prefix}-bob", "email": "", "plan": "free", "city": "Oslo"},
    ]
    path = write_users_csv(tmp_path / "users.csv", rows, id_column="user_id")
    imported(running_stack, path)
    imported(running_stack, "--restart", path)
    ada = profile_when(query, f"{prefix}-ada", lambda p: p["custom"].get("plan") == "pro")
    assert ada["email"] == "ada@example.com" and ada["city"] is None
    bob = profile_when(query, f"{prefix}-bob", lambda p: p["custom"].get("plan") == "free")
    assert bob["city"] == "Oslo" and bob["email"] is None
    for user in (f"{prefix}-ada", f"{prefix}-bob"):
        stored = events_once_drained(ingest, query, user)
        assert [e["type"] for e in stored] == ["identify"]  # the second import stored nothing


def test_refusals_are_summed_up_with_line_numbers(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    prefix = uid("imp-bad")
    good = [orjson.dumps(e) for e in segment_events(prefix, 3)]
    no_user = orjson.dumps({"type": "track", "event": "x", "messageId": f"{prefix}-bad"})
    path = write_lines(tmp_path / "mixed.ndjson", [good[0], b"{not json", no_user, *good[1:]])
    done = run_import(running_stack, path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "3 accepted" in done.stdout and "1 refused" in done.stdout, done.stdout
    assert "x userId: " in done.stdout and "(line 3)" in done.stdout, done.stdout
    assert "skipped 1 x not JSON (line 2)" in done.stdout, done.stdout
    assert_each_once(events_once_drained(ingest, query, f"{prefix}-u0"), 3)


def test_interrupted_import_resumes_and_stores_each_event_once(
    running_stack: RunningStack, ingest: httpx.Client, query: httpx.Client, tmp_path: Path
) -> None:
    prefix = uid("imp-resume")
    count, users = 20_000, 4
    path = write_ndjson(
        tmp_path / "big.ndjson.gz", segment_events(prefix, count, users=users), gz=True
    )
    saved = checkpoint_path(running_stack.settings.data_dir / "imports", FileIdentity.of(path))
    process = subprocess.Popen(
        import_command(running_stack, path),
        env={**os.environ, **running_stack.env},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def records_saved() -> int:
        try:
            return int(orjson.loads(saved.read_bytes())["tally"]["records"])
        except (OSError, ValueError):
            return 0

    try:
        eventually(records_saved, timeout=120, interval=0.02)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=IMPORT_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out + err
    assert "run the same command again" in (out + err).lower()
    stopped_at = records_saved()
    assert 0 < stopped_at < count, "the import was not stopped part of the way"

    resumed = imported(running_stack, path)
    assert f"{count:,} accepted" in resumed, resumed  # the summary covers both runs
    for n in range(users):
        user = f"{prefix}-u{n}"
        stored = events_once_drained(ingest, query, user)
        assert_each_once(stored, count // users)
