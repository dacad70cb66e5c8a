"""`python -m bench`: seed, serve bookbridge and the raw limit side by side, drive, report."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import driver, ingest, report, scenarios, seed, servers, sink

HERE = Path(__file__).resolve().parent
READ = ("catalog_page", "deep", "book_by_id")
RECO = ("recommendations_cached", "recommendations_uncached")
INGEST = ("upsert_books", "record_events")


def default_database_url() -> str:
    """The bench database: BENCH_DATABASE_URL, else bb_bench on the local server."""
    return os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bb_bench")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--database-url", default=default_database_url(), help="emptied and reseeded")
    p.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL"), help="redis://...")
    p.add_argument("--large", action="store_true", help="100,000 books / 1,000,000 events")
    p.add_argument("--no-seed", action="store_true", help="reuse what the database holds")
    p.add_argument(
        "--no-lists", action="store_true", help="skip the worker's list refresh after seeding"
    )
    p.add_argument("--concurrency", type=int, default=32, help="HTTP clients for reads")
    p.add_argument("--ingest-concurrency", type=int, default=4, help="clients sending batches")
    p.add_argument("--duration", type=float, default=5.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds discarded before each run")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario; medians reported")
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "1")))
    p.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    p.add_argument("--no-variants", action="store_true", help="skip the response-cache-off runs")
    p.add_argument(
        "--tracing",
        action="store_true",
        help="also run a server tracing at 0.1, beside the default one",
    )
    p.add_argument("--out", type=Path, default=HERE, help="where results.json and RESULTS.md go")
    return p.parse_args(argv)


def server_env(args: argparse.Namespace, url: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        # per-client rate limits would measure the limiter, not the server: off for the bench
        "BOOKBRIDGE_RATE_LIMIT_COST_PER_MINUTE": "0",
        "BOOKBRIDGE_RATE_LIMIT_ANONYMOUS_COST_PER_MINUTE": "0",
        "BOOKBRIDGE_LOG_LEVEL": "WARNING",
        "OTEL_TRACES_EXPORTER": "none",
        # a fixed pool per worker: the default overflow opens and closes connections under load
        # (TLS attempt and startup each time), and the PostgreSQL server here is shared
        "BOOKBRIDGE_DB_POOL_SIZE": os.environ.get("BOOKBRIDGE_DB_POOL_SIZE", "10"),
        "BOOKBRIDGE_DB_MAX_OVERFLOW": os.environ.get("BOOKBRIDGE_DB_MAX_OVERFLOW", "0"),
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url = seed.plain_url(args.database_url)
    if not args.no_seed:
        prepare(args, url)
    chosen = {s for s in args.scenarios.split(",") if s}
    wanted = [n for n in (*READ, *RECO, *INGEST) if not chosen or n in chosen]
    env = server_env(args, url)
    token = asyncio.run(seed.admin_key(url))
    missing: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    variants: list[dict[str, Any]] = []
    plan: list[tuple[str, dict[str, str]]] = [("", {})]
    if not args.no_variants:
        plan.append(("response_cache_off", {"BOOKBRIDGE_RESPONSE_CACHE_ENABLED": "false"}))
    todo: list[scenarios.Scenario] | None = None
    # One bookbridge server (and the raw app beside it) at a time: the PostgreSQL server is
    # shared, and idle pools of other servers would hold its connections.
    for variant, settings in plan:
        with ExitStack() as stack:

            def start(app: str, more: dict[str, str]) -> str:
                ctx = servers.uvicorn(app, {**env, **more}, args.workers, "/healthz")
                return stack.enter_context(ctx)

            app = start("bench.served:create_app", settings)
            raw = start("bench.raw_app:create_app", {})
            # tracing at 0.1 is measured beside the untraced server, alternating in every repeat,
            # so its overhead is a same-run ratio and not a comparison of two noisy runs
            traced = None
            if args.tracing and not variant:
                traced = start(
                    "bench.served:create_app", tracing_env(stack.enter_context(sink.otlp_sink()))
                )
            if todo is None:
                todo = asyncio.run(scenarios.read_scenarios(url))
                if any(n in wanted for n in RECO):
                    if reason := probe(app, token):
                        missing |= dict.fromkeys(RECO, reason)
                    else:
                        todo += asyncio.run(scenarios.recommendation_scenarios(url, token))
            reads = [s for s in todo if s.name in wanted]
            if variant == "response_cache_off":
                reads = [s for s in reads if s.name in READ]
            for scenario in reads:
                check_same_json(app, raw, scenario)
                keep(variant, measure(args, scenario, app, raw, traced), rows, variants)
            if variant != "response_cache_off":
                for name in [n for n in INGEST if n in wanted]:
                    got = measure_ingest(args, name, app, url, token, traced)
                    keep(variant, got, rows, variants)
    result = report.write(args.out, rows, variants, missing, args=vars(args))
    print(report.markdown_table(result["scenarios"]))
    return 0


def prepare(args: argparse.Namespace, url: str) -> None:
    counts = asyncio.run(seed.seed(url, "large" if args.large else "demo"))
    print("seeded:", ", ".join(f"{k} {v:,}" for k, v in counts.items()), file=sys.stderr)
    if not args.no_lists:
        refresh_lists(url)


def keep(
    variant: str,
    measured: tuple[dict[str, Any], dict[str, Any] | None],
    rows: list[dict[str, Any]],
    variants: list[dict[str, Any]],
) -> None:
    """File a measurement (and its traced twin) under the default rows or the variants."""
    row, traced_row = measured
    for got in (row | {"variant": variant}, traced_row and traced_row | {"variant": "tracing_0.1"}):
        if got:
            (variants if got["variant"] else rows).append(got)
            print(report.line(got), file=sys.stderr)


def tracing_env(endpoint: str) -> dict[str, str]:
    return {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }


def refresh_lists(url: str) -> None:
    """The recommender's precomputed lists (neighbours, popularity, trending), as the worker does."""
    env = {**os.environ, "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://")}
    cmd = [sys.executable, "-m", "app.cli.main", "worker", "--once", "--jobs", "lists"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"bench: worker lists failed ({done.stderr[-300:]})", file=sys.stderr)


def probe(app: str, token: str) -> str | None:
    """Why the recommendation scenarios cannot run, or None when they can."""
    body = scenarios.body(scenarios.RECOMMENDATIONS, {"id": "no-such-set"})
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    response = httpx.post(app + "/graphql", content=body, headers=headers, timeout=30)
    text = response.text
    if "not implemented" in text.lower() or "Cannot query field" in text:
        return f"recommendations not available: {text[:200]}"
    return None


def check_same_json(app: str, raw: str, scenario: scenarios.Scenario) -> None:
    """The raw limit must produce the very JSON bookbridge returns, else the ratio means nothing."""
    headers = {"content-type": "application/json", **scenario.headers}
    with httpx.Client(timeout=60, headers=headers) as client:
        for b in scenario.bodies[:: max(1, len(scenario.bodies) // 5)][:5]:
            mine = client.post(app + "/graphql", content=b)
            if mine.status_code != 200 or "errors" in mine.json():
                raise SystemExit(f"bench: {scenario.name} fails: {mine.text[:400]}")
            if scenario.raw_path is None or not scenario.same_json:
                continue
            theirs = client.post(raw + scenario.raw_path, content=b)
            if orjson.loads(mine.content) != orjson.loads(theirs.content):
                raise SystemExit(
                    f"bench: {scenario.name}: raw JSON differs from bookbridge's\n"
                    f"  bookbridge: {mine.content[:300]!r}\n  raw:        {theirs.content[:300]!r}"
                )


def measure(
    args: argparse.Namespace,
    scenario: scenarios.Scenario,
    app: str,
    raw: str,
    traced: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The scenario against bookbridge and the raw limit (and the traced server), per repeat."""
    runs: list[tuple[driver.Run, driver.Run | None]] = []
    traced_runs: list[tuple[driver.Run, driver.Run | None]] = []
    mine_script = driver.write_script(scenario.bodies, "/graphql", scenario.headers)
    raw_script = (
        driver.write_script(scenario.bodies, scenario.raw_path) if scenario.raw_path else None
    )

    def go(base: str, script: Path, secs: float) -> driver.Run:
        return driver.wrk(base, script, args.concurrency, secs)

    def timed(base: str, script: Path) -> driver.Run:
        if args.warmup:
            go(base, script, args.warmup)
        return go(base, script, args.duration)

    for i in range(args.repeat):
        # the traced and untraced servers take turns going first
        order = [app, traced] if i % 2 == 0 else [traced, app]
        got = {base: timed(base, mine_script) for base in order if base is not None}
        theirs = timed(raw, raw_script) if raw_script is not None else None
        runs.append((got[app], theirs))
        if traced is not None:
            traced_runs.append((got[traced], theirs))
    row = summarize(scenario.name, args.concurrency, runs)
    row["_detail"]["note"] = scenario.note
    if traced is None:
        return row, None
    traced_row = summarize(scenario.name, args.concurrency, traced_runs)
    pairs = [(m, t) for (m, _), (t, _) in zip(runs, traced_runs, strict=True)]
    vs_untraced(
        traced_row, [m.throughput_rps for m, _ in pairs], [t.throughput_rps for _, t in pairs]
    )
    cpu = [
        t.server_cpu_us / m.server_cpu_us for m, t in pairs if m.server_cpu_us and t.server_cpu_us
    ]
    traced_row["_detail"]["cpu_per_request_vs_untraced"] = _median_of(cpu)
    return row, traced_row


def summarize(
    name: str, concurrency: int, runs: list[tuple[driver.Run, driver.Run | None]]
) -> dict[str, Any]:
    med = statistics.median
    mine = [m for m, _ in runs]
    raws = [r for _, r in runs if r is not None]
    sql = [m.sql_per_request for m in mine if m.sql_per_request is not None]
    ratios = [m.throughput_rps / r.throughput_rps for m, r in runs if r]
    return {
        "name": name,
        "concurrency": concurrency,
        "throughput_rps": round(med(m.throughput_rps for m in mine), 1),
        "p50_ms": round(med(m.p50_ms for m in mine), 2),
        "p99_ms": round(med(m.p99_ms for m in mine), 2),
        "sql_per_request": round(med(sql), 2) if sql else None,
        "raw_throughput_rps": round(med(r.throughput_rps for r in raws), 1) if raws else None,
        "ratio": round(med(ratios), 3) if ratios else None,
        "_detail": {
            "unit": "requests/s",
            "runs": [round(m.throughput_rps, 1) for m in mine],
            "raw_runs": [round(r.throughput_rps, 1) for r in raws],
            "raw_p50_ms": round(med(r.p50_ms for r in raws), 2) if raws else None,
            "raw_p99_ms": round(med(r.p99_ms for r in raws), 2) if raws else None,
            "errors": sum(m.bad for m in mine) + sum(r.bad for r in raws),
            "requests": sum(m.requests for m in mine),
            "client_cpu": round(max(m.client_cpu for m in mine + raws), 2),
            "server_cpu_us": _median_of([m.server_cpu_us for m in mine]),
            "gc_pauses": [m.gc for m in mine],
            "raw_server_cpu_us": _median_of([r.server_cpu_us for r in raws]),
        },
    }


def _median_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def measure_ingest(
    args: argparse.Namespace, name: str, app: str, url: str, token: str, traced: str | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Batches through bookbridge (and the traced server) and through asyncpg, per repeat."""
    entity = "books" if name == "upsert_books" else "engagement_events"
    refs = asyncio.run(ingest.references(url))
    mine: list[ingest.IngestRun] = []
    traced_runs: list[ingest.IngestRun] = []
    raws: list[ingest.IngestRun] = []
    n, secs = args.ingest_concurrency, args.duration

    def through(base: str, prefix: str) -> ingest.IngestRun:
        rows = ingest.Rows(refs, prefix)
        return asyncio.run(ingest.through_graphql(base, token, entity, rows, n, secs, 80))

    tags = [f"{os.getpid()}-{i}" for i in range(args.repeat)]
    for i, tag in enumerate(tags):
        if traced is not None and i % 2 == 1:
            traced_runs.append(through(traced, f"t{tag}"))
        mine.append(through(app, f"g{tag}"))
        if traced is not None and i % 2 == 0:
            traced_runs.append(through(traced, f"t{tag}"))
        raws.append(
            asyncio.run(
                ingest.through_asyncpg(url, entity, ingest.Rows(refs, f"r{tag}"), n, secs, 400)
            )
        )
    asyncio.run(ingest.cleanup(url, [f"{k}{t}" for t in tags for k in "grt"]))
    row = ingest_row(name, n, mine, raws)
    if traced is None:
        return row, None
    traced_row = ingest_row(name, n, traced_runs, raws)
    vs_untraced(traced_row, [m.records_per_s for m in mine], [t.records_per_s for t in traced_runs])
    return row, traced_row


def vs_untraced(traced_row: dict[str, Any], untraced: list[float], traced: list[float]) -> None:
    """Record traced / untraced throughput, per repeat and their median, on the traced row."""
    overhead = [t / u for u, t in zip(untraced, traced, strict=True)]
    traced_row["_detail"]["vs_untraced"] = [round(x, 3) for x in overhead]
    traced_row["vs_untraced"] = round(statistics.median(overhead), 3)


def ingest_row(
    name: str, n: int, mine: list[ingest.IngestRun], raws: list[ingest.IngestRun]
) -> dict[str, Any]:
    a, b = ingest.summary(mine), ingest.summary(raws)
    ratios = [m.records_per_s / r.records_per_s for m, r in zip(mine, raws, strict=True)]
    return {
        "name": name,
        "concurrency": n,
        "throughput_rps": round(a["records_per_s"], 1),
        "p50_ms": round(a["p50_ms"], 2),
        "p99_ms": round(a["p99_ms"], 2),
        "sql_per_request": a["sql_per_request"],
        "raw_throughput_rps": round(b["records_per_s"], 1),
        "ratio": round(statistics.median(ratios), 3),
        "_detail": {
            "unit": f"records/s (batches of {ingest.BATCH}, gzip over HTTP; p50/p99 per batch)",
            "runs": [round(m.records_per_s, 1) for m in mine],
            "raw_runs": [round(r.records_per_s, 1) for r in raws],
            "raw_p50_ms": round(b["p50_ms"], 2),
            "raw_p99_ms": round(b["p99_ms"], 2),
            "errors": int(a["bad"]),
            "requests": sum(len(m.batch_ms) for m in mine),
            "client_cpu": None,
            "note": "raw = one INSERT .. ON CONFLICT (events: + the three aggregates) per batch",
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
