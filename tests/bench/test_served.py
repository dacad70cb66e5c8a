"""bench.served counts the statements a request runs: SQLAlchemy's and the driver's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import Pool

from app.runtime.services import Services
from app.server.factory import create_app
from bench import scenarios, served
from tests import factories
from tests.conftest import SettledTransport, StatementCounter


@pytest.fixture
async def counted_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url)
    event.listen(engine.sync_engine, "before_cursor_execute", served.count_cursor)
    event.listen(engine.sync_engine.pool, "connect", served.on_connect)
    event.listen(engine.sync_engine.pool, "checkout", served.on_checkout)
    yield engine
    await engine.dispose()


async def test_driver_statements_count_and_transaction_control_does_not(
    counted_engine: AsyncEngine,
) -> None:
    box = served.count_statements()
    async with counted_engine.begin() as conn:  # BEGIN and COMMIT go through asyncpg's log
        await conn.execute(text("SELECT 1"))  # SQLAlchemy's cursor
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute("SELECT 2")  # type: ignore[union-attr]
        await raw.driver_connection.fetchval("SELECT $1::int", 3)  # type: ignore[union-attr]
    await asyncio.sleep(0)  # asyncpg calls its loggers soon, not at once
    assert box == [3, 1]  # three statements, one pooled connection


async def test_every_response_says_how_many_statements_it_ran(
    services: Services, sql: StatementCounter
) -> None:
    await factories.catalog(services, books=3)
    app = served.SqlCounter(create_app(services=services))
    try:
        transport = SettledTransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            sql.reset()
            body = scenarios.body(scenarios.BOOK_BY_ID, {"id": "b0001"})
            response = await client.post(
                "/graphql", content=body, headers={"content-type": "application/json"}
            )
            assert response.json()["data"]["book"]["id"] == "b0001"
            assert int(response.headers["x-bench-sql"]) == sql.count > 0
            # a measured run's request (x-bench-quiet) is answered alike, and nothing counted
            quiet = await client.post(
                "/graphql",
                content=body,
                headers={"content-type": "application/json", "x-bench-quiet": "1"},
            )
            assert quiet.content == response.content
            assert "x-bench-sql" not in quiet.headers
            # and the counting listeners are off: no work the raw route and PostGraphile skip
            assert not app.listeners.on and not served.logged
            assert not event.contains(Pool, "checkout", served.on_checkout)
            # a counted request after it counts again
            again = await client.post(
                "/graphql", content=body, headers={"content-type": "application/json"}
            )
            assert again.headers["x-bench-sql"] == response.headers["x-bench-sql"]
            busy = await client.get("/_bench/inflight")
            assert busy.text == "0"
    finally:
        app.listeners.off()
