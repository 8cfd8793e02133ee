"""Pure: what an import of one file accepted, refused (by field and reason, with where the
first few were) and skipped (lines that are not JSON), and the summary printed from it. A
tally is saved in the file's checkpoint, so a resumed import sums up the whole file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.normalize import InvalidEvent

# How many places of each reason a summary names.
WHERE_KEPT = 5
# How many reasons a summary lists (the most frequent).
REASONS_SHOWN = 20


@dataclass
class Counted:
    count: int = 0
    where: list[str] = field(default_factory=list)

    def add(self, where: str) -> None:
        self.count += 1
        if len(self.where) < WHERE_KEPT:
            self.where.append(where)


@dataclass
class Tally:
    records: int = 0  # records read and settled (accepted, refused or skipped)
    accepted: int = 0  # records the broker acknowledged
    events: int = 0  # events they became (a record of a provider may become several, or none)
    refused: int = 0
    reasons: dict[str, Counted] = field(default_factory=dict)  # "field: reason" -> where
    skipped: Counted = field(default_factory=Counted)

    def accept(self, events: int) -> None:
        self.records += 1
        self.accepted += 1
        self.events += events

    def refuse(self, where: str, refusal: InvalidEvent) -> None:
        """One refused record, counted under each of its field errors."""
        self.records += 1
        self.refused += 1
        for error in refusal.errors:
            self.reasons.setdefault(f"{error.field}: {error.reason}", Counted()).add(where)

    def skip(self, where: str) -> None:
        self.records += 1
        self.skipped.add(where)

    @property
    def clean(self) -> bool:
        """Every record was accepted."""
        return not self.refused and not self.skipped.count

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "accepted": self.accepted,
            "events": self.events,
            "refused": self.refused,
            "reasons": {k: [v.count, v.where] for k, v in self.reasons.items()},
            "skipped": [self.skipped.count, self.skipped.where],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        skipped = data.get("skipped") or [0, []]
        return cls(
            records=int(data.get("records", 0)),
            accepted=int(data.get("accepted", 0)),
            events=int(data.get("events", 0)),
            refused=int(data.get("refused", 0)),
            reasons={
                k: Counted(int(v[0]), [str(w) for w in v[1]])
                for k, v in (data.get("reasons") or {}).items()
            },
            skipped=Counted(int(skipped[0]), [str(w) for w in skipped[1]]),
        )


def _places(counted: Counted) -> str:
    more = ", ..." if counted.count > len(counted.where) else ""
    return f"({', '.join(counted.where)}{more})"


def summary_lines(name: str, tally: Tally) -> list[str]:
    """The summary of one file: counts, then each refusal reason with where, then the skips."""
    lines = [
        f"{name}: {tally.records:,} records: {tally.accepted:,} accepted "
        f"({tally.events:,} events), {tally.refused:,} refused, "
        f"{tally.skipped.count:,} skipped (not JSON)"
    ]
    ranked = sorted(tally.reasons.items(), key=lambda item: -item[1].count)
    for reason, counted in ranked[:REASONS_SHOWN]:
        lines.append(f"  refused {counted.count:,} x {reason} {_places(counted)}")
    if len(ranked) > REASONS_SHOWN:
        lines.append(f"  ... and {len(ranked) - REASONS_SHOWN} other reasons")
    if tally.skipped.count:
        lines.append(f"  skipped {tally.skipped.count:,} x not JSON {_places(tally.skipped)}")
    return lines
