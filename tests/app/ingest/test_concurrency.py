"""Ingestion under concurrency: shared keys apply once, overlapping batches never deadlock,
and the daily aggregates always equal a recount of the raw events."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.ingest.service import ingest
from app.runtime.services import Services

T0 = datetime(2026, 6, 1, tzinfo=UTC)


async def _setup(services: Services, books: int = 50, study_sets: int = 40) -> None:
    await ingest(services.engine, "publishers", [{"id": "p1", "name": "P"}])
    await ingest(services.engine, "topics", [{"id": f"t{i}", "label": f"T{i}"} for i in range(5)])
    await ingest(
        services.engine,
        "books",
        [
            {"id": f"b{i}", "publisher_id": "p1", "title": f"B{i}", "updated_at": T0.isoformat()}
            for i in range(books)
        ],
    )
    await ingest(
        services.engine,
        "study_sets",
        [
            {"id": f"ss{i}", "user_id": f"u{i}", "title": "S", "created_at": T0.isoformat()}
            for i in range(study_sets)
        ],
    )


async def test_concurrent_requests_with_one_key_apply_once(services: Services) -> None:
    records = [{"id": f"p{i}", "name": f"P{i}"} for i in range(500)]
    outcomes = await asyncio.gather(
        *[ingest(services.engine, "publishers", records, "same-key") for _ in range(4)]
    )
    assert sorted(o.replayed for o in outcomes) == [False, True, True, True]
    assert {o.batch_id for o in outcomes} == {outcomes[0].batch_id}
    assert all(o.inserted == 500 for o in outcomes)
    async with services.engine.connect() as conn:
        batches = (await conn.execute(text("SELECT count(*) FROM ingestion_batches"))).scalar()
    assert batches == 1


async def test_concurrent_identical_batches_without_key(services: Services) -> None:
    records = [{"id": f"p{i}", "name": f"P{i}"} for i in range(500)]
    outcomes = await asyncio.gather(
        *[ingest(services.engine, "publishers", records) for _ in range(3)]
    )
    assert sum(o.inserted for o in outcomes) == 500
    assert sum(o.unchanged for o in outcomes) == 1000


async def test_overlapping_batches_in_opposite_order_do_not_deadlock(services: Services) -> None:
    await ingest(services.engine, "publishers", [{"id": "p1", "name": "P"}])

    def books(version: int, reverse: bool) -> list[dict[str, Any]]:
        ids = list(range(3000))
        if reverse:
            ids.reverse()
        when = (T0 + timedelta(days=version)).isoformat()
        return [
            {"id": f"b{i}", "publisher_id": "p1", "title": f"v{version}", "updated_at": when}
            for i in ids
        ]

    for _ in range(3):
        rounds = [
            ingest(services.engine, "books", books(v, reverse=v % 2 == 1)) for v in range(1, 5)
        ]
        await asyncio.gather(*rounds)
    async with services.engine.connect() as conn:
        titles = (await conn.execute(text("SELECT title, count(*) FROM books GROUP BY 1"))).all()
    assert titles == [("v4", 3000)]


async def test_aggregates_equal_a_recount_after_duplicates_and_late_events(
    services: Services,
) -> None:
    await _setup(services)
    rng = random.Random(7)
    types = ["view", "click", "save", "complete", "rate"]
    unique = []
    for i in range(70_000):
        late = rng.random() < 0.1
        when = T0 - timedelta(
            days=rng.randint(60, 200) if late else rng.randint(0, 20),
            seconds=rng.randint(0, 86_399),
        )
        unique.append(
            {
                "id": f"e{i}",
                "study_set_id": f"ss{rng.randrange(40)}",
                "event_type": rng.choice(types),
                "occurred_at": when.isoformat(),
                "book_id": f"b{rng.randrange(50)}" if rng.random() < 0.9 else None,
                "topic_id": f"t{rng.randrange(5)}" if rng.random() < 0.5 else None,
            }
        )
    events = unique + [dict(rng.choice(unique)) for _ in range(30_000)]
    rng.shuffle(events)
    batches = [events[i : i + 10_000] for i in range(0, len(events), 10_000)]
    outcomes = []
    for pair in range(0, len(batches), 2):
        outcomes += await asyncio.gather(
            *[ingest(services.engine, "engagement_events", b) for b in batches[pair : pair + 2]]
        )
    assert sum(o.inserted for o in outcomes) == 70_000
    assert sum(o.duplicates for o in outcomes) == 30_000
    async with services.engine.connect() as conn:
        for key in ("book_id", "topic_id", "study_set_id"):
            table = "engagement_daily_" + key.removesuffix("_id")
            mismatch = (
                await conn.execute(
                    text(f"""
                WITH recount AS (
                    SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, {key}, event_type,
                           count(*) AS events
                    FROM engagement_events WHERE {key} IS NOT NULL GROUP BY 1, 2, 3)
                SELECT count(*) FROM recount FULL JOIN {table} a USING (day, {key}, event_type)
                WHERE recount.events IS DISTINCT FROM a.events""")
                )
            ).scalar()
            assert mismatch == 0, key
        total = (
            await conn.execute(text("SELECT sum(events) FROM engagement_daily_study_set"))
        ).scalar()
    assert total == 70_000
