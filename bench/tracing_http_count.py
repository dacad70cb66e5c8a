"""Instructions per request of the real server over HTTP (uvicorn, httptools, uvloop, the app),
untraced or tracing at a ratio: the bench server runs under `valgrind --tool=callgrind
--instr-atstart=no`, gets `--warmup` requests, then the count is switched on for `--requests`
requests over one keep-alive connection and off again. Load-independent, unlike CPU time per
request, which moves 10-20% between two identical servers on a shared machine:

    python -m bench.tracing_http_count --ratio off --out /tmp/cg_off.out
    python -m bench.tracing_http_count --ratio 0.1 --out /tmp/cg_01.out

Spans go to a local OTLP sink (as in `python -m bench --tracing`); the exporter thread is counted
when it exports inside the window. Needs a seeded bench database, valgrind and callgrind_control."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import scenarios, seed, servers, sink
from bench.__main__ import default_database_url, server_env, tracing_env


def totals(out: str) -> int:
    """PROGRAM TOTALS of a callgrind output file."""
    text = subprocess.run(
        ["callgrind_annotate", out], check=True, capture_output=True, text=True
    ).stdout
    line = next(x for x in text.splitlines() if "PROGRAM TOTALS" in x)
    return int(line.split()[0].replace(",", ""))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--scenario", default="book_by_id")
    p.add_argument("--ratio", default="0.1", help="a sampling ratio, or 'off'")
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--out", default="/tmp/tracing_http_count.out")
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    chosen = asyncio.run(scenarios.by_name(url, args.scenario))
    if chosen is None:
        raise SystemExit(f"no read or recommendation scenario {args.scenario!r}")
    tree = str(Path(__file__).resolve().parents[1])
    with sink.otlp_sink() as endpoint:
        env = {**os.environ, **server_env(argparse.Namespace(redis_url=None), url)}
        if args.ratio != "off":
            env |= tracing_env(endpoint) | {"OTEL_TRACES_SAMPLER_ARG": args.ratio}
        port = servers.free_port()
        cmd = [
            *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
            f"--callgrind-out-file={args.out}",
            *(sys.executable, "-m", "uvicorn", "bench.served:create_app", "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            *("--loop", "uvloop", "--http", "httptools", "--no-access-log"),
            *("--log-level", "warning"),
        ]
        with Path(args.out + ".log").open("w") as log:
            proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=log, stderr=log)
        try:
            headers = {"content-type": "application/json", **(chosen.headers or {})}
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=300, headers=headers) as client:
                for _ in range(600):  # under valgrind the app takes minutes to start
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(1)
                bodies = chosen.bodies
                for n in range(args.warmup):
                    client.post("/graphql", content=bodies[n % len(bodies)]).raise_for_status()
                control = ["callgrind_control", "-i"]
                subprocess.run([*control, "on", str(proc.pid)], check=True, capture_output=True)
                for n in range(args.requests):
                    client.post("/graphql", content=bodies[n % len(bodies)]).raise_for_status()
                subprocess.run([*control, "off", str(proc.pid)], check=True, capture_output=True)
        finally:
            proc.terminate()
            proc.wait(300)
    per = totals(args.out) // args.requests
    print(f"{args.scenario} ratio {args.ratio}: {per:,} instructions per request over HTTP")


if __name__ == "__main__":
    main()
