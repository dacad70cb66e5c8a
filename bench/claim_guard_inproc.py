"""In-process: what the stored lists' guard (app/reco/stored.py `guard`) costs each side. Events
batches (the bench's 1,000-event rows) through `app.ingest.service.ingest`, and cold claims
(`stored.read` of one set whose row was deleted just before, untimed): claims alone, batches
alone, then both at once (a claim may wait for a batch in flight on its sets' keys).

    python -m bench.claim_guard_inproc postgresql://.../race6_bench [seconds] [senders]

Run with PYTHONPATH at the tree to measure (before / after: two trees, one after the other).
Reuses a seeded bench database; removes its events afterwards (`bench.ingest.cleanup`) and
deletes the stored rows of the sets it claimed. Prints one JSON line.
"""

import asyncio
import os
import random
import statistics
import sys
import time
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import create_async_engine

from app.ingest.service import ingest
from app.reco import stored
from bench import ingest as bench_ingest

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
URL = ARGS[0] if ARGS else "postgresql://postgres@127.0.0.1:5432/bb_bench"
SECONDS = float(ARGS[1]) if len(ARGS) > 1 else 8.0
SENDERS = int(ARGS[2]) if len(ARGS) > 2 else 2
NAMES = {"studySetId": "study_set_id", "eventType": "event_type", "occurredAt": "occurred_at"}
NAMES |= {"bookId": "book_id", "topicId": "topic_id"}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2) if ordered else 0.0


CLAIMED: set[str] = set()
GUARDED = stored.read_sql(3000)
_CTE = GUARDED[GUARDED.find(" guarded AS (") : GUARDED.find(" claimed AS (")]
UNGUARDED = GUARDED.replace(_CTE, "").replace("FROM unlisted u, guarded", "FROM unlisted u")


async def claims_side_by_side(conn: asyncpg.Connection, ids: list[str], n: int) -> dict[str, Any]:
    """`n` cold claims, the claim with and without its guard CTE in turns (one process)."""
    times: dict[str, list[float]] = {"guarded": [], "unguarded": []}
    for i in range(n):
        sid = ids[(i * 37) % len(ids)]
        CLAIMED.add(sid)
        await conn.execute("DELETE FROM study_set_lists WHERE study_set_id = $1", sid)
        name = ("guarded", "unguarded")[(i // 2 + i) % 2]
        start = time.perf_counter()
        rows = await conn.fetch(GUARDED if name == "guarded" else UNGUARDED, [sid])
        times[name].append((time.perf_counter() - start) * 1e3)
        assert len(rows) == 1
    return {k: {"n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99)} for k, v in times.items()}


async def claims(conn: asyncpg.Connection, ids: list[str], until: float) -> list[float]:
    """Cold claims of random sets, one at a time, until `until`; each claim's wall ms."""
    times: list[float] = []
    rng = random.Random(7)
    while time.monotonic() < until:
        sid = rng.choice(ids)
        CLAIMED.add(sid)
        await conn.execute("DELETE FROM study_set_lists WHERE study_set_id = $1", sid)
        start = time.perf_counter()
        got = await stored.read(conn.fetch, [sid], 3000)
        times.append((time.perf_counter() - start) * 1e3)
        assert sid in got.sets
    return times


async def batches(engine: Any, rows: bench_ingest.Rows, until: float) -> tuple[int, list[float]]:
    """Events batches one after another until `until`: (records, each batch's wall ms)."""
    done, times = 0, []
    while time.monotonic() < until:
        records = [{NAMES.get(k, k): v for k, v in r.items()} for r in rows.events()]
        start = time.perf_counter()
        outcome = await ingest(engine, "engagement_events", records)
        times.append((time.perf_counter() - start) * 1e3)
        assert not outcome.rejected, outcome.rejected[:2]
        done += outcome.inserted
    return done, times


async def main() -> None:
    refs = await bench_ingest.references(URL)
    ids = refs["study_sets"]
    engine = create_async_engine(URL.replace("postgresql://", "postgresql+asyncpg://"))
    conn = await asyncpg.connect(URL)
    prefixes: list[str] = []
    out: dict[str, Any] = {}
    try:
        if _CTE:
            out["claim_sql_side_by_side"] = await claims_side_by_side(conn, ids, 2000)
        alone = await claims(conn, ids, time.monotonic() + SECONDS)
        out["claims_alone"] = {"n": len(alone), "p50": pct(alone, 0.5), "p99": pct(alone, 0.99)}
        for phase in ("batches_alone", "both"):
            until = time.monotonic() + SECONDS
            names = [f"cg{os.getpid()}{phase[:4]}{i}" for i in range(SENDERS)]
            prefixes += names
            rows = [bench_ingest.Rows(refs, name) for name in names]
            work: list[Any] = [batches(engine, r, until) for r in rows]
            if phase == "both":
                work.append(claims(conn, ids, until))
            started = time.monotonic()
            results = await asyncio.gather(*work)
            wall = time.monotonic() - started
            sent = results[:SENDERS]
            lat = [t for _, ts in sent for t in ts]
            out[phase] = {
                "records_per_s": round(sum(n for n, _ in sent) / wall, 1),
                "batch_p50": pct(lat, 0.5),
                "batch_p99": pct(lat, 0.99),
            }
            if phase == "both":
                waited = results[-1]
                out["claims_during_batches"] = {
                    "n": len(waited),
                    "p50": pct(waited, 0.5),
                    "p99": pct(waited, 0.99),
                    "mean": round(statistics.mean(waited), 2),
                }
    finally:
        claimed = sorted(CLAIMED)
        await conn.execute("DELETE FROM study_set_lists WHERE study_set_id = ANY($1)", claimed)
        await conn.close()
        await engine.dispose()
        await bench_ingest.cleanup(URL, prefixes)
    print(orjson.dumps(out).decode())


asyncio.run(main())
