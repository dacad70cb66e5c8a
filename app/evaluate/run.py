"""The evaluation run: load through ingestion, refresh lists, ask the service, score, report."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.evaluate import dataset
from app.evaluate.metrics import Baselines, Result, percentiles, score_lists
from app.ingest.service import ingest
from app.reco import data as reco_data
from app.reco import selection
from app.reco import service as reco_service
from app.reco.strategies import STRATEGIES, recommend_all
from app.runtime.services import Services
from app.worker.jobs import job_lists

log = logging.getLogger("bookbridge.evaluate")
BATCH = 10_000
CHUNK = 500


async def load(services: Services, entity: str, records: Sequence[dict[str, Any]]) -> None:
    """Send records through the ingestion service in batches; any rejection is an error."""
    for start in range(0, len(records), BATCH):
        outcome = await ingest(services.engine, entity, list(records[start : start + BATCH]))
        if outcome.rejected:
            raise RuntimeError(
                f"{entity}: {len(outcome.rejected)} rejected, first: {outcome.rejected[0]}"
            )


def for_evaluation(services: Services) -> Services:
    """The same services with every training interaction excluded from the lists (the protocol)."""
    reco = services.settings.reco.model_copy(update={"exclude_event_types": ["complete", "save"]})
    settings = services.settings.model_copy(update={"reco": reco})
    return Services(settings=settings, engine=services.engine, read_engine=services.read_engine)


async def evaluate(
    services: Services,
    directory: Path,
    latency_samples: int = 200,
    sample: int | None = None,
    reuse: bool = False,
) -> dict[str, Any]:
    """The whole run; `sample` evaluates that many users (seeded) instead of all of them;
    `reuse` skips the load (the database already holds this data set, from an earlier run)."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    data = dataset.split(directory)
    cat = dataset.catalog(directory)
    sets, events = dataset.study_sets_and_events(data, cat, datetime.now(UTC) - timedelta(hours=1))
    timings["read_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    if not reuse:
        publishers = sorted({b["publisher_id"] for b in cat.books})
        await load(services, "publishers", [{"id": p, "name": p} for p in publishers])
        await load(services, "subjects", [{"id": "books", "name": "Books (goodbooks)"}])
        await load(services, "topics", cat.topics)
        await load(services, "books", cat.books)
        await load(services, "topic_book_mappings", cat.mappings)
        await load(services, "study_sets", sets)
        await load(services, "engagement_events", events)
        async with services.engine.connect() as conn:
            # planner statistics after a bulk load (autovacuum would get there, later)
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).exec_driver_sql(
                "ANALYZE"
            )
    timings["ingest_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    lists_job = await job_lists(services)
    timings["worker_lists_s"] = time.perf_counter() - mark
    ev = for_evaluation(services)
    users = sorted(data.test)
    if sample is not None and sample < len(users):
        users = sorted(random.Random(dataset.SEED).sample(users, sample))
        data.test = {u: data.test[u] for u in users}
    mark = time.perf_counter()
    all_lists = await _service_lists(ev, users)
    timings["service_lists_s"] = time.perf_counter() - mark
    results = []
    for strategy in STRATEGIES:
        p50, p99 = await _latency(ev, users[:latency_samples], strategy)
        scores = score_lists(all_lists[strategy], data.test, len(cat.books))
        results.append(Result(strategy, *scores, p50, p99))
    timings["latency_samples_s"] = time.perf_counter() - mark - timings["service_lists_s"]
    mark = time.perf_counter()
    base = Baselines(data.train, ease_max_items=services.settings.reco.ease_max_items)
    for name in base.methods:
        samples, lists = [], {}
        for start in range(0, len(users), CHUNK):
            chunk = users[start : start + CHUNK]
            t = time.perf_counter()
            lists.update(base.top(chunk, name))
            samples.append((time.perf_counter() - t) * 1000 / len(chunk))
        p50, p99 = percentiles(samples)
        results.append(Result(name, *score_lists(lists, data.test, len(cat.books)), p50, p99))
    timings["baselines_s"] = time.perf_counter() - mark
    timings["wall_s"] = time.perf_counter() - started
    return {
        "results": [asdict(r) for r in results],
        "dataset": {
            "users": len(data.train),
            "evaluated_users": len(users),
            "books": len(cat.books),
            "training_events": len(events),
            "held_out": sum(len(t) for t in data.test.values()),
            "topics": len(cat.topics),
        },
        "timings": {k: round(v, 2) for k, v in timings.items()},
        # chosen on a validation split of the training events (the held-out ones never load)
        "selection": lists_job["selection"],
    }


async def _service_lists(services: Services, users: list[str]) -> dict[str, dict[str, list[str]]]:
    """Top-10 lists of every strategy from the service's own recommendation code, batched over
    study sets (two batches in flight: PostgreSQL works on one while Python scores the other)."""
    out: dict[str, dict[str, list[str]]] = {s: {} for s in STRATEGIES}
    chunks = [users[i : i + CHUNK] for i in range(0, len(users), CHUNK)]

    async def run(chunk: list[str]) -> None:
        async with services.read_engine.connect() as conn:
            await conn.exec_driver_sql("SET work_mem = '64MB'")  # 500 study sets per query
            settings = await reco_data.effective_settings(conn, services.settings.reco)
            found = await recommend_all(conn, settings, [f"ss-{u}" for u in chunk], 10)
        for strategy, lists in found.items():
            for user in chunk:
                rec = lists.get(f"ss-{user}")
                out[strategy][user] = [i.book_id for i in rec.items] if rec else []

    for start in range(0, len(chunks), 2):
        await asyncio.gather(*(run(c) for c in chunks[start : start + 2]))
        log.info("evaluate: %d of %d users", min(len(users), (start + 2) * CHUNK), len(users))
    return out


async def _latency(services: Services, users: list[str], strategy: str) -> tuple[float, float]:
    """Per-list latency of the resolver's path on a cache miss (one study set per call)."""
    samples = []
    for user in users:
        services.reco_cache.clear_local()
        t = time.perf_counter()
        await reco_service.recommendations(services, f"ss-{user}", 10, strategy)
        samples.append((time.perf_counter() - t) * 1000)
    return percentiles(samples)


def table(report: dict[str, Any]) -> str:
    head = f"{'strategy':<22}{'ndcg@10':>9}{'recall@10':>11}{'hit@10':>8}{'cov@10':>8}{'p50 ms':>8}{'p99 ms':>8}"
    lines = [head]
    lines.extend(
        f"{r['strategy']:<22}{r['ndcg_at_10']:>9.4f}{r['recall_at_10']:>11.4f}"
        f"{r['hit_rate_at_10']:>8.4f}{r['coverage_at_10']:>8.4f}"
        f"{r['latency_p50_ms']:>8.2f}{r['latency_p99_ms']:>8.2f}"
        for r in report["results"]
    )
    d, t = report["dataset"], report["timings"]
    lines.append(
        f"users {d['users']} (evaluated {d['evaluated_users']}), books {d['books']}, "
        f"training events {d['training_events']}, held out {d['held_out']}, topics {d['topics']}"
    )
    lines.append("timings (s): " + ", ".join(f"{k} {v}" for k, v in t.items()))
    if report.get("selection"):
        lines.extend(selection.describe(report["selection"]))
    return "\n".join(lines)
