"""Tracing at 0.1 against untraced for two source trees (e.g. a branch and `git archive` of its
base): per round, each tree's untraced and traced servers in turn (the order alternating),
wrk for `--seconds` each; prints traced/untraced throughput and server CPU per request.

    git archive BASE | tar -x -C /tmp/base
    python -m bench.tracing_ab --tree new=. --tree old=/tmp/base --scenario book_by_id --cached

Throughput pairs scatter widely on a shared machine; the CPU per request (all the server's
processes, from /proc) is the steadier figure. Needs a seeded bench database and wrk."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

from bench import driver, scenarios, seed, servers, sink
from bench.__main__ import default_database_url, server_env, tracing_env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--redis-url", default=None)
    p.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeatable)")
    p.add_argument("--scenario", default="book_by_id")
    p.add_argument("--cached", action="store_true", help="the response cache on")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args()
    trees = dict(t.split("=", 1) for t in args.tree)
    url = seed.plain_url(args.database_url)
    found = [s for s in asyncio.run(scenarios.read_scenarios(url)) if s.name == args.scenario]
    if not found:
        raise SystemExit(f"no read scenario {args.scenario!r}")
    env = server_env(argparse.Namespace(redis_url=args.redis_url), url)
    if not args.cached:
        env["BOOKBRIDGE_RESPONSE_CACHE_ENABLED"] = "false"
    rps: dict[tuple[str, str], list[float]] = {}
    cpu: dict[tuple[str, str], list[float]] = {}
    with sink.otlp_sink() as endpoint:
        for r in range(args.rounds):
            names = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for name in names:
                modes = ("untraced", "traced") if r % 2 == 0 else ("traced", "untraced")
                for mode in modes:
                    extra = tracing_env(endpoint) if mode == "traced" else {}
                    tree_env = env | extra | {"PYTHONPATH": trees[name]}
                    port = servers.free_port()
                    cmd = [
                        *(sys.executable, "-m", "uvicorn", "bench.served:create_app"),
                        *("--factory", "--host", "127.0.0.1", "--port", str(port)),
                        *("--workers", "1", "--loop", "uvloop", "--http", "httptools"),
                        *("--no-access-log", "--log-level", "warning"),
                    ]
                    ready = servers.answers_get("/healthz")
                    base_url = f"http://127.0.0.1:{port}"
                    with servers.process(cmd, tree_env, base_url, ready, cwd=trees[name]) as base:
                        script = driver.write_script(found[0].bodies, "/graphql", found[0].headers)
                        driver.wrk(base, script, 32, 2)  # warm-up
                        run = driver.wrk(base, script, 32, args.seconds)
                    rps.setdefault((name, mode), []).append(run.throughput_rps)
                    cpu.setdefault((name, mode), []).append(run.server_cpu_us or 0.0)
                on, off = rps[(name, "traced")][-1], rps[(name, "untraced")][-1]
                print(f"round {r} {name}: {off:.0f} -> {on:.0f} req/s, {on / off:.3f}", flush=True)
    for name in trees:
        ratios = [
            t / u for t, u in zip(rps[(name, "traced")], rps[(name, "untraced")], strict=True)
        ]
        costs = [t / u for t, u in zip(cpu[(name, "traced")], cpu[(name, "untraced")], strict=True)]
        print(
            f"{name}: traced/untraced req/s median {statistics.median(ratios):.3f} "
            f"{[round(x, 3) for x in ratios]}; CPU/request x{statistics.median(costs):.3f} "
            f"{[round(x, 3) for x in costs]}"
        )


if __name__ == "__main__":
    main()
