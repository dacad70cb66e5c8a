"""CPU per uncached read through the whole ASGI app, in process: the compiled fast path on and
off, and tracing at a ratio on the fast path.

    python -m bench.fast_inproc [--database-url URL] [--scenarios book_by_id,catalog_page,deep]
                                [--requests 2000] [--rounds 4] [--ratio 0.1]

The app as `bench.served` builds it (response cache off), driven through ASGI directly (no
sockets to the client, no HTTP parsing, no wrk); the statement still goes to PostgreSQL.
Variants take turns in every round; user + system CPU of the process (every thread: the span
exporter's too, and the OTLP sink's, a thread of this process) per request, medians. Needs a
seeded bench database (`python -m bench` seeds it).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
from typing import Any

from bench import scenarios, seed, sink
from bench.__main__ import default_database_url, server_env, tracing_env
from bench.tracing_inproc import _lifespan, _request


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


async def run(args: argparse.Namespace, url: str, endpoint: str) -> None:
    from app.observability import spans, tracing
    from bench.served import create_app

    apps: dict[str, Any] = {}
    for label, fast in (("pipeline", "false"), ("fast path", "true")):
        os.environ["BOOKBRIDGE_COMPILED_READS_FAST_PATH"] = fast
        apps[label] = create_app()
        await _lifespan(apps[label])
    os.environ.update(tracing_env(endpoint) | {"OTEL_TRACES_SAMPLER_ARG": args.ratio})
    provider = tracing.make_provider()
    assert provider is not None
    variants = [
        ("pipeline", apps["pipeline"], None),
        ("fast path", apps["fast path"], None),
        (f"fast path, tracing {args.ratio}", apps["fast path"], provider),
    ]
    found = {s.name: s for s in await scenarios.read_scenarios(url)}
    print("| scenario | " + " | ".join(f"{v[0]} us/req" for v in variants) + " |")
    print("|---|" + "---:|" * len(variants))
    for name in args.scenarios.split(","):
        bodies = found[name].bodies
        calls = {label: [_request(app, b) for b in bodies] for label, app, _ in variants}
        for label, chosen in calls.items():  # warm: documents, costs, plans, statements
            for call in chosen[: len(bodies)] * 2:
                if await call() != 200:
                    raise SystemExit(f"{name}: a request failed ({label})")
        cpu: dict[str, list[float]] = {label: [] for label, _, _ in variants}
        for i in range(args.rounds):
            order = variants if i % 2 == 0 else variants[::-1]
            for label, _, chosen_provider in order:
                spans.use_provider(chosen_provider)
                gc.collect()
                started = _cpu()
                chosen = calls[label]
                for n in range(args.requests):
                    await chosen[n % len(chosen)]()
                cpu[label].append((_cpu() - started) / args.requests * 1e6)
        spans.use_provider(None)
        cells = [f"{statistics.median(cpu[label]):.0f}" for label, _, _ in variants]
        print(f"| {name} | " + " | ".join(cells) + " |")
    provider.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--scenarios", default="book_by_id,catalog_page,deep")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--ratio", default="0.1")
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    with sink.otlp_sink() as endpoint:
        os.environ.update(server_env(argparse.Namespace(redis_url=None), url))
        os.environ["BOOKBRIDGE_RESPONSE_CACHE_ENABLED"] = "false"
        asyncio.run(run(args, url, endpoint))


if __name__ == "__main__":
    main()
