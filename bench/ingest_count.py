"""Ingestion's Python work per batch as instructions, not time: `python -m bench.ingest_count`.

The app as `bench.served` builds it, driven through ASGI in process: `--batches` gzip batches of
1,000 records (the bench's upsert_books or record_events bodies, fresh ids each), between two
lines on stdout, READY and DONE, for an instruction counter to start and stop at; `--raw` sends
the same rows as the bench's asyncpg route does instead (one statement on a pooled connection):

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.out \\
        .venv/bin/python -u -m bench.ingest_count --entity books
    # on READY: callgrind_control -i on PID; on DONE: callgrind_control -i off PID
    callgrind_annotate /tmp/cg.out | head -20     # PROGRAM TOTALS / --batches

The database server's work is not counted (another process): this is the part of a batch that
differs between bookbridge and the raw route. Needs a seeded bench database; what the run
wrote is removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import time
from typing import Any

import asyncpg
import orjson

from bench import ingest, seed
from bench.__main__ import default_database_url, server_env
from bench.tracing_inproc import _lifespan, _request


def _bodies(entity: str, rows: ingest.Rows, n: int) -> list[bytes]:
    make = rows.books if entity == "books" else rows.events
    document = ingest.UPSERT_BOOKS if entity == "books" else ingest.RECORD_EVENTS
    return [
        gzip.compress(
            orjson.dumps({"query": document, "variables": {"input": {"records": make()}}})
        )
        for _ in range(n)
    ]


async def through_app(args: argparse.Namespace, url: str, rows: ingest.Rows) -> None:
    from bench.served import create_app

    app = create_app()
    await _lifespan(app)
    token = await seed.admin_key(url)
    headers = {"authorization": f"Bearer {token}", "content-encoding": "gzip"}
    bodies = _bodies(args.entity, rows, args.warm + args.batches)
    calls = [_request(app, b, headers) for b in bodies]
    for call in calls[: args.warm]:  # warm: documents parsed, pool filled, statements prepared
        if await call() != 200:
            raise SystemExit("a batch failed")
    _pause(args, "READY")
    statuses = [await call() for call in calls[args.warm :]]
    _pause(args, "DONE")
    if set(statuses) != {200}:
        raise SystemExit(f"batches answered {statuses}")


async def through_asyncpg(args: argparse.Namespace, url: str, rows: ingest.Rows) -> None:
    make = rows.books if args.entity == "books" else rows.events
    statement = ingest.RAW_BOOKS if args.entity == "books" else ingest.RAW_EVENTS
    n = args.warm + args.batches
    payloads = [orjson.dumps([ingest._snake(r) for r in make()]).decode() for _ in range(n)]
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:

        async def send(payload: str) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(statement, payload)

        for payload in payloads[: args.warm]:
            await send(payload)
        _pause(args, "READY")
        for payload in payloads[args.warm :]:
            await send(payload)
        _pause(args, "DONE")
    finally:
        await pool.close()


def _pause(args: argparse.Namespace, line: str) -> None:
    print(line, flush=True)
    time.sleep(args.pause)  # nothing else may run on the loop meanwhile


async def run(args: argparse.Namespace, url: str) -> None:
    refs: dict[str, list[Any]] = await ingest.references(url)
    prefix = f"c{os.getpid()}"
    try:
        send = through_asyncpg if args.raw else through_app
        await send(args, url, ingest.Rows(refs, prefix))
        table = "books" if args.entity == "books" else "engagement_events"
        conn = await asyncpg.connect(url)
        try:
            stored = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE id LIKE $1", prefix + "-%"
            )
        finally:
            await conn.close()
        if stored != (args.warm + args.batches) * ingest.BATCH:
            raise SystemExit(
                f"{stored} records stored, not {(args.warm + args.batches) * ingest.BATCH}"
            )
        print(f"{stored} records stored", flush=True)
    finally:
        await ingest.cleanup(url, [prefix])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--database-url", default=default_database_url())
    p.add_argument("--entity", choices=("books", "events"), default="books")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--warm", type=int, default=5)
    p.add_argument("--raw", action="store_true", help="the bench's asyncpg route instead")
    p.add_argument("--pause", type=float, default=4.0, help="seconds after READY and DONE")
    args = p.parse_args()
    url = seed.plain_url(args.database_url)
    os.environ.update(server_env(argparse.Namespace(redis_url=None), url))
    asyncio.run(run(args, url))


if __name__ == "__main__":
    main()
