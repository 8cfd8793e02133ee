"""How far the import of a file got: the records the broker acknowledged (and what they were),
saved after every acknowledged batch in PS_DATA_DIR/imports/, one file per input, named by the
input's absolute path, size and modification time (a changed file is a new import). Running
the same command again resumes after those records; `--restart` ignores the checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from profilestream.importing.tally import Tally

VERSION = 1


@dataclass(frozen=True)
class FileIdentity:
    """An input file as a checkpoint knows it."""

    path: str  # absolute
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        stat = path.stat()
        return cls(str(path.resolve()), stat.st_size, stat.st_mtime_ns)

    def key(self) -> str:
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Checkpoint:
    identity: FileIdentity
    format: str
    source: str
    done: bool = False
    tally: Tally = field(default_factory=Tally)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "path": self.identity.path,
            "size": self.identity.size,
            "mtime_ns": self.identity.mtime_ns,
            "format": self.format,
            "source": self.source,
            "done": self.done,
            "tally": self.tally.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            identity=FileIdentity(str(data["path"]), int(data["size"]), int(data["mtime_ns"])),
            format=str(data["format"]),
            source=str(data["source"]),
            done=bool(data["done"]),
            tally=Tally.from_json(data["tally"]),
        )


def checkpoint_path(imports_dir: Path, identity: FileIdentity) -> Path:
    return imports_dir / f"{identity.key()}.json"


def load_checkpoint(path: Path, identity: FileIdentity) -> Checkpoint | None:
    """The saved checkpoint of `identity`, or None (none, unreadable, or another file's)."""
    try:
        data = json.loads(path.read_text())
        checkpoint = Checkpoint.from_json(data)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    if data.get("version") != VERSION or checkpoint.identity != identity:
        return None
    return checkpoint


def resumable(checkpoint: Checkpoint | None, format_: str, source: str) -> Checkpoint | None:
    """The checkpoint, if it was an import of the same format for the same source."""
    if checkpoint is None or checkpoint.format != format_ or checkpoint.source != source:
        return None
    return checkpoint


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a crash leaves the old checkpoint or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(checkpoint.to_json()))
    os.replace(partial, path)
