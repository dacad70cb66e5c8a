"""In-process A/B of the stored lists' claim (`stored.read`, the first statement of a cold
list) committed with and without waiting for its WAL flush (`stored.ASYNC_COMMIT`),
alternating, on study sets whose stored rows are deleted first (each read claims: an INSERT).

    python -m bench.cold_claim_inproc [postgresql://.../cold5_bench] [sets]

Reuses a seeded bench database; deletes the stored lists of the sets it uses (the next read
of each computes and stores it again). Prints wall p50/p90/p99 per claim for each.
"""

import asyncio
import statistics
import sys
import time

import asyncpg

from app.reco import stored

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
URL = ARGS[0] if ARGS else "postgresql://postgres@127.0.0.1:5432/bb_bench"
SETS = int(ARGS[1]) if len(ARGS) > 1 else 400


async def main() -> None:
    conn = await asyncpg.connect(URL)
    try:
        ids = [
            r[0] for r in await conn.fetch("SELECT id FROM study_sets ORDER BY id LIMIT $1", SETS)
        ]
        await conn.execute("DELETE FROM study_set_lists WHERE study_set_id = ANY($1)", ids)
        flushed = stored.read_sql(3000).replace(stored.ASYNC_COMMIT, "NULL AS async_commit")
        variants = {"flushed": flushed, "async": stored.read_sql(3000)}
        times: dict[str, list[float]] = {name: [] for name in variants}
        for i, sid in enumerate(ids):
            name = "async" if i % 2 else "flushed"
            start = time.perf_counter()
            rows = await conn.fetch(variants[name], [sid])
            times[name].append((time.perf_counter() - start) * 1e3)
            assert len(rows) == 1
        claimed = await conn.fetchval(
            "SELECT count(*) FROM study_set_lists WHERE pending AND study_set_id = ANY($1)", ids
        )
        assert claimed == len(ids), claimed
    finally:
        await conn.close()
    for name, t in times.items():
        t.sort()
        print(
            f"{name}: {len(t)} claims, p50 {statistics.median(t):.2f} ms,"
            f" p90 {t[int(len(t) * 0.9)]:.2f} ms, p99 {t[int(len(t) * 0.99)]:.2f} ms"
        )


asyncio.run(main())
