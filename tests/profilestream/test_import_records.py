"""The import's readers: every layout, gzip or not, each record with where it is, and lines
that are not JSON reported by their line numbers."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from profilestream.importing import records as records_module
from profilestream.importing.records import (
    Layout,
    NotJson,
    Read,
    Record,
    UnreadableFile,
    json_array_records,
    open_input,
    read_head,
    read_records,
)
from tests.support.import_files import (
    amplitude_events,
    segment_events,
    write_amplitude_zip,
    write_batch_document,
    write_json_array,
    write_lines,
    write_ndjson,
    write_users_csv,
)


def read_all(path: Path, layout: Layout) -> list[Read]:
    with open_input(path) as opened:
        return list(read_records(opened, layout))


def values(reads: list[Read]) -> list[Any]:
    return [r.value for r in reads if isinstance(r, Record)]


@pytest.mark.parametrize("gz", [False, True])
def test_ndjson_gzip_or_not(tmp_path: Path, gz: bool) -> None:
    events = segment_events("n", 5)
    path = write_ndjson(tmp_path / "events.log", events, gz=gz)  # the name says nothing
    reads = read_all(path, Layout.NDJSON)
    assert values(reads) == events
    assert [r.where for r in reads] == [f"line {n}" for n in range(1, 6)]


def test_ndjson_reports_lines_that_are_not_json_and_keeps_the_others(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "events.ndjson",
        [b'{"type": "track", "n": 1}', b"", b"{not json", b'{"type": "track", "n": 2}', b"\xff"],
    )
    reads = read_all(path, Layout.NDJSON)
    assert [(type(r).__name__, r.where) for r in reads] == [
        ("Record", "line 1"),
        ("NotJson", "line 3"),
        ("Record", "line 4"),
        ("NotJson", "line 5"),
    ]


@pytest.mark.parametrize("gz", [False, True])
def test_json_array_is_streamed_item_by_item(
    tmp_path: Path, gz: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A buffer smaller than an item: every item is decoded across refills.
    monkeypatch.setattr(records_module, "CHUNK_CHARS", 7)
    events = segment_events("a", 30)
    events[3]["properties"] = {"price": 1234567890.125, "text": 'quote " and ] and , inside'}
    path = write_json_array(tmp_path / "events.json", events, gz=gz)
    reads = read_all(path, Layout.JSON_ARRAY)
    assert values(reads) == events
    assert reads[-1].where == "item 30"


def test_json_array_of_numbers_is_not_cut_at_the_buffer_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(records_module, "CHUNK_CHARS", 3)
    reads = list(json_array_records(io.BytesIO(b"[123456, 7, 89012]")))
    assert values(reads) == [123456, 7, 89012]


def test_json_array_with_a_broken_item_reports_where_and_stops() -> None:
    reads = list(json_array_records(io.BytesIO(b'[{"a": 1}, {"b": oops}, {"c": 3}]')))
    assert isinstance(reads[0], Record)
    assert isinstance(reads[1], NotJson) and reads[1].where == "item 2"
    assert len(reads) == 2


def test_not_an_array_is_unreadable() -> None:
    with pytest.raises(UnreadableFile):
        list(json_array_records(io.BytesIO(b'{"a": 1}')))


def test_batch_document_gives_its_envelope_to_each_event(tmp_path: Path) -> None:
    events = segment_events("b", 3)
    path = write_batch_document(tmp_path / "batch.json", events, context={"app": {"name": "x"}})
    reads = read_all(path, Layout.JSON_DOCUMENT)
    assert values(reads) == events
    assert all(
        isinstance(r, Record) and r.envelope == {"context": {"app": {"name": "x"}}} for r in reads
    )
    assert reads[0].where == "batch item 1"


def test_amplitude_zip_reads_every_member_in_order(tmp_path: Path) -> None:
    events = amplitude_events("z", 7)
    path = write_amplitude_zip(tmp_path / "export.zip", events, per_member=3)
    reads = read_all(path, Layout.ZIP)
    assert values(reads) == events
    assert reads[3].where == "123456/123456_2025-03-01_1#0.json.gz line 1"


def test_users_csv_rows_with_their_line_numbers(tmp_path: Path) -> None:
    path = write_users_csv(
        tmp_path / "users.csv",
        [{"userId": "u1", "plan": "pro"}, {"userId": "", "plan": ""}, {"userId": "u2"}],
    )
    reads = read_all(path, Layout.CSV)
    assert values(reads) == [{"userId": "u1", "plan": "pro"}, {"userId": "u2", "plan": ""}]
    assert [r.where for r in reads] == ["line 2", "line 4"]


def test_read_head_inflates_gzip(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.gz", segment_events("h", 2), gz=True)
    assert read_head(path).startswith(b'{"type":"track"')


def test_position_follows_the_bytes_on_disk(tmp_path: Path) -> None:
    # Several times gzip's 128 KiB read buffer, or the first record's read takes it all.
    path = write_ndjson(tmp_path / "e.gz", segment_events("p", 100_000), gz=True)
    assert path.stat().st_size > 4 * 128 * 1024
    with open_input(path) as opened:
        reads = read_records(opened, Layout.NDJSON)
        next(reads)
        early = opened.position()
        for _ in reads:
            pass
        assert 0 < early < opened.position() <= path.stat().st_size


def test_a_truncated_gzip_gives_its_records_then_unreadable(tmp_path: Path) -> None:
    whole = write_ndjson(tmp_path / "whole.gz", segment_events("t", 5000), gz=True)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    got: list[Read] = []
    with pytest.raises(UnreadableFile, match="EOFError"), open_input(cut) as opened:
        got.extend(read_records(opened, Layout.NDJSON))
    assert 0 < len(got) < 5000
