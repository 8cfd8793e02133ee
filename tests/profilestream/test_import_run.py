"""The import loop against a recording publisher: batches, refusals to the rejections topic,
the checkpoint after each acknowledged batch, resume, stop, restart, and a broker that does
not acknowledge."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.settings import Settings
from profilestream.importing.checkpoint import FileIdentity, checkpoint_path, load_checkpoint
from profilestream.importing.formats import Format
from profilestream.importing.progress import PlainReporter
from profilestream.importing.records import Layout, UnreadableFile
from profilestream.importing.run import BrokerDown, FileResult, ImportJob, import_file
from tests.support.import_files import segment_events, write_lines, write_ndjson
from tests.support.messages import produced_events
from tests.support.publishers import RecordingPublisher


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_environment({"PS_DATA_DIR": str(tmp_path / "data")})


def job_for(path: Path) -> ImportJob:
    return ImportJob(path, Format.SEGMENT, Layout.NDJSON, "imports")


async def run(
    path: Path,
    settings: Settings,
    publisher: RecordingPublisher,
    *,
    stop_after_first_batch: bool = False,
    restart: bool = False,
) -> FileResult:
    with open(os.devnull, "w") as quiet:
        return await import_file(
            job_for(path),
            settings,
            publisher,
            PlainReporter(quiet),
            lambda: stop_after_first_batch,
            restart=restart,
            batch_records=100,
        )


def stored_ids(settings: Settings, publisher: RecordingPublisher) -> list[str]:
    return [e.message_id for e in produced_events(publisher.records, settings.events_topic)]


def rejections(settings: Settings, publisher: RecordingPublisher) -> list[dict[str, Any]]:
    return [orjson.loads(v) for t, _, v in publisher.records if t == settings.rejections_topic]


def checkpoint_of(path: Path, settings: Settings) -> dict[str, Any]:
    saved = checkpoint_path(settings.data_dir / "imports", FileIdentity.of(path))
    return dict(orjson.loads(saved.read_bytes()))


async def test_every_event_is_published_once_in_batches(tmp_path: Path, settings: Settings) -> None:
    events = segment_events("r", 250, users=7)
    path = write_ndjson(tmp_path / "events.ndjson", events, gz=True)
    publisher = RecordingPublisher(settings)
    result = await run(path, settings, publisher)
    # in file order per user (per partition), each once
    assert sorted(stored_ids(settings, publisher)) == sorted(e["messageId"] for e in events)
    assert result.tally.accepted == result.tally.events == result.tally.records == 250
    assert result.tally.clean
    assert checkpoint_of(path, settings)["done"] is True
    assert all(e.source == "imports" for e in produced_events(publisher.records, "ps.events"))


async def test_refusals_go_to_the_rejections_topic_and_skips_are_counted(
    tmp_path: Path, settings: Settings
) -> None:
    good = orjson.dumps(segment_events("g", 1)[0])
    no_user = orjson.dumps({"type": "track", "event": "x", "messageId": "bad-1"})
    path = write_lines(tmp_path / "mixed.ndjson", [good, b"{oops", no_user, no_user])
    publisher = RecordingPublisher(settings)
    result = await run(path, settings, publisher)
    assert stored_ids(settings, publisher) == ["g-m0"]
    rejected = rejections(settings, publisher)
    assert [r["endpoint"] for r in rejected] == ["import/segment", "import/segment"]
    assert rejected[0]["message_id"] == "bad-1"
    # the debugger shows the refused record as the file has it
    assert orjson.loads(rejected[0]["body"]) == {
        "type": "track",
        "event": "x",
        "messageId": "bad-1",
    }
    tally = result.tally
    assert (tally.accepted, tally.refused, tally.skipped.count) == (1, 2, 1)
    assert tally.skipped.where == ["line 2"]
    [(reason, counted)] = tally.reasons.items()
    assert reason.startswith("userId: ")
    assert counted.where == ["line 3", "line 4"]
    assert not tally.clean


async def test_stop_saves_after_the_acknowledged_batch_and_a_rerun_resumes(
    tmp_path: Path, settings: Settings
) -> None:
    events = segment_events("s", 350)
    path = write_ndjson(tmp_path / "events.ndjson", events)
    first = RecordingPublisher(settings)
    stopped = await run(path, settings, first, stop_after_first_batch=True)
    assert stopped.stopped
    assert len(stored_ids(settings, first)) == 100
    saved = checkpoint_of(path, settings)
    assert saved["done"] is False and saved["tally"]["records"] == 100

    second = RecordingPublisher(settings)
    resumed = await run(path, settings, second)
    assert not resumed.stopped
    assert stored_ids(settings, first) + stored_ids(settings, second) == [
        e["messageId"] for e in events
    ]
    assert resumed.tally.accepted == 350  # the whole file, both runs


async def test_a_finished_file_is_not_sent_again_unless_restarted(
    tmp_path: Path, settings: Settings
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", segment_events("d", 30))
    await run(path, settings, RecordingPublisher(settings))
    again = RecordingPublisher(settings)
    result = await run(path, settings, again)
    assert result.already_done and result.tally.accepted == 30
    assert again.records == []
    restarted = RecordingPublisher(settings)
    await run(path, settings, restarted, restart=True)
    assert len(stored_ids(settings, restarted)) == 30


async def test_a_changed_file_is_a_new_import(tmp_path: Path, settings: Settings) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", segment_events("c", 10))
    await run(path, settings, RecordingPublisher(settings))
    write_ndjson(path, segment_events("c", 12))
    publisher = RecordingPublisher(settings)
    await run(path, settings, publisher)
    assert len(stored_ids(settings, publisher)) == 12


async def test_a_broker_that_does_not_acknowledge_leaves_the_checkpoint_where_it_was(
    tmp_path: Path, settings: Settings
) -> None:
    path = write_ndjson(tmp_path / "events.ndjson", segment_events("f", 250))
    await run(path, settings, RecordingPublisher(settings), stop_after_first_batch=True)
    with pytest.raises(BrokerDown):
        await run(path, settings, RecordingPublisher(settings, fail=True))
    saved = checkpoint_of(path, settings)
    assert saved["tally"]["records"] == 100
    assert load_checkpoint(
        checkpoint_path(settings.data_dir / "imports", FileIdentity.of(path)),
        FileIdentity.of(path),
    )


async def test_a_damaged_file_publishes_what_came_before_the_damage(
    tmp_path: Path, settings: Settings
) -> None:
    whole = write_ndjson(tmp_path / "whole.gz", segment_events("t", 5000), gz=True)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    publisher = RecordingPublisher(settings)
    with pytest.raises(UnreadableFile, match=r"cut.gz: unreadable: EOFError.* records \(those"):
        await run(cut, settings, publisher)
    stored = stored_ids(settings, publisher)
    assert 0 < len(stored) < 5000
    assert checkpoint_of(cut, settings)["tally"]["records"] == len(stored)
