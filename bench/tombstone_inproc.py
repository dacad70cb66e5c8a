"""Side by side: the events insert with the stored lists' tombstone CTE (home4) and without it,
1000 events over 1000 study sets per batch, alternating, each batch in its own transaction.
Usage: python bench/tombstone_inproc.py postgresql+asyncpg://.../DB ROUNDS"""

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.ingest import sql

WITH = sql.INSERT_EVENTS.text
i = WITH.index(",\n    forgot AS")
WITHOUT = WITH[:i] + "\n    SELECT count(*) AS inserted FROM new_events"


async def main(url: str, rounds: int) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        sets = [r[0] for r in await conn.execute(text("SELECT id FROM study_sets ORDER BY id"))]
        books = [r[0] for r in await conn.execute(text("SELECT id FROM books ORDER BY id"))]
    serial = 0
    times = {"with": [], "without": []}
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for r in range(rounds):
        for name, stmt in (
            (("without", WITHOUT), ("with", WITH))
            if r % 2
            else (("with", WITH), ("without", WITHOUT))
        ):
            rows = []
            for _ in range(1000):
                serial += 1
                rows.append(
                    {
                        "id": f"tomb-{time.time_ns()}-{serial}",
                        "study_set_id": sets[(serial * 7) % len(sets)],
                        "event_type": "view",
                        "occurred_at": (start + timedelta(minutes=serial % 100000)).isoformat(),
                        "book_id": books[(serial * 13) % len(books)],
                        "topic_id": None,
                    }
                )
            payload = orjson.dumps(rows).decode()
            t0 = time.perf_counter()
            async with engine.begin() as conn:
                await conn.execute(text(stmt), {"payload": payload})
            times[name].append((time.perf_counter() - t0) * 1000)
    for k, v in times.items():
        print(k, "median ms", round(statistics.median(v), 1), "mean", round(statistics.mean(v), 1))
    print(
        "ratio with/without (median)",
        round(statistics.median(times["with"]) / statistics.median(times["without"]), 3),
    )
    await engine.dispose()


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
