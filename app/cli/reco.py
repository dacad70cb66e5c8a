"""The `worker` and `evaluate` subcommands of the `bookbridge` CLI."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

WORKER_HELP = "background jobs: neighbour lists, trending, reconcile"
EVALUATE_HELP = "offline evaluation on goodbooks-format CSVs"


def configure_worker(worker: argparse.ArgumentParser) -> None:
    """The arguments of `bookbridge worker`, on the parser `app.cli.main` made for it."""
    worker.add_argument("--once", action="store_true", help="run each job once, then exit")
    worker.add_argument(
        "--jobs", default="lists,reconcile,report,analytics", help="comma-separated job names"
    )
    worker.add_argument("--interval", type=float, default=None, help="seconds between runs")
    worker.add_argument(
        "--full",
        action="store_true",
        help="rebuild incremental aggregates (analytics) in full; run jobs even when fresh",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics on this port (default BOOKBRIDGE_WORKER_METRICS_PORT; 0: off)",
    )
    worker.set_defaults(func=cmd_worker)


def configure_evaluate(ev: argparse.ArgumentParser) -> None:
    """The arguments of `bookbridge evaluate`, on the parser `app.cli.main` made for it."""
    ev.add_argument("--dataset", required=True, type=Path, help="folder with the CSV files")
    ev.add_argument("--json", type=Path, default=None, help="also write the results here")
    ev.add_argument(
        "--database-url",
        default=None,
        help="load into this (migrated, ideally empty) database instead of a fresh scratch one",
    )
    ev.add_argument("--keep", action="store_true", help="keep the scratch database afterwards")
    ev.add_argument(
        "--sample", type=int, default=None, help="evaluate this many users (seeded), not all"
    )
    ev.add_argument(
        "--reuse",
        action="store_true",
        help="--database-url already holds this data set (an earlier run): skip the load",
    )
    ev.set_defaults(func=cmd_evaluate)


def cmd_worker(args: argparse.Namespace) -> int:
    from app.core.settings import Settings
    from app.db.engine import resolve_database_url
    from app.runtime.services import Services
    from app.worker.jobs import JOBS, MetricsServer, run_worker

    settings = Settings()
    settings = settings.model_copy(update={"database_url": resolve_database_url(settings)})
    names = [n for n in args.jobs.split(",") if n]
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        print(f"bookbridge worker: unknown jobs {unknown}; known: {sorted(JOBS)}", file=sys.stderr)
        return 2
    interval = args.interval if args.interval is not None else settings.reco.worker_interval_seconds

    port = args.metrics_port
    port = settings.observability.worker_metrics_port if port is None else port

    async def main() -> list[dict[str, Any]]:
        services = Services.create(settings)
        exporter = MetricsServer(port, settings.observability.worker_metrics_host) if port else None
        try:
            return await run_worker(services, names, interval, once=args.once, full=args.full)
        finally:
            if exporter is not None:
                exporter.stop()
            await services.close()

    records = asyncio.run(main())
    for record in records:  # the lists job's model selection, readable
        chosen = (record.get("details") or {}).get("selection")
        if record.get("job") == "lists" and chosen:
            from app.reco.selection import describe

            print("\n".join(describe(chosen)))
    return 1 if any(r.get("outcome") == "error" for r in records) else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from app.evaluate.run import table
    from app.evaluate.scratch import run_in_database

    if not (args.dataset / "ratings.csv").exists() and not (args.dataset / "to_read.csv").exists():
        print(f"bookbridge evaluate: no ratings.csv/to_read.csv in {args.dataset}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    server = None
    if args.database_url is None:
        from app.core.settings import Settings
        from app.db.engine import resolve_database_url

        server = resolve_database_url(Settings())  # DATABASE_URL, or the embedded server
    report = asyncio.run(
        run_in_database(
            args.dataset,
            args.database_url,
            keep=args.keep,
            sample=args.sample,
            server_url=server,
            reuse=args.reuse,
        )
    )
    report["timings"]["command_wall_s"] = round(time.perf_counter() - started, 2)
    print(table(report))
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0
