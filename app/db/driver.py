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

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.observability import spans

R = TypeVar("R")


@asynccontextmanager
async def connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The asyncpg connection of a pooled entry of `engine`, outside any transaction; back to
    the pool afterwards, or invalidated (not pooled again) when a failure closed it."""
    raw = await engine.raw_connection()
    driver = raw.driver_connection
    try:
        if driver is None:  # an invalidated proxy: not usable
            raise LookupError("no driver connection")
        yield driver
    except BaseException:
        if driver is None or driver.is_closed():
            raw.invalidate()
        raise
    finally:
        raw.close()


async def fetchrow(engine: AsyncEngine, sql: str, params: Sequence[Any]) -> Any:
    """One row of `sql` (None: no row) on a pooled asyncpg connection, as `connection` lends
    it (invalidated when the failure closed it), without an async generator per call: the
    compiled read path's one statement per request."""
    raw = await engine.raw_connection()
    driver = raw.driver_connection
    try:
        if driver is None:  # an invalidated proxy: not usable
            raise LookupError("no driver connection")
        return await driver.fetchrow(sql, *params)
    except BaseException:
        if driver is None or driver.is_closed():
            raw.invalidate()
        raise
    finally:
        raw.close()


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
