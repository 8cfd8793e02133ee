"""The events table's DDL: a fresh table, the upgrade of one made before issue 14, and the
typed properties that must never fail an INSERT. Each case in a process of its own, with its
own chDB directory (chDB allows one per process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from infra.warehouse import BY_NAME_PROJECTION, COUNTS_PROJECTION

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def probe(tmp_path: Path, start: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.warehouse_probe", str(tmp_path / "chdb"), start],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


def test_an_old_table_gains_the_typed_properties_and_the_projections(tmp_path: Path) -> None:
    result = probe(tmp_path, "old")
    assert result["projections"] == sorted([COUNTS_PROJECTION, BY_NAME_PROJECTION])
    # the parts written before the upgrade get both projections (the background mutation)
    assert set(result["projection_parts"]) == {COUNTS_PROJECTION, BY_NAME_PROJECTION}
    # rows written before the upgrade have typed properties, computed when read
    assert result["rows"] == [
        ['{"plan":"pro"}', '{"plan":"pro"}'],
        ['{"plan":"free"}', '{"plan":"free"}'],
    ]


def test_properties_the_json_type_refuses_are_stored_untyped_not_lost(tmp_path: Path) -> None:
    result = probe(tmp_path, "new")
    assert result["projections"] == sorted([COUNTS_PROJECTION, BY_NAME_PROJECTION])
    rows = result["rows"]
    # every row stored, its text exactly as sent
    assert [text for text, _ in rows] == [
        '{"plan":"pro","plan":"free"}',
        '{"a.b":1,"a":{"b":2}}',
        '{"price":12.5,"company":{"name":"Initech"}}',
        '{"at":"2026-11-03T10:00:00+02:00","day":"1900-01-01"}',
    ]
    # a key given twice, or a dotted key beside the same nested one: typed as {} (unfilterable)
    assert rows[0][1] == "{}"
    assert rows[1][1] == "{}"
    assert orjson.loads(rows[2][1]) == {"price": 12.5, "company": {"name": "Initech"}}
    # strings that look like dates stay the text sent (not a DateTime moved to UTC)
    assert result["date_like"] == [["2026-11-03T10:00:00+02:00", "1900-01-01", "Dynamic"]]
