"""Reads sent on the pooled asyncpg connection itself, for the hottest per-request statements.

SQLAlchemy's public `AsyncEngine.raw_connection()` and `driver_connection` give the asyncpg
connection of a pooled entry; running a statement on it skips SQLAlchemy's execution layer
(greenlet hops, cursor adaptation, result wrapping): about 300 us of CPU less per statement
than `exec_driver_sql` (docs/performance.md), the same values (asyncpg's, with the codecs the
dialect set on connect). SQLAlchemy's cursor events (its OpenTelemetry span) do not see these
statements: `driver_rows` opens a `db.driver_read` span carrying `db.statement` instead, and
asyncpg's query loggers (the tests' and the bench's statement counters) see them. Outside any
transaction, as the autocommit read engine runs its reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.pool import FairAsyncAdaptedQueuePool
from app.observability import spans

R = TypeVar("R")


class connection:  # used like a function: `async with connection(engine) as driver:`
    """The asyncpg connection of a pooled entry of `engine`, outside any transaction; back to
    the pool afterwards, or invalidated (not pooled again) when a failure closed it. A class,
    not an async generator: it lends the connection of every compiled read."""

    __slots__ = ("driver", "engine", "raw")
    driver: Any  # asyncpg's Connection
    raw: Any  # SQLAlchemy's pooled connection proxy

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __aenter__(self) -> Any:
        pool = self.engine.sync_engine.pool
        # an idle connection at once; else SQLAlchemy's checkout in its greenlet (waits, I/O)
        raw = pool.connect_idle() if isinstance(pool, FairAsyncAdaptedQueuePool) else None
        if raw is None:
            raw = await self.engine.raw_connection()
        self.raw = raw
        driver = self.driver = raw.driver_connection
        if driver is None:  # an invalidated proxy: not usable
            raw.invalidate()
            raw.close()
            raise LookupError("no driver connection")
        return driver

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if kind is not None and self.driver.is_closed():
                self.raw.invalidate()
        finally:
            self.raw.close()


def fetcher(engine: AsyncEngine) -> Callable[..., Awaitable[list[Any]]]:
    """`fetch(sql, *params)`: the records of `sql`, each call on a pooled connection of its own
    (none held while another is awaited): what the recommender's data functions take."""

    async def fetch(sql: str, *params: Any) -> list[Any]:
        async with connection(engine) as driver:
            records: list[Any] = await driver.fetch(sql, *params)
            return records

    return fetch


async def fetchrow(engine: AsyncEngine, sql: str, params: Sequence[Any]) -> Any:
    """One row of `sql` (None: no row) on a pooled asyncpg connection: the compiled read
    path's one statement per request."""
    async with connection(engine) as driver:
        return await driver.fetchrow(sql, *params)


async def driver_rows(
    engine: AsyncEngine, sql: str, params: Sequence[Any], row: Callable[..., R]
) -> list[R]:
    """`row(*values)` per row of `sql`, in a `db.driver_read` span."""
    with spans.span(spans.tracer("bookbridge.db"), "db.driver_read") as span:
        if span.is_recording():  # what SQLAlchemy's span would say (no parameters)
            span.set_attribute("db.system", "postgresql")
            span.set_attribute("db.statement", sql)
        async with connection(engine) as driver:
            records = await driver.fetch(sql, *params)
    return [row(*r) for r in records]
