"""Same answers, proven: generated catalog operations give the same bytes and errors whether
the compiled read path is on or off."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from app.runtime.services import Services
from tests.graphql_schema.execution import compiled_data
from tests.graphql_schema.execution.differential import Paths
from tests.graphql_schema.execution.operations import operations

# how many generated operations each path answered (the compiled share must not be trivial)
SEEN = {"operations": 0, "compiled": 0}


@pytest.fixture
async def paths(services: Services) -> Paths:
    await compiled_data.seed(services)
    return Paths.of(services)


@settings(
    max_examples=1500,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(operation=operations())
async def test_generated_operations_answer_the_same(
    paths: Paths, operation: tuple[str, dict[str, Any]]
) -> None:
    query, variables = operation
    compiled = await paths.compare(query, variables)
    SEEN["operations"] += 1
    SEEN["compiled"] += compiled


def test_most_generated_operations_compiled() -> None:
    if not SEEN["operations"]:
        pytest.skip("runs after test_generated_operations_answer_the_same")
    assert SEEN["compiled"] >= SEEN["operations"] // 3, SEEN
