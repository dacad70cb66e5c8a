"""The service as `bookbridge serve` builds it, plus one bench-only header: SQL statements run."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import time
import weakref
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.factory import create_app as create_bookbridge

_counter: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "bench_sql", default=None
)


class GcPauses:
    """Collector pauses per generation since the last read (`GET /_bench/gc` reads and resets):
    a request's tail latency on one worker is often a collection, not its own work."""

    def __init__(self) -> None:
        self.started = 0.0
        self.reset()
        gc.callbacks.append(self._on_gc)

    def reset(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self.started) * 1000)

    def read(self) -> bytes:
        out = {
            f"gen{g}": {
                "count": len(p),
                "total_ms": round(sum(p), 2),
                "max_ms": round(max(p, default=0.0), 2),
            }
            for g, p in self.pauses.items()
        }
        self.reset()
        return orjson.dumps(out)


def count_statements() -> list[int]:
    """Count the statements run from here on in this context (a request):
    [statements, pooled connections checked out]."""
    box = [0, 0]
    _counter.set(box)
    return box


def count_cursor(*args: Any) -> None:
    """SQLAlchemy's before_cursor_execute: one statement (executemany: counted by asyncpg)."""
    box = _counter.get()
    if box is not None and not args[-1]:
        box[0] += 1


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "END")


def count_driver(record: Any) -> None:
    """asyncpg's query logger: statements run on the driver connection itself (conn.fetch,
    conn.execute, executemany), which SQLAlchemy's cursor events do not see; asyncpg does not
    log prepared-statement executions, which is what SQLAlchemy's cursor runs, so nothing is
    counted twice. Transaction control is not a statement of the request's work."""
    box = _counter.get()
    words = record.query.lstrip().split(None, 1)
    if box is not None and words and words[0].upper().rstrip(";") not in TRANSACTION_CONTROL:
        box[0] += 1


def on_checkout(dbapi_connection: Any, *_: Any) -> None:
    """A counted request took a pooled connection: its driver statements are logged from here
    on (the logger added once per connection, `on_connect`)."""
    box = _counter.get()
    if box is not None:
        on_connect(dbapi_connection, None)
        box[1] += 1


logged: weakref.WeakSet[Any] = weakref.WeakSet()  # driver connections that have the logger


def on_connect(dbapi_connection: Any, _record: Any) -> None:
    """The statement logger on the driver connection, once (asyncpg's `add_query_logger`
    builds a callback wrapper on every call: a cost per checkout the service does not have)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver not in logged and hasattr(driver, "add_query_logger"):
        driver.add_query_logger(count_driver)
        logged.add(driver)


QUIET = (b"x-bench-quiet", b"1")


class Listeners:
    """The counting listeners: SQLAlchemy's cursor and checkout events for every engine and
    pool, and (added at checkout, `on_connect`) asyncpg's query logger on each connection a
    counted request took. On while counted requests run, off again at the first quiet request
    once none is counting: a connection with a query logger makes asyncpg time and log every
    statement it runs (about 27,000 instructions of a compiled read's ~470,000 in process,
    callgrind), work the raw route and PostGraphile do not do."""

    def __init__(self) -> None:
        self.on = False
        self.counting = 0  # counted requests under way

    def count(self) -> None:
        """A counted request begins (`done` when it ends)."""
        self.counting += 1
        if not self.on:
            event.listen(Engine, "before_cursor_execute", count_cursor)
            event.listen(Pool, "checkout", on_checkout)
            self.on = True

    def done(self) -> None:
        self.counting -= 1

    def quiet(self) -> None:
        """A quiet request begins: every listener off, unless a counted request still runs."""
        if self.on and not self.counting:
            self.off()

    def off(self) -> None:
        if self.on:
            event.remove(Engine, "before_cursor_execute", count_cursor)
            event.remove(Pool, "checkout", on_checkout)
            self.on = False
        for driver in list(logged):
            driver.remove_query_logger(count_driver)
        logged.clear()


class SqlCounter:
    """Adds `x-bench-sql: <statements run for this request>` to every HTTP response but those
    of requests that send `x-bench-quiet: 1` (the measured runs: the count is taken in the
    warm-up, so the measured server does no work the raw route and PostGraphile do not), and
    answers `GET /_bench/inflight` with the requests this worker is still working on (a
    client that gave up, like wrk at the end of a run, leaves its request running) and
    `GET /_bench/gc` with its collector pauses since the last such request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.inflight = 0
        self.gc = GcPauses()
        self.listeners = Listeners()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in ("/_bench/inflight", "/_bench/gc"):
            if scope["path"] == "/_bench/inflight":
                body = str(self.inflight).encode()
            else:
                body = self.gc.read()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        self.inflight += 1
        try:
            if QUIET in scope["headers"]:
                self.listeners.quiet()
                await self.app(scope, receive, send)
            else:
                self.listeners.count()
                try:
                    await self._counted(scope, receive, send)
                finally:
                    self.listeners.done()
        finally:
            self.inflight -= 1

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        box = count_statements()

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                # asyncpg calls its query loggers with loop.call_soon: let the calls for this
                # request's statements run before the count is read (a request that never
                # touched the database, such as a cached answer, has none to wait for)
                if box[1]:
                    await asyncio.sleep(0)
                headers = [*message.get("headers", []), (b"x-bench-sql", str(box[0]).encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, counted)


def create_app() -> ASGIApp:
    return SqlCounter(create_bookbridge())
