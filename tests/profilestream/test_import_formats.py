"""Format detection from content (never from the name), and `--format` overriding it."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from profilestream.importing.formats import Format, UnknownFormat, detect, user_id_column
from profilestream.importing.records import Layout, read_head
from tests.support.import_files import (
    amplitude_events,
    mixpanel_events,
    ndjson_bytes,
    segment_events,
    write_amplitude_zip,
    write_batch_document,
    write_json_array,
    write_ndjson,
    write_users_csv,
)


def detected(path: Path, forced: Format | None = None) -> tuple[Format, Layout]:
    return detect(read_head(path), forced)


@pytest.mark.parametrize("gz", [False, True])
def test_each_format_is_told_from_its_content(tmp_path: Path, gz: bool) -> None:
    assert detected(write_ndjson(tmp_path / "a", segment_events("s", 3), gz=gz)) == (
        Format.SEGMENT,
        Layout.NDJSON,
    )
    assert detected(write_json_array(tmp_path / "b", segment_events("s", 3), gz=gz)) == (
        Format.SEGMENT,
        Layout.JSON_ARRAY,
    )
    assert detected(write_ndjson(tmp_path / "c", mixpanel_events("m", 3), gz=gz)) == (
        Format.MIXPANEL,
        Layout.NDJSON,
    )
    # a single hour of Amplitude's export: one .json.gz
    assert detected(write_ndjson(tmp_path / "d", amplitude_events("a", 3), gz=gz)) == (
        Format.AMPLITUDE,
        Layout.NDJSON,
    )


def test_documents_zips_and_csvs(tmp_path: Path) -> None:
    assert detected(write_batch_document(tmp_path / "a.json", segment_events("s", 2))) == (
        Format.SEGMENT,
        Layout.JSON_DOCUMENT,
    )
    one_line = tmp_path / "b.json"
    one_line.write_bytes(orjson.dumps({"batch": segment_events("s", 2)}))
    assert detected(one_line) == (Format.SEGMENT, Layout.JSON_DOCUMENT)
    zipped = write_amplitude_zip(tmp_path / "c.zip", amplitude_events("a", 4), per_member=2)
    assert detected(zipped) == (Format.AMPLITUDE, Layout.ZIP)
    users = write_users_csv(
        tmp_path / "d.csv", [{"user_id": "u1", "plan": "pro"}], id_column="user_id"
    )
    assert detected(users) == (Format.USERS, Layout.CSV)


def test_forced_format_wins_over_detection(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "a", mixpanel_events("m", 2))
    assert detected(path, Format.SEGMENT) == (Format.SEGMENT, Layout.NDJSON)


@pytest.mark.parametrize(
    "content",
    [b"hello world\n", b"name,plan\nada,pro\n", b"", gzip.compress(b"\x00\x01binary")],
)
def test_unknown_content_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "unknown"
    path.write_bytes(content)
    with pytest.raises(UnknownFormat):
        detected(path)


def test_csv_and_event_formats_do_not_mix(tmp_path: Path) -> None:
    users = write_users_csv(tmp_path / "u.csv", [{"id": "u1"}], id_column="id")
    with pytest.raises(UnknownFormat):
        detected(users, Format.SEGMENT)
    events = tmp_path / "e.ndjson"
    events.write_bytes(ndjson_bytes(segment_events("s", 1)))
    with pytest.raises(UnknownFormat):
        detected(events, Format.USERS)


def test_user_id_column_prefers_user_id_names_in_any_case() -> None:
    assert user_id_column(["id", "UserID", "plan"]) == "UserID"
    assert user_id_column(["email", "user_id"]) == "user_id"
    assert user_id_column(["ID"]) == "ID"
    assert user_id_column(["email"]) is None
