"""How the lists job's model selection grows with books and events (no database, no server).

    python -m bench.reco_scale [--sizes 25000:250000,50000:500000,100000:1000000] [--zipf 0]

Each size runs in a fresh process: engagement pairs drawn like bench/seed.py's large scale
(users pick books uniformly; `--zipf S` draws books with probability ~ 1 / rank^S instead),
then `app.reco.models.choose` with the lists job's candidates and budgets and the refit of the
chosen model, exactly as `app/reco/selection.py` runs them. Prints seconds per step and the
process's CPU time (user + system, whole process) and peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

from app.core.settings import RecoSettings
from app.reco import models

USERS_PER_EVENT = 0.02  # bench/seed.py: 20,000 study sets for 1,000,000 events


def engagement(books: int, events: int, zipf: float, seed: int = 42) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    users = max(1, int(events * USERS_PER_EVENT))
    if zipf > 0:
        p = 1.0 / np.power(np.arange(1, books + 1), zipf)
        cols = rng.choice(books, events, p=p / p.sum())
    else:
        cols = rng.integers(0, books, events)
    rows = rng.integers(0, users, events)
    x = sp.csr_matrix(
        (np.ones(events, dtype=np.float32), (rows, cols)), shape=(users, books), dtype=np.float32
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def one(books: int, events: int, zipf: float) -> dict[str, object]:
    s = RecoSettings()
    x = engagement(books, events, zipf)
    cands = models.candidates(s.ease_max_items, s.ease_local_neighbourhood, books, s.ease_lambda)
    started = time.perf_counter()
    choice, _, _ = models.choose(
        x,
        s.neighbours_k,
        cands,
        "ease_local",
        memory_budget=s.selection_memory_mb * 2**20,
        time_budget=s.selection_seconds,
        min_users=s.selection_min_users,
        max_users=s.selection_users,
    )
    selected = time.perf_counter() - started
    mark = time.perf_counter()
    models.refit(cands, choice, x, s.neighbours_k)
    refit = time.perf_counter() - mark
    return {
        "books": books,
        "events": events,
        "pairs": int(x.nnz),
        "zipf": zipf,
        "model": choice.model,
        "params": choice.params,
        "fit_seconds": choice.fit_seconds,
        "skipped": choice.skipped,
        "selection_s": round(selected, 1),
        "refit_s": round(refit, 1),
        "total_s": round(selected + refit, 1),
        "cpu_s": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_utime
            + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
            1,
        ),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reco_scale", description=__doc__)
    p.add_argument("--sizes", default="25000:250000,50000:500000,100000:1000000")
    p.add_argument("--zipf", type=float, default=0.0)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        books, events = (int(v) for v in args.one.split(":"))
        print(json.dumps(one(books, events, args.zipf)))
        return 0
    for size in args.sizes.split(","):
        cmd = [sys.executable, "-m", "bench.reco_scale", "--one", size, "--zipf", str(args.zipf)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            print(f"{size}: failed: {done.stderr[-500:]}", file=sys.stderr)
            return 1
        print(done.stdout.strip(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
