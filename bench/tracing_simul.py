"""Tracing's CPU per request, two servers loaded at the same time: the untraced bench server and
a traced one (or any two env variants), each with its own wrk, their CPU per request read from
/proc over the same windows. Taking turns (`python -m bench --tracing`, `bench.tracing_cost`)
puts the two servers in different seconds of a shared machine, whose speed moves 10-30% from
one run to the next; side by side, whatever the machine does hits both alike, so the ratio
moves far less from window to window (docs/performance.md).

    python -m bench.tracing_simul [--scenario book_by_id] [--cached] [--windows 5] [--seconds 3]
        [--a untraced] [--b 'traced'] [--b 'traced:OTEL_TRACES_SAMPLER_ARG=0'] ...

A variant is NAME[:KEY=VALUE,...]: a NAME starting with `traced` adds the bench's tracing
settings (OTLP/HTTP to a local sink that drops the spans, parentbased_traceidratio 0.1), then
the KEY=VALUEs are added to the server's environment (e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE=64);
TREE=PATH serves that source tree instead of this one (e.g. `git archive main` unpacked), so
`--a untraced:TREE=/tmp/main --b traced:TREE=/tmp/main` measures main's code.
Each `--b` is compared with `--a` in a run of its own. Needs a seeded bench database and wrk."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
from contextlib import AbstractContextManager
from pathlib import Path

from bench import driver, scenarios, seed, servers, sink
from bench.__main__ import default_database_url, server_env, tracing_env


def variant(spec: str, base: dict[str, str], endpoint: str) -> tuple[str, dict[str, str]]:
    """`NAME[:K=V,...]` -> (NAME, the server's environment)."""
    name, _, rest = spec.partition(":")
    extra = dict(pair.split("=", 1) for pair in rest.split(",") if pair)
    env = dict(base)
    if name.startswith("traced"):
        env |= tracing_env(endpoint)
    return name, env | extra


def _serve(env: dict[str, str]) -> AbstractContextManager[str]:
    """The bench server with `env`, from the tree its TREE says (default: this one)."""
    env = dict(env)
    tree = env.pop("TREE", None)
    if tree is not None:
        env["PYTHONPATH"] = tree
    return servers.uvicorn("bench.served:create_app", env, 1, "/healthz", cwd=tree)


def _load(args: argparse.Namespace, script: Path, base: str, runs: dict[str, driver.Run]) -> None:
    runs[base] = driver.wrk(base, script, args.concurrency, args.seconds)


def side_by_side(
    args: argparse.Namespace,
    script: Path,
    a: tuple[str, dict[str, str]],
    b: tuple[str, dict[str, str]],
) -> list[float]:
    """b's CPU per request / a's, one ratio per window (a first window is discarded: warm-up)."""
    ratios: list[float] = []
    with (
        _serve(a[1]) as base_a,
        _serve(b[1]) as base_b,
    ):
        bases = (base_a, base_b)
        for window in range(args.windows + 1):
            cpu_before = [servers.cpu_seconds(base) or 0.0 for base in bases]
            runs: dict[str, driver.Run] = {}
            threads = [
                threading.Thread(target=_load, args=(args, script, base, runs)) for base in bases
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            per_request = [
                ((servers.cpu_seconds(base) or 0.0) - before) * 1e6 / max(1, runs[base].requests)
                for base, before in zip(bases, cpu_before, strict=True)
            ]
            if window == 0:
                continue
            ratios.append(per_request[1] / per_request[0])
            print(
                f"window {window}: {a[0]} {runs[base_a].throughput_rps:6.0f} req/s "
                f"{per_request[0]:6.1f} us/req | {b[0]} {runs[base_b].throughput_rps:6.0f} req/s "
                f"{per_request[1]:6.1f} us/req | x{ratios[-1]:.3f}",
                flush=True,
            )
    return ratios


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--redis-url", default=None)
    p.add_argument("--scenario", default="book_by_id")
    p.add_argument("--cached", action="store_true", help="the response cache on")
    p.add_argument("--a", default="untraced", help="the reference variant")
    p.add_argument("--b", action="append", help="a variant compared with --a (repeatable)")
    p.add_argument("--windows", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    chosen = asyncio.run(scenarios.by_name(url, args.scenario))
    if chosen is None:
        raise SystemExit(f"no read or recommendation scenario {args.scenario!r}")
    env = server_env(argparse.Namespace(redis_url=args.redis_url), url)
    # two servers share the PostgreSQL server: half the usual pool each
    env["BOOKBRIDGE_DB_POOL_SIZE"] = str(max(1, int(env["BOOKBRIDGE_DB_POOL_SIZE"]) // 2))
    if not args.cached:
        env["BOOKBRIDGE_RESPONSE_CACHE_ENABLED"] = "false"
    script = driver.write_script(chosen.bodies, "/graphql", chosen.headers)
    try:
        with sink.otlp_sink() as endpoint:
            reference = variant(args.a, env, endpoint)
            for spec in args.b or ["traced"]:
                other = variant(spec, env, endpoint)
                ratios = side_by_side(args, script, reference, other)
                print(
                    f"{other[0]} / {reference[0]} CPU per request: median "
                    f"x{statistics.median(ratios):.3f} {[round(r, 3) for r in ratios]}",
                    flush=True,
                )
    finally:
        script.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
