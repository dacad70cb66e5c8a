"""The compiled variable coercion gives graphql-core's own results, errors included."""

from __future__ import annotations

import random
from typing import Any

import pytest
from graphql import GraphQLError, parse
from graphql.execution import values

from graphql_schema.execution import variables
from graphql_schema.schema import build_schema

SCHEMA = build_schema()._schema
BOOKS = "mutation($input: UpsertBooksInput!) { upsertBooks(input: $input) { inserted } }"
SETS = "mutation($input: UpsertStudySetsInput!) { upsertStudySets(input: $input) { inserted } }"
READ = (
    "query($first: Int, $after: String, $filter: BookFilter) "
    "{ books(first: $first, after: $after, filter: $filter) { edges { node { id } } } }"
)
WITH_DEFAULT = "query($first: Int = 7) { books(first: $first) { edges { node { id } } } }"


def both(document: str, inputs: dict[str, Any]) -> tuple[Any, Any]:
    definitions = parse(document).definitions[0].variable_definitions  # type: ignore[attr-defined]
    fast = variables.get_variable_values(SCHEMA, definitions, inputs, max_errors=50)
    slow = values.get_variable_values(SCHEMA, definitions, inputs, max_errors=50)
    return fast, slow


def same(document: str, inputs: dict[str, Any]) -> Any:
    fast, slow = both(document, inputs)
    if isinstance(slow, list):
        assert isinstance(fast, list), fast
        assert [e.message for e in fast] == [e.message for e in slow]
        assert all(isinstance(e, GraphQLError) for e in fast)
    else:
        assert fast.coerced == slow.coerced

        def sources(found: Any) -> dict[str, Any]:
            return {
                k: (v.signature.name, str(v.signature.type), v.signature.default, v.value)
                for k, v in found.sources.items()
            }

        assert sources(fast) == sources(slow)
    return slow


def book(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"b{i}",
        "publisherId": "p1",
        "title": f"Title {i}",
        "tags": ["a", "b"],
        "updatedAt": "2026-01-02T00:00:00Z",
    } | extra


@pytest.mark.parametrize(
    "inputs",
    [
        {"input": {"records": [book(i) for i in range(50)], "idempotencyKey": "k"}},
        {"input": {"records": []}},
        {"input": {"records": [book(1, tags=None, description=None)]}},
        {"input": {"records": [book(1, tags="one")]}},  # a single value is a list of one
        {"input": {"records": book(1)}},  # ditto for the records themselves
        {"input": {"records": [{}]}},  # every field of a record input is optional
        {"input": {"records": [book(1, id=17)]}},  # an Int is a valid ID
    ],
)
def test_valid_batches_coerce_alike(
    inputs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    got = same(BOOKS, inputs)
    assert not isinstance(got, list)

    def generic(*_: Any) -> Any:
        raise AssertionError("a valid batch took graphql-core's generic path")

    monkeypatch.setattr(variables, "_original", generic)
    both_fast = [variables.get_variable_values(SCHEMA, d, inputs) for d in _definitions(BOOKS)]
    assert both_fast[0].coerced == got.coerced


def _definitions(document: str) -> list[Any]:
    return [parse(document).definitions[0].variable_definitions]  # type: ignore[attr-defined]


def test_compiled_coercers_are_reused() -> None:
    for _ in range(3):
        same(BOOKS, {"input": {"records": [book(1)]}})
    input_type = SCHEMA.get_type("UpsertBooksInput")
    assert sum(1 for named, _ in variables._compiled.values() if named is input_type) == 1


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"input": None},
        {"input": {"records": None}},
        {"input": {"records": [book(1, title=5)]}},
        {"input": {"records": [book(1, tags=[1, 2])]}},
        {"input": {"records": [book(1, nope="x")]}},
        {"input": {"records": [book(1), "not an object"]}},
        {"input": {"records": [book(1, id=True)]}},
        {"input": {"records": [book(1, id=1.5)]}},
        {"input": {"records": [book(i, title=i) for i in range(80)]}},  # beyond max_errors
        {"input": {"records": [], "idempotencyKey": ["x"]}},
        {"input": "records"},
    ],
)
def test_invalid_batches_give_graphql_cores_errors(inputs: dict[str, Any]) -> None:
    got = same(BOOKS, inputs)
    assert isinstance(got, list) and got


@pytest.mark.parametrize(
    "inputs",
    [
        {},
        {"first": 3},
        {"first": "3"},
        {"first": 3, "filter": {"search": "owl", "topicId": "t1"}},
        {"filter": {"nope": 1}},
        {"first": None, "after": None, "filter": None},
    ],
)
def test_read_variables_coerce_alike(inputs: dict[str, Any]) -> None:
    same(READ, inputs)


def test_enum_variables_coerce_alike() -> None:
    document = (
        "query($id: ID!, $s: RecommendationStrategy, $n: Int) "
        "{ recommendations(studySetId: $id, strategy: $s, first: $n) { strategy } }"
    )
    for inputs in ({"id": "ss1", "s": "TOPIC", "n": 5}, {"id": "ss1", "s": "NOPE"}, {"id": 5}):
        same(document, inputs)
    fast, _ = both(document, {"id": "ss1", "s": "HYBRID"})
    assert not isinstance(fast, list) and fast.coerced["s"] is not None


def test_defaults_and_nested_lists_coerce_alike() -> None:
    same(WITH_DEFAULT, {})
    same(WITH_DEFAULT, {"first": 2})
    sets = [
        {"id": "s1", "userId": "u1", "title": "T", "topicIds": ["t1", "t2"]},
        {"id": "s2", "userId": "u2", "title": "T", "topicIds": "t1"},
    ]
    same(SETS, {"input": {"records": sets}})
    same(SETS, {"input": {"records": [{"id": "s3", "topicIds": [["t1"]]}]}})


def test_random_records_coerce_alike() -> None:
    rng = random.Random(42)
    pool: list[Any] = ["x", "", 3, -1, 2.5, True, None, [], ["a"], [1], {"a": 1}, "2026-01-01"]
    fields = ["id", "publisherId", "title", "description", "tags", "updatedAt", "bogus"]
    for _ in range(300):
        records = [
            {f: rng.choice(pool) for f in rng.sample(fields, rng.randint(0, 4))}
            for _ in range(rng.randint(0, 4))
        ]
        same(BOOKS, {"input": {"records": records}})


def test_the_execution_context_builds_with_the_compiled_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The executor Strawberry runs (our context's public `build`) takes the compiled values
    for a valid request, keeps the operation as sent, and leaves errors to graphql-core."""
    from graphql_schema.execution import context
    from graphql_schema.execution.context import ExecutionContext

    inputs = {"input": {"records": [book(i) for i in range(5)], "idempotencyKey": "k"}}
    document = parse(BOOKS)
    expected = values.get_variable_values(
        SCHEMA,
        document.definitions[0].variable_definitions,  # type: ignore[attr-defined]
        inputs,
    )

    def generic(*_: Any, **__: Any) -> Any:
        raise AssertionError("a valid batch took graphql-core's generic path")

    made: list[Any] = []

    def compiled(*args: Any) -> Any:
        made.append(variables.compiled_variable_values(*args))
        return made[-1]

    with monkeypatch.context() as patched:
        patched.setattr(variables, "_original", generic)
        patched.setattr(context, "compiled_variable_values", compiled)
        built = ExecutionContext.build(SCHEMA, document, raw_variable_values=inputs)
    assert not isinstance(built, list)
    assert len(made) == 1 and built.variable_values is made[0]  # not coerced a second time
    assert built.operation is document.definitions[0]
    assert built.variable_values.coerced == expected.coerced  # type: ignore[union-attr]

    bad = {"input": {"records": [book(1, title=5)]}}
    errors = ExecutionContext.build(SCHEMA, document, raw_variable_values=bad)
    slow = values.get_variable_values(
        SCHEMA,
        document.definitions[0].variable_definitions,  # type: ignore[attr-defined]
        bad,
        max_errors=50,
    )
    assert isinstance(errors, list) and isinstance(slow, list)
    assert [e.message for e in errors] == [e.message for e in slow]
    two = parse(f"{BOOKS} query Other {{ __typename }}")
    assert isinstance(ExecutionContext.build(SCHEMA, two, raw_variable_values=inputs), list)
