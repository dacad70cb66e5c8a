"""The compiled fast path (documents seen before skip Strawberry's pipeline) answers over HTTP
exactly what the pipeline answers: bytes, status, headers, errors, rate limits, spans."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import text

from app.core.settings import Settings
from app.observability import tracing
from app.runtime.services import Services
from app.server.factory import create_app
from graphql_schema.execution.compiler.fast import FastReads
from tests import auth_helpers
from tests.auth_helpers import bearer, token
from tests.graphql_schema.execution import compiled_data
from tests.graphql_schema.execution.test_compiled_reads import DOCUMENTS

HEADERS = ("content-type", "content-length", "retry-after", "www-authenticate")


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The bodies the fast path answered itself (not handed to the pipeline)."""
    bodies: list[bytes] = []
    answer = FastReads.answer

    async def counted(self: FastReads, *args: Any) -> Any:
        result = await answer(self, *args)
        if isinstance(result, bytes):
            bodies.append(result)
        return result

    monkeypatch.setattr(FastReads, "answer", counted)
    return bodies


def _client(settings: Settings, services: Services) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings=settings, services=services))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def _seen(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = [(k, v) for k, v in response.headers.items() if k in HEADERS]
    return response.status_code, response.content, headers


async def test_documents_seen_before_answer_the_pipelines_bytes(
    services: Services, answered: list[bytes]
) -> None:
    await compiled_data.seed(services)
    # thousands of operations would exhaust the anonymous budget (rate limits: a test below)
    security = services.settings.security.model_copy(
        update={"rate_limit_cost_per_minute": 0, "rate_limit_anonymous_cost_per_minute": 0}
    )
    on = services.settings.model_copy(update={"security": security})
    off = on.model_copy(update={"compiled_reads_fast_path": False})
    admin = {"authorization": f"Bearer {auth_helpers.ADMIN}"}
    fast_again = 0
    async with _client(on, services) as fast, _client(off, services) as pipeline:
        for query, variables in DOCUMENTS:
            body = {"query": query, "variables": variables}
            for headers in ({}, admin):
                want = _seen(await pipeline.post("/graphql", json=body, headers=headers))
                first = _seen(await fast.post("/graphql", json=body, headers=headers))
                before = len(answered)
                again = _seen(await fast.post("/graphql", json=body, headers=headers))
                fast_again += len(answered) - before
                assert first == want == again, (query, variables, headers)
    # every compiled document, anonymous and admin, the second time (after the first's verdicts)
    assert fast_again == 2 * (len(DOCUMENTS) - 6)


async def test_the_fast_path_refuses_what_the_pipeline_refuses(
    services: Services, answered: list[bytes]
) -> None:
    await compiled_data.seed(services)
    query = {"query": '{ book(id: "b001") { id title } }'}
    async with _client(services.settings, services) as http:
        for _ in range(2):
            assert (await http.post("/graphql", json=query)).status_code == 200
        assert len(answered) == 1
        bad = await http.post("/graphql", json=query, headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
        wrong = await http.post("/graphql", json={**query, "operationName": "Missing"})
        assert wrong.status_code == 400 or "errors" in wrong.json()
        streamed = await http.post(
            "/graphql", json=query, headers={"accept": "multipart/mixed;deferSpec=20220824"}
        )
        assert streamed.status_code == 200
        assert len(answered) == 1  # none of those was the fast path's


async def test_a_statement_that_falls_back_is_answered_by_normal_execution(
    services: Services, answered: list[bytes]
) -> None:
    await compiled_data.seed(services)
    off = services.settings.model_copy(update={"compiled_reads": False})
    query = {"query": '{ book(id: "b001") { topics { weight } } }'}
    async with _client(services.settings, services) as fast, _client(off, services) as normal:
        for _ in range(2):
            assert (await fast.post("/graphql", json=query)).status_code == 200
        assert len(answered) == 1
        async with services.engine.begin() as conn:
            await conn.execute(
                text("UPDATE topic_book_mappings SET weight = 'Infinity' WHERE book_id = 'b001'")
            )
        got = await fast.post("/graphql", json=query)
        want = await normal.post("/graphql", json=query)
        assert _seen(got) == _seen(want) and "errors" in got.json()
        assert len(answered) == 1


@pytest.fixture
async def limited(
    settings: Settings, services: Services
) -> AsyncIterator[httpx.AsyncClient]:  # `services`: its tables are emptied after the test
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url and os.environ.get("CI"):
        pytest.fail("TEST_REDIS_URL must be set in CI")
    security = settings.security.model_copy(
        update={"rate_limit_cost_per_minute": 100, "rate_limit_anonymous_cost_per_minute": 100}
    )
    limited = settings.model_copy(update={"security": security, "redis_url": redis_url})
    own = Services.create(limited)
    await compiled_data.seed(own)
    try:
        async with _client(limited, own) as client:
            yield client
    finally:
        if own.redis is not None:
            await own.redis.flushdb()
        await own.close()


async def test_each_request_is_charged_once(
    limited: httpx.AsyncClient, answered: list[bytes]
) -> None:
    query = {"query": "{ books(first: 10) { edges { node { id title } } } }"}  # cost 41
    for caller in ("stu-once-1", "stu-once-2"):  # a minute boundary may split one: then again
        window = int(time.time() // 60)
        answered.clear()
        statuses = [
            (await limited.post("/graphql", json=query, headers=bearer(token(caller)))).status_code
            for _ in range(3)
        ]
        if int(time.time() // 60) == window:
            break
    assert statuses == [200, 200, 429]  # 41 + 41 <= 100 < 41 * 3: never charged twice
    refused = await limited.post("/graphql", json=query, headers=bearer(token(caller)))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert len(answered) == 1  # the second; refusals are the pipeline's answer


@pytest.fixture
def spans(services: Services) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider, services, make_global=False)
    yield exporter
    tracing.uninstall()
    provider.shutdown()


async def test_the_fast_path_traces_one_operation_and_its_statement(
    services: Services, spans: InMemorySpanExporter, answered: list[bytes]
) -> None:
    await compiled_data.seed(services)
    query = {"query": 'query One { book(id: "b001") { id title } }'}
    async with _client(services.settings, services) as http:
        trees = []
        for _ in range(2):
            spans.clear()
            assert (await http.post("/graphql", json=query)).status_code == 200
            finished = spans.get_finished_spans()
            names = {s.context.span_id: s.name for s in finished}
            trees.append(
                sorted(
                    (s.name, names.get(s.parent.span_id) if s.parent else None)
                    for s in finished
                    if s.name.startswith(("POST", "graphql."))
                )
            )
            operation = next(s for s in finished if s.name == "graphql.query One")
            assert (operation.attributes or {})["graphql.operation.name"] == "One"
    assert len(answered) == 1
    assert (
        trees[0]
        == trees[1]
        == [
            ("POST /graphql", None),
            ("graphql.compiled_read", "graphql.query One"),
            ("graphql.query One", "POST /graphql"),
        ]
    )
