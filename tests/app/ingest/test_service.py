"""Ingestion mutations: upsert semantics, versions, validation, dead letters, idempotency keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app.runtime.services import Services
from tests.conftest import GraphQLClient
from tests.ingest_helpers import apply, counts, send


def book(i: int, version: str = "2026-01-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"b{i}",
        "publisherId": "p1",
        "title": f"Title {i}",
        "description": "d",
        "tags": ["x"],
        "updatedAt": version,
    } | extra


async def rows(services: Services, sql: str) -> list[Any]:
    async with services.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def test_upsert_counts_inserted_updated_unchanged(
    services: Services, gql: GraphQLClient
) -> None:
    first = await apply(
        gql, "publishers", [{"id": "p1", "name": "One"}, {"id": "p2", "name": "Two"}]
    )
    assert counts(first) == (2, 0, 0, 0, 0) and first["received"] == 2
    second = await apply(
        gql,
        "publishers",
        [{"id": "p1", "name": "One"}, {"id": "p2", "name": "2"}, {"id": "p3", "name": "Three"}],
    )
    assert counts(second) == (1, 1, 1, 0, 0)
    assert await rows(services, "SELECT id, name FROM publishers ORDER BY id") == [
        ("p1", "One"),
        ("p2", "2"),
        ("p3", "Three"),
    ]


async def test_older_book_version_never_overwrites_newer(
    services: Services, gql: GraphQLClient
) -> None:
    await apply(gql, "publishers", [{"id": "p1", "name": "P"}])
    await apply(gql, "books", [book(1, "2026-03-01T00:00:00Z", title="New")])
    late = await apply(gql, "books", [book(1, "2026-02-01T00:00:00Z", title="Old")])
    assert counts(late) == (0, 0, 1, 0, 0)
    newer = await apply(gql, "books", [book(1, "2026-04-01T00:00:00+02:00", title="Newer")])
    assert counts(newer) == (0, 1, 0, 0, 0)
    same = await apply(gql, "books", [book(1, "2026-03-31T22:00:00Z", title="Newer")])
    assert counts(same) == (0, 0, 1, 0, 0)
    assert await rows(services, "SELECT title FROM books") == [("Newer",)]


async def test_invalid_records_are_rejected_dead_lettered_and_the_rest_applied(
    services: Services, gql: GraphQLClient
) -> None:
    await apply(gql, "publishers", [{"id": "p1", "name": "P"}])
    batch = [
        book(1, title="first"),
        {"id": "b2", "publisherId": "p1", "title": "", "updatedAt": "2026-01-01T00:00:00Z"},
        book(3, publisherId="nobody"),
        {"id": "b4", "publisherId": "p1", "title": "t", "updatedAt": "yesterday"},
        book(1, title="last wins"),
        {"publisherId": "p1", "title": "no id", "updatedAt": "2026-01-01T00:00:00Z"},
        book(5, tags=["ok", "x" * 101]),
        book(6),
    ]
    result = await apply(gql, "books", batch)
    assert counts(result) == (2, 0, 0, 1, 5)
    reasons = {r["index"]: (r["id"], r["reason"]) for r in result["rejected"]}
    assert reasons[1] == ("b2", "title must not be empty")
    assert reasons[2] == ("b3", "publisherId 'nobody' does not exist")
    assert reasons[3] == ("b4", "updatedAt must be an ISO-8601 date-time")
    assert reasons[5] == (None, "id is required")
    assert "tags" in reasons[6][1]
    assert await rows(services, "SELECT id, title FROM books ORDER BY id") == [
        ("b1", "last wins"),
        ("b6", "Title 6"),
    ]
    dead = await rows(
        services,
        "SELECT batch_id, record_index, reason, payload->>'title' "
        "FROM dead_letters ORDER BY record_index",
    )
    assert [(d[1], d[3]) for d in dead] == [
        (1, ""),
        (2, "Title 3"),
        (3, "t"),
        (5, "no id"),
        (6, "Title 5"),
    ]
    assert {d[0] for d in dead} == {result["batchId"]}


async def test_idempotency_key_replays_and_refuses_a_different_payload(
    services: Services, gql: GraphQLClient
) -> None:
    records = [{"id": "p1", "name": "One"}]
    first = await apply(gql, "publishers", records, key="k1")
    again = await apply(gql, "publishers", records, key="k1")
    assert again["replayed"] is True and first["replayed"] is False
    assert again["batchId"] == first["batchId"] and counts(again) == counts(first)
    conflict = await send(gql, "publishers", [{"id": "p1", "name": "Changed"}], key="k1")
    assert conflict["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await rows(services, "SELECT name FROM publishers") == [("One",)]
    other_entity = await apply(gql, "subjects", records, key="k1")
    assert other_entity["replayed"] is False
    assert await rows(services, "SELECT count(*) FROM ingestion_batches") == [(2,)]


async def test_batch_over_the_limit_is_refused_whole(
    services: Services, gql: GraphQLClient
) -> None:
    body = await send(gql, "publishers", [{"id": f"p{i}", "name": "n"} for i in range(10_001)])
    assert body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert "10000" in body["errors"][0]["message"]
    assert await rows(services, "SELECT count(*) FROM publishers") == [(0,)]


async def test_taxonomy_topics_and_mappings(services: Services, gql: GraphQLClient) -> None:
    await apply(gql, "subjects", [{"id": "s1", "name": "Science"}])
    await apply(gql, "grades", [{"id": "g1", "name": "Grade 1"}])
    cats = await apply(
        gql,
        "categories",
        [
            {"id": "c2", "name": "Biology", "subjectId": "s1", "parentId": "c1"},
            {"id": "c1", "name": "Natural", "subjectId": "s1"},
            {"id": "c3", "name": "Loop", "parentId": "c3"},
            {"id": "c4", "name": "Orphan", "parentId": "missing"},
        ],
    )
    assert counts(cats) == (2, 0, 0, 0, 2)
    topics = await apply(
        gql,
        "topics",
        [
            {"id": "t1", "label": "Cells", "subjectId": "s1", "gradeId": "g1", "categoryId": "c2"},
            {"id": "t2", "label": "Atoms", "gradeId": "g9"},
        ],
    )
    assert counts(topics) == (1, 0, 0, 0, 1)
    await apply(gql, "publishers", [{"id": "p1", "name": "P"}])
    await apply(gql, "books", [book(1), book(2)])
    maps = await apply(
        gql,
        "topic_book_mappings",
        [
            {"topicId": "t1", "bookId": "b1", "weight": 0.5},
            {"topicId": "t1", "bookId": "b2", "weight": -1},
            {"topicId": "t1", "bookId": "b1", "weight": 0.9},
            {"topicId": "t2", "bookId": "b1", "weight": 1},
        ],
    )
    assert counts(maps) == (1, 0, 0, 1, 2)
    data = await gql.data(
        '{ topic(id: "t1") { category { parent { name } } '
        "books { edges { weight node { id } } } } }"
    )
    assert data["topic"]["category"]["parent"]["name"] == "Natural"
    assert data["topic"]["books"]["edges"] == [{"weight": 0.9, "node": {"id": "b1"}}]


async def test_study_sets_with_topics(services: Services, gql: GraphQLClient) -> None:
    await apply(gql, "topics", [{"id": "t1", "label": "A"}, {"id": "t2", "label": "B"}])

    def study_set(topics: list[str] | None, title: str = "Set") -> dict[str, Any]:
        return {
            "id": "ss1",
            "userId": "u1",
            "title": title,
            "createdAt": "2026-01-01T00:00:00Z",
            "topicIds": topics,
        }

    assert counts(await apply(gql, "study_sets", [study_set(["t2", "t1"])])) == (1, 0, 0, 0, 0)
    assert counts(await apply(gql, "study_sets", [study_set(["t1", "t2"])])) == (0, 0, 1, 0, 0)
    assert counts(await apply(gql, "study_sets", [study_set(["t1"])])) == (0, 1, 0, 0, 0)
    assert counts(await apply(gql, "study_sets", [study_set(None, "Renamed")])) == (0, 1, 0, 0, 0)
    bad = await apply(gql, "study_sets", [study_set(["t1", "t9"])])
    assert bad["rejected"][0]["reason"] == "topicIds: topic 't9' does not exist"
    data = await gql.data('{ studySet(id: "ss1") { title userId topics { id } } }')
    assert data["studySet"] == {"title": "Renamed", "userId": "u1", "topics": [{"id": "t1"}]}


async def test_events_dedupe_validate_and_aggregate(services: Services, gql: GraphQLClient) -> None:
    await apply(
        gql,
        "study_sets",
        [{"id": "ss1", "userId": "u1", "title": "S", "createdAt": "2026-01-01T00:00:00Z"}],
    )
    await apply(gql, "publishers", [{"id": "p1", "name": "P"}])
    await apply(gql, "books", [book(1)])

    def event(i: int, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"e{i}",
            "studySetId": "ss1",
            "eventType": "view",
            "bookId": "b1",
            "occurredAt": f"2026-02-0{1 + i % 3}T10:00:00Z",
        } | extra

    result = await apply(
        gql,
        "engagement_events",
        [
            event(1),
            event(2),
            event(1),
            event(3, eventType="teleport"),
            event(4, studySetId="zz"),
            event(5, eventType="COMPLETE"),
        ],
    )
    assert counts(result) == (3, 0, 0, 1, 2)
    again = await apply(gql, "engagement_events", [event(1), event(2), event(6)])
    assert counts(again) == (1, 0, 0, 2, 0)
    daily = await rows(
        services, "SELECT day::text, event_type, events FROM engagement_daily_book ORDER BY 1, 2"
    )
    assert daily == [
        ("2026-02-01", "view", 1),
        ("2026-02-02", "view", 1),
        ("2026-02-03", "complete", 1),
        ("2026-02-03", "view", 1),
    ]
    dead = await rows(services, "SELECT record_id, user_id FROM dead_letters ORDER BY record_id")
    assert dead == [("e3", "u1"), ("e4", None)]


async def test_ingestion_log_is_queryable(services: Services, gql: GraphQLClient) -> None:
    first = await apply(gql, "publishers", [{"id": "p1", "name": "P"}, {"id": ""}], key="a")
    await apply(gql, "subjects", [{"id": "s1", "name": "S"}])
    data = await gql.data(
        "query($id: ID!) { ingestionBatch(id: $id) { entity status received inserted "
        "rejectedCount rejected { index reason } idempotencyKey durationMs } "
        "ingestionBatches(first: 1) { edges { node { entity } } pageInfo { hasNextPage endCursor } } "
        'missing: ingestionBatch(id: "nope") { id } }',
        {"id": first["batchId"]},
    )
    log = data["ingestionBatch"]
    assert (log["entity"], log["received"], log["inserted"], log["rejectedCount"]) == (
        "publishers",
        2,
        1,
        1,
    )
    assert log["status"] == "applied_with_rejections" and log["idempotencyKey"] == "a"
    assert data["ingestionBatches"]["edges"][0]["node"]["entity"] == "subjects"
    assert data["missing"] is None
    nxt = await gql.data(
        "query($a: String) { ingestionBatches(first: 5, after: $a) { edges { node { entity } } } }",
        {"a": data["ingestionBatches"]["pageInfo"]["endCursor"]},
    )
    assert [e["node"]["entity"] for e in nxt["ingestionBatches"]["edges"]] == ["publishers"]


async def test_references_to_unknown_ids_are_rejected_known_ones_applied(
    services: Services, gql: GraphQLClient
) -> None:
    await apply(gql, "subjects", [{"id": "s1", "name": "S"}])
    categories = [
        {"id": "c1", "name": "Root", "subjectId": "s1"},
        {"id": "c2", "name": "Child of one in this batch", "parentId": "c1"},
        {"id": "c3", "name": "Unknown parent", "parentId": "c9"},
        {"id": "c4", "name": "Unknown subject", "subjectId": "s9"},
    ]
    result = await apply(gql, "categories", categories)
    assert counts(result) == (2, 0, 0, 0, 2)
    assert [(r["id"], r["reason"]) for r in result["rejected"]] == [
        ("c3", "parentId 'c9' does not exist"),
        ("c4", "subjectId 's9' does not exist"),
    ]
    later = await apply(
        gql, "categories", [{"id": "c5", "name": "Stored parent", "parentId": "c2"}]
    )
    assert counts(later) == (1, 0, 0, 0, 0)
    await apply(gql, "topics", [{"id": "t1", "label": "T"}])
    await apply(gql, "publishers", [{"id": "p1", "name": "P"}])
    await apply(gql, "books", [book(1)])
    await apply(
        gql,
        "study_sets",
        [{"id": "ss1", "userId": "u1", "title": "S", "createdAt": "2026-01-01T00:00:00Z"}],
    )

    def event(i: int, **refs: str) -> dict[str, Any]:
        return {
            "id": f"e{i}",
            "studySetId": "ss1",
            "eventType": "view",
            "occurredAt": "2026-01-01T00:00:00Z",
            "bookId": "b1",
            "topicId": "t1",
        } | refs

    events = [event(1), event(2, bookId="b9"), event(3, topicId="t9"), event(4, studySetId="x")]
    result = await apply(gql, "engagement_events", events)
    assert counts(result) == (1, 0, 0, 0, 3)
    assert [r["reason"] for r in result["rejected"]] == [
        "bookId 'b9' does not exist",
        "topicId 't9' does not exist",
        "studySetId 'x' does not exist",
    ]
