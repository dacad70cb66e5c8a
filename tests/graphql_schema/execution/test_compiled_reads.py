"""The compiled read path answers exactly what normal execution answers, in one statement."""

from __future__ import annotations

import math
import random
import struct

import httpx
import orjson
import pytest
from graphql import GraphQLObjectType
from graphql import build_schema as build_graphql_schema
from sqlalchemy import text

from app.db import models
from app.db.pagination import encode_cursor
from app.runtime.services import Services
from app.server.factory import create_app
from graphql_schema.execution.compiler.jsonsql import float_json
from graphql_schema.schema import SQL_MAPPING, build_schema
from tests import factories
from tests.conftest import SettledTransport, StatementCounter
from tests.graphql_schema.execution import compiled_data
from tests.graphql_schema.execution.differential import Paths
from tests.resolvers.test_catalog import BOOKS_PAGE

CATALOG_PAGE = """{ books(first: 50) { edges { node { id title description tags publisher { name }
  topics { weight topic { label subject { name } } } } } pageInfo { hasNextPage endCursor } } }"""

# (document, variables): the catalog documents of the test suite, then harder ones
DOCUMENTS: list[tuple[str, dict[str, object] | None]] = [
    (BOOKS_PAGE, {"first": 7}),
    (BOOKS_PAGE, {"first": 7, "after": encode_cursor(["b006"])}),
    (BOOKS_PAGE, {"first": 100, "filter": {"publisherId": "p2"}}),
    (BOOKS_PAGE, {"first": 100, "filter": {"topicId": "t1"}}),
    (BOOKS_PAGE, {"first": 100, "filter": {"subjectId": "s2", "gradeId": "g2"}}),
    (BOOKS_PAGE, {"first": 100, "filter": {"categoryId": "c1a", "publisherId": "p1"}}),
    (BOOKS_PAGE, {"first": 100, "filter": {"publisherId": "nobody"}}),
    (BOOKS_PAGE, {"first": 10, "filter": {"search": "garden"}}),
    (BOOKS_PAGE, {"first": 2, "filter": {"search": "wizard -school"}}),
    (BOOKS_PAGE, {"first": 3, "filter": {"search": '"magic garden" or ocean'}}),
    (BOOKS_PAGE, {"first": 3, "filter": {"search": "garden"}, "after": encode_cursor([0.1, "b0"])}),
    (BOOKS_PAGE, {"filter": {"search": "'\\\" & | ! ( :*"}}),
    (BOOKS_PAGE, {"filter": {"search": "   "}}),
    (BOOKS_PAGE, {"first": 0}),
    (BOOKS_PAGE, {"first": 101}),
    (BOOKS_PAGE, {"first": -1}),
    (BOOKS_PAGE, {"after": "not-a-cursor!"}),
    (BOOKS_PAGE, {"after": "WzEsMl0"}),
    (BOOKS_PAGE, {"after": "e30"}),
    (BOOKS_PAGE, {"first": "many"}),
    (
        '{ book(id: "b001") { id title updatedAt publisher { id } topics { weight topic { id } } }'
        ' missing: book(id: "nope") { id } }',
        None,
    ),
    (
        """{ topic(id: "t0") { label subject { name } grade { name } category { name parent { name } }
        books(first: 4) { edges { weight node { id } } pageInfo { hasNextPage endCursor } } }
        subjects { id name } grades { id } categories { id children { id } } }""",
        None,
    ),
    (
        'query($a: String) { topic(id: "t1") { books(first: 100, after: $a) { edges { weight node { id } } } } }',
        {"a": encode_cursor([0.5, "b010"])},
    ),
    (
        "query($n: Int) { books(first: $n) { edges { node { publisher { name } topics { weight"
        " topic { label subject { name } grade { name } } } } } } }",
        {"n": 100},
    ),
    (
        "query($n: Int) { topics(first: $n) { edges { node { books(first: $n) { edges { node {"
        " publisher { books(first: $n) { edges { node { id } } } } } } } } } } }",
        {"n": 3},
    ),
    (
        """{ publishers(first: 2) { edges { node { id books(first: 2) {
        edges { node { id } } pageInfo { hasNextPage } } } } pageInfo { hasNextPage } }
        publisher(id: "p2") { name } }""",
        None,
    ),
    (CATALOG_PAGE, None),
    (
        """query Q($inc: Boolean!, $skip: Boolean!) { __typename
          a: books(first: 3) { __typename edges { __typename cursor c2: cursor
            node { ...B ... on Book { t: title id } publisher @include(if: $inc) { __typename id } } }
            pageInfo { __typename endCursor e2: endCursor } }
          books(first: 3) @skip(if: $skip) { pageInfo { hasNextPage } }
          p4: publisher(id: "p4") { books { edges { node { id } } pageInfo { hasNextPage endCursor } } }
          topics(filter: {search: "%"}) { edges { node { id label category { id subject { id } } } } }
          t2: topics(filter: {search: "_"}) { edges { cursor node { id } } }
          t3: topics(filter: {search: "\\\\", subjectId: "s1"}) { edges { node { id } } }
          categories { name subject { name } parent { id parent { id } } children { id } }
        }
        fragment B on Book { id tags updatedAt description topics { weight topic { id } } }""",
        {"inc": True, "skip": False},
    ),
    ('{ book(id: "b001") { id } book(id: "b001") { title topics { weight } } }', None),
]


@pytest.fixture
async def paths(services: Services) -> Paths:
    await compiled_data.seed(services)
    return Paths.of(services)


async def test_suite_documents_answer_the_same_bytes(paths: Paths) -> None:
    compiled = [await paths.compare(query, variables) for query, variables in DOCUMENTS]
    # argument errors and bad variables fall back (13-19 above); the rest compile
    assert compiled.count(True) == len(DOCUMENTS) - 6, compiled


async def test_same_variables_shape_reuses_one_plan(paths: Paths) -> None:
    for n, after in ((1, None), (5, None), (3, encode_cursor(["b003"]))):
        assert await paths.compare(BOOKS_PAGE, {"first": n, "after": after})


async def test_float_text_matches_orjson(services: Services) -> None:
    rng = random.Random(15)
    values = [*compiled_data.WEIGHTS, 5e-324, 1.7976931348623157e308, -0.0, -2.5, 1e-5, 9.99e-6]
    values += [10.0**e for e in range(-330, 309)] + [1.5 * 10.0**e for e in range(-20, 20)]
    while len(values) < 20000:
        value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(value):
            values.append(value)
    values += [rng.uniform(0, 1) for _ in range(5000)] + [rng.uniform(0, 1e15) for _ in range(99)]
    values = [v for v in values if abs(v) < 1e15]  # larger ones fall back (see jsonsql)
    sql = f"SELECT array_agg({float_json('u.x')} ORDER BY u.i) FROM unnest(CAST(:v AS float8[])) WITH ORDINALITY AS u(x, i)"
    async with services.engine.connect() as conn:
        texts = (await conn.execute(text(sql), {"v": values})).scalar_one()
    wrong = [(v, t) for v, t in zip(values, texts, strict=True) if orjson.dumps(v).decode() != t]
    assert not wrong, wrong[:5]
    assert len(values) > 10000


async def test_a_compiled_operation_is_one_statement_and_the_same_response(
    paths: Paths, sql: StatementCounter
) -> None:
    services = paths.services
    off = services.settings.model_copy(update={"compiled_reads": False})
    bodies = {}
    for name, settings in (("compiled", services.settings), ("normal", off)):
        app = create_app(settings=settings, services=services)
        transport = SettledTransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            sql.reset()
            response = await http.post("/graphql", json={"query": CATALOG_PAGE})
            assert response.status_code == 200
            bodies[name] = (response.content, sql.count)
    assert bodies["compiled"][0] == bodies["normal"][0]
    assert bodies["compiled"][1] == 1
    assert bodies["normal"][1] > 1


async def test_floats_it_cannot_render_fall_back(paths: Paths) -> None:
    async with paths.services.engine.begin() as conn:
        await conn.execute(
            text("UPDATE topic_book_mappings SET weight = 'Infinity' WHERE book_id = 'b001'")
        )
        await conn.execute(
            text(
                "UPDATE topic_book_mappings SET weight = 5.1761190946390064e16 WHERE book_id = 'b003'"
            )
        )
    assert not await paths.compare('{ book(id: "b001") { topics { weight } } }')  # an error
    assert not await paths.compare('{ book(id: "b003") { topics { weight } } }')
    assert await paths.compare('{ book(id: "b002") { topics { weight } } }')


async def test_limits_refuse_before_the_compiled_path(paths: Paths) -> None:
    costly = "{ books(first: 100) { edges { node { publisher { books(first: 100) { edges { node { topics { topic { books(first: 100) { edges { node { id } } } } } } } } } } } } }"
    deep = '{ book(id: "b001") { publisher { books { edges { node { publisher { books { edges { node { publisher { books { edges { node { id } } } } } } } } } } } } } }'
    for query in (costly, deep, "{ books(first: 1) { edges { node { nope } } } }"):
        assert not await paths.compare(query)
        body = await paths.run(paths.compiled, query, None)
        assert body[1], query  # refused with an error


async def test_unmapped_fields_and_mutations_fall_back(paths: Paths) -> None:
    await factories.insert_rows(paths.services, models.Publisher, [{"id": "p9", "name": "Nine"}])
    assert not await paths.compare(
        '{ publisher(id: "p9") { name } __schema { queryType { name } } }'
    )
    assert not await paths.compare("{ trendingBooks { items { book { id } } } }")


def test_the_mapping_names_only_fields_the_schema_has() -> None:
    # The Strawberry types are the source of truth: a renamed field must not silently fall back.
    schema = build_graphql_schema(build_schema().as_str())
    for type_name, table in SQL_MAPPING.items():
        gql = schema.get_type(type_name)
        assert isinstance(gql, GraphQLObjectType), type_name
        assert set(table.fields) <= set(gql.fields), (
            type_name,
            set(table.fields) - set(gql.fields),
        )
