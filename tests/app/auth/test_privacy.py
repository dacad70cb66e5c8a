"""A publisher's token (JWT or bound key) never reaches a student's data, through any path;
students see only their own study sets; the data layer itself filters by viewer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.scopes import Scope
from app.core.viewer import ANONYMOUS, Viewer
from app.db import study
from app.db.pagination import PageArgs
from app.runtime.services import Services
from tests import auth_helpers, factories
from tests.auth_helpers import bearer, token
from tests.conftest import GraphQLClient
from tests.ingest_helpers import apply, send

STUDENT = "stu-secret-7f3a"
OTHER = "stu-other-2b9c"


async def _world(services: Services, gql: GraphQLClient) -> str:
    """A catalog, two students' study sets and events (sent by the student backend's key)."""
    await factories.catalog(services, books=6, publishers=2)
    backend = gql.as_(await auth_helpers.api_key(services, "studysets:write,events:write"))
    sets = [
        {"id": "ss-a", "userId": STUDENT, "title": "Cells", "createdAt": "2026-01-02T00:00:00Z"},
        {"id": "ss-b", "userId": OTHER, "title": "Rome", "createdAt": "2026-01-02T00:00:00Z"},
        {
            "id": "ss-bad",
            "userId": STUDENT,
            "title": "x",
            "createdAt": "2026-01-02T00:00:00Z",
            "subjectId": "nope",
        },
    ]
    result = await apply(backend, "study_sets", sets)
    assert len(result["rejected"]) == 1
    events = [
        {
            "id": f"e{i}",
            "studySetId": "ss-a",
            "eventType": "view",
            "occurredAt": "2026-01-03T00:00:00Z",
            "bookId": "b0000",
        }
        for i in range(3)
    ]
    await apply(backend, "engagement_events", events)
    return str(result["batchId"])


PROBES = [
    "{ studySets { edges { node { id userId title } } } }",
    '{ studySets(filter: {userId: "' + STUDENT + '"}) { edges { node { id userId } } } }',
    '{ studySet(id: "ss-a") { id userId title topics { id } } }',
    '{ a: studySet(id: "ss-a") { userId } b: studySet(id: "ss-b") { userId } '
    'c: studySet(id: "ss-bad") { userId } }',
    '{ recommendations(studySetId: "ss-a") { items { book { id } reasons } } }',
    "{ ingestionBatches(first: 50) { edges { node { id entity rejected { id reason } } } } }",
    '{ book(id: "b0000") { id publisher { books(first: 5) { edges { node { id } } } } } }',
    '{ publisherAnalytics(publisherId: "p1") { totalEvents } }',
    '{ publisherAnalytics(publisherId: "p0") { publisherId totalEvents '
    "timeline { day events students } books { book { id } events peakDailyStudents } } }",
    '{ experimentResults(experimentId: "exp1") { variants { variant exposures clicks } } }',
    'mutation { upsertStudySets(input: {records: [{id: "ss-a", userId: "x", title: "t", '
    'createdAt: "2026-01-01T00:00:00Z"}]}) { inserted rejected { id reason } } }',
    '{ studySet(id: "ss-a") { userId doesNotExist } }',
]


async def _probe(http: httpx.AsyncClient, auth: dict[str, str], query: str) -> httpx.Response:
    response = await http.post("/graphql", json={"query": query}, headers=auth)
    assert response.status_code in (200, 400), response.text
    text = response.text
    assert STUDENT not in text and OTHER not in text, (query, text)
    assert "ss-a" not in text.replace('"ss-a"', "") or "errors" in response.json()
    return response


@pytest.mark.parametrize("who", ["publisher-jwt", "publisher-key", "anonymous"])
async def test_a_publisher_never_sees_student_data(
    services: Services, gql: GraphQLClient, http: httpx.AsyncClient, who: str
) -> None:
    batch_id = await _world(services, gql)
    if who == "publisher-jwt":
        auth = bearer(token("editor-1", "publisher", publisher_id="p0"))
    elif who == "publisher-key":
        key = await auth_helpers.api_key(services, "catalog:write,analytics:read", "p0")
        auth = bearer(key)
    else:
        auth = {}
    for query in [
        *PROBES,
        f'{{ ingestionBatch(id: "{batch_id}") {{ id rejected {{ id reason }} }} }}',
    ]:
        body: dict[str, Any] = (await _probe(http, auth, query)).json()
        data = body.get("data") or {}
        for value in data.values():
            assert value in (None, {"edges": []}) or "publisher" in str(value), (query, body)


async def test_a_student_sees_only_their_own(services: Services, gql: GraphQLClient) -> None:
    await _world(services, gql)
    me = gql.as_(token(STUDENT))
    listed = await me.data("{ studySets { edges { node { id userId } } } }")
    assert listed["studySets"]["edges"] == [{"node": {"id": "ss-a", "userId": STUDENT}}]
    filtered = await me.data(
        f'{{ studySets(filter: {{userId: "{OTHER}"}}) {{ edges {{ node {{ id }} }} }} }}'
    )
    assert filtered["studySets"]["edges"] == []
    both = await me.data('{ a: studySet(id: "ss-a") { id } b: studySet(id: "ss-b") { id } }')
    assert both == {"a": {"id": "ss-a"}, "b": None}
    other = await gql.as_(token(OTHER)).data('{ studySet(id: "ss-a") { id userId } }')
    assert other == {"studySet": None}
    # Once its student has read the list it is cached with its owner: still not for another.
    mine = await me.data('{ recommendations(studySetId: "ss-a") { strategy } }')
    assert mine["recommendations"]["strategy"] == "HYBRID"
    refused = await gql.as_(token(OTHER))('{ recommendations(studySetId: "ss-a") { strategy } }')
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert STUDENT not in str(refused)


async def test_an_admin_sees_every_study_set(services: Services, gql: GraphQLClient) -> None:
    await _world(services, gql)
    data = await gql.data("{ studySets { edges { node { id } } } }")
    assert [e["node"]["id"] for e in data["studySets"]["edges"]] == ["ss-a", "ss-b"]


async def test_the_data_layer_filters_by_viewer(services: Services, gql: GraphQLClient) -> None:
    await _world(services, gql)
    page = PageArgs(first=10, after=None)
    publisher = Viewer(
        role="publisher", publisher_id="p0", scopes=frozenset({Scope.ANALYTICS_READ})
    )
    key = Viewer(role="service", scopes=frozenset(Scope) - {Scope.ADMIN}, key_id="k")
    async with services.read_engine.connect() as conn:
        for viewer in (ANONYMOUS, publisher, key):
            listed = await study.list_study_sets(conn, study.StudySetFilter(), page, viewer)
            assert listed.items == []
            assert await study.study_sets_by_ids(conn, ["ss-a", "ss-b"], viewer) == []
            assert await study.topic_ids_by_study_sets(conn, ["ss-a"], viewer) == {"ss-a": []}
        own = await study.study_sets_by_ids(conn, ["ss-a", "ss-b"], Viewer("student", STUDENT))
        assert [r.id for r in own] == ["ss-a"]


async def test_the_driver_read_of_a_page_keeps_the_same_scope_and_rows(
    services: Services, gql: GraphQLClient
) -> None:
    """`read_study_sets` (the home page's read on the asyncpg connection) renders the same
    policy and returns the same rows as `list_study_sets`: a student their own sets only, a
    publisher, a service key and anonymous none, an admin all; also past a cursor."""
    await _world(services, gql)
    publisher = Viewer(
        role="publisher", publisher_id="p0", scopes=frozenset({Scope.ANALYTICS_READ})
    )
    key = Viewer(role="service", scopes=frozenset(Scope) - {Scope.ADMIN}, key_id="k")
    admin = Viewer(role="service", scopes=frozenset(Scope), key_id="a")
    expected = {
        ANONYMOUS: [],
        publisher: [],
        key: [],
        Viewer("student", STUDENT): ["ss-a"],
        Viewer("student", OTHER): ["ss-b"],
        admin: ["ss-a", "ss-b"],
    }
    flt = study.StudySetFilter()
    for first in (1, 10):
        page = PageArgs(first=first, after=None)
        for viewer, ids in expected.items():
            fast = await study.read_study_sets(services.read_engine, flt, page, viewer)
            async with services.read_engine.connect() as conn:
                slow = await study.list_study_sets(conn, flt, page, viewer)
            assert [r.id for r in fast.items] == ids[:first]
            assert [tuple(r) for r in fast.items] == [tuple(r) for r in slow.items]
            assert (fast.cursors, fast.has_next) == (slow.cursors, slow.has_next)
            assert study.page_topics(fast.items) == study.page_topics(slow.items)
    after = PageArgs(
        first=10,
        after=(
            await study.read_study_sets(
                services.read_engine, flt, PageArgs(first=1, after=None), admin
            )
        ).end_cursor,
    )
    rest = await study.read_study_sets(services.read_engine, flt, after, admin)
    assert [r.id for r in rest.items] == ["ss-b"]
    narrowed = study.StudySetFilter(user_id=OTHER)
    mine = await study.read_study_sets(
        services.read_engine, narrowed, page, Viewer("student", STUDENT)
    )
    assert mine.items == []  # a filter never widens the scope


async def test_a_bound_key_sees_only_its_own_batches(
    services: Services, gql: GraphQLClient
) -> None:
    await _world(services, gql)
    mine = gql.as_(await auth_helpers.api_key(services, "catalog:write", "p0"))
    theirs = gql.as_(await auth_helpers.api_key(services, "catalog:write", "p1"))
    await apply(mine, "books", [_book("b-new", "p0")])
    foreign = await send(mine, "books", [_book("b-steal", "p1")])
    assert foreign["data"]["upsertBooks"]["inserted"] == 0
    assert foreign["data"]["upsertBooks"]["rejected"], foreign
    seen = await theirs.data("{ ingestionBatches { edges { node { entity } } } }")
    assert seen["ingestionBatches"]["edges"] == []
    own = await mine.data("{ ingestionBatches { edges { node { entity } } } }")
    assert {e["node"]["entity"] for e in own["ingestionBatches"]["edges"]} == {"books"}


def _book(book_id: str, publisher_id: str) -> dict[str, Any]:
    return {
        "id": book_id,
        "publisherId": publisher_id,
        "title": "T",
        "description": "D",
        "tags": [],
        "updatedAt": "2026-01-05T00:00:00Z",
    }
