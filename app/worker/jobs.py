"""`bookbridge worker`: background jobs, safe as several replicas (PostgreSQL advisory locks).

Each job runs under `pg_try_advisory_lock`; a replica that cannot take the lock skips the job,
and one that takes it skips too when another replica finished the job within its interval.
Every run logs one JSON line: job, outcome, duration and what it changed. `full` asks jobs that
work incrementally (analytics) to rebuild everything, and runs every job even when fresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import start_http_server
from sqlalchemy import text

from app.db import driver
from app.observability import metrics
from app.reco import jobs, neighbours, selection, stored
from app.runtime.services import Services

log = logging.getLogger("bookbridge.worker")
Job = Callable[[Services], Awaitable[dict[str, Any]]]


def staged_seconds(staged: Sequence[neighbours.Staged]) -> dict[str, float]:
    """Each staged kind's COPY and primary-key build (and statistics), for the job's log."""
    out: dict[str, float] = {}
    for s in staged:
        out[f"{s.kind}_copy"] = s.copy_seconds
        out[f"{s.kind}_key"] = s.key_seconds
    return out


async def job_lists(services: Services) -> dict[str, Any]:
    """Popularity rollup, trend lists and both neighbour lists (the collab model and HYBRID's
    weights chosen by validation, `app/reco/selection.py`), then invalidate cached lists."""
    s = services.settings.reco
    out: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    mark = time.perf_counter()
    async with services.engine.begin() as conn:
        out["popularity"] = await jobs.refresh_popularity(
            conn, s.half_life_days, datetime.now(UTC).date()
        )
        out["trending"] = await jobs.refresh_trending(conn, s.trending_size)
        out["topic_top"] = await jobs.refresh_topic_top(conn, s.candidates_per_topic)
    seconds["popularity_trending"] = time.perf_counter() - mark
    # Each kind's new lists are staged (COPY into a fresh table, primary key built after) and
    # swapped in last, just before commit (`neighbours.swap_neighbours`): readers wait only
    # for the swap, and no dead rows are left behind, so no VACUUM either.
    mark = time.perf_counter()
    async with services.engine.begin() as conn:
        content = await neighbours.compute_content(conn, s.neighbours_k)
        seconds["content"] = time.perf_counter() - mark
        staged = [await neighbours.stage_neighbours(conn, "content", content)]
        swap = time.perf_counter()
        await neighbours.swap_neighbours(conn, staged)
    seconds["content_swap"] = time.perf_counter() - swap  # the commit included
    seconds |= staged_seconds(staged)
    seconds["content_write"] = time.perf_counter() - mark - seconds["content"]
    out["content"] = staged[0].rows
    mark = time.perf_counter()
    async with services.engine.begin() as conn:
        collab, chosen, alt = await selection.compute_collab(conn, s, content)
        seconds["collab_selection_refit"] = time.perf_counter() - mark
        staged = [
            await neighbours.stage_neighbours(conn, "collab", collab),
            await neighbours.stage_neighbours(conn, "collab_alt", alt),
        ]
        await selection.store(conn, chosen)
        swap = time.perf_counter()
        await neighbours.swap_neighbours(conn, staged)  # both kinds at once, with the choice
    seconds["collab_swap"] = time.perf_counter() - swap
    seconds |= staged_seconds(staged)
    seconds["collab_write"] = time.perf_counter() - mark - seconds["collab_selection_refit"]
    out["collab"], out["collab_alt"] = staged[0].rows, staged[1].rows
    out["selection"] = chosen.to_json()
    out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
    metrics.observe_selection(
        chosen.model, chosen.validation_ndcg, chosen.fit_seconds, chosen.weights
    )
    await services.reco_cache.invalidate_lists()
    return out


async def job_reconcile(services: Services) -> dict[str, Any]:
    async with services.engine.begin() as conn:
        return {"repaired": await jobs.reconcile_aggregates(conn)}


async def job_report(services: Services) -> dict[str, Any]:
    async with services.read_engine.connect() as conn:
        return await jobs.catalog_report(conn)


async def job_analytics(services: Services) -> dict[str, Any]:
    """Recompute the analytics of the days touched since the last run (all on the first)."""
    async with services.engine.begin() as conn:
        return await jobs.refresh_analytics(conn, services.settings.reco.k_anonymity)


async def job_analytics_full(services: Services) -> dict[str, Any]:
    """Recompute the analytics of every day (`--full`)."""
    async with services.engine.begin() as conn:
        return await jobs.refresh_analytics(conn, services.settings.reco.k_anonymity, full=True)


JOBS: dict[str, Job] = {
    "lists": job_lists,
    "reconcile": job_reconcile,
    "report": job_report,
    "analytics": job_analytics,
}
# What a job runs instead when asked to rebuild in full (the others always do).
REBUILDS: dict[str, Job] = {"analytics": job_analytics_full}


class MetricsServer:
    """This process's Prometheus metrics (job durations, build info) served on `host:port` from
    a daemon thread (prometheus_client's own server). Port 0 picks a free one (tests)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.server, self.thread = start_http_server(port, addr=host)
        self.port: int = self.server.server_port

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_job(
    services: Services,
    name: str,
    interval: float,
    replica: str | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """Run one job unless another replica holds it or (unless `full`) ran it within `interval`
    seconds. The rebuild of a job shares its lock, so it never runs beside the job itself."""
    replica = replica or replica_name()
    started = time.perf_counter()
    record: dict[str, Any] = {"job": name, "replica": replica}
    async with services.read_engine.connect() as lock_conn:
        lock = {"key": f"bookbridge.worker.{name}"}
        got = await lock_conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:key))"), lock)
        if not got:
            record["outcome"] = "skipped_locked"
        else:
            try:
                record.update(await _run_locked(services, name, interval, full))
            finally:
                await lock_conn.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), lock)
    record["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    metrics.observe_job(name, str(record.get("outcome")), record["duration_ms"] / 1000)
    log.info(orjson.dumps(record, default=str).decode())
    return record


async def _run_locked(services: Services, name: str, interval: float, full: bool) -> dict[str, Any]:
    async with services.engine.begin() as conn:
        fresh = await conn.scalar(
            text(
                "SELECT last_finished_at > now() - make_interval(secs => :i) "
                "FROM worker_jobs WHERE job = :job AND last_status = 'ok'"
            ),
            {"job": name, "i": interval},
        )
        if fresh and not full:
            return {"outcome": "skipped_fresh"}
        await conn.execute(
            text(
                "INSERT INTO worker_jobs (job, runs, last_started_at) VALUES (:job, 0, now()) "
                "ON CONFLICT (job) DO UPDATE SET last_started_at = now()"
            ),
            {"job": name},
        )
    try:
        job = REBUILDS.get(name, JOBS[name]) if full else JOBS[name]
        details = await job(services)
        status: dict[str, Any] = {"outcome": "ok", "details": details}
    except Exception as exc:
        log.exception("job %s failed", name)
        status = {"outcome": "error", "details": {"error": f"{type(exc).__name__}: {exc}"}}
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE worker_jobs SET runs = runs + 1, last_finished_at = clock_timestamp(), "
                "last_status = :status, last_details = CAST(:details AS jsonb) WHERE job = :job"
            ),
            {
                "job": name,
                "status": status["outcome"],
                "details": orjson.dumps(status["details"], default=str).decode(),
            },
        )
    if name == "lists" and status["outcome"] == "ok":
        # after the run count moved (the stored lists' marker): lists stored now are fresh
        status["stored_lists"] = await fill_stored_lists(services)
    return status


async def fill_stored_lists(services: Services) -> int | str:
    """The recently engaged study sets' lists, stored ahead of their students' reads
    (app/reco/stored.py); a failure is logged, and the lists are stored when first read."""

    async def fetch(sql: str, *params: Any) -> list[Any]:
        async with driver.connection(services.read_engine) as conn:
            # a batch's estimated cost passes jit_above_cost, and compiling took most of a
            # statement that runs in a second or two (6.5 s of 7 s at 25,000 books)
            await conn.execute("SET jit = off")
            try:
                found: list[Any] = await conn.fetch(sql, *params)
            finally:
                await conn.execute("RESET jit")
            return found

    s = services.settings.reco
    try:
        return await stored.fill(fetch, s, s.stored_list_fill)
    except Exception as exc:
        log.exception("storing the recently engaged study sets' lists failed")
        return f"{type(exc).__name__}: {exc}"


async def run_worker(
    services: Services,
    names: Sequence[str],
    interval: float,
    once: bool = False,
    full: bool = False,
) -> list[dict[str, Any]]:
    """Run the jobs every `interval` seconds (or each once) until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if not once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    records: list[dict[str, Any]] = []
    while True:
        for name in names:
            records.append(await run_job(services, name, interval, full=full))
            if stop.is_set():
                break
        if once or stop.is_set():
            return records
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
