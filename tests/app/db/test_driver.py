"""app.db.driver.fetchrow: one row on a pooled asyncpg connection, always handed back; a
connection that a failure closed is invalidated, never pooled again."""

from __future__ import annotations

import asyncpg
import pytest

from app.db import driver
from app.runtime.services import Services


async def test_fetchrow_answers_and_hands_the_connection_back(services: Services) -> None:
    engine = services.read_engine
    row = await driver.fetchrow(engine, "SELECT $1::int + 1, 'x'", [41])
    assert tuple(row) == (42, "x")
    assert await driver.fetchrow(engine, "SELECT 1 WHERE false", []) is None
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_failed_statement_keeps_a_usable_connection(services: Services) -> None:
    engine = services.read_engine
    with pytest.raises(asyncpg.DivisionByZeroError):
        await driver.fetchrow(engine, "SELECT 1 / $1::int", [0])
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert tuple(await driver.fetchrow(engine, "SELECT 2", [])) == (2,)


async def test_a_closed_connection_is_invalidated(services: Services) -> None:
    engine = services.read_engine
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, OSError)):
        # the backend ends itself mid-statement: the connection is closed under the call
        await driver.fetchrow(engine, "SELECT pg_terminate_backend(pg_backend_pid())", [])
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # the dead connection is not lent again: the next statements (on any pooled one) answer
    for _ in range(20):
        assert tuple(await driver.fetchrow(engine, "SELECT 3", [])) == (3,)
