"""Side by side, the events insert of a batch three ways: without forgetting stored lists
("none"), with the tombstone CTE in the statement (home4 to main at 42cf980: "cte"), and as
`sql.insert_events` does since branch `race6` (the statement, then the sets' guard keys, then
the tombstones: "guarded"). 1000 events over 1000 study sets per batch, in turns, each batch
in its own transaction; every set has a stored row first (a tombstone, as after a stream of
events; the rows it made are deleted at the end, its events removed).
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
from app.reco import stored
from bench import ingest as bench_ingest

NONE = sql.INSERT_EVENTS.text
_TAIL = NONE.index("\n    SELECT count(*) AS inserted,")
CTE = (
    NONE[:_TAIL]
    + f",\n    forgot AS ({stored.tombstone('SELECT study_set_id FROM new_events')})"
    + "\n    SELECT count(*) AS inserted FROM new_events"
)
VARIANTS = ("none", "cte", "guarded")


async def main(url: str, rounds: int) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        sets = [r[0] for r in await conn.execute(text("SELECT id FROM study_sets ORDER BY id"))]
        books = [r[0] for r in await conn.execute(text("SELECT id FROM books ORDER BY id"))]
        made = await conn.execute(
            text(
                "INSERT INTO study_set_lists (study_set_id) SELECT id FROM study_sets"
                " ON CONFLICT DO NOTHING RETURNING study_set_id"
            )
        )
        made_ids = [r[0] for r in made]
    serial = 0
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for r in range(rounds):
        for k in range(len(VARIANTS)):
            name = VARIANTS[(r + k) % len(VARIANTS)]
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
                if name == "guarded":  # sql.insert_events, its payload made before the clock
                    got = (await conn.execute(sql.INSERT_EVENTS, {"payload": payload})).one()
                    await sql.forget_lists(conn, got.sets or ())
                else:
                    await conn.execute(text(NONE if name == "none" else CTE), {"payload": payload})
            times[name].append((time.perf_counter() - t0) * 1000)
    for k, v in times.items():
        print(k, "median ms", round(statistics.median(v), 1), "mean", round(statistics.mean(v), 1))
    base = statistics.median(times["none"])
    for name in ("cte", "guarded"):
        print(f"ratio {name}/none (median)", round(statistics.median(times[name]) / base, 3))
    print(
        "ratio guarded/cte (median)",
        round(statistics.median(times["guarded"]) / statistics.median(times["cte"]), 3),
    )
    async with engine.begin() as conn:
        await conn.execute(
            text("DELETE FROM study_set_lists WHERE study_set_id = ANY(:ids)"), {"ids": made_ids}
        )
    await engine.dispose()
    await bench_ingest.cleanup(url.replace("+asyncpg", ""), ["tomb"])


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
