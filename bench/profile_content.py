"""Where the lists job's content phase spends its time: `compute_content` profiled in process.

    flock /tmp/bench.lock python -m bench.profile_content postgresql+asyncpg://.../DB [rows]

Runs `app.reco.neighbours.compute_content` (k = 50, the default `neighbours_k`) against a
seeded database under cProfile and prints its wall time, the process's peak resident memory
and the `rows` (default 25) entries with the most cumulative time. Nothing is written.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import resource
import sys
import time

from sqlalchemy.ext.asyncio import create_async_engine

from app.reco import neighbours


async def main(url: str, rows: int) -> None:
    engine = create_async_engine(url)
    profile = cProfile.Profile()
    try:
        async with engine.connect() as conn:
            started = time.perf_counter()
            profile.enable()
            lists = await neighbours.compute_content(conn, 50)
            profile.disable()
            seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"compute_content {seconds:.1f} s, {len(lists)} rows, peak RSS {peak:.0f} MB")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(rows)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
