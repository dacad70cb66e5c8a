"""Test fixtures: a real PostgreSQL (TEST_DATABASE_URL, else the embedded server), migrated once,
tables emptied after each test; the app driven in-process over HTTP (httpx ASGI transport)."""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.settings import SecuritySettings, Settings, normalize_database_url
from app.db.migrate import upgrade
from app.db.models import Base
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers


def _database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalize_database_url(url)
    from app.db.embedded import embedded_database_url

    data_dir = Path(
        os.environ.get("BOOKBRIDGE_TEST_DATA_DIR", Path(tempfile.gettempdir()) / "bookbridge-test")
    )
    return embedded_database_url(data_dir, database="bookbridge_test")


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _database_url()
    reset(url)
    upgrade(url)
    return url


def reset(url: str) -> None:
    """Drop everything in the test database so the migrations run from scratch."""
    import asyncio

    from sqlalchemy.ext.asyncio import create_async_engine

    async def _drop() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(_drop())


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    security = SecuritySettings(jwt_secret=auth_helpers.SECRET)
    return Settings(bookbridge_env="test", database_url=database_url, security=security)


@pytest.fixture(scope="session")
async def services(settings: Settings) -> AsyncIterator[Services]:
    services = Services.create(settings)
    yield services
    await services.close()


# Children first; on tables this small DELETE is far cheaper than TRUNCATE (new files per table).
CLEANUP = "; ".join(f"DELETE FROM {t.name}" for t in reversed(Base.metadata.sorted_tables))


@pytest.fixture(autouse=True)
async def _clean(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "services" in request.fixturenames:
        services: Services = request.getfixturevalue("services")
        await services.stored_writes.drain()  # no write-back lands in the next test's data
        async with services.engine.begin() as conn:
            for statement in CLEANUP.split("; "):
                await conn.execute(text(statement))


class StatementCounter:
    """Statements run on `engine`: SQLAlchemy's cursor executions, and statements run on the
    asyncpg connection itself (the compiled read path's driver statement), which asyncpg's
    public query logger reports (it does not log the prepared-statement executions SQLAlchemy's
    cursor runs, so nothing is counted twice). Transaction control is not counted. asyncpg
    calls its loggers with `loop.call_soon`: read `count` after the request's await. asyncpg's
    own type introspection (the first time a connection meets a type it has not described yet:
    its `typeinfo_tree` query, with JIT switched off around it) is once per connection, not per
    request, and is not counted."""

    CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "END")
    INTROSPECTION = ("typeinfo_tree", "current_setting('jit')", "set_config('jit'")

    def __init__(self, engine: AsyncEngine) -> None:
        self.statements: list[str] = []
        self._engine = engine.sync_engine
        self._closed = False
        event.listen(self._engine, "before_cursor_execute", self._on_execute)
        event.listen(self._engine.pool, "checkout", self._on_checkout)
        event.listen(self._engine.pool, "checkin", self._on_checkin)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def _on_driver(self, record: Any) -> None:
        words = record.query.lstrip().split(None, 1)
        if self._closed or not words or words[0].upper().rstrip(";") in self.CONTROL:
            return
        if any(mark in record.query for mark in self.INTROSPECTION):
            return
        self.statements.append(record.query)

    def _on_checkout(self, dbapi_connection: Any, *_: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None:
            driver.add_query_logger(self._on_driver)

    def _on_checkin(self, dbapi_connection: Any, *_: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and not driver.is_closed():
            driver.remove_query_logger(self._on_driver)

    def reset(self) -> None:
        self.statements.clear()

    @property
    def count(self) -> int:
        return len(self.statements)

    def close(self) -> None:
        self._closed = True
        event.remove(self._engine, "before_cursor_execute", self._on_execute)
        event.remove(self._engine.pool, "checkout", self._on_checkout)
        event.remove(self._engine.pool, "checkin", self._on_checkin)


class SettledTransport(httpx.ASGITransport):
    """httpx's ASGI transport, giving the event loop one turn after each response: asyncpg
    calls its query loggers (StatementCounter) with `loop.call_soon`, so a request's driver
    statements are counted before the test reads the count."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        await asyncio.sleep(0)
        return response


async def cyclic_garbage(run: Callable[[], Awaitable[None]], times: int = 3) -> list[str]:
    """The types of our objects that `run` (a request, warmed up first) leaves in reference
    cycles: garbage only the cyclic collector frees, in pauses that were most of the tail
    latency (graphql_schema/execution.py, loaders/base.py)."""
    await run()  # warm: parser and validation caches, pooled connections
    ours = ("bookbridge.", "strawberry.", "graphql.", "sqlalchemy.", "asyncpg.", "starlette.")
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(times):
            await run()
        gc.collect()
        left = [o for o in gc.garbage if type(o).__module__.startswith(ours)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    return sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in left})


@pytest.fixture
def sql(services: Services) -> Iterator[StatementCounter]:
    counter = StatementCounter(services.engine)
    yield counter
    counter.close()


class GraphQLClient:
    """Sends operations as an admin (a JWT) unless given another `token` (None: anonymous)."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = auth_helpers.ADMIN) -> None:
        self.http = http
        self.token = token

    def as_(self, token: str | None) -> GraphQLClient:
        return GraphQLClient(self.http, token)

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, **headers: str
    ) -> dict[str, Any]:
        if self.token is not None:
            headers = {"Authorization": f"Bearer {self.token}", **headers}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self(query, variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services=services)
    transport = SettledTransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)
