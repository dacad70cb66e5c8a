"""In-process A/B of a cold HYBRID list: the component reads (study_set_inputs, then topic
candidates, collab, content and trending side by side: five statements in two rounds) against
`data.hybrid_inputs` (three statements sent at once), alternating in one process.

    python -m bench.cold_list_inproc [postgresql://.../home3_bench] [size] [--same]

Reuses a seeded bench database (`python -m bench` seeds it); no Redis. `--same` checks that
both give the same lists (first 5 and 50) for 200 single study sets and every set in batches
of 37; otherwise prints the median process CPU and wall p50/p90 per call of `size` study sets
(each call a cache miss: the in-process cache is cleared before it).
"""

import asyncio
import statistics
import sys
import time
from typing import Any

import asyncpg

from app.core.settings import Settings, normalize_database_url
from app.reco import data, service, strategies
from app.reco.service import ListKey
from app.runtime.services import Services

ARGS = [a for a in sys.argv[1:] if not a.startswith("--")]
URL = ARGS[0] if ARGS else "postgresql://postgres@127.0.0.1:5432/bb_bench"
SIZE = int(ARGS[1]) if len(ARGS) > 1 else 1


async def main() -> None:
    settings = Settings(
        bookbridge_env="test", database_url=normalize_database_url(URL), redis_url=None
    )
    services = Services.create(settings)
    s = settings.reco
    conn = await asyncpg.connect(URL)
    ids = [r[0] for r in await conn.fetch("SELECT id FROM study_sets ORDER BY 1")]
    await conn.close()

    async def old(chunk: list[str], first: int = 5) -> dict[str, Any]:
        async with services.read_engine.connect() as c:
            inputs = await data.study_set_inputs(c, chunk, s)
        got = await strategies.recommend_concurrently(
            services.read_engine.connect,
            data.with_weights(s, inputs.weights),
            inputs.contexts,
            "HYBRID",
            first,
            inputs.own,
        )
        return {k: v.to_json() for k, v in got.items()}

    async def new(chunk: list[str], first: int = 5) -> dict[str, Any]:
        services.reco_cache.clear_local()
        found = await service.recommendations_many(services, [ListKey(x, first) for x in chunk])
        pairs = zip(chunk, found, strict=True)
        return {k: v.to_json() for k, v in pairs if isinstance(v, strategies.RecList)}

    if "--same" in sys.argv:
        bad = 0
        singles = [ids[i : i + 1] for i in range(200)]
        for chunk in singles + [ids[i : i + 37] for i in range(200, len(ids), 37)]:
            for first in (5, 50):
                if await old(chunk, first) != await new(chunk, first):
                    bad += 1
                    print("different lists:", chunk[:2], first)
        print("calls with different lists:", bad)
    else:
        got: dict[str, tuple[list[float], list[float]]] = {"old": ([], []), "new": ([], [])}
        for i in range(60):
            chunk = ids[i * SIZE : (i + 1) * SIZE]
            pair = (("old", old), ("new", new))
            for name, fn in pair if i % 2 else pair[::-1]:
                cpu, wall = time.process_time(), time.perf_counter()
                await fn(chunk)
                got[name][0].append((time.process_time() - cpu) * 1e3)
                got[name][1].append((time.perf_counter() - wall) * 1e3)
        for name, (cpus, walls) in got.items():
            walls.sort()
            print(
                f"{name}: {SIZE} study sets per call, CPU median {statistics.median(cpus):.2f} ms,"
                f" wall p50 {statistics.median(walls):.1f} ms, p90 {walls[int(len(walls) * 0.9)]:.1f} ms"
            )
    await services.close()


asyncio.run(main())
