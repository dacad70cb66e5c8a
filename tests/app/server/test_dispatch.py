"""POST /graphql's lane (app/server/dispatch.py) answers as Starlette's whole stack does."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from app.runtime.services import Services
from app.server.dispatch import Service
from app.server.factory import create_app
from tests import factories
from tests.conftest import SettledTransport

BOOK = '{ book(id: "b0001") { id title publisher { id name } topics { weight } } }'
JSON = {"content-type": "application/json"}

# (body, headers): what clients send to POST /graphql, good and bad
REQUESTS: list[tuple[bytes, dict[str, str]]] = [
    (orjson.dumps({"query": BOOK}), JSON),
    (orjson.dumps({"query": BOOK}), {**JSON, "accept-encoding": "gzip"}),
    (gzip.compress(orjson.dumps({"query": BOOK})), {**JSON, "content-encoding": "gzip"}),
    (orjson.dumps({"query": "query Q($id: ID!) { book(id: $id) { id } }"}), JSON),  # no $id
    (orjson.dumps({"query": "{ book(id: 1) { nope } }"}), JSON),
    (orjson.dumps({"query": "{ book("}), JSON),
    (b'{"query": ', JSON),  # not JSON: the body middleware's 400
    (b"[" * 100 + b"]" * 100, JSON),  # too deep
    (orjson.dumps({"query": BOOK}), {**JSON, "content-encoding": "br"}),  # 415
    (orjson.dumps({"query": BOOK}), {"content-type": "text/plain"}),
    (b"query=x", {"content-type": "application/x-www-form-urlencoded"}),
    (orjson.dumps({"query": BOOK}), {**JSON, "authorization": "Bearer not-a-token"}),
    (orjson.dumps([{"query": BOOK}, {"query": BOOK}]), JSON),  # batching is off
]


@pytest.fixture
async def app(services: Services) -> AsyncIterator[Service]:
    await factories.catalog(services, books=3)
    built = create_app(services=services)
    assert isinstance(built, Service)
    yield built


def whole_stack(app: Service) -> object:
    """The same app with every request through Starlette's router (no lane)."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        await Starlette.__call__(app, scope, receive, send)

    return call


async def answers(app: object) -> list[tuple[int, list[tuple[str, str]], bytes]]:
    out = []
    transport = SettledTransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for body, headers in REQUESTS:
            response = await client.post("/graphql", content=body, headers=headers)
            out.append((response.status_code, list(response.headers.items()), response.content))
    return out


async def test_the_lane_answers_as_the_whole_stack(app: Service) -> None:
    lane = await answers(app)
    stack = await answers(whole_stack(app))
    assert [a[0] for a in lane] == [200, 200, 200, 200, 200, 200, 400, 400, 415, 400, 400, 401, 400]
    assert lane == stack


async def test_the_lane_is_taken_for_post_graphql_only(app: Service) -> None:
    seen: list[str] = []
    endpoint = app.lane_route.app

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(
            f"{scope['method']} {scope['path']} {'lane' if 'starlette.exception_handlers' not in scope else 'stack'}"
        )
        await endpoint(scope, receive, send)

    app.lane_route.app = spy
    transport = SettledTransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.post("/graphql", json={"query": BOOK})).status_code == 200
        assert (await client.get("/graphql", params={"query": BOOK})).status_code == 200
        # a path the lane does not take: Starlette redirects it to /graphql
        assert (await client.post("/graphql/", json={"query": BOOK})).status_code == 307
    assert seen == ["POST /graphql lane", "GET /graphql stack"]


async def test_an_unhandled_error_is_a_500_on_the_lane_too(app: Service) -> None:
    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    app.lane_route.app = broken
    app.middleware_stack = None  # built again around the broken endpoint
    results = []
    for target in (app, whole_stack(app)):
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": orjson.dumps({"query": BOOK})}

        async def send(message: Message, sent: list[Message] = sent) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/graphql",
            "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "query_string": b"",
        }
        with pytest.raises(RuntimeError, match="boom"):
            await target(scope, receive, send)  # type: ignore[operator]
        results.append(sent)
    assert results[0][0]["status"] == 500
    assert results[0] == results[1]
