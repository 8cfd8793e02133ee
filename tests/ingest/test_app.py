"""The ingest process's own set-up (ingest/app.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ingest.app import YOUNG_GC_THRESHOLD, settle_heap


@pytest.fixture
def gc_state() -> Iterator[None]:
    """settle_heap changes the test process's collector: put it back."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("gc_state")
def test_settle_heap_freezes_the_startup_heap_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    gc.unfreeze()
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GC_THRESHOLD, before[1], before[2])
    # cyclic garbage is still collected
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
