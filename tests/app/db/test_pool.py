"""The connection pool serves waiting requests first come, first served (app/db/pool.py),
against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.settings import Settings, normalize_database_url
from app.db.engine import make_engine
from app.db.pool import FairAsyncAdaptedQueuePool


def small_engine(settings: Settings, size: int, timeout: float = 10.0) -> AsyncEngine:
    return make_engine(
        settings.model_copy(
            update={"db_pool_size": size, "db_max_overflow": 0, "db_pool_timeout": timeout}
        )
    )


async def test_waiters_get_connections_in_the_order_they_asked(settings: Settings) -> None:
    engine = small_engine(settings, 1)
    order: list[int] = []
    release, returning = asyncio.Event(), asyncio.Event()

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checkin(*_: object) -> None:
        # fires just before the pool takes the connection back: the caller woken here runs
        # before the first waiter does, as a request that arrives at that moment would
        if release.is_set():
            returning.set()

    async def holder() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await release.wait()

    async def use(i: int) -> None:
        async with engine.connect() as conn:
            order.append(i)
            await conn.execute(text("SELECT 1"))

    async def newcomer() -> None:
        await returning.wait()
        await use(99)  # a stock pool hands it the connection, ahead of the five waiting

    try:
        first = asyncio.create_task(holder())
        await asyncio.sleep(0.2)
        waiters = [asyncio.create_task(use(i)) for i in range(5)]
        late = asyncio.create_task(newcomer())
        await asyncio.sleep(0.1)  # all five are waiting now
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiters, late), 10)
        assert order == [0, 1, 2, 3, 4, 99]
    finally:
        await engine.dispose()


async def test_a_waiter_that_gives_up_loses_no_connection(settings: Settings) -> None:
    engine = small_engine(settings, 1, timeout=0.2)
    try:
        async with engine.connect():
            with pytest.raises(exc.TimeoutError, match="QueuePool limit"):
                async with engine.connect():
                    pass
            cancelled = asyncio.create_task(engine.connect().__aenter__())
            await asyncio.sleep(0.05)
            cancelled.cancel()
            with pytest.raises(asyncio.CancelledError):
                await cancelled
        # the one connection is free again, for one caller after another
        for _ in range(3):
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_many_callers_share_a_small_pool(settings: Settings) -> None:
    engine = small_engine(settings, 3)

    async def one(i: int) -> int:
        async with engine.connect() as conn:
            await asyncio.sleep(0.001 * (i % 3))
            return int(
                (await conn.execute(text("SELECT CAST(:i AS integer)"), {"i": i})).scalar_one()
            )

    try:
        got = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(60))), 20)
        assert got == list(range(60))
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_the_pool_counts_its_waiters(settings: Settings) -> None:
    engine = small_engine(settings, 1)
    pool = engine.sync_engine.pool
    assert isinstance(pool, FairAsyncAdaptedQueuePool)
    release = asyncio.Event()

    async def holder() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await release.wait()

    async def use() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        first = asyncio.create_task(holder())
        await asyncio.sleep(0.2)
        waiters = [asyncio.create_task(use()) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert (pool.checkedout(), pool.waiting()) == (1, 3)
        release.set()
        await asyncio.wait_for(asyncio.gather(first, *waiters), 10)
        assert (pool.checkedout(), pool.waiting()) == (0, 0)
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_handed_out_at_once(settings: Settings) -> None:
    engine = small_engine(settings, 2)
    pool = engine.sync_engine.pool
    assert isinstance(pool, FairAsyncAdaptedQueuePool)
    try:
        assert pool.connect_idle() is None  # none open yet: opening one is I/O
        raw = await engine.raw_connection()
        raw.close()
        idle = pool.connect_idle()
        assert idle is not None and (pool.checkedout(), pool.checkedin()) == (1, 0)
        assert await idle.driver_connection.fetchval("SELECT 41 + 1") == 42  # type: ignore[union-attr]
        assert pool.connect_idle() is None  # the other one was never opened
        idle.close()
        assert (pool.checkedout(), pool.checkedin()) == (0, 1)
    finally:
        await engine.dispose()


async def test_a_connection_to_open_again_is_left_to_the_greenlet(settings: Settings) -> None:
    engine = small_engine(settings, 1)
    pool = engine.sync_engine.pool
    assert isinstance(pool, FairAsyncAdaptedQueuePool)
    try:
        raw = await engine.raw_connection()
        raw.invalidate()  # closed: the entry goes back without a connection
        raw.close()
        assert pool.checkedin() == 1
        assert pool.connect_idle() is None  # reconnecting is I/O: nothing done
        assert (pool.checkedout(), pool.checkedin()) == (0, 1)  # the entry is back
        raw = await engine.raw_connection()  # reopened in SQLAlchemy's greenlet
        assert await raw.driver_connection.fetchval("SELECT 1") == 1  # type: ignore[union-attr]
        raw.close()
        again = pool.connect_idle()
        assert again is not None
        assert await again.driver_connection.fetchval("SELECT 2") == 2  # type: ignore[union-attr]
        again.close()
        assert (pool.checkedout(), pool.checkedin()) == (0, 1)
    finally:
        await engine.dispose()


async def test_a_pinging_or_recycling_pool_hands_out_nothing_at_once(settings: Settings) -> None:
    url = normalize_database_url(settings.database_url or "")
    for options in ({"pool_pre_ping": True}, {"pool_recycle": 3600}):
        engine = create_async_engine(url, poolclass=FairAsyncAdaptedQueuePool, **options)
        try:
            raw = await engine.raw_connection()
            opened = raw.driver_connection
            raw.close()
            pool = engine.sync_engine.pool
            assert isinstance(pool, FairAsyncAdaptedQueuePool) and pool.checkedin() == 1
            assert pool.connect_idle() is None  # a ping or a recycle may need I/O
            raw = await engine.raw_connection()
            assert raw.driver_connection is opened  # not closed by a failed attempt
            raw.close()
            await engine.dispose()  # the pool made again keeps its options
            pool = engine.sync_engine.pool
            assert isinstance(pool, FairAsyncAdaptedQueuePool) and not pool.plain_checkout
        finally:
            await engine.dispose()
