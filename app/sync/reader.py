"""Streaming readers for sync input files (JSONL or CSV, optionally .gz) and batching."""

from __future__ import annotations

import csv
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

Record = dict[str, Any]
LIST_COLUMNS = frozenset({"tags", "topicIds"})
FLOAT_COLUMNS = frozenset({"weight"})
_SNAKE = re.compile(r"_([a-z0-9])")


@dataclass(slots=True)
class BadLine:
    """An input line that could not be read as a record; it goes to the dead-letter file."""

    line: int
    reason: str
    text: str


@dataclass(slots=True)
class Batch:
    index: int  # 0-based position of the batch in the file
    first_line: int  # 1-based line (or CSV row) of its first record
    records: list[Record] = field(default_factory=list)


def camel(key: str) -> str:
    """snake_case -> camelCase (camelCase stays as it is): the contract's input field names."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), key)


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def file_format(path: Path) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith(".csv"):
        return "csv"
    raise ValueError(f"{path}: unknown input format; use .jsonl or .csv (optionally .gz)")


def count_records(path: Path) -> int | None:
    """Records in an uncompressed file (its lines, less a CSV header) for the progress bar's
    total; None when the size is not known up front (gzip). A fast pass over the bytes."""
    if path.suffix == ".gz" or not path.is_file():
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    lines += last != b"\n"
    return max(lines - (file_format(path) == "csv"), 0)


def read_records(path: Path) -> Iterator[tuple[int, Record | BadLine]]:
    """Yield (line number, record or BadLine) one at a time; the file is never loaded whole."""
    with _open_text(path) as handle:
        if file_format(path) == "csv":
            yield from _csv_records(handle)
        else:
            yield from _jsonl_records(handle)


def _jsonl_records(lines: Iterable[str]) -> Iterator[tuple[int, Record | BadLine]]:
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield number, BadLine(number, f"not valid JSON: {exc}", text.rstrip("\n"))
            continue
        if not isinstance(value, dict):
            yield number, BadLine(number, "not a JSON object", text.rstrip("\n"))
            continue
        yield number, {camel(k): v for k, v in value.items()}


def _csv_records(handle: IO[str]) -> Iterator[tuple[int, Record | BadLine]]:
    reader = csv.DictReader(handle)
    columns = [camel(c.strip()) for c in reader.fieldnames or []]
    for row in reader:
        number = reader.line_num
        if None in row:
            text = ",".join(str(v) for v in row.values())
            yield number, BadLine(number, "more cells than header columns", text)
            continue
        try:
            yield number, {c: csv_cell(c, v) for c, v in zip(columns, row.values(), strict=True)}
        except ValueError as exc:
            yield number, BadLine(number, str(exc), ",".join(v or "" for v in row.values()))


def csv_cell(column: str, value: str | None) -> Any:
    """One CSV cell as a GraphQL input value: empty -> null, lists as JSON or a|b|c, numbers."""
    if value is None or value == "":
        return None
    if column in LIST_COLUMNS:
        if value.lstrip().startswith("["):
            try:
                items = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ValueError(f"{column}: not a JSON array: {value!r}") from None
            if not isinstance(items, list):
                raise ValueError(f"{column}: not a JSON array: {value!r}")
            return items
        return [item.strip() for item in value.split("|") if item.strip()]
    if column in FLOAT_COLUMNS:
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{column}: not a number: {value!r}") from None
    return value


def batches(
    items: Iterable[tuple[int, Record | BadLine]], size: int, bad: list[BadLine]
) -> Iterator[Batch]:
    """Group records into batches of `size`; unreadable lines are appended to `bad` instead."""
    batch: Batch | None = None
    index = 0
    for number, item in items:
        if isinstance(item, BadLine):
            bad.append(item)
            continue
        if batch is None:
            batch = Batch(index, number)
        batch.records.append(item)
        if len(batch.records) == size:
            yield batch
            index += 1
            batch = None
    if batch is not None:
        yield batch
