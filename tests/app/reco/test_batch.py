"""StudySet.recommendations in a page of study sets: batched through the request's loader.

A page's lists are looked up in the cache in one batch and its misses computed together, so
the SQL a page costs does not grow with its size; the lists are the single path's, cached
under the same keys, checked against the viewer the same way, invalidated the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.core.settings import Experiment, Variant
from app.core.viewer import StudentScope
from app.db import driver, models
from app.reco import data, service, strategies
from app.reco.service import ListKey
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers
from tests import reco_factories as f
from tests.app.reco.test_cache import replica
from tests.app.reco.test_topic import refresh
from tests.conftest import GraphQLClient, StatementCounter, cyclic_garbage
from tests.factories import insert_rows

SETS = 12
PAGE = """query($n: Int) { studySets(first: $n) { edges { node { id
  recommendations(first: 10) { strategy experiment variant items { book { id title } score reasons } }
} } } }"""
ROOT = """query($id: ID!) { recommendations(studySetId: $id) {
  strategy experiment variant items { book { id title } score reasons } } }"""
# What computing a list reads (a page of study sets reads its own topics, study_set_topics, in
# its statement: that is the page's field, not a list's input)
RECO_TABLES = ("engagement_events", "topic_top_books", "book_neighbours", "trending_books")
EXP = Experiment(
    id="exp2",  # u1, u2, u5: A; u3: B; u4, u6: C
    variants=[
        Variant(name="A", strategy="HYBRID", share=0.4),
        Variant(name="B", strategy="TOPIC", share=0.3),
        Variant(name="C", strategy="COLLABORATIVE", share=0.3),
    ],
)


async def world(services: Services) -> None:
    """Twelve study sets of six students: explicit topics, title-matched ones, none; own books
    engaged (seeds), one completed (excluded), co-engagement and content neighbours."""
    await f.taxonomy(services)
    specs = {f"b{i}": {"t1" if i % 2 else "t2": 0.3 + 0.05 * i} for i in range(1, 11)}
    await f.books(services, specs)
    for i in range(1, 11):
        await f.daily_book(services, f"b{i}", 3 * i, days_ago=i)
    neighbours = [
        {"kind": kind, "book_id": f"b{i}", "neighbour_id": f"b{j}", "score": 0.1 * ((i + j) % 7)}
        for kind in ("collab", "content")
        for i in range(1, 11)
        for j in range(1, 11)
        if i != j and (i + j) % 3
    ]
    await insert_rows(services, models.BookNeighbour, neighbours)
    for n in range(1, SETS + 1):
        sid, user = f"ss{n:02d}", f"u{(n + 1) // 2}"
        topics = [["t1"], ["t2"], ["t1", "t2"], []][n % 4]
        title = "Photosynthesis notes" if n % 4 == 3 else "My set"
        await f.study_set(services, sid, user, topics, title)
        if n % 3:
            await f.events(services, sid, [f"b{n % 10 + 1}", f"b{(n + 3) % 10 + 1}"])
    await f.events(services, "ss01", ["b2"], "complete")
    await refresh(services)


@pytest.fixture
async def cached(services: Services) -> AsyncIterator[Services]:
    """A replica with Redis (db of TEST_REDIS_URL, flushed before and after)."""
    s = replica(services)
    assert s.redis is not None
    await s.redis.flushdb()
    yield s
    await s.redis.flushdb()
    await s.close()


@asynccontextmanager
async def serve(s: Services) -> AsyncIterator[GraphQLClient]:
    """An admin's GraphQL client of the app these services serve."""
    transport = httpx.ASGITransport(app=create_app(services=s))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http)


@pytest.fixture
async def client(cached: Services) -> AsyncIterator[GraphQLClient]:
    async with serve(cached) as gql:
        yield gql


def with_experiment(s: Services) -> Services:
    """The same replica (cache, Redis, engines) with EXP running."""
    reco = s.settings.reco.model_copy(update={"experiments": [EXP]})
    return dataclasses.replace(s, settings=s.settings.model_copy(update={"reco": reco}))


def lists_of(data: dict[str, Any]) -> dict[str, Any]:
    return {e["node"]["id"]: e["node"]["recommendations"] for e in data["studySets"]["edges"]}


async def page(gql: GraphQLClient, sql: StatementCounter, n: int) -> tuple[dict[str, Any], int]:
    """The page's lists and the SQL statements it ran."""
    sql.reset()
    found = lists_of(await gql.data(PAGE, {"n": n}))
    assert len(found) == n
    return found, sql.count


async def test_a_page_of_lists_costs_fixed_sql_cold_and_none_warm(
    services: Services, cached: Services, client: GraphQLClient, sql: StatementCounter
) -> None:
    await world(services)
    cold, local, redis = {}, {}, {}
    for n in (3, SETS):
        assert cached.redis is not None
        await cached.redis.flushdb()
        cached.reco_cache.clear_local()
        sql.reset()
        first = lists_of(await client.data(PAGE, {"n": n}))
        await cached.stored_writes.drain()  # the write-back, after the response
        cold[n] = sql.count
        again, local[n] = await page(client, sql, n)  # in-process hits
        reads = list(sql.statements)
        cached.reco_cache.clear_local()
        last, redis[n] = await page(client, sql, n)  # Redis hits
        assert first == again == last
        assert not [s for s in reads + sql.statements if any(t in s for t in RECO_TABLES)]
    # page (with its topics) + HYBRID's inputs (contexts, topics explicit or title-matched,
    # own books, weights, topic candidates and trending in one statement; the collab and the
    # content neighbour scores in one each, the three sent at once) + books (with their
    # publishers) + the stored lists' read before computing and their write-back after the
    # response (app/reco/stored.py)
    assert cold == {3: 7, SETS: 7}, cold
    assert local == redis == {3: 2, SETS: 2}, (local, redis)


async def test_batched_lists_equal_the_single_paths(services: Services, cached: Services) -> None:
    await world(services)
    s = with_experiment(cached)
    async with serve(s) as client:
        batched = lists_of(await client.data(PAGE, {"n": SETS}))
        assert {r["variant"] for r in batched.values()} == {"A", "B", "C"}  # each group ran
        assert s.redis is not None
        await s.redis.flushdb()
        s.reco_cache.clear_local()
        for sid, found in batched.items():
            single = (await client.data(ROOT, {"id": sid}))["recommendations"]
            assert single == found, sid
            assert found["items"], sid
    assert batched["ss01"]["items"] and "b2" not in {
        i["book"]["id"] for i in batched["ss01"]["items"]
    }  # its student completed b2


async def test_single_and_batch_share_cache_entries(services: Services, cached: Services) -> None:
    await world(services)
    one = await service.recommendations(cached, "ss04", 5, None)
    misses = cached.reco_cache.stats["misses"]
    keys = [ListKey("ss04", 5), ListKey("ss05", 5)]
    both = await service.recommendations_many(cached, keys)
    assert both[0] == one
    assert cached.reco_cache.stats["misses"] == misses + 1  # ss05 only
    other = replica(services)  # another process: the batch's entries reach it through Redis
    assert await service.recommendations(other, "ss05", 5, None) == both[1]
    assert (other.reco_cache.stats["misses"], other.reco_cache.stats["redis_hits"]) == (0, 1)
    await other.close()


async def test_a_student_sees_only_their_own_lists(
    services: Services, cached: Services, client: GraphQLClient
) -> None:
    await world(services)
    everyone = lists_of(await client.data(PAGE, {"n": SETS}))  # all cached, with their owners
    me = client.as_(auth_helpers.token("u2"))
    mine = lists_of(await me.data(PAGE, {"n": SETS}))
    assert mine == {"ss03": everyone["ss03"], "ss04": everyone["ss04"]}
    keys = [ListKey(sid, 10) for sid in ("ss03", "ss05", "ss04", "nope")]
    found = await service.recommendations_many(cached, keys, StudentScope("u2"))
    assert [type(x).__name__ for x in found] == ["RecList", "NotFound", "RecList", "NotFound"]
    assert "ss05" in str(found[1]) and "u3" not in str(found[1])


async def test_engagement_invalidates_lists_the_batch_computed(
    services: Services, cached: Services, client: GraphQLClient
) -> None:
    await world(services)
    before = lists_of(await client.data(PAGE, {"n": SETS}))
    top = before["ss04"]["items"][0]["book"]["id"]
    mutation = """mutation($r: [EngagementEventInput!]!) {
      recordEngagementEvents(input: {records: $r}) { inserted } }"""
    event = {
        "id": "batch-new-1",
        "studySetId": "ss04",
        "eventType": "complete",
        "occurredAt": f.NOW.isoformat(),
        "bookId": top,
    }
    assert (await client.data(mutation, {"r": [event]}))["recordEngagementEvents"]["inserted"] == 1
    misses = cached.reco_cache.stats["misses"]
    after = lists_of(await client.data(PAGE, {"n": SETS}))
    assert top not in {i["book"]["id"] for i in after["ss04"]["items"]}
    assert cached.reco_cache.stats["misses"] == misses + 1  # the others still cached
    assert {k: v for k, v in after.items() if k != "ss04"} == {
        k: v for k, v in before.items() if k != "ss04"
    }


async def test_a_page_logs_its_exposures_in_one_statement(
    services: Services, cached: Services, sql: StatementCounter
) -> None:
    await world(services)
    async with serve(with_experiment(cached)) as client:
        for _ in range(2):  # a miss, then hits: each list served is logged
            sql.reset()
            served = lists_of(await client.data(PAGE, {"n": SETS}))
            inserts = [s for s in sql.statements if "recommendation_exposures" in s]
            assert len(inserts) == 1, inserts
    async with services.engine.connect() as conn:
        rows = (
            await conn.exec_driver_sql(
                "SELECT study_set_id, variant, strategy, book_ids FROM recommendation_exposures"
            )
        ).all()
    assert len(rows) == 2 * SETS
    for row in rows:
        shown = served[row.study_set_id]
        assert (row.variant, row.strategy) == (shown["variant"], shown["strategy"])
        assert row.book_ids == [i["book"]["id"] for i in shown["items"]]


async def test_a_page_of_lists_leaves_no_reference_cycles(
    services: Services, gql: GraphQLClient
) -> None:
    await world(services)

    async def run() -> None:
        services.reco_cache.clear_local()  # misses: the whole batch path
        assert len(lists_of(await gql.data(PAGE, {"n": SETS}))) == SETS

    assert not await cyclic_garbage(run)


async def test_a_batch_on_a_small_pool_does_not_deadlock(services: Services) -> None:
    """Three strategy groups computed side by side (HYBRID alone wants four connections), with
    single requests for the same keys beside them, on a pool of two."""
    await world(services)
    reco = services.settings.reco.model_copy(update={"experiments": [EXP]})
    small = services.settings.model_copy(
        update={"db_pool_size": 2, "db_max_overflow": 0, "db_pool_timeout": 3.0, "reco": reco}
    )
    s = Services.create(small)
    keys = [ListKey(f"ss{n:02d}", 10) for n in range(1, SETS + 1)]
    try:
        many = asyncio.create_task(service.recommendations_many(s, keys))
        singles = [service.recommendations(s, k.study_set_id, 10, None) for k in keys[:4]]
        each = await asyncio.wait_for(asyncio.gather(*singles), timeout=30)
        batch = await asyncio.wait_for(many, timeout=30)
    finally:
        await s.close()
    assert batch[:4] == each
    assert s.reco_cache.stats["misses"] == SETS  # the singles waited for the batch's flight


async def test_the_one_statement_inputs_equal_the_separate_reads(services: Services) -> None:
    """Contexts (explicit and title-matched topics), own books (seeds, and the books a student
    finished in another of their sets) and the validated weights: as the three reads give them."""
    await world(services)
    s = services.settings.reco
    ids = [f"ss{n:02d}" for n in range(1, SETS + 1)]
    some = ids[1::3]  # ss02 is u1's: ss01's completed b2 is excluded from it too
    async with services.read_engine.connect() as conn:
        for asked in (ids, some, [*some, "nope"]):
            got = await data.study_set_inputs(conn, asked, s)
            contexts = await data.study_set_contexts(conn, asked, None, s.topic_match_limit)
            own = await data.own_books(
                conn, list(contexts.values()), s.exclude_event_types, s.seed_books
            )
            assert got.contexts == contexts and got.own == own
            assert got.weights == await data.tuned_weights(conn)
    assert "b2" in got.own["ss02"].excluded


async def test_hybrid_in_one_batch_of_statements_equals_the_component_reads(
    services: Services,
) -> None:
    """HYBRID's lists from `data.hybrid_inputs` (three statements at once) are the lists the
    component reads give, value for value: explicit, title-matched and no topics, finished
    books excluded, any batch of sets, and collab_alt read only when HYBRID weighs it."""
    await world(services)
    alt = [
        {"kind": "collab_alt", "book_id": f"b{i}", "neighbour_id": f"b{11 - i}", "score": 0.2 * i}
        for i in range(1, 11)
        if i != 11 - i
    ]
    await insert_rows(services, models.BookNeighbour, alt)
    ids = [f"ss{n:02d}" for n in range(1, SETS + 1)]
    every: dict[str, Any] = {}
    for weights in (None, {"COLLABORATIVE": 1.0, "TOPIC": 0.1, "COLLABORATIVE_ALT": 0.5}):
        s = services.settings.reco
        if weights is not None:
            s = s.model_copy(update={"hybrid_weights": weights, "tune_hybrid_weights": False})
        for asked in (ids, ids[::5], ["ss03"], ["ss04", "nope"]):
            async with services.read_engine.connect() as conn:
                inputs = await data.study_set_inputs(conn, asked, s)
            wanted = data.with_weights(s, inputs.weights)
            old = await strategies.recommend_concurrently(
                services.read_engine.connect, wanted, inputs.contexts, "HYBRID", 10, inputs.own
            )

            fetch = driver.fetcher(services.read_engine)
            new = strategies.hybrid_lists(s, await data.hybrid_inputs(fetch, asked, s), 10)
            assert new == old, (weights, asked)
            if asked == ids:
                new_all = new
            assert all(found.items for found in new.values())
        every[str(weights)] = new_all
    assert every["None"] != list(every.values())[1]  # collab_alt, when weighed, was read
