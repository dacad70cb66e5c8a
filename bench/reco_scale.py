"""How the lists job's model selection grows with books and events (no database, no server).

    python -m bench.reco_scale [--sizes 25000:250000,50000:500000,100000:1000000] [--zipf 0]
    python -m bench.reco_scale --content [--copies 50]

Each size runs in a fresh process: engagement pairs drawn like bench/seed.py's large scale
(users pick books uniformly; `--zipf S` draws books with probability ~ 1 / rank^S instead),
then `app.reco.models.choose` with the lists job's candidates and budgets and the refit of the
chosen model, exactly as `app/reco/selection.py` runs them. Prints seconds per step and the
process's CPU time (user + system, whole process) and peak resident memory.

`--content`: the content (TF-IDF) lists of the demo catalog, all pairs against the candidate
pairs used above 20,000 books (overlap@10 and @50), then the candidate path's time on the demo
catalog repeated `--copies` times (each copy with a token of its own, as bench/seed.py's large
scale repeats the demo books with a number in the title).
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
from app.reco import models, selection

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
        time_budget=selection.time_budget(s.selection_seconds, books),
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


def content(copies: int) -> dict[str, object]:
    import gzip
    from collections import defaultdict

    import orjson

    from app.reco import neighbours as nb

    def read(name: str) -> list[dict[str, object]]:
        with gzip.open(f"app/demo/data/{name}.jsonl.gz", "rb") as fh:
            return [orjson.loads(line) for line in fh if line.strip()]

    labels = {str(t["id"]): str(t["label"]) for t in read("topics")}
    by_book: dict[str, list[str]] = defaultdict(list)
    for m in read("topic_book_mappings"):
        by_book[str(m["bookId"])].append(labels.get(str(m["topicId"]), ""))
    docs = [
        nb.tokens(str(b["title"]), b.get("description"), b.get("tags") or [], by_book[str(b["id"])])  # type: ignore[arg-type]
        for b in read("books")
    ]

    def lists(triples: nb.Triples) -> dict[int, list[int]]:
        out: dict[int, list[tuple[float, int]]] = defaultdict(list)
        for i, j, v in triples:
            out[i].append((-v, j))
        return {i: [j for _, j in sorted(v)] for i, v in out.items()}

    exact, approx = lists(nb.tfidf_neighbours(docs, 50)), lists(nb.tfidf_neighbours(docs, 50, 0))
    result: dict[str, object] = {"books": len(docs)}
    for k in (10, 50):
        hits = sum(len(set(exact[i][:k]) & set(approx.get(i, [])[:k])) for i in exact)
        result[f"overlap@{k}"] = round(hits / sum(min(k, len(v)) for v in exact.values()), 4)
    many = [[*d, f"copy{c}"] for c in range(copies) for d in docs]
    started = time.perf_counter()
    nb.tfidf_neighbours(many, 50, exact_up_to=0)
    result[f"candidate_s_{len(many)}_books"] = round(time.perf_counter() - started, 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    result["peak_mb"] = usage.ru_maxrss // 1024
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reco_scale", description=__doc__)
    p.add_argument("--sizes", default="25000:250000,50000:500000,100000:1000000")
    p.add_argument("--zipf", type=float, default=0.0)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--content", action="store_true")
    p.add_argument("--copies", type=int, default=50)
    args = p.parse_args(argv)
    if args.content:
        print(json.dumps(content(args.copies)))
        return 0
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
