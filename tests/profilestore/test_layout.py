"""The applied and in-flight marks: what the materializer writes is what the query service and
the next worker read back, and a mark that cannot name its topic's life vouches for nothing."""

from __future__ import annotations

import pytest

from profilestore.layout import (
    AppliedMark,
    InFlightMark,
    encode_applied,
    encode_in_flight,
    parse_applied,
    parse_in_flight,
)

TOPIC_ID = "0190a1b2c3d4e5f60718293a4b5c6d7e"


@pytest.mark.parametrize("offset", [0, 7, 2**63 - 1])
def test_applied_marks_round_trip(offset: int) -> None:
    stored = encode_applied(TOPIC_ID, offset).encode()  # Redis hands back bytes
    assert parse_applied(stored) == AppliedMark(TOPIC_ID, offset)


def test_in_flight_marks_round_trip() -> None:
    stored = encode_in_flight(TOPIC_ID, 10, 20).encode()
    assert parse_in_flight(stored) == InFlightMark(TOPIC_ID, 10, 20)


def test_absent_marks_are_none() -> None:
    assert parse_applied(None) is None
    assert parse_in_flight(None) is None


def test_an_applied_mark_from_before_topic_ids_vouches_for_nothing() -> None:
    assert parse_applied(b"57") is None


def test_an_in_flight_mark_from_before_topic_ids_is_kept_without_a_life() -> None:
    # Honoured by the worker (a look-up too many is harmless; a skipped one is not).
    assert parse_in_flight(b"3:9") == InFlightMark(None, 3, 9)
