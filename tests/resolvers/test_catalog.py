"""The read API over a small catalog: lookups, Relay pagination, filters, search, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from app.db import models
from app.runtime.services import Services
from app.server.factory import create_app
from tests import factories
from tests.conftest import GraphQLClient, SettledTransport, StatementCounter, cyclic_garbage

BOOKS_PAGE = """
query($first: Int, $after: String, $filter: BookFilter) {
  books(first: $first, after: $after, filter: $filter) {
    edges { cursor node { id title tags publisher { id name }
                          topics { weight topic { id label subject { id name } grade { id } } } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_book_lookup_and_unknown_id(services: Services, gql: GraphQLClient) -> None:
    await factories.catalog(services, books=3)
    data = await gql.data(
        '{ book(id: "b0001") { id title updatedAt publisher { id } topics { weight topic { id } } }'
        ' missing: book(id: "nope") { id } }'
    )
    assert data["book"]["id"] == "b0001"
    assert data["book"]["publisher"] == {"id": "p1"}
    weights = [t["weight"] for t in data["book"]["topics"]]
    assert weights == sorted(weights, reverse=True) and weights
    assert data["missing"] is None


async def test_books_paginate_by_keyset_to_the_end(services: Services, gql: GraphQLClient) -> None:
    await factories.catalog(services, books=25)
    seen: list[str] = []
    after = None
    while True:
        data = await gql.data(BOOKS_PAGE, {"first": 7, "after": after})
        page = data["books"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert seen == [f"b{i:04d}" for i in range(25)]


async def test_book_filters(services: Services, gql: GraphQLClient) -> None:
    await factories.catalog(services, books=12, publishers=3)

    async def ids(flt: dict[str, object]) -> set[str]:
        data = await gql.data(BOOKS_PAGE, {"first": 100, "filter": flt})
        return {e["node"]["id"] for e in data["books"]["edges"]}

    assert await ids({"publisherId": "p2"}) == {f"b{i:04d}" for i in range(12) if i % 3 == 2}
    by_topic = await ids({"topicId": "t1"})
    assert by_topic and all((int(b[1:]) + 1) % 2 == 0 or int(b[1:]) % 3 == 1 for b in by_topic)
    # subject s2 is topic t1's only; grade g1 belongs to t0 and t2
    assert await ids({"subjectId": "s2"}) == by_topic
    assert await ids({"categoryId": "c1a"}) == await ids({"topicId": "t0"})
    assert await ids({"publisherId": "p2", "topicId": "t1"}) == by_topic & await ids(
        {"publisherId": "p2"}
    )
    assert await ids({"publisherId": "nobody"}) == set()


async def test_text_search_ranks_title_over_description(
    services: Services, gql: GraphQLClient
) -> None:
    await factories.insert_rows(services, models.Publisher, [{"id": "p", "name": "P"}])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await factories.insert_rows(
        services,
        models.Book,
        [
            {
                "id": "a",
                "publisher_id": "p",
                "title": "Gardening for everyone",
                "description": "Soil and seeds",
                "tags": ["plants"],
                "updated_at": t0,
            },
            {
                "id": "b",
                "publisher_id": "p",
                "title": "Cooking",
                "description": "Vegetables from the gardens",
                "tags": [],
                "updated_at": t0,
            },
            {
                "id": "c",
                "publisher_id": "p",
                "title": "Oceans",
                "description": "Whales",
                "tags": ["garden"],
                "updated_at": t0,
            },
            {
                "id": "d",
                "publisher_id": "p",
                "title": "Rockets",
                "description": "Space",
                "tags": [],
                "updated_at": t0,
            },
        ],
    )
    data = await gql.data(BOOKS_PAGE, {"first": 10, "filter": {"search": "garden"}})
    ranked = [e["node"]["id"] for e in data["books"]["edges"]]
    assert ranked[0] == "a" and set(ranked) == {"a", "b", "c"}
    first = await gql.data(BOOKS_PAGE, {"first": 1, "filter": {"search": "garden"}})
    rest = await gql.data(
        BOOKS_PAGE,
        {
            "first": 10,
            "filter": {"search": "garden"},
            "after": first["books"]["pageInfo"]["endCursor"],
        },
    )
    assert [e["node"]["id"] for e in rest["books"]["edges"]] == ranked[1:]
    weird = await gql.data(BOOKS_PAGE, {"filter": {"search": "'\\\" & | ! ( :*"}})
    assert weird["books"]["edges"] == []


async def test_first_over_maximum_and_bad_cursor_name_the_argument(
    services: Services, gql: GraphQLClient
) -> None:
    body = await gql(BOOKS_PAGE, {"first": 101})
    assert body["data"] is None
    assert "'first'" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await gql(BOOKS_PAGE, {"first": -1})
    assert "'first'" in body["errors"][0]["message"]
    for cursor in ("not-a-cursor!", "WzEsMl0", "e30"):
        body = await gql(BOOKS_PAGE, {"after": cursor})
        assert "'after'" in body["errors"][0]["message"], cursor


async def test_topic_books_by_weight_and_taxonomy(services: Services, gql: GraphQLClient) -> None:
    await factories.catalog(services, books=20)
    data = await gql.data("""{
      topic(id: "t0") { label subject { name } grade { name } category { name parent { name } }
        books(first: 4) { edges { weight node { id } } pageInfo { hasNextPage endCursor } } }
      subjects { id name } grades { id } categories { id children { id } }
    }""")
    topic = data["topic"]
    assert topic["subject"]["name"] == "Science"
    assert topic["category"] == {"name": "Biology", "parent": {"name": "Natural sciences"}}
    weights = [e["weight"] for e in topic["books"]["edges"]]
    assert weights == sorted(weights, reverse=True)
    nxt = await gql.data(
        'query($a: String) { topic(id: "t0") { books(first: 100, after: $a) { edges { weight node { id } } } } }',
        {"a": topic["books"]["pageInfo"]["endCursor"]},
    )
    rest = nxt["topic"]["books"]["edges"]
    assert rest and rest[0]["weight"] <= weights[-1]
    ids = [e["node"]["id"] for e in topic["books"]["edges"] + rest]
    assert len(ids) == len(set(ids))
    assert [s["id"] for s in data["subjects"]] == ["s1", "s2"]
    tree = {c["id"]: [k["id"] for k in c["children"]] for c in data["categories"]}
    assert tree == {"c1": ["c1a", "c1b"], "c1a": [], "c1b": []}


@pytest.fixture
async def loader_gql(services: Services) -> AsyncIterator[GraphQLClient]:
    """Field resolvers and dataloaders only (BOOKBRIDGE_COMPILED_READS off): what they batch."""
    off = services.settings.model_copy(update={"compiled_reads": False})
    transport = SettledTransport(app=create_app(settings=off, services=services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http)


async def test_nested_query_issues_constant_sql(
    services: Services, gql: GraphQLClient, loader_gql: GraphQLClient, sql: StatementCounter
) -> None:
    await factories.catalog(services, books=120, publishers=7, topics=6)
    query = "query($n: Int) { books(first: $n) { edges { node { publisher { name } topics { weight topic { label subject { name } grade { name } } } } } } }"
    for client, statements in ((loader_gql, 6), (gql, 1)):  # dataloaders; compiled reads
        counts = {}
        for n in (5, 100):
            sql.reset()
            data = await client.data(query, {"n": n})
            assert len(data["books"]["edges"]) == n
            counts[n] = sql.count
        assert counts[5] == counts[100] == statements, counts


async def test_deep_nesting_is_constant_too(
    services: Services, gql: GraphQLClient, loader_gql: GraphQLClient, sql: StatementCounter
) -> None:
    await factories.catalog(services, books=60, publishers=4, topics=6)
    query = "query($n: Int) { topics(first: $n) { edges { node { books(first: $n) { edges { node { publisher { books(first: $n) { edges { node { id } } } } } } } } } } }"
    for client, statements in ((loader_gql, 4), (gql, 1)):  # dataloaders; compiled reads
        counts = {}
        for n in (2, 6):
            sql.reset()
            await client.data(query, {"n": n})
            counts[n] = sql.count
        assert counts[2] == counts[6] == statements, counts


async def test_publishers_connection(services: Services, gql: GraphQLClient) -> None:
    await factories.catalog(services, books=9, publishers=3)
    data = await gql.data("""{ publishers(first: 2) { edges { node { id books(first: 2) {
        edges { node { id } } pageInfo { hasNextPage } } } } pageInfo { hasNextPage } }
        publisher(id: "p2") { name } }""")
    edges = data["publishers"]["edges"]
    assert [e["node"]["id"] for e in edges] == ["p0", "p1"]
    assert data["publishers"]["pageInfo"]["hasNextPage"] is True
    assert [b["node"]["id"] for b in edges[0]["node"]["books"]["edges"]] == ["b0000", "b0003"]
    assert data["publisher"]["name"] == "Publisher 2"


async def test_requests_leave_no_reference_cycles(services: Services, gql: GraphQLClient) -> None:
    # What a request allocates must be freed by reference counting as soon as it ends.
    await factories.catalog(services, books=12, publishers=3, topics=4)
    query = "{ books(first: 10) { edges { node { publisher { name } topics { weight topic { label subject { name } } } } } } }"

    async def run() -> None:
        data = await gql.data(query)
        assert len(data["books"]["edges"]) == 10

    assert not await cyclic_garbage(run)
