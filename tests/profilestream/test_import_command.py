"""`profilestream import` as a command, without a stack: usage errors exit 2 naming the
problem, an unreachable broker exits 1 with a clear message and sends nothing, and the
summary and progress lines it prints."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

from ingest.normalize import InvalidEvent
from profilestream.importing.progress import PlainReporter, RichReporter, reporter_for
from profilestream.importing.tally import Tally, summary_lines
from schemas.messages import FieldError
from tests.support.import_files import segment_events, write_ndjson, write_users_csv

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(tmp_path: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PS_DATA_DIR": str(tmp_path / "data"),
        "PS_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",  # nothing listens there
        "PS_WRITE_KEYS": "key-one:first-source,key-two:second-source",
    }
    return subprocess.run(
        [sys.executable, "-m", "profilestream", "import", *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    done = run(tmp_path, tmp_path / "nope.ndjson")
    assert done.returncode == 2
    assert "nope.ndjson: no such file" in done.stderr


def test_an_unknown_format_is_a_usage_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("dear diary\n")
    done = run(tmp_path, text)
    assert done.returncode == 2
    assert "notes.txt: not JSON, NDJSON, a zip, or a CSV" in done.stderr
    users = write_users_csv(tmp_path / "users.csv", [{"userId": "u1"}])
    done = run(tmp_path, "--format", "segment", users)
    assert done.returncode == 2 and "a CSV is imported as users" in done.stderr
    done = run(tmp_path, "--format", "posthog", users)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_an_unknown_write_key_is_a_usage_error(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.ndjson", segment_events("k", 1))
    done = run(tmp_path, "--write-key", "key-three", path)
    assert done.returncode == 2
    assert "--write-key: not one of PS_WRITE_KEYS" in done.stderr
    assert "key-three" not in done.stderr  # a key is never printed


def test_an_unreachable_broker_exits_1_and_says_so(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.ndjson", segment_events("b", 3))
    done = run(tmp_path, path)
    assert done.returncode == 1
    assert "cannot reach the broker (127.0.0.1:" in done.stderr
    assert "run the same command again" in done.stderr
    assert not (tmp_path / "data" / "imports").exists()  # nothing was read, nothing saved


def test_summary_names_each_reason_with_where() -> None:
    tally = Tally()
    tally.accept(2)
    for line in range(3, 10):
        tally.refuse(f"line {line}", InvalidEvent([FieldError(field="userId", reason="missing")]))
    tally.skip("line 2")
    lines = summary_lines("e.ndjson", tally)
    assert lines == [
        "e.ndjson: 9 records: 1 accepted (2 events), 7 refused, 1 skipped (not JSON)",
        "  refused 7 x userId: missing (line 3, line 4, line 5, line 6, line 7, ...)",
        "  skipped 1 x not JSON (line 2)",
    ]
    assert Tally.from_json(tally.to_json()) == tally


def test_progress_is_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    reporter = reporter_for(out)
    assert isinstance(reporter, PlainReporter)
    reporter.start_file("e.ndjson.gz", 1000, 0)
    reporter.advance(500, 250)
    reporter.finish_file()
    written = out.getvalue()
    assert "e.ndjson.gz: 500 records" in written and "100% of 1,000 bytes read" in written
    assert "\x1b" not in written


def test_progress_is_a_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    reporter = reporter_for(out)
    assert isinstance(reporter, RichReporter)
    reporter.start_file("e.ndjson.gz", 1000, 0)
    reporter.advance(500, 250)
    reporter.finish_file()
    reporter.close()
    assert "records/s" in out.getvalue() and "ETA" in out.getvalue()
