"""The response cache: anonymous public catalog queries are served from memory, and ingestion
that changes the catalog invalidates them, in this process at once and in others via NOTIFY."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text

from app.core.settings import ResponseCacheSettings
from app.ingest.notify import CATALOG_CHANNEL as CHANNEL
from app.ingest.notify import sender
from app.runtime.services import Services
from app.server.factory import create_app
from tests import factories
from tests.conftest import GraphQLClient, StatementCounter
from tests.ingest_helpers import apply

PAGE = "query($n: Int) { books(first: $n) { edges { node { id title publisher { name } } } } }"


@pytest.fixture
async def cached(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its response cache on (off by default under BOOKBRIDGE_ENV=test)."""
    on = ResponseCacheSettings(enabled=True)
    settings = services.settings.model_copy(update={"response_cache": on})
    app = create_app(settings=settings, services=services)
    async with app.router.lifespan_context(app):  # its exit closes the LISTEN connection
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _page(client: httpx.AsyncClient, n: int = 3, **headers: str) -> httpx.Response:
    response = await client.post(
        "/graphql", json={"query": PAGE, "variables": {"n": n}}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response


async def test_repeat_query_is_served_from_memory_without_sql(
    services: Services, cached: httpx.AsyncClient, sql: StatementCounter
) -> None:
    await factories.catalog(services, books=5)
    first = await _page(cached)
    sql.reset()
    second = await _page(cached)
    assert (first.headers["x-bookbridge-cache"], second.headers["x-bookbridge-cache"]) == (
        "miss",
        "hit",
    )
    assert second.json() == first.json() and len(first.json()["data"]["books"]["edges"]) == 3
    assert sql.count == 0
    other = await _page(cached, n=4)  # other variables: another entry
    assert other.headers["x-bookbridge-cache"] == "miss"


async def test_ingestion_invalidates(services: Services, cached: httpx.AsyncClient) -> None:
    await factories.catalog(services, books=3)
    before = (await _page(cached, n=10)).json()["data"]["books"]["edges"]
    await _page(cached, n=10)
    admin = GraphQLClient(cached)
    book = {
        "id": "b9999",
        "publisherId": "p1",
        "title": "New",
        "description": None,
        "tags": [],
        "updatedAt": "2026-06-01T00:00:00Z",
    }
    await apply(admin, "books", [book])
    after = await _page(cached, n=10)
    assert after.headers["x-bookbridge-cache"] == "miss"
    assert len(after.json()["data"]["books"]["edges"]) == len(before) + 1
    # a batch that changes nothing keeps the cache
    await _page(cached, n=10)
    await apply(admin, "books", [book])
    assert (await _page(cached, n=10)).headers["x-bookbridge-cache"] == "hit"


async def test_other_processes_learn_through_notify(
    services: Services, cached: httpx.AsyncClient
) -> None:
    await factories.catalog(services, books=2)
    await _page(cached)
    assert (await _page(cached)).headers["x-bookbridge-cache"] == "hit"
    async with services.read_engine.connect() as conn:  # what another replica's batch sends
        await conn.execute(text("SELECT pg_notify(:c, 'books')"), {"c": CHANNEL})
    for _ in range(100):
        if (await _page(cached)).headers["x-bookbridge-cache"] == "miss":
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("NOTIFY did not invalidate the cache")


async def test_own_notification_does_not_empty_the_cache_again(
    services: Services, cached: httpx.AsyncClient
) -> None:
    """A batch of this process bumps its cache at commit; its own NOTIFY, arriving later (late
    under load), must not throw away what was cached since from the committed catalog. Another
    process's notification still does."""
    await factories.catalog(services, books=2)
    await _page(cached)
    assert (await _page(cached)).headers["x-bookbridge-cache"] == "hit"
    async with services.read_engine.connect() as conn:
        await conn.execute(
            text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": f"books {sender()}"}
        )
        await conn.commit()
    for _ in range(15):  # ~0.3 s: the notification is heard within a few ms on an idle loop
        await asyncio.sleep(0.02)
        assert (await _page(cached)).headers["x-bookbridge-cache"] == "hit"
    async with services.read_engine.connect() as conn:  # the same entity from another process
        await conn.execute(text("SELECT pg_notify(:c, 'books 1.other')"), {"c": CHANNEL})
        await conn.commit()
    for _ in range(100):
        if (await _page(cached)).headers["x-bookbridge-cache"] == "miss":
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("another process's NOTIFY did not invalidate the cache")


async def test_not_cached_viewer_dependent_errors_and_non_catalog(
    services: Services, cached: httpx.AsyncClient
) -> None:
    await factories.catalog(services, books=2)
    admin = GraphQLClient(cached)
    for _ in range(2):
        response = await _page(cached, Authorization=f"Bearer {admin.token}")
        assert "x-bookbridge-cache" not in response.headers
    bad = {"query": "{ books(first: 1000) { edges { node { id } } } }"}
    for _ in range(2):
        response = await cached.post("/graphql", json=bad)
        assert "errors" in response.json() and response.headers["x-bookbridge-cache"] == "miss"
    study = {"query": '{ studySet(id: "x") { id } }'}
    for _ in range(2):
        response = await cached.post("/graphql", json=study)
        assert "x-bookbridge-cache" not in response.headers
