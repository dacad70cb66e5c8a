"""Ingestion throughput: gzip GraphQL batches vs the same rows written by asyncpg directly."""

from __future__ import annotations

import asyncio
import gzip
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import asyncpg
import httpx
import orjson

BATCH = 1000
RESULT = "inserted updated unchanged duplicates rejected { index reason }"
UPSERT_BOOKS = (
    f"mutation($input: UpsertBooksInput!) {{ upsertBooks(input: $input) {{ {RESULT} }} }}"
)
RECORD_EVENTS = (
    "mutation($input: RecordEngagementEventsInput!) "
    f"{{ recordEngagementEvents(input: $input) {{ {RESULT} }} }}"
)

RAW_BOOKS = """
INSERT INTO books (id, publisher_id, title, description, tags, updated_at)
SELECT b.id, b.publisher_id, b.title, b.description, coalesce(b.tags, '{}'), b.updated_at
FROM jsonb_to_recordset($1::jsonb) AS b(id text, publisher_id text, title text,
     description text, tags text[], updated_at timestamptz)
ORDER BY b.id
ON CONFLICT (id) DO UPDATE SET publisher_id = excluded.publisher_id, title = excluded.title,
    description = excluded.description, tags = excluded.tags, updated_at = excluded.updated_at
WHERE books.updated_at < excluded.updated_at
"""

_AGG = """
{name} AS (
    INSERT INTO engagement_daily_{name} (day, {key}, event_type, events)
    SELECT (occurred_at AT TIME ZONE 'UTC')::date, {key}, event_type, count(*) FROM ins
    WHERE {key} IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (day, event_type, {key})
    DO UPDATE SET events = engagement_daily_{name}.events + excluded.events
    RETURNING 1)"""
RAW_EVENTS = (
    """
WITH ins AS (
    INSERT INTO engagement_events (id, study_set_id, event_type, occurred_at, book_id, topic_id)
    SELECT e.id, e.study_set_id, e.event_type, e.occurred_at, e.book_id, e.topic_id
    FROM jsonb_to_recordset($1::jsonb) AS e(id text, study_set_id text, event_type text,
         occurred_at timestamptz, book_id text, topic_id text)
    ORDER BY e.id
    ON CONFLICT (id) DO NOTHING
    RETURNING study_set_id, event_type, occurred_at, book_id, topic_id),"""
    + ",".join(
        _AGG.format(name=n, key=k)
        for n, k in (("book", "book_id"), ("topic", "topic_id"), ("study_set", "study_set_id"))
    )
    + "\nSELECT count(*) FROM ins"
)


_UNCOUNT = """
{name} AS (
    UPDATE engagement_daily_{name} AS d SET events = d.events - g.n
    FROM (SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, {key}, event_type, count(*) AS n
          FROM gone WHERE {key} IS NOT NULL GROUP BY 1, 2, 3) AS g
    WHERE d.day = g.day AND d.{key} = g.{key} AND d.event_type = g.event_type
    RETURNING 1)"""
_KEYS = (("book", "book_id"), ("topic", "topic_id"), ("study_set", "study_set_id"))
CLEANUP_EVENTS = (
    """
WITH gone AS (
    DELETE FROM engagement_events WHERE id LIKE ANY($1::text[])
    RETURNING study_set_id, event_type, occurred_at, book_id, topic_id),"""
    + ",".join(_UNCOUNT.format(name=n, key=k) for n, k in _KEYS)
    + "\nSELECT count(*) FROM gone"
)


async def cleanup(url: str, prefixes: list[str]) -> None:
    """Remove what the runs wrote (and their counts from the daily aggregates), so that
    repeated `--no-seed` runs measure the same database instead of an ever larger one."""
    patterns = [f"{p}-%" for p in prefixes]
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute("DELETE FROM books WHERE id LIKE ANY($1::text[])", patterns)
            await conn.execute(CLEANUP_EVENTS, patterns)
            for name, _ in _KEYS:
                await conn.execute(f"DELETE FROM engagement_daily_{name} WHERE events <= 0")
        # and the dead rows: left to autovacuum, they slowed the planner of every later query
        # on those tables (index endpoint probes over dead entries: 0.45 -> 10 ms planning)
        daily = ", ".join(f"engagement_daily_{name}" for name, _ in _KEYS)
        await conn.execute(f"VACUUM (ANALYZE) books, engagement_events, {daily}")
    finally:
        await conn.close()


@dataclass
class IngestRun:
    records: int
    seconds: float
    batch_ms: list[float]
    sql: list[int]
    bad: int

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds


class Rows:
    """Fresh rows for every batch (inserts, never 'unchanged'), built before the clock starts."""

    def __init__(self, refs: dict[str, list[Any]], prefix: str) -> None:
        self.refs = refs
        self.prefix = prefix
        self.serial = count()

    def books(self) -> list[dict[str, Any]]:
        pubs, version = self.refs["publishers"], "2026-07-01T00:00:00Z"
        out = []
        for _ in range(BATCH):
            i = next(self.serial)
            out.append(
                {
                    "id": f"{self.prefix}-b{i:07d}",
                    "publisherId": pubs[i % len(pubs)],
                    "title": f"Benchmark book {i}",
                    "description": "A generated book for the ingestion benchmark.",
                    "tags": ["Fiction", "Benchmark"],
                    "updatedAt": version,
                }
            )
        return out

    def events(self) -> list[dict[str, Any]]:
        sets, books = self.refs["study_sets"], self.refs["books"]
        topics = self.refs["topics"]
        start = datetime(2026, 3, 1, tzinfo=UTC)
        out = []
        for _ in range(BATCH):
            i = next(self.serial)
            out.append(
                {
                    "id": f"{self.prefix}-e{i:08d}",
                    "studySetId": sets[(i * 7) % len(sets)],
                    "eventType": ("view", "click", "save", "complete")[i % 4],
                    "occurredAt": (start + timedelta(minutes=i % 100_000)).isoformat(),
                    "bookId": books[(i * 13) % len(books)],
                    "topicId": topics[(i * 17) % len(topics)],
                }
            )
        return out


def _snake(record: dict[str, Any]) -> dict[str, Any]:
    names = {"publisherId": "publisher_id", "updatedAt": "updated_at", "studySetId": "study_set_id"}
    names |= {"eventType": "event_type", "occurredAt": "occurred_at", "bookId": "book_id"}
    names["topicId"] = "topic_id"
    return {names.get(k, k): v for k, v in record.items()}


async def references(url: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        out = {}
        for table in ("publishers", "study_sets", "books", "topics"):
            out[table] = [r["id"] for r in await conn.fetch(f"SELECT id FROM {table} ORDER BY id")]
        return out
    finally:
        await conn.close()


async def _clients(
    n: int, seconds: float, batches: list[Any], send: Callable[[Any], Awaitable[tuple[int, bool]]]
) -> IngestRun:
    """`n` concurrent senders, each taking the next prepared batch until time is up."""
    queue = iter(batches)
    latencies: list[float] = []
    sql: list[int] = []
    bad = 0
    records = 0
    deadline = time.monotonic() + seconds
    start = time.monotonic()

    async def worker() -> None:
        nonlocal bad, records
        for batch in queue:
            if time.monotonic() > deadline:
                return
            t0 = time.perf_counter()
            statements, ok = await send(batch)
            latencies.append((time.perf_counter() - t0) * 1000)
            sql.append(statements)
            records += BATCH
            bad += not ok

    await asyncio.gather(*(worker() for _ in range(n)))
    return IngestRun(records, time.monotonic() - start, latencies, sql, bad)


async def through_graphql(
    base: str, token: str, entity: str, rows: Rows, n: int, seconds: float, max_batches: int
) -> IngestRun:
    make = rows.books if entity == "books" else rows.events
    document = UPSERT_BOOKS if entity == "books" else RECORD_EVENTS
    bodies = [
        gzip.compress(
            orjson.dumps({"query": document, "variables": {"input": {"records": make()}}}), 6
        )
        for _ in range(max_batches)
    ]
    headers = {
        "content-type": "application/json",
        "content-encoding": "gzip",
        "authorization": f"Bearer {token}",
    }
    async with httpx.AsyncClient(base_url=base, timeout=120, headers=headers) as client:

        async def send(body: bytes) -> tuple[int, bool]:
            response = await client.post("/graphql", content=body)
            ok = response.status_code == 200 and b'"errors"' not in response.content
            ok = ok and b'"rejected":[]' in response.content
            return int(response.headers.get("x-bench-sql", "0")), ok

        return await _clients(n, seconds, bodies, send)


async def through_asyncpg(
    url: str, entity: str, rows: Rows, n: int, seconds: float, max_batches: int
) -> IngestRun:
    make = rows.books if entity == "books" else rows.events
    sql = RAW_BOOKS if entity == "books" else RAW_EVENTS
    # the raw path gets the records already decoded, as the service does after parsing
    batches = [orjson.dumps([_snake(r) for r in make()]).decode() for _ in range(max_batches)]
    pool = await asyncpg.create_pool(url, min_size=n, max_size=n)
    try:

        async def send(payload: str) -> tuple[int, bool]:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(sql, payload)
            return 1, True

        return await _clients(n, seconds, batches, send)
    finally:
        await pool.close()


def summary(runs: list[IngestRun]) -> dict[str, float]:
    lat = sorted(x for r in runs for x in r.batch_ms)
    return {
        "records_per_s": statistics.median(r.records_per_s for r in runs),
        "p50_ms": lat[len(lat) // 2] if lat else 0.0,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
        "sql_per_request": statistics.median(x for r in runs for x in r.sql) if runs else 0.0,
        "bad": sum(r.bad for r in runs),
    }
