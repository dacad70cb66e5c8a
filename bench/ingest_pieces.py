"""Where an upsertBooks batch spends its Python time: `python -m bench.ingest_pieces`.

Times, per batch of 1,000 books and in-process (no database), graphql-core's coercion of the
variables against the schema's typed inputs and the ingestion service's own per-record validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from graphql import parse
from graphql.execution.values import get_variable_values

from app.ingest.service import BatchOutcome, _clean_and_dedupe, payload_hash
from app.ingest.specs import SPECS
from graphql_schema.schema import build_schema

DOCUMENT = "mutation($input: UpsertBooksInput!) { upsertBooks(input: $input) { inserted } }"


def _ms(fn: Callable[[], Any], repeat: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def main(size: int = 1000) -> None:
    schema = build_schema()._schema
    definitions = parse(DOCUMENT).definitions[0].variable_definitions  # type: ignore[attr-defined]
    camel = [
        {
            "id": f"b{i}",
            "publisherId": "p1",
            "title": f"Title {i}",
            "description": "A description of a book",
            "tags": ["a", "b", "c"],
            "updatedAt": "2026-01-02T00:00:00Z",
        }
        for i in range(size)
    ]
    snake = [
        {
            "id": r["id"],
            "publisher_id": "p1",
            "title": r["title"],
            "description": r["description"],
            "tags": r["tags"],
            "updated_at": r["updatedAt"],
        }
        for r in camel
    ]
    variables = {"input": {"records": camel}}
    coerce = _ms(lambda: get_variable_values(schema, definitions, variables))
    clean = _ms(
        lambda: _clean_and_dedupe(SPECS["books"], snake, BatchOutcome("b", "books"), [], {})
    )
    digest = _ms(lambda: payload_hash("books", snake))
    print(
        f"per {size} books: graphql-core coercion {coerce:.1f} ms, "
        f"validation {clean:.1f} ms, payload hash {digest:.1f} ms"
    )


if __name__ == "__main__":
    main()
