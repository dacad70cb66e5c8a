"""The sync client: batches records to the ingestion mutations, gzipped, idempotent, retried."""

from __future__ import annotations

import gzip
import hashlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from opentelemetry.trace import TracerProvider
from tqdm import tqdm

from app.sync.entities import Entity, entity
from app.sync.reader import BadLine, Batch, Record, batches, camel, count_records, read_records
from app.sync.report import graphql_errors, reason_counts, summarise
from app.sync.retry import RetryPolicy, is_transient_status, retry_after, unavailable_only
from app.sync.state import DeadLetters, ResumeState, dead_letter_path
from app.sync.tracing import TraceContext

log = logging.getLogger("app.sync")
MIN_BATCH, MAX_BATCH = 500, 10_000
USER_AGENT = "bookbridge-sync/0.1"


@dataclass(frozen=True, slots=True)
class RecordError:
    index: int
    id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The server's BatchResult for one batch (for a replay: the stored original result)."""

    batch_id: str
    replayed: bool
    received: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    rejected: list[RecordError]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult:
        return cls(
            batch_id=str(data["batchId"]),
            replayed=bool(data["replayed"]),
            received=int(data["received"]),
            inserted=int(data["inserted"]),
            updated=int(data["updated"]),
            unchanged=int(data["unchanged"]),
            duplicates=int(data["duplicates"]),
            rejected=[
                RecordError(int(r["index"]), r.get("id"), r["reason"]) for r in data["rejected"]
            ],
        )


class BatchFailed(Exception):
    """A batch the server did not accept: after the last retry, or at once when not transient."""

    def __init__(self, message: str, *, transient: bool, attempts: int) -> None:
        super().__init__(message)
        self.transient = transient
        self.attempts = attempts


@dataclass(slots=True)
class SyncSummary:
    """What one sync run did. Replayed batches count with their original result."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    replayed_batches: int = 0
    skipped_batches: int = 0
    failed_batches: int = 0
    failed_records: int = 0
    unreadable_lines: int = 0
    seconds: float = 0.0
    dead_letter_file: Path | None = None
    results: list[BatchResult] = field(default_factory=list, repr=False)
    reasons: Counter[str] = field(default_factory=Counter, repr=False)  # rejected, per reason

    def add(self, result: BatchResult) -> None:
        self.results.append(result)
        self.batches += 1
        self.replayed_batches += result.replayed
        self.received += result.received
        self.inserted += result.inserted
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.duplicates += result.duplicates
        self.rejected += len(result.rejected)
        self.reasons.update(r.reason for r in result.rejected)

    def report(self) -> str:
        rows = [
            ("records received", self.received),
            ("inserted", self.inserted),
            ("updated", self.updated),
            ("unchanged", self.unchanged),
            ("duplicates", self.duplicates),
            ("rejected", self.rejected),
            ("batches sent", self.batches),
            ("  of which replayed", self.replayed_batches),
            ("batches skipped (resume)", self.skipped_batches),
            ("failed batches", self.failed_batches),
            ("  records in them", self.failed_records),
            ("unreadable lines", self.unreadable_lines),
        ]
        lines = [f"  {name:<26}{value:>10}" for name, value in rows]
        lines.append(f"  {'seconds':<26}{self.seconds:>10.1f}")
        if self.reasons:
            lines.append("  rejected because")
            lines.extend(reason_counts(self.reasons))
        if self.dead_letter_file is not None and (self.rejected or self.failed_batches):
            lines.append(f"  dead letters in {self.dead_letter_file}")
        return "\n".join(lines)


def batch_key(entity_name: str, records: list[Record], salt: str = "") -> str:
    """Stable per batch content: the same batch of the same file always gets the same key.
    `salt` tells apart resends of the same records that must apply afresh (dead letters)."""
    digest = hashlib.sha256(f"{entity_name}\n{salt}\n".encode())
    digest.update(orjson.dumps(records, option=orjson.OPT_SORT_KEYS))
    return f"sync:{entity_name}:{digest.hexdigest()}"


def graphql_url(url: str) -> str:
    """The /graphql endpoint of a server URL; ValueError (a usage error, never retried) for a
    URL without http:// or https:// or without a host."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"--url {url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(
            f"--url {url!r} needs http:// or https:// and a host, e.g. http://127.0.0.1:8000"
        )
    return str(parsed.copy_with(path="/graphql")) if parsed.path in ("", "/") else url


class SyncClient:
    """Pushes records to bookbridge: `sync_file` for a JSONL/CSV file, `send_batch` for one batch."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        batch_size: int = 1000,
        *,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        timeout: float = 120.0,
        progress: bool | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        if not MIN_BATCH <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be {MIN_BATCH} to {MAX_BATCH}, got {batch_size}")
        self.url = graphql_url(url)
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy(max_attempts, backoff_base, backoff_cap)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.sleep = sleep
        self.trace = TraceContext(tracer_provider)
        headers = {
            "content-type": "application/json",
            "content-encoding": "gzip",
            "accept-encoding": "gzip",
            "user-agent": USER_AGENT,
        }
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=10.0), transport=transport
        )

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def send_batch(
        self, entity_name: str, records: list[Record], idempotency_key: str | None = None
    ) -> BatchResult:
        """Send one batch, retrying transient failures; raises BatchFailed when it cannot."""
        ent = entity(entity_name)
        key = idempotency_key or batch_key(ent.name, records)
        payload = {
            "query": ent.document,
            "variables": {"input": {"idempotencyKey": key, "records": records}},
        }
        body = gzip.compress(orjson.dumps(payload), compresslevel=6)
        error = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            wait: float | None = None
            with self.trace.request(f"sync {ent.mutation}", records=len(records)) as headers:
                try:
                    response = self.http.post(self.url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    unavailable = unavailable_only(response)  # the database, for now
                    if response.status_code == 200 and not unavailable:
                        return _result(ent, response, attempt)
                    error = f"HTTP {response.status_code}: {_message(response)}"
                    if not unavailable and not is_transient_status(response.status_code):
                        raise BatchFailed(error, transient=False, attempts=attempt)
                    wait = retry_after(response)
            if attempt < self.retry.max_attempts:
                delay = self.retry.delay(attempt, wait)
                log.warning("%s: %s; retry %d in %.1fs", ent.mutation, error, attempt, delay)
                self.sleep(delay)
        raise BatchFailed(
            f"{error} (gave up after {self.retry.max_attempts} attempts)",
            transient=True,
            attempts=self.retry.max_attempts,
        )

    def sync_file(
        self,
        entity_name: str,
        path: str | Path,
        *,
        resume: bool = False,
        dead_letter: str | Path | None = None,
    ) -> SyncSummary:
        """Stream a JSONL or CSV file to the server in batches; nothing stops it but the end.

        Failed batches and rejected records go to the dead-letter file; with `resume`, batches
        the server acknowledged in an earlier run of this same file are skipped."""
        ent = entity(entity_name)
        source = Path(path)
        dead = DeadLetters(Path(dead_letter) if dead_letter else dead_letter_path(source))
        state = ResumeState(source, ent.name, self.batch_size)
        if resume:
            state.load()
        bad: list[BadLine] = []
        summary = SyncSummary(dead_letter_file=dead.path)
        started = time.perf_counter()
        total = count_records(source) if self.progress else None
        with self._bar(source.name, total) as bar:
            for batch in batches(read_records(source), self.batch_size, bad):
                skipped = batch.index in state.acked
                self._unreadable(ent, bad, dead, summary, write=not skipped)
                if skipped:
                    summary.skipped_batches += 1
                elif self._deliver(ent, batch.records, None, dead, summary, batch):
                    state.ack(batch.index)
                bar.update(len(batch.records))
                bar.set_postfix(failed=summary.failed_batches, rejected=summary.rejected)
            self._unreadable(ent, bad, dead, summary, write=True)
            if total is not None and bar.n != total:  # blank lines, CSV cells with newlines
                bar.total = bar.n
                bar.refresh()
        summary.seconds = time.perf_counter() - started
        return summary

    def sync_records(self, entity_name: str, records: Iterable[Record]) -> SyncSummary:
        """Send in-memory records in batches (no files): failures raise BatchFailed."""
        ent = entity(entity_name)
        summary = SyncSummary()
        started = time.perf_counter()
        camel_records = ({camel(k): v for k, v in r.items()} for r in records)
        for chunk in _chunks(camel_records, self.batch_size):
            summary.add(self.send_batch(ent.name, chunk))
        summary.seconds = time.perf_counter() - started
        return summary

    def retry_dead_letters(self, path: str | Path) -> SyncSummary:
        """Resend a dead-letter file: failed batches with their own key (a batch that did apply
        after all replays), rejected records as new batches keyed by content and the batches
        that rejected them (so a fixed reference applies afresh). What fails again is written
        to a fresh dead-letter file at `path`."""
        dead = DeadLetters(Path(path))
        summary = SyncSummary(dead_letter_file=dead.path)
        pending: dict[str, tuple[list[Record], set[str]]] = {}
        seen: set[bytes] = set()
        started = time.perf_counter()
        with self._bar(dead.path.name) as bar:

            def flush(name: str) -> None:
                records, origins = pending.pop(name)
                key = batch_key(name, records, salt=",".join(sorted(origins)))
                self._deliver(entity(name), records, key, dead, summary)
                bar.update(len(records))

            for entry in dead.take():
                fingerprint = _fingerprint(entry)
                if fingerprint in seen:
                    continue  # the same failure logged twice (e.g. a rerun replayed it)
                seen.add(fingerprint)
                if entry["kind"] == "batch":
                    ent = entity(entry["entity"])
                    self._deliver(ent, entry["records"], entry["idempotencyKey"], dead, summary)
                    bar.update(len(entry["records"]))
                elif entry["kind"] == "record" and entry.get("record") is not None:
                    records, origins = pending.setdefault(entry["entity"], ([], set()))
                    records.append(entry["record"])
                    origins.add(str(entry.get("batchId")))
                    if len(records) == self.batch_size:
                        flush(entry["entity"])
                else:
                    summary.unreadable_lines += 1
                    dead.append(**{k: v for k, v in entry.items() if k != "at"})
            for name in list(pending):
                flush(name)
        summary.seconds = time.perf_counter() - started
        return summary

    def _deliver(
        self,
        ent: Entity,
        records: list[Record],
        key: str | None,
        dead: DeadLetters,
        summary: SyncSummary,
        batch: Batch | None = None,
    ) -> bool:
        key = key or batch_key(ent.name, records)
        where = f" (batch {batch.index}, line {batch.first_line})" if batch else ""
        try:
            result = self.send_batch(ent.name, records, key)
        except BatchFailed as exc:  # the log line is short; the dead letter has every error
            log.error("%s%s failed: %s", ent.mutation, where, graphql_errors(str(exc), records))
            summary.failed_batches += 1
            summary.failed_records += len(records)
            dead.batch(ent.name, key, records, str(exc))
            return False
        summary.add(result)
        if result.rejected:
            reasons = ((r.reason, r.id) for r in result.rejected)
            log.warning("%s%s rejected %s", ent.mutation, where, summarise(reasons))
        for error in result.rejected:
            record = records[error.index] if 0 <= error.index < len(records) else None
            dead.record(ent.name, result.batch_id, error.reason, error.index, record)
        return True

    def _unreadable(
        self,
        ent: Entity,
        bad: list[BadLine],
        dead: DeadLetters,
        summary: SyncSummary,
        *,
        write: bool,
    ) -> None:
        for line in bad:
            summary.unreadable_lines += 1
            if write:
                log.error("line %d unreadable: %s", line.line, line.reason)
                dead.append(
                    "line", entity=ent.name, line=line.line, reason=line.reason, text=line.text
                )
        bad.clear()

    def _bar(self, name: str, total: int | None = None) -> tqdm[Any]:
        """Records sent; with a known total it shows the percentage and the time left too."""
        return tqdm(
            desc=name,
            total=total,
            unit=" rec",
            unit_scale=True,
            file=sys.stderr,
            disable=not self.progress,
            dynamic_ncols=True,
        )


def _result(ent: Entity, response: httpx.Response, attempt: int) -> BatchResult:
    try:
        body = response.json()
    except ValueError:
        raise BatchFailed("response is not JSON", transient=False, attempts=attempt) from None
    data = (body.get("data") or {}).get(ent.mutation)
    if data is None:
        raise BatchFailed(_message(response), transient=False, attempts=attempt)
    return BatchResult.from_json(data)


def _message(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
        return "; ".join(str(e.get("message")) for e in errors) or response.text[:200]
    except (ValueError, AttributeError):
        return response.text[:200]


def _fingerprint(entry: dict[str, Any]) -> bytes:
    if entry["kind"] == "line":
        return orjson.dumps([entry.get("line"), entry.get("text")])
    content = entry.get("records") if entry["kind"] == "batch" else entry.get("record")
    return hashlib.sha256(
        entry["kind"].encode() + orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    ).digest()


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
