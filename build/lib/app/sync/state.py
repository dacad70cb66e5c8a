"""Files the sync client keeps beside its input: the resume state and the dead-letter log."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson


def state_path(source: Path) -> Path:
    return source.with_name(source.name + ".sync-state.json")


def dead_letter_path(source: Path) -> Path:
    return source.with_name(source.name + ".dead-letters.jsonl")


class ResumeState:
    """Which batches of one input file the server acknowledged, for `--resume`.

    Keyed by the file's absolute path, size, mtime, the entity and the batch size: if any of them
    changed, nothing is skipped (the batches would not be the same)."""

    def __init__(self, source: Path, entity: str, batch_size: int) -> None:
        self.path = state_path(source)
        stat = source.stat()
        self.key = {
            "path": str(source.resolve()),
            "size": stat.st_size,
            "mtimeNs": stat.st_mtime_ns,
            "entity": entity,
            "batchSize": batch_size,
        }
        self.acked: set[int] = set()

    def load(self) -> ResumeState:
        """Read the acknowledged batches, if the state file matches this file and batch size."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return self
        if isinstance(data, dict) and data.get("key") == self.key:
            self.acked = {int(i) for i in data.get("acked", [])}
        return self

    def ack(self, index: int) -> None:
        self.acked.add(index)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(orjson.dumps({"key": self.key, "acked": sorted(self.acked)}))
        os.replace(tmp, self.path)


class DeadLetters:
    """Append-only JSONL of what did not make it: failed batches, rejected records, bad lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0

    def append(self, kind: str, **fields: Any) -> None:
        entry = {"kind": kind, "at": datetime.now(UTC).isoformat(), **fields}
        with self.path.open("ab") as handle:
            handle.write(orjson.dumps(entry) + b"\n")
        self.written += 1

    def batch(self, entity: str, key: str, records: list[dict[str, Any]], error: str) -> None:
        self.append("batch", entity=entity, idempotencyKey=key, error=error, records=records)

    def record(self, entity: str, batch_id: str, reason: str, index: int, record: Any) -> None:
        self.append(
            "record", entity=entity, batchId=batch_id, index=index, reason=reason, record=record
        )

    def take(self) -> Iterator[dict[str, Any]]:
        """Move the file aside and yield its entries (an earlier interrupted take goes first);
        the side file is removed once every entry was yielded, so new failures start afresh."""
        aside = self.path.with_name(self.path.name + ".retrying")
        if self.path.exists():
            if aside.exists():
                with aside.open("ab") as out:
                    out.write(self.path.read_bytes())
                self.path.unlink()
            else:
                os.replace(self.path, aside)
        if not aside.exists():
            return
        with aside.open("rb") as handle:
            for line in handle:
                if line.strip():
                    yield orjson.loads(line)
        aside.unlink()
