"""Schemathesis fuzzes every root field of the live schema over real HTTP (a uvicorn server on
loopback, its own engine): no generated input may get a 5xx, nor the hostile shapes of issue 14
made from generated operations. Bounded: a few hundred examples."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
import uvicorn
from graphql import OperationDefinitionNode, OperationType, parse, print_ast
from hypothesis import HealthCheck, given, settings

from app.core.settings import Settings
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers

EXAMPLES_PER_FIELD = 12  # 28 root fields: ~340 requests, about 30 s here
HOSTILE_EXAMPLES_PER_FIELD = 2  # x 4 shapes: ~220 requests


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[str]:
    """The app under uvicorn in a thread: the service as deployed, with a small pool."""
    cache = settings.response_cache.model_copy(update={"enabled": False})
    own = settings.model_copy(
        update={"db_pool_size": 2, "db_max_overflow": 2, "response_cache": cache}
    )
    config = uvicorn.Config(
        create_app(own), host="127.0.0.1", port=0, log_level="warning", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/graphql"
    server.should_exit = True
    thread.join(timeout=30)


def test_no_input_gets_a_server_error(server: str, services: Services) -> None:
    """Every root field with generated arguments and selections (as an admin, so mutations run
    too; `services` empties the tables afterwards)."""
    api = schemathesis.graphql.from_url(server)
    headers = {"Authorization": f"Bearer {auth_helpers.ADMIN}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 20
    seen: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_FIELD,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            response = case.call(headers=headers)
            seen.append(response.status_code)
            assert response.status_code < 500, (case.body, response.text[:500])

        check()
    assert len(seen) >= len(operations)
    print(
        f"schemathesis: {len(operations)} root fields, {len(seen)} requests, statuses {sorted(set(seen))}"
    )


def hostile_shapes(document: str) -> list[dict[str, Any]]:
    """The shapes issue 14 names, made from one generated operation: its selections behind 20
    levels of fragments that each spread the next twice, variables nested 600 deep, a NUL
    escape in each string literal, and the document padded past its size limit."""
    node = parse(document)
    operation = next(d for d in node.definitions if isinstance(d, OperationDefinitionNode))
    root = "Mutation" if operation.operation is OperationType.MUTATION else "Query"
    keyword = "mutation" if root == "Mutation" else "query"
    selections = print_ast(operation.selection_set)
    fragments = " ".join(
        f"fragment F{i} on {root} {{ ...F{i + 1} ...F{i + 1} }}" for i in range(20)
    )
    fan_out = f"{keyword} {{ ...F0 }} {fragments} fragment F20 on {root} {selections}"
    nul = re.sub(r'"((?:[^"\\]|\\.)*)"', r'"\1\\u{0}"', document)
    deep = '{"a": ' * 600 + "1" + "}" * 600
    return [
        {"query": fan_out},
        {"raw": b'{"query": %s, "variables": {"v": %s}}' % (orjson.dumps(document), deep.encode())},
        {"query": nul},
        {"query": document + " " * 60_000},
    ]


def test_hostile_shapes_of_every_root_field_get_no_server_error(
    server: str, services: Services
) -> None:
    api = schemathesis.graphql.from_url(server)
    headers = {"Authorization": f"Bearer {auth_helpers.ADMIN}"}
    operations = [result.ok() for result in api.get_all_operations()]
    statuses: list[int] = []
    with httpx.Client(timeout=30, headers=headers) as client:
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=HOSTILE_EXAMPLES_PER_FIELD,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                for shape in hostile_shapes(case.body):
                    started = time.perf_counter()
                    if "raw" in shape:
                        response = client.post(
                            server,
                            content=shape["raw"],
                            headers={"content-type": "application/json"},
                        )
                    else:
                        response = client.post(server, json=shape)
                    statuses.append(response.status_code)
                    assert response.status_code < 500, (shape, response.text[:500])
                    assert time.perf_counter() - started < 2.0, shape

            check()
    assert len(statuses) >= 4 * len(operations)
    print(f"hostile shapes: {len(statuses)} requests, statuses {sorted(set(statuses))}")
