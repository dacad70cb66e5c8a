"""Re-blend HYBRID weights on a database an evaluation loaded (no re-ingest, no worker run).

    bookbridge evaluate --dataset DIR --database-url URL      # loads and evaluates once
    python -m bench.reco_tune --dataset DIR --database-url URL [--users 10000]

Components are computed once per study set by the service's code, then blended per weight set.
It scores blends on the evaluation's held-out test users: an analysis tool only. The weights the
service uses come from the worker's `lists` job, chosen on a validation split of the training
events (app/reco/selection.py, issue 16).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from pathlib import Path

from app.core.settings import Settings, normalize_database_url
from app.evaluate.dataset import split
from app.evaluate.metrics import score_lists
from app.evaluate.run import for_evaluation
from app.reco.scoring import blend, ranked
from app.reco.strategies import collect
from app.runtime.services import Services

GRID = {
    "TOPIC": (0.0, 0.05, 0.1, 0.2),
    "CONTENT": (0.0, 0.05, 0.1),
    "TRENDING": (0.0, 0.02, 0.05),
}


async def main(dataset: Path, url: str, users: int) -> None:
    data = split(dataset)
    sample = sorted(data.test)
    random.Random(1).shuffle(sample)
    sample = sample[:users]
    services = Services.create(Settings(database_url=normalize_database_url(url)))
    ev = for_evaluation(services)
    started = time.perf_counter()
    jobs = []
    for start in range(0, len(sample), 500):
        async with ev.read_engine.connect() as conn:
            await conn.exec_driver_sql("SET work_mem = '64MB'")
            ids = [f"ss-{u}" for u in sample[start : start + 500]]
            jobs += await collect(conn, ev.settings.reco, ids)
    print(f"components for {len(jobs)} study sets in {time.perf_counter() - started:.1f}s")
    test = {u: data.test[u] for u in sample}
    rows = []
    for t, c, tr in itertools.product(*GRID.values()):
        weights = {"COLLABORATIVE": 1.0, "TOPIC": t, "CONTENT": c, "TRENDING": tr}
        lists = {
            j.ctx.id[3:]: [b for b, _ in ranked(blend(j.components, weights), j.own.excluded, 10)]
            for j in jobs
        }
        ndcg, recall, hit, _ = score_lists(lists, test, 10_000)
        rows.append((ndcg, recall, hit, weights))
    for ndcg, recall, hit, weights in sorted(rows, key=lambda r: -r[0])[:10]:
        print(f"ndcg {ndcg:.4f} recall {recall:.4f} hit {hit:.4f} {weights}")
    await services.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    asyncio.run(main(args.dataset, args.database_url, args.users))
