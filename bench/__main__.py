"""`python -m bench`: seed, serve bookbridge and the raw limit side by side, drive, report."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import driver, report, scenarios, seed, servers

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bb_bench"
        ),
        help="benchmark database (created if missing, its tables emptied and reseeded)",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL"),
        help="e.g. redis://127.0.0.1:6379/9",
    )
    p.add_argument(
        "--large",
        action="store_true",
        help="generated 100,000 books / 1,000,000 events instead of the demo data",
    )
    p.add_argument("--no-seed", action="store_true", help="reuse what the database holds")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds discarded before each run")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario; medians reported")
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "2")))
    p.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    p.add_argument("--tracing", action="store_true", help="also run with tracing sampled at 0.1")
    p.add_argument("--out", type=Path, default=HERE, help="where results.json and RESULTS.md go")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = seed.plain_url(args.database_url)
    if not args.no_seed:
        counts = asyncio.run(seed.seed(url, "large" if args.large else "demo"))
        print("seeded:", ", ".join(f"{k} {v:,}" for k, v in counts.items()), file=sys.stderr)
    chosen = {s for s in args.scenarios.split(",") if s}
    all_scenarios = asyncio.run(scenarios.read_scenarios(url))
    todo = [s for s in all_scenarios if not chosen or s.name in chosen]
    env = {
        "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        # per-client rate limits would measure the limiter, not the server: off for the bench
        "BOOKBRIDGE_RATE_LIMIT_COST_PER_MINUTE": "0",
        "BOOKBRIDGE_RATE_LIMIT_ANONYMOUS_COST_PER_MINUTE": "0",
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    rows = []
    with ExitStack() as stack:
        app = stack.enter_context(
            servers.uvicorn("bench.served:create_app", env, args.workers, "/healthz")
        )
        raw = stack.enter_context(
            servers.uvicorn("bench.raw_app:create_app", env, args.workers, "/healthz")
        )
        for scenario in todo:
            check_same_json(app, raw, scenario)
        for scenario in todo:
            rows.append(measure(args, scenario, app, raw))
            print(report.line(rows[-1]), file=sys.stderr)
    result = report.write(args.out, rows, scale="large" if args.large else "demo", args=vars(args))
    print(report.markdown_table(result["scenarios"]))
    return 0


def check_same_json(app: str, raw: str, scenario: scenarios.Scenario) -> None:
    """The raw limit must produce the very JSON bookbridge returns, else the ratio means nothing."""
    if scenario.raw_path is None:
        return
    with httpx.Client(timeout=30) as client:
        for b in scenario.bodies[:: max(1, len(scenario.bodies) // 5)]:
            mine = client.post(
                app + "/graphql", content=b, headers={"content-type": "application/json"}
            )
            theirs = client.post(
                raw + scenario.raw_path, content=b, headers={"content-type": "application/json"}
            )
            if orjson.loads(mine.content) != orjson.loads(theirs.content):
                raise SystemExit(
                    f"bench: {scenario.name}: raw JSON differs from bookbridge's\n"
                    f"  bookbridge: {mine.content[:300]!r}\n  raw:        {theirs.content[:300]!r}"
                )


def measure(
    args: argparse.Namespace, scenario: scenarios.Scenario, app: str, raw: str
) -> dict[str, Any]:
    runs: list[tuple[driver.Run, driver.Run | None]] = []
    mine_script = driver.write_script(scenario.bodies, "/graphql")
    raw_script = (
        driver.write_script(scenario.bodies, scenario.raw_path) if scenario.raw_path else None
    )

    def go(base: str, script: Path, secs: float) -> driver.Run:
        return driver.wrk(base, script, args.concurrency, secs)

    for _ in range(args.repeat):
        if args.warmup:
            go(app, mine_script, args.warmup)
        mine = go(app, mine_script, args.duration)
        theirs = None
        if raw_script is not None:
            if args.warmup:
                go(raw, raw_script, args.warmup)
            theirs = go(raw, raw_script, args.duration)
        runs.append((mine, theirs))
    return summarize(scenario.name, args.concurrency, runs)


def summarize(
    name: str, concurrency: int, runs: list[tuple[driver.Run, driver.Run | None]]
) -> dict[str, Any]:
    med = statistics.median
    mine = [m for m, _ in runs]
    raws = [r for _, r in runs if r is not None]
    sql = [m.sql_per_request for m in mine if m.sql_per_request is not None]
    row: dict[str, Any] = {
        "name": name,
        "concurrency": concurrency,
        "throughput_rps": round(med(m.throughput_rps for m in mine), 1),
        "p50_ms": round(med(m.p50_ms for m in mine), 2),
        "p99_ms": round(med(m.p99_ms for m in mine), 2),
        "sql_per_request": round(med(sql), 2) if sql else None,
        "raw_throughput_rps": round(med(r.throughput_rps for r in raws), 1) if raws else None,
        "ratio": round(med(m.throughput_rps / r.throughput_rps for m, r in runs if r), 3)
        if raws
        else None,
    }
    row["_detail"] = {
        "runs": [m.throughput_rps for m in mine],
        "raw_runs": [r.throughput_rps for r in raws],
        "raw_p50_ms": round(med(r.p50_ms for r in raws), 2) if raws else None,
        "raw_p99_ms": round(med(r.p99_ms for r in raws), 2) if raws else None,
        "errors": sum(m.bad for m in mine) + sum(r.bad for r in raws),
        "client_cpu": round(max(m.client_cpu for m in mine + raws), 2),
    }
    return row


if __name__ == "__main__":
    raise SystemExit(main())
