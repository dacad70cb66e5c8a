"""The bench's documents: valid for the live schema, and student_home shows a student their own."""

from __future__ import annotations

import graphql
import jwt
import orjson
import pytest

from app.runtime.services import Services
from bench import ingest, scenarios, seed
from graphql_schema.schema import build_schema
from tests import auth_helpers
from tests import reco_factories as f
from tests.conftest import GraphQLClient


@pytest.mark.parametrize(
    "document",
    [
        scenarios.CATALOG_PAGE,
        scenarios.DEEP,
        scenarios.BOOK_BY_ID,
        scenarios.STUDENT_HOME,
        scenarios.RECOMMENDATIONS,
        scenarios.STUDY_SET_LIST,
        ingest.UPSERT_BOOKS,
        ingest.RECORD_EVENTS,
    ],
)
def test_every_bench_document_is_valid_for_the_schema(document: str) -> None:
    schema = graphql.build_schema(build_schema().as_str())
    assert graphql.validate(schema, graphql.parse(document)) == []


async def test_student_home_shows_the_student_their_sets_and_recommendations(
    services: Services, gql: GraphQLClient, database_url: str
) -> None:
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 0.9}, "b2": {"t1": 0.5, "t2": 0.4}, "b3": {"t2": 0.8}})
    await f.study_set(services, "ss1", "u1", ["t1"], title="Plants")
    await f.study_set(services, "ss2", "u2", ["t2"], title="Cells")
    scenario = await scenarios.student_home_scenario(seed.plain_url(database_url))
    students = {h["Authorization"] for h in scenario.body_headers or []}
    assert len(students) == 2 and not scenario.public and scenario.raw_path is None
    body = orjson.loads(scenario.bodies[0])
    token = auth_helpers.token("u1")
    data = await gql.as_(token).data(body["query"], body["variables"])
    edges = data["studySets"]["edges"]
    assert [e["node"]["id"] for e in edges] == ["ss1"]  # never another student's set
    node = edges[0]["node"]
    assert node["topics"] == [{"id": "t1", "label": "Photosynthesis"}]
    items = node["recommendations"]["items"]
    assert items and all(i["book"]["title"] and i["book"]["publisher"]["name"] for i in items)


def test_a_student_token_is_signed_for_the_bench_server() -> None:
    import jwt

    claims = jwt.decode(
        scenarios.student_token("u7"),
        scenarios.JWT_SECRET,
        algorithms=["HS256"],
        audience=scenarios.JWT_AUDIENCE,
        issuer=scenarios.JWT_ISSUER,
    )
    assert claims["sub"] == "u7" and claims["role"] == "student"
    assert claims["exp"] - claims["iat"] <= 24 * 3600  # the service's lifetime cap


async def test_latency_scenarios_ask_each_set_as_its_student(
    services: Services, gql: GraphQLClient, database_url: str
) -> None:
    """Cold and stored: every study set once, each with a `first` no other scenario asks (cold
    knowing each body's study set, to delete its stored list); cached: a few sets. Each request
    carries its set's student's token, and the student gets the list."""
    await f.taxonomy(services)
    await f.books(services, {"b1": {"t1": 0.9}, "b2": {"t2": 0.8}})
    await f.study_set(services, "ss1", "u1", ["t1"], title="Plants")
    await f.study_set(services, "ss2", "u2", ["t2"], title="Cells")
    cold, stored, hot = await scenarios.latency_scenarios(seed.plain_url(database_url))
    assert cold.fresh and stored.fresh and not hot.fresh
    assert cold.concurrency == stored.concurrency == hot.concurrency == 1
    assert cold.prepare == "unstored" and cold.min_sql == scenarios.COLD_MIN_SQL
    assert stored.prepare == "stored" and stored.min_sql == scenarios.STORED_MIN_SQL
    assert len(cold.bodies) == len(set(cold.bodies)) == 2
    assert not set(cold.bodies) & set(stored.bodies)
    asked = [orjson.loads(b)["variables"]["id"] for b in cold.bodies]
    assert cold.study_set_ids == asked
    assert stored.study_set_ids == asked * len(scenarios.STORED_FIRSTS)
    assert len(set(stored.bodies)) == len(stored.bodies) == 2 * len(scenarios.STORED_FIRSTS)
    for b, headers in cold.requests():
        body = orjson.loads(b)
        assert f"first: {scenarios.COLD_FIRST}" in body["query"]
        owner = {"ss1": "u1", "ss2": "u2"}[body["variables"]["id"]]
        token = headers["Authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, scenarios.JWT_SECRET, ["HS256"], audience=scenarios.JWT_AUDIENCE)
        assert claims["sub"] == owner
        data = await gql.as_(auth_helpers.token(owner)).data(body["query"], body["variables"])
        assert data["recommendations"]["items"]
