"""`python -m bench`: seed; bookbridge, the raw limit and PostGraphile side by side; report."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import driver, measure, peer, report, scenarios, seed, servers, sink

HERE = Path(__file__).resolve().parent
READ = ("catalog_page", "deep", "book_by_id")
STUDENT = ("student_home",)
CACHED = "_cached"  # the suffix of a read measured with the response cache on
RECO = ("recommendations_cached", "recommendations_uncached")
LATENCY = ("recommendation_cold", "recommendation_stored", "recommendation_hot")  # issue 16
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
    p.add_argument(
        "--repeat",
        "--repeats",
        dest="repeat",
        type=int,
        default=3,
        help="runs per scenario; medians reported",
    )
    p.add_argument("--workers", type=int, default=int(os.environ.get("BENCH_WORKERS", "1")))
    p.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    p.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the response-cache-on pass (the *_cached rows); ingestion then runs uncached",
    )
    p.add_argument("--no-peer", action="store_true", help="do not install or run PostGraphile")
    p.add_argument(
        "--tracing",
        action="store_true",
        help="also run a server tracing at 0.1, compared with the default one in short slices",
    )
    p.add_argument(
        "--tracing-aa",
        action="store_true",
        help="the same comparison with the second server untraced too (an A/A check: its"
        " ratio must come out 1.00 within the reported interval); implies --tracing",
    )
    p.add_argument(
        "--tracing-seconds",
        type=float,
        default=None,
        help="seconds each of the two servers is measured per repeat in the traced comparison"
        " (default: --duration); its interval narrows with the square root",
    )
    p.add_argument("--out", type=Path, default=HERE, help="where results.json and RESULTS.md go")
    args = p.parse_args(argv)
    args.tracing = args.tracing or args.tracing_aa
    return args


def server_env(args: argparse.Namespace, url: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        # per-client rate limits would measure the limiter, not the server: off for the bench
        "BOOKBRIDGE_RATE_LIMIT_COST_PER_MINUTE": "0",
        "BOOKBRIDGE_RATE_LIMIT_ANONYMOUS_COST_PER_MINUTE": "0",
        "BOOKBRIDGE_LOG_LEVEL": "WARNING",
        "BOOKBRIDGE_JWT_SECRET": scenarios.JWT_SECRET,  # student_home's students sign in
        "OTEL_TRACES_EXPORTER": "none",
        # a fixed pool per worker: the default overflow opens and closes connections under load
        # (TLS attempt and startup each time), and the PostgreSQL server here is shared
        "BOOKBRIDGE_DB_POOL_SIZE": os.environ.get("BOOKBRIDGE_DB_POOL_SIZE", "10"),
        "BOOKBRIDGE_DB_MAX_OVERFLOW": os.environ.get("BOOKBRIDGE_DB_MAX_OVERFLOW", "0"),
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def stop_on_sigterm(signum: int, frame: object) -> None:
    """`kill` (SIGTERM) ends the bench like Ctrl-C: the servers it started are stopped too."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    args = parse_args(argv)
    driver.ensure_wrk()
    url = seed.plain_url(args.database_url)
    if not args.no_seed:
        prepare(args, url)
    chosen = {_base_name(s) for s in args.scenarios.split(",") if s}
    wanted = [n for n in (*READ, *STUDENT, *RECO, *LATENCY, *INGEST) if not chosen or n in chosen]
    run = Run(args, url, server_env(args, url), asyncio.run(seed.admin_key(url)), wanted)
    if not args.no_peer and any(n in READ for n in wanted) and (why := peer.install()):
        run.missing["postgraphile"] = why
        print(f"bench: {why}", file=sys.stderr)
    # The headline pass: the response cache off, so every read runs GraphQL execution; then the
    # same server with the cache on for the public reads (their *_cached rows) and ingestion.
    plan = [("uncached", {"BOOKBRIDGE_RESPONSE_CACHE_ENABLED": "false"})]
    if not args.no_variants:
        plan.append(("cached", {}))
    for label, settings in plan:
        run.one_pass(label, settings, ingesting=label == plan[-1][0])
    result = report.write(
        args.out, run.rows, run.variants, run.missing, args=vars(args), memory=run.memory
    )
    print(report.markdown_table(result["scenarios"]))
    return 0


def _base_name(name: str) -> str:
    """catalog_page_cached -> catalog_page (one name selects both passes of a public read)."""
    base = name.removesuffix(CACHED)
    return base if base in READ else name


@dataclass
class Run:
    """One `python -m bench`: its settings and what it measured so far."""

    args: argparse.Namespace
    url: str
    env: dict[str, str]
    token: str
    wanted: list[str]
    missing: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    variants: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    todo: list[scenarios.Scenario] | None = None

    def one_pass(self, label: str, settings: dict[str, str], ingesting: bool) -> None:
        """One bookbridge server (and the raw app and peer beside it) at a time: the PostgreSQL
        server is shared, and idle pools of other servers would hold its connections."""
        args = self.args
        with ExitStack() as stack:

            def start(app: str, more: dict[str, str]) -> str:
                ctx = servers.uvicorn(app, {**self.env, **more}, args.workers, "/healthz")
                return stack.enter_context(ctx)

            on = measure.Servers(
                start("bench.served:create_app", settings), start("bench.raw_app:create_app", {})
            )
            # tracing at 0.1 is measured beside the untraced server, the two taking turns in
            # short slices (measure.interleave), so its overhead is a same-run ratio and not a
            # comparison of two noisy runs; --tracing-aa: the second server untraced as well
            if args.tracing:
                sink_url = stack.enter_context(sink.otlp_sink())
                traced = {} if args.tracing_aa else tracing_env(sink_url)
                on.traced = start("bench.served:create_app", settings | traced)
            if self.todo is None:
                self.todo = build_scenarios(self.url, on.app, self.token, self.wanted, self.missing)
            reads = [s for s in self.todo if s.name in self.wanted]
            reads = [s for s in reads if label == "uncached" or s.public]
            peer_wanted = label == "uncached" and not args.no_peer
            if (
                peer_wanted
                and "postgraphile" not in self.missing
                and any(s.peer_bodies for s in reads)
            ):
                pool = int(self.env["BOOKBRIDGE_DB_POOL_SIZE"]) * args.workers
                on.peer = stack.enter_context(peer.postgraphile(self.url, pool))
            first = len(self.rows)
            for scenario in reads:
                check_same_json(on.app, on.raw, scenario)
                got = measure.measure(args, scenario, peer_for(on, scenario, self.missing))
                self.keep(label, got)
            for name in [n for n in INGEST if n in self.wanted and ingesting]:
                self.keep(label, measure.measure_ingest(args, name, on, self.url, self.token))
            self.memory[label] = self.pass_memory(on.app, first)

    def pass_memory(self, app: str, first: int) -> dict[str, float] | None:
        """The worker's RSS at the end of a pass, and its peak over the pass's scenarios."""
        now = servers.memory_mb(app)
        if now is None:
            return None
        peaks = [r["peak_rss_mb"] for r in self.rows[first:] if r.get("peak_rss_mb")]
        return {"peak_rss_mb": max([now[0], *peaks]), "rss_mb": now[1]}

    def keep(self, label: str, measured: tuple[dict[str, Any], dict[str, Any] | None]) -> None:
        """File a measurement under the rows (reads of the cached pass as `<name>_cached`) and
        its traced twin under the variants."""
        row, traced_row = measured
        for got in (row, traced_row):
            if got and label == "cached" and got["name"] not in INGEST:
                got["name"] += CACHED
        self.rows.append(row | {"variant": ""})
        print(report.line(self.rows[-1]), file=sys.stderr)
        if traced_row:
            variant = "untraced_aa" if self.args.tracing_aa else "tracing_0.1"
            self.variants.append(traced_row | {"variant": variant})
            print(report.line(self.variants[-1]), file=sys.stderr)


def build_scenarios(
    url: str, app: str, token: str, wanted: list[str], missing: dict[str, str]
) -> list[scenarios.Scenario]:
    todo = asyncio.run(scenarios.read_scenarios(url))
    if "student_home" in wanted:
        todo.append(asyncio.run(scenarios.student_home_scenario(url)))
    if any(n in wanted for n in LATENCY):
        todo += asyncio.run(scenarios.latency_scenarios(url))
    if any(n in wanted for n in RECO):
        if reason := probe(app, token):
            missing |= dict.fromkeys(RECO, reason)
        else:
            todo += asyncio.run(scenarios.recommendation_scenarios(url, token))
    return todo


def peer_for(
    on: measure.Servers, scenario: scenarios.Scenario, missing: dict[str, str]
) -> measure.Servers:
    """`on`, without the peer unless it answers this scenario with the page bookbridge returns."""
    if on.peer is None or scenario.peer_bodies is None:
        return measure.Servers(on.app, on.raw, None, on.traced)
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=60, headers=headers) as client:
        pairs = list(zip(scenario.bodies, scenario.peer_bodies, strict=True))
        for mine, theirs in pairs[:: max(1, len(pairs) // 5)][:5]:
            a = client.post(on.app + "/graphql", content=mine)
            b = client.post(on.peer + "/graphql", content=theirs)
            if why := peer.differs(a.content, b.content):
                missing[f"{scenario.name} (postgraphile)"] = why
                print(f"bench: {scenario.name}: peer skipped: {why}", file=sys.stderr)
                return measure.Servers(on.app, on.raw, None, on.traced)
    return on


def prepare(args: argparse.Namespace, url: str) -> None:
    counts = asyncio.run(seed.seed(url, "large" if args.large else "demo"))
    print("seeded:", ", ".join(f"{k} {v:,}" for k, v in counts.items()), file=sys.stderr)
    if not args.no_lists:
        refresh_lists(url)


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
    requests = scenario.requests()
    # a cold scenario's bodies are sent once each: only its last one here (measure skips it)
    sample = requests[-1:] if scenario.fresh else requests[:: max(1, len(requests) // 5)][:5]
    with httpx.Client(timeout=60, headers={"content-type": "application/json"}) as client:
        for b, headers in sample:
            mine = client.post(app + "/graphql", content=b, headers=headers)
            if mine.status_code != 200 or "errors" in mine.json():
                raise SystemExit(f"bench: {scenario.name} fails: {mine.text[:400]}")
            if scenario.raw_path is None or not scenario.same_json:
                continue
            theirs = client.post(raw + scenario.raw_path, content=b, headers=headers)
            if orjson.loads(mine.content) != orjson.loads(theirs.content):
                raise SystemExit(
                    f"bench: {scenario.name}: raw JSON differs from bookbridge's\n"
                    f"  bookbridge: {mine.content[:300]!r}\n  raw:        {theirs.content[:300]!r}"
                )


if __name__ == "__main__":
    raise SystemExit(main())
