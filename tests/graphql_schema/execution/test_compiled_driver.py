"""The compiled statement run on the asyncpg connection itself (BOOKBRIDGE_COMPILED_READS_DRIVER):
the same answers as normal execution, connections handed back to the pool, failures fall back."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from app.runtime.services import Services
from app.server.factory import create_app
from graphql_schema.schema import build_schema
from tests.conftest import SettledTransport, StatementCounter
from tests.graphql_schema.execution import compiled_data
from tests.graphql_schema.execution.differential import Paths
from tests.graphql_schema.execution.test_compiled_reads import CATALOG_PAGE, DOCUMENTS


@pytest.fixture
async def driver_paths(services: Services) -> Paths:
    await compiled_data.seed(services)
    on = services.settings.model_copy(update={"compiled_reads_driver": True})
    off = services.settings.model_copy(update={"compiled_reads": False})
    return Paths(services, build_schema(on), build_schema(off))


async def test_suite_documents_answer_the_same_bytes_on_the_driver(driver_paths: Paths) -> None:
    compiled = [await driver_paths.compare(query, variables) for query, variables in DOCUMENTS]
    assert compiled.count(True) == len(DOCUMENTS) - 6, compiled
    assert driver_paths.services.read_engine.pool.checkedout() == 0  # every one handed back


async def test_driver_response_is_the_same_bytes_in_one_statement(
    driver_paths: Paths, sql: StatementCounter
) -> None:
    services = driver_paths.services
    bodies = {}
    for name, driver in (("sqlalchemy", False), ("driver", True)):
        settings = services.settings.model_copy(update={"compiled_reads_driver": driver})
        app = create_app(settings=settings, services=services)
        transport = SettledTransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            sql.reset()
            response = await http.post("/graphql", json={"query": CATALOG_PAGE})
            assert response.status_code == 200
            bodies[name] = (response.content, sql.count)
    assert bodies["driver"][0] == bodies["sqlalchemy"][0]
    assert bodies["sqlalchemy"][1] == 1
    assert bodies["driver"][1] == 1  # counted through asyncpg's query logger


async def test_driver_failures_fall_back_to_normal_execution(driver_paths: Paths) -> None:
    async with driver_paths.services.engine.begin() as conn:
        await conn.execute(
            text("UPDATE topic_book_mappings SET weight = 'Infinity' WHERE book_id = 'b001'")
        )
    assert not await driver_paths.compare('{ book(id: "b001") { topics { weight } } }')
    assert await driver_paths.compare('{ book(id: "b002") { topics { weight } } }')
    assert driver_paths.services.read_engine.pool.checkedout() == 0
