"""A connection pool that serves waiting requests in the order they came.

SQLAlchemy's `AsyncAdaptedQueuePool` wraps an `asyncio.Queue`, and its `get` first takes any
connection lying in the queue. A connection returned while others wait wakes the first waiter,
but a request arriving before that waiter runs takes the connection first ("barging"); the
waiter finds the queue empty and queues again at the back. Under load some requests then wait
for seconds while the average wait is a few milliseconds (sqlalchemy/sqlalchemy#7679 for the
threaded pool; asyncpg#1247 for asyncpg's own). Measured: cached `recommendations` at 32 clients
on a pool of 10 had a p99 of 1.5-3.7 s at a p50 of 70 ms (docs/performance.md).

Here a returned connection goes straight to the longest waiter, and a newcomer waits behind
the waiters, so the wait is first come, first served. Everything else is the stock pool.

`connect_idle` hands out a connection lying idle without SQLAlchemy's greenlet: an async
engine runs every checkout in a new greenlet (`AsyncEngine.raw_connection`) in case it must
await I/O, which taking an idle connection never does (no pre-ping, no recycling age). The
greenlet costs ~14,000 instructions but 8-11 us of CPU per checkout (its stack switches are
dear in time): a checkout and return took 17.5 us through it, 6.6 us without.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, TypeVar

from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection
from sqlalchemy.util import await_
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty

_T = TypeVar("_T")

# SQLAlchemy names a pool's logger after its class's module, and quiets only its own namespace
# ("sqlalchemy", WARNING unless `echo_pool`). This subclass logs under app.db.pool, where the
# root logger's INFO let "Pool disposed ... Pool recreating" through on every engine.dispose().
logging.getLogger(__name__).setLevel(logging.WARNING)


class FairAsyncQueue(AsyncAdaptedQueue[_T]):
    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[_T]] = deque()

    def put_nowait(self, item: _T) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter that timed out or was cancelled is skipped
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def get_nowait(self) -> _T:
        if self._waiters and any(not w.done() for w in self._waiters):
            raise Empty()  # the ones waiting come first
        return super().get_nowait()

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection now."""
        return sum(not w.done() for w in self._waiters)

    def get(self, block: bool = True, timeout: float | None = None) -> _T:
        try:
            return self.get_nowait()
        except Empty:
            if not block:
                raise
        return await_(self._wait(seconds=timeout))

    async def _wait(self, seconds: float | None) -> _T:
        waiter: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException as exc:
            # timed out or cancelled: a connection handed over meanwhile goes to the next one
            if waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise Empty() from exc
            raise


class FairAsyncAdaptedQueuePool(AsyncAdaptedQueuePool):
    """`AsyncAdaptedQueuePool` with first-come, first-served waits (`FairAsyncQueue`)."""

    queue: FairAsyncQueue[ConnectionPoolEntry] | None = None

    def __init__(
        self, creator: Any, *args: Any, pre_ping: bool = False, recycle: int = -1, **kwargs: Any
    ) -> None:
        super().__init__(creator, *args, pre_ping=pre_ping, recycle=recycle, **kwargs)
        # taking an idle connection does no I/O: it is neither pinged nor recycled for its age
        self.plain_checkout = not pre_ping and recycle < 0

    def connect_idle(self) -> PoolProxiedConnection | None:
        """A connection lying idle, checked out at once (what `connect()` gives: the same
        events, the same return to the pool on `close()`), or None when getting one means
        waiting or I/O: none idle, callers already waiting (they come first), or the
        connection taken must be opened again (invalidated before, or the pool invalidated
        since it was opened: SQLAlchemy then raises MissingGreenlet before any I/O and puts
        the entry back, closing an old connection without waiting for the server). Then
        `AsyncEngine.raw_connection()`, which runs `connect()` in a greenlet, does it."""
        if not self.plain_checkout or not self.checkedin() or self.waiting():
            return None
        try:
            return self.connect()
        except MissingGreenlet:
            return None

    def _queue_class(  # type: ignore[override]
        self, maxsize: int = 0, use_lifo: bool = False
    ) -> FairAsyncQueue[ConnectionPoolEntry]:
        # QueuePool builds its queue by calling this hook; the pool keeps it to count waiters
        self.queue = FairAsyncQueue[ConnectionPoolEntry](maxsize, use_lifo)
        return self.queue

    def waiting(self) -> int:
        """Callers waiting for a connection now (the /metrics pool gauge reads it)."""
        return self.queue.waiting if self.queue is not None else 0
