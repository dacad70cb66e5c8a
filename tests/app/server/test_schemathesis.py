"""Schemathesis fuzzes every root field of the live schema over real HTTP (a uvicorn server on
loopback, its own engine): no generated input may get a 5xx. Bounded: a few hundred examples."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from app.core.settings import Settings
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers

EXAMPLES_PER_FIELD = 12  # 28 root fields: ~340 requests, about 30 s here


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
