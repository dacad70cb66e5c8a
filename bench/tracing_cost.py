"""Where tracing's CPU goes: one bench server at a time, untraced and traced alternating, with
the server worker's CPU per request split by thread (the event loop, the span exporter).

    python -m bench.tracing_cost [--scenario book_by_id] [--ratio 0.1] [--pairs 3] [--seconds 5]

Needs a seeded bench database (`python -m bench` seeds it) and wrk. Spans go to a local OTLP
sink that drops them, as in `python -m bench --tracing`."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
from pathlib import Path
from typing import Any

from bench import driver, scenarios, seed, servers, sink
from bench.__main__ import default_database_url, server_env, tracing_env


def thread_ticks(pid: int) -> dict[str, tuple[str, int, int, int]]:
    """Per thread of `pid`: (name, user ticks, system ticks, minor page faults)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        name = (task / "comm").read_text().strip()
        out[task.name] = (name, int(fields[11]), int(fields[12]), int(fields[7]))
    return out


def measure(
    args: argparse.Namespace, scenario: scenarios.Scenario, env: dict[str, str]
) -> dict[str, Any]:
    with servers.uvicorn("bench.served:create_app", env, 1, "/healthz") as base:
        script = driver.write_script(scenario.bodies, "/graphql", scenario.headers)
        driver.wrk(base, script, args.concurrency, 2)  # warm-up
        pid = servers._PIDS[base]
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        worker = int(children[-1]) if children else pid
        before = thread_ticks(worker)
        run = driver.wrk(base, script, args.concurrency, args.seconds)
        after = thread_ticks(worker)
    requests = run.throughput_rps * args.seconds
    us = 1e6 / os.sysconf("SC_CLK_TCK") / requests
    threads: list[dict[str, float]] = []
    faults = 0
    for tid, (name, user, system, minflt) in after.items():
        _, user0, system0, minflt0 = before.get(tid, (name, 0, 0, 0))
        faults += minflt - minflt0
        if user - user0 + system - system0 > 0:
            threads.append({"user_us": (user - user0) * us, "sys_us": (system - system0) * us})
    # the busiest thread is the event loop; the others (the span exporter) follow
    threads.sort(key=lambda t: -(t["user_us"] + t["sys_us"]))
    total = sum(t["user_us"] + t["sys_us"] for t in threads)
    return {
        "rps": run.throughput_rps,
        "cpu_us": total,
        "threads": threads,
        "faults_per_request": faults / requests,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--scenario", default="book_by_id")
    p.add_argument("--ratio", default="0.1")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--concurrency", type=int, default=32)
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    found = [s for s in asyncio.run(scenarios.read_scenarios(url)) if s.name == args.scenario]
    if not found:
        raise SystemExit(f"no read scenario {args.scenario!r}")
    env = server_env(argparse.Namespace(redis_url=None), url)
    cpu: dict[str, list[float]] = {"untraced": [], "traced": []}
    with sink.otlp_sink() as endpoint:
        traced_env = env | tracing_env(endpoint) | {"OTEL_TRACES_SAMPLER_ARG": args.ratio}
        for i in range(args.pairs):
            order = [("untraced", env), ("traced", traced_env)]
            for label, settings in order if i % 2 == 0 else order[::-1]:  # turns going first
                got = measure(args, found[0], settings)
                cpu[label].append(got["cpu_us"])
                split = ", ".join(
                    f"user {t['user_us']:.0f} sys {t['sys_us']:.0f}" for t in got["threads"]
                )
                print(
                    f"{label:9} {got['rps']:7.0f} req/s  cpu {got['cpu_us']:6.1f} us/req  [{split}]"
                    f"  page faults {got['faults_per_request']:.2f}/req"
                )
    ratios = [t / u for u, t in zip(cpu["untraced"], cpu["traced"], strict=True)]
    print(f"traced / untraced CPU per request: median {statistics.median(ratios):.3f} {ratios}")


if __name__ == "__main__":
    main()
