"""Every cheap refusal: depth, aliases, tokens, cost, page size, batching, GET mutations, rate
limits, and the production defaults (introspection, GraphiQL, suggestions off; errors masked)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from app.db import pagination
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers, factories
from tests.auth_helpers import bearer, token

COSTLY = (
    "{ books(first: 100) { edges { node { topics { topic { books(first: 100) "
    "{ edges { node { id title } } } } } } } } }"
)


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_depth_aliases_tokens_cost_are_refused(gql: Any) -> None:
    deep = '{ book(id: "b") { publisher { books { edges { node { publisher { books { edges { node { publisher { books { edges { node { id } } } } } } } } } } } } } }'
    body = await gql(deep)
    assert body["data"] is None and "depth" in body["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: subjects {{ id }}" for i in range(40)) + " }"
    body = await gql(aliases)
    assert body["data"] is None and "aliases" in body["errors"][0]["message"]
    tokens = "{ subjects { " + "id " * 3000 + "} }"
    body = await gql(tokens)
    assert body["data"] is None and "tokens" in body["errors"][0]["message"]
    body = await gql(COSTLY)
    assert code(body) == "QUERY_TOO_COSTLY" and body["errors"][0]["extensions"]["cost"] > 20_000


async def test_cost_follows_first_from_variables(gql: Any, services: Services) -> None:
    await factories.catalog(services, books=3)
    query = (
        "query($n: Int) { books(first: $n) { edges { node { topics { topic { "
        "books(first: $n) { edges { node { id } } } } } } } } }"
    )
    small = await gql(query, {"n": 5})
    assert "errors" not in small, small
    big = await gql(query, {"n": 100})
    assert code(big) == "QUERY_TOO_COSTLY"


async def test_bad_variables_and_nul_bytes_are_client_errors(gql: Any) -> None:
    typed = await gql("query($n: Int) { books(first: $n) { edges { cursor } } }", {"n": "ten"})
    assert code(typed) == "BAD_USER_INPUT" and "ten" in typed["errors"][0]["message"]
    nul = await gql.http.post(
        "/graphql",
        json={"query": "query($id: ID!) { book(id: $id) { id } }", "variables": {"id": "a\x00b"}},
    )
    # a coded GraphQL error (a batch rejects such text per record instead: test_hostile.py)
    assert nul.status_code == 200 and code(nul.json()) == "BAD_USER_INPUT", nul.text
    assert "NUL" in nul.json()["errors"][0]["message"]


async def test_page_size_is_capped(gql: Any) -> None:
    body = await gql("{ books(first: 101) { edges { cursor } } }")
    assert code(body) == "BAD_USER_INPUT" and "100" in body["errors"][0]["message"]


async def test_batched_operations_are_refused(http: httpx.AsyncClient) -> None:
    batch = [{"query": "{ subjects { id } }"}, {"query": "{ grades { id } }"}]
    response = await http.post("/graphql", json=batch)
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Batching is not enabled"


async def test_mutations_over_get_are_refused(http: httpx.AsyncClient) -> None:
    mutation = 'mutation { upsertSubjects(input: {records: [{id: "s", name: "n"}]}) { inserted } }'
    response = await http.get(
        "/graphql", params={"query": mutation}, headers=bearer(auth_helpers.ADMIN)
    )
    assert response.status_code in (400, 405), response.text
    assert "GET" in response.json()["errors"][0]["message"]
    query = await http.get("/graphql", params={"query": "{ subjects { id } }"})
    assert query.status_code == 200 and query.json() == {"data": {"subjects": []}}


async def test_development_defaults_are_convenient(http: httpx.AsyncClient) -> None:
    ide = await http.get("/graphql", headers={"accept": "text/html"})
    assert ide.status_code == 200 and "graphiql" in ide.text.lower()
    body = (
        await http.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    ).json()
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"
    typo = (await http.post("/graphql", json={"query": "{ boks { edges { cursor } } }"})).json()
    assert "Did you mean" in typo["errors"][0]["message"]


@pytest.fixture
async def prod(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    # The response cache listens on its own connection, closed by the lifespan that
    # ASGITransport does not run: it stays off here.
    cache = services.settings.response_cache.model_copy(update={"enabled": False})
    settings = services.settings.model_copy(
        update={"bookbridge_env": "production", "response_cache": cache}
    )
    app = create_app(settings=settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_production_turns_off_introspection_graphiql_suggestions(
    prod: httpx.AsyncClient,
) -> None:
    ide = await prod.get("/graphql", headers={"accept": "text/html"})
    assert ide.status_code == 404
    body = (await prod.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
    assert body["data"] is None and "introspection" in body["errors"][0]["message"].lower()
    typo = (await prod.post("/graphql", json={"query": "{ boks { edges { cursor } } }"})).json()
    assert "Did you mean" not in typo["errors"][0]["message"]
    assert code(typo) == "GRAPHQL_VALIDATION_FAILED"


async def test_production_masks_unexpected_errors_with_an_error_id(
    prod: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("connection string postgres://secret@db")

    # Fails before any connection is taken (a connection held by the traceback would leak).
    monkeypatch.setattr(pagination.PageArgs, "parse", broken)
    with caplog.at_level(logging.ERROR, logger="bookbridge.graphql"):
        body = (
            await prod.post("/graphql", json={"query": "{ publishers { edges { cursor } } }"})
        ).json()
    error = body["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    error_id = error["extensions"]["errorId"]
    assert "secret" not in str(body) and error_id in error["message"]
    assert any(getattr(r, "error_id", None) == error_id for r in caplog.records)
    monkeypatch.undo()
    bad_input = (
        await prod.post("/graphql", json={"query": "{ books(first: -1) { edges { cursor } } }"})
    ).json()
    assert code(bad_input) == "BAD_USER_INPUT" and "between" in bad_input["errors"][0]["message"]


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url and os.environ.get("CI"):
        pytest.fail("TEST_REDIS_URL must be set in CI")
    security = settings.security.model_copy(
        update={"rate_limit_cost_per_minute": 50, "rate_limit_anonymous_cost_per_minute": 10}
    )
    limited = settings.model_copy(update={"security": security, "redis_url": redis_url})
    services = Services.create(limited)
    if services.redis is not None:
        await services.redis.flushdb()
    try:
        app = create_app(services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        if services.redis is not None:
            keys = [k async for k in services.redis.scan_iter("bb:rl:*")]
            assert all(b"stu-" not in k for k in keys)  # subjects are hashed in Redis keys
            await services.redis.flushdb()
        await services.close()


async def test_rate_limits_weigh_cost_per_caller(limited: httpx.AsyncClient) -> None:
    query = {
        "query": "{ books(first: 10) { edges { node { id title } } } }"
    }  # cost 1 + 10 * 4 = 41
    student = bearer(token("stu-1"))
    first = await limited.post("/graphql", json=query, headers=student)
    assert first.status_code == 200 and "errors" not in first.json()
    # A minute boundary may fall between two requests (fixed windows): allow one more try.
    for _ in range(2):
        refused = await limited.post("/graphql", json=query, headers=student)
        if refused.status_code == 429:
            break
    assert refused.status_code == 429
    assert code(refused.json()) == "RATE_LIMITED" and int(refused.headers["retry-after"]) >= 1
    other = await limited.post("/graphql", json=query, headers=bearer(token("stu-2")))
    assert other.status_code == 200
    anonymous = await limited.post("/graphql", json=query)
    assert anonymous.status_code == 429
    admin = await limited.post("/graphql", json=query, headers=bearer(auth_helpers.ADMIN))
    assert admin.status_code == 200
