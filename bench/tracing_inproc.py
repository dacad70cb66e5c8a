"""Tracing's cost per request, in-process: the app as `bench.served` builds it, driven through
ASGI directly (no sockets, no HTTP parsing, no wrk), untraced and traced at a ratio in turns,
CPU of every thread of the process (`process_time`, the span exporter's included) per request.

    python -m bench.tracing_inproc [--scenarios catalog_page,deep,book_by_id] [--ratio 0.1]
                                   [--requests 3000] [--rounds 7]

Over HTTP on a shared machine, two runs of the same server differ by 5-30%; in-process rounds
agree within about 1 us, so this is where a change to the span code shows. It gives the extra
microseconds per request; what that is of a request served over HTTP, the server's CPU per
request from `python -m bench.tracing_cost` says (a request there costs the server about
2.5 times its in-process work: uvicorn, the socket, the kernel).

Spans go through the real OTLP/HTTP exporter to a local sink that drops them (as in
`python -m bench --tracing`); the sink is a thread of this process, so its reading of the
export requests counts too (a few kB per 100 spans). The SQL and Redis instrumentation is not installed: the read
scenarios are response-cache hits once warm, which run neither, and those are where tracing
weighs most (the least work per request). Needs a seeded bench database."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from typing import Any

from bench import scenarios, seed, sink
from bench.__main__ import default_database_url, server_env, tracing_env


async def _lifespan(app: Any) -> None:
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await messages.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup"):
            if message["type"] != "lifespan.startup.complete":
                raise SystemExit(f"app did not start: {message}")
            started.set()

    task = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, messages.get, send)
    )
    await asyncio.wait_for(started.wait(), 60)
    app.state_task = task  # kept alive for the run


def _request(app: Any, body: bytes, headers: dict[str, str] | None = None) -> Any:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in (headers or {}).items()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(out: dict[str, Any]) -> None:
        if out["type"] == "http.response.start":
            status.append(out["status"])

    async def call() -> int:
        await app(scope, receive, send)
        return status[-1]

    return call


async def run(args: argparse.Namespace, url: str, endpoint: str) -> None:
    from opentelemetry import trace

    from app.observability import tracing
    from bench.served import create_app

    app = create_app()
    await _lifespan(app)  # tracing off, as server_env says
    os.environ.update(tracing_env(endpoint) | {"OTEL_TRACES_SAMPLER_ARG": args.ratio})
    provider = tracing.make_provider()  # OTLP to the sink, sampled as the variables say
    assert provider is not None
    for name in args.scenarios.split(","):
        scenario = await scenarios.by_name(url, name)
        if scenario is None:
            raise SystemExit(f"no read or recommendation scenario {name!r}")
        calls = [_request(app, b, scenario.headers) for b in scenario.bodies]
        for call in calls[: args.requests]:  # warm: every body's response cached
            if await call() != 200:
                raise SystemExit(f"{name}: a request failed")
        cpu: dict[str, list[float]] = {"untraced": [], "traced": []}
        for i in range(args.rounds):
            order = [("untraced", None), ("traced", provider)]
            for label, chosen in order if i % 2 == 0 else order[::-1]:
                trace._TRACER_PROVIDER = chosen  # type: ignore[attr-defined]  # None: tracing off
                gc.collect()
                started = time.process_time()
                for n in range(args.requests):
                    await calls[n % len(calls)]()
                cpu[label].append((time.process_time() - started) / args.requests * 1e6)
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]
        off, on = statistics.median(cpu["untraced"]), statistics.median(cpu["traced"])
        print(
            f"{name:12} untraced {off:6.1f} us/req {[round(x, 1) for x in cpu['untraced']]}\n"
            f"{'':12} traced   {on:6.1f} us/req {[round(x, 1) for x in cpu['traced']]}\n"
            f"{'':12} tracing at {args.ratio} adds {on - off:.1f} us per request (medians)"
        )
    provider.shutdown()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--scenarios", default="catalog_page,deep,book_by_id")
    p.add_argument("--ratio", default="0.1")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    with sink.otlp_sink() as endpoint:
        os.environ.update(server_env(argparse.Namespace(redis_url=None), url))
        asyncio.run(run(args, url, endpoint))


if __name__ == "__main__":
    main()
