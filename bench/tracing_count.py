"""Tracing's work per request as instructions, not time: the app as `bench.served` builds it,
driven through ASGI in process (as `bench.tracing_inproc`), `--requests` requests of one
scenario at one sampling ratio, between two lines on stdout, READY and DONE, for an
instruction counter to start and stop at. On a shared machine, CPU time per request moves by
10-30% from run to run; an instruction count does not:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python -u -m bench.tracing_count --scenario book_by_id --ratio 0.1
    # on READY: callgrind_control -i on PID; on DONE: callgrind_control -i off PID
    callgrind_annotate /tmp/cg.out | head -20     # PROGRAM TOTALS / --requests

`--ratio off` runs untraced. Spans go to an in-memory exporter (no OTLP encoding: that runs in
the exporter thread, measured by `bench.tracing_cost`). Needs a seeded bench database."""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from bench import scenarios, seed
from bench.__main__ import default_database_url, server_env
from bench.tracing_inproc import _lifespan, _request


async def run(args: argparse.Namespace, url: str) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from app.observability import spans, tracing
    from bench.served import create_app

    app = create_app()
    await _lifespan(app)  # tracing off, as server_env says
    provider = None
    if args.ratio != "off":
        os.environ["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        os.environ["OTEL_TRACES_SAMPLER_ARG"] = args.ratio
        provider = tracing.make_provider({"OTEL_TRACES_EXPORTER": "otlp"}, InMemorySpanExporter())
    chosen = await scenarios.by_name(url, args.scenario)
    if chosen is None:
        raise SystemExit(f"no read or recommendation scenario {args.scenario!r}")
    calls = [_request(app, b, chosen.headers) for b in chosen.bodies]
    for call in calls[:300]:  # warm: the responses cached, the documents parsed
        await call()
    spans.use_provider(provider)
    for n in range(200):
        await calls[n % len(calls)]()
    print("READY", flush=True)
    time.sleep(args.pause)  # noqa: ASYNC251 - nothing else may run on the loop meanwhile
    for n in range(args.requests):
        await calls[n % len(calls)]()
    print("DONE", flush=True)
    time.sleep(args.pause)  # noqa: ASYNC251 - nothing else may run on the loop meanwhile
    spans.use_provider(None)
    if provider is not None:
        provider.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--scenario", default="book_by_id")
    p.add_argument("--ratio", default="0.1", help="a sampling ratio, or 'off'")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--pause", type=float, default=4.0, help="seconds after READY and DONE")
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    os.environ.update(server_env(argparse.Namespace(redis_url=None), url))
    # the recommender's in-process lists live 5 s by default; under valgrind a run takes
    # minutes, and their refreshes (whole list computations) would be counted as requests' work
    os.environ.setdefault("BOOKBRIDGE_RECO_CACHE_TTL_SECONDS", "86400")
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
