"""Seeds the benchmark database: the bundled goodbooks demo data, or a generated large scale."""

from __future__ import annotations

import gzip
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from app.db.migrate import upgrade_async

DEMO = Path(__file__).resolve().parents[1] / "app" / "demo" / "data"
TABLES = (
    "engagement_daily_book, engagement_daily_topic, engagement_daily_study_set, "
    "engagement_events, study_set_topics, study_sets, topic_book_mappings, books, topics, "
    "categories, grades, subjects, publishers, ingestion_batches, dead_letters"
)
EVENT_TYPES = ("view", "click", "save", "start", "progress", "complete", "rate", "share")


def plain_url(url: str) -> str:
    """asyncpg wants postgresql://; the service wants postgresql+asyncpg://."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def ensure_database(url: str) -> None:
    base, _, name = plain_url(url).rpartition("/")
    conn = await asyncpg.connect(base + "/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _read(name: str) -> list[dict[str, Any]]:
    with gzip.open(DEMO / f"{name}.jsonl.gz", "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: list[Any]) -> None:
    await conn.copy_records_to_table(table, records=rows, columns=columns)


async def seed(url: str, scale: str) -> dict[str, int]:
    """Empty the tables and load `scale` ("demo", "large", or "large:BOOKS:EVENTS" for the
    large scale's generator at another size, study sets in proportion); returns row counts."""
    await ensure_database(url)
    await upgrade_async(plain_url(url).replace("postgresql://", "postgresql+asyncpg://"))
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(f"TRUNCATE {TABLES} CASCADE")
        await _load_taxonomy(conn)
        if scale == "demo":
            await _load_demo_catalog(conn)
        else:
            await _generate_large(conn, *_large_size(scale))
        await _rebuild_aggregates(conn)
        await conn.execute("ANALYZE")
        counts = {}
        for table in ("books", "topic_book_mappings", "study_sets", "engagement_events"):
            counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        return counts
    finally:
        await conn.close()


async def _load_taxonomy(conn: asyncpg.Connection) -> None:
    await _copy(
        conn, "publishers", ["id", "name"], [(r["id"], r["name"]) for r in _read("publishers")]
    )
    await _copy(conn, "subjects", ["id", "name"], [(r["id"], r["name"]) for r in _read("subjects")])
    await _copy(conn, "grades", ["id", "name"], [(r["id"], r["name"]) for r in _read("grades")])
    cats = _read("categories")
    # parents first: the tree's foreign key is checked row by row
    cats.sort(key=lambda r: r["parentId"] is not None)
    await _copy(
        conn,
        "categories",
        ["id", "name", "subject_id", "parent_id"],
        [(r["id"], r["name"], r["subjectId"], r["parentId"]) for r in cats],
    )
    await _copy(
        conn,
        "topics",
        ["id", "label", "subject_id", "grade_id", "category_id"],
        [
            (r["id"], r["label"], r["subjectId"], r["gradeId"], r["categoryId"])
            for r in _read("topics")
        ],
    )


BOOK_COLUMNS = ["id", "publisher_id", "title", "description", "tags", "updated_at"]
SET_COLUMNS = ["id", "user_id", "subject_id", "grade_id", "title", "created_at"]
EVENT_COLUMNS = ["id", "study_set_id", "event_type", "occurred_at", "book_id", "topic_id"]


async def _load_demo_catalog(conn: asyncpg.Connection) -> None:
    books = [
        (r["id"], r["publisherId"], r["title"], r["description"], r["tags"], _ts(r["updatedAt"]))
        for r in _read("books")
    ]
    await _copy(conn, "books", BOOK_COLUMNS, books)
    maps = [(r["topicId"], r["bookId"], r["weight"]) for r in _read("topic_book_mappings")]
    await _copy(conn, "topic_book_mappings", ["topic_id", "book_id", "weight"], maps)
    sets = _read("study_sets")
    await _copy(
        conn,
        "study_sets",
        SET_COLUMNS,
        [
            (r["id"], r["userId"], r["subjectId"], r["gradeId"], r["title"], _ts(r["createdAt"]))
            for r in sets
        ],
    )
    set_topics = {(r["id"], t) for r in sets for t in r.get("topicIds") or []}
    await _copy(conn, "study_set_topics", ["study_set_id", "topic_id"], sorted(set_topics))
    events = [
        (
            r["id"],
            r["studySetId"],
            r["eventType"],
            _ts(r["occurredAt"]),
            r.get("bookId"),
            r.get("topicId"),
        )
        for r in _read("engagement_events")
    ]
    await _copy(conn, "engagement_events", EVENT_COLUMNS, events)


LARGE_BOOKS = 100_000
LARGE_SETS = 20_000
LARGE_EVENTS = 1_000_000
MAPPINGS_PER_BOOK = 8


def _large_size(scale: str) -> tuple[int, int, int]:
    """(books, study sets, events) of "large" or "large:BOOKS:EVENTS" (20 sets per 1,000
    events, as the large scale)."""
    if scale == "large":
        return LARGE_BOOKS, LARGE_SETS, LARGE_EVENTS
    _, books, events = scale.split(":")
    n_events = int(events)
    return int(books), max(1, n_events * LARGE_SETS // LARGE_EVENTS), n_events


async def _generate_large(
    conn: asyncpg.Connection,
    n_books: int = LARGE_BOOKS,
    n_sets: int = LARGE_SETS,
    n_events: int = LARGE_EVENTS,
) -> None:
    """100,000 books (demo titles and tags reused), 800,000 mappings, 1,000,000 events (or
    the given numbers of books, study sets and events)."""
    rng = random.Random(42)
    demo_books = _read("books")
    publishers = [r["id"] for r in _read("publishers")]
    topics = [r["id"] for r in _read("topics")]
    subjects = [r["id"] for r in _read("subjects")]
    grades = [r["id"] for r in _read("grades")]
    version = datetime(2026, 6, 1, tzinfo=UTC)
    books = []
    for i in range(n_books):
        src = demo_books[i % len(demo_books)]
        books.append(
            (
                f"gb{i:06d}",
                publishers[i % len(publishers)],
                f"{src['title']} #{i}",
                src["description"],
                src["tags"],
                version,
            )
        )
    await _copy(conn, "books", BOOK_COLUMNS, books)
    maps = [
        (topic, f"gb{i:06d}", round(rng.random(), 4))
        for i in range(n_books)
        for topic in rng.sample(topics, MAPPINGS_PER_BOOK)
    ]
    await _copy(conn, "topic_book_mappings", ["topic_id", "book_id", "weight"], maps)
    created = datetime(2025, 12, 1, tzinfo=UTC)
    sets = [
        (
            f"gss{i:05d}",
            f"guser{i:05d}",
            rng.choice(subjects),
            rng.choice(grades),
            f"Generated study set {i}",
            created,
        )
        for i in range(n_sets)
    ]
    await _copy(conn, "study_sets", SET_COLUMNS, sets)
    set_topics = sorted({(s[0], t) for s in sets for t in rng.sample(topics, 5)})
    await _copy(conn, "study_set_topics", ["study_set_id", "topic_id"], set_topics)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = []
    for i in range(n_events):
        book = rng.randrange(n_books)
        events.append(
            (
                f"gev{i:07d}",
                sets[rng.randrange(n_sets)][0],
                rng.choice(EVENT_TYPES),
                start + timedelta(minutes=rng.randrange(480_000)),
                f"gb{book:06d}",
                maps[book * MAPPINGS_PER_BOOK][0],
            )
        )
    await _copy(conn, "engagement_events", EVENT_COLUMNS, events)


async def _rebuild_aggregates(conn: asyncpg.Connection) -> None:
    """The daily aggregates the ingestion path maintains, recounted from the raw events."""
    for table, key in (
        ("engagement_daily_book", "book_id"),
        ("engagement_daily_topic", "topic_id"),
        ("engagement_daily_study_set", "study_set_id"),
    ):
        await conn.execute(
            f"""INSERT INTO {table} (day, {key}, event_type, events)
            SELECT (occurred_at AT TIME ZONE 'UTC')::date, {key}, event_type, count(*)
            FROM engagement_events WHERE {key} IS NOT NULL GROUP BY 1, 2, 3"""
        )


async def admin_key(url: str) -> str:
    """An API key with the admin scope (ingestion and any study set), made by the service's code."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.auth.keys import create_key

    engine = create_async_engine(plain_url(url).replace("postgresql://", "postgresql+asyncpg://"))
    try:
        async with engine.begin() as conn:
            token, _ = await create_key(conn, "bench", "admin")
        return token
    finally:
        await engine.dispose()
