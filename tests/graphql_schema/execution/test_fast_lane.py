"""The fast lane's variables, worked out once per document and operation, coerce exactly as
graphql-core's `get_variable_values` coerces them (or fail where it fails)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import build_schema, parse
from graphql.execution.values import VariableValues, get_variable_values

from graphql_schema.execution.compiler.fast import Lane, _lane

SCHEMA = build_schema(
    """
    enum Order { ASC DESC }
    input Range { low: Int, high: Int }
    type Query { f(id: ID, n: Int, s: String, b: Boolean, x: Float, o: Order, r: Range): Int }
    """
)
LEAVES = parse(
    """query Leaves($id: ID!, $n: Int, $s: String, $b: Boolean!, $x: Float, $o: Order) {
      f(id: $id, n: $n, s: $s, b: $b, x: $x, o: $o) }
    mutation M { f }"""
)
INPUTS: list[dict[str, Any]] = [
    {"id": "b1", "b": True},
    {"id": 7, "b": False, "n": 3, "s": "t", "x": 1, "o": "DESC"},
    {"id": "b1", "b": True, "n": None, "s": None, "x": None, "o": None},
    {"b": True},  # a required variable missing
    {"id": None, "b": True},  # a required variable null
    {"id": "b1", "b": "yes"},  # wrong type
    {"id": "b1", "b": True, "n": 2.5},
    {"id": "b1", "b": True, "n": 2**40},
    {"id": "b1", "b": True, "o": "SIDEWAYS"},
    {"id": ["b1"], "b": True},
    {"id": "b1", "b": True, "x": float("nan")},
    {"id": "b1", "b": True, "unknown": 1},
]


def _expected(document: Any, inputs: dict[str, Any]) -> Any:
    operation = next(d for d in document.definitions if d.name and d.name.value != "M")
    found = get_variable_values(SCHEMA, operation.variable_definitions or (), inputs)
    return None if isinstance(found, list) else _seen(found)


def _seen(values: VariableValues | None) -> Any:
    """The values and their sources (wrapping types are new objects on every lookup: their
    printed names compared)."""
    if values is None:
        return None
    sources = {
        name: (s.signature.name, str(s.signature.type), s.signature.default, s.value)
        for name, s in values.sources.items()
    }
    return values.coerced, sources


@pytest.mark.parametrize("inputs", INPUTS)
def test_leaf_variables_coerce_as_graphql_core_coerces_them(inputs: dict[str, Any]) -> None:
    lane = _lane(SCHEMA, LEAVES, "Leaves")
    assert isinstance(lane, Lane) and lane.signatures is not None
    assert _seen(lane.coerce(SCHEMA, inputs)) == _expected(LEAVES, inputs)


@pytest.mark.parametrize(
    "definitions",
    ['($id: ID = "b0")', "($r: Range)", "($ids: [ID!])"],
)
def test_defaults_lists_and_input_objects_are_graphql_cores(definitions: str) -> None:
    document = parse(f"query Q{definitions} {{ f }}")
    lane = _lane(SCHEMA, document, None)
    assert isinstance(lane, Lane) and lane.signatures is None and lane.name == "Q"
    for inputs in ({}, {"id": 3, "r": {"low": 1}, "ids": ["a", 2]}, {"r": {"low": "x"}}):
        assert _seen(lane.coerce(SCHEMA, inputs)) == _expected(document, inputs)


def test_only_queries_take_the_lane() -> None:
    assert _lane(SCHEMA, LEAVES, "M") is False
    assert _lane(SCHEMA, LEAVES, "Missing") is False
    assert _lane(SCHEMA, LEAVES, None) is False  # two operations and no name
