"""A student's home page (`studySets { ... recommendations }`) on the compiled read path.

The study sets, their topics and their stored HYBRID lists (app/reco/stored.py) in one statement,
answering the bytes normal execution answers; a student's own sets only (the viewer's user id
is a bind parameter of a plan shared by every student); every other viewer, a stale or missing
list, an out-of-range `first` or experiments: normal execution.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from app.core.scopes import Scope
from app.core.viewer import ANONYMOUS, Viewer
from app.db import driver
from app.db.pagination import encode_cursor
from app.ingest.service import apply_batch
from app.reco import data, stored, strategies
from app.runtime.services import Services
from app.server.factory import create_app
from app.worker.jobs import run_job
from tests import auth_helpers
from tests import reco_factories as f
from tests.app.reco.test_batch import EXP, SETS, world
from tests.conftest import SettledTransport, StatementCounter
from tests.graphql_schema.execution.differential import ADMIN, Paths

HOME = """query StudentHome { studySets(first: 10) { edges { node { id title topics { id label }
  recommendations(first: 5) { strategy items { score book { id title publisher { id name } } } }
} } } }"""
FULL = """query Q($n: Int, $k: Int, $after: String, $f: StudySetFilter) {
  __typename studySets(first: $n, after: $after, filter: $f) { __typename
    edges { __typename cursor node { __typename id userId title createdAt
      subject { id name } grade { name } topics { id label subject { name } }
      r: recommendations(first: $k) { __typename strategy experiment variant
        items { __typename score reasons book { id title tags updatedAt publisher { name } } } }
      recommendations { strategy items { book { id } } } } }
    pageInfo { hasNextPage endCursor } } }"""
U1 = Viewer(role="student", user_id="u1")
U2 = Viewer(role="student", user_id="u2")
PUBLISHER = Viewer(role="publisher", publisher_id="p1", scopes=frozenset({Scope.ANALYTICS_READ}))


@pytest.fixture
async def paths(services: Services) -> Paths:
    await world(services)
    return Paths.of(services)


async def warm(paths: Paths, query: str, variables: Any, viewer: Viewer) -> bool:
    """Compare both paths twice: the first request stores the lists it computed (if any), the
    second reads them; True when the second was compiled."""
    await paths.compare(query, variables, viewer)
    return await paths.compare(query, variables, viewer)


def ids_of(body: bytes) -> list[str]:
    return [e["node"]["id"] for e in orjson.loads(body)["studySets"]["edges"]]


async def test_a_students_home_page_is_compiled_and_answers_the_same_bytes(paths: Paths) -> None:
    assert await warm(paths, HOME, None, U1)
    cases: list[dict[str, Any]] = [
        {"n": 10, "k": 1},
        {"n": 1, "k": 50},
        {"n": 1, "k": 7, "after": encode_cursor(["ss01"])},
        {"n": None, "k": None},
        {"n": 5, "k": 3, "f": {"userId": "u1"}},
        {"n": 5, "k": 3, "f": {"userId": "u2"}},  # another's: none
        {"n": 5, "k": 3, "f": {"userId": "", "subjectId": "s1", "gradeId": "g1"}},
        {"n": 5, "k": 3, "f": {"subjectId": "nope"}},
    ]
    for viewer in (U1, U2):
        for variables in cases:
            assert await warm(paths, FULL, variables, viewer), (viewer, variables)


async def test_out_of_range_arguments_and_other_viewers_fall_back(paths: Paths) -> None:
    assert await warm(paths, HOME, None, U1)
    for variables in ({"n": 5, "k": 0}, {"n": 5, "k": 51}, {"n": 101, "k": 5}, {"after": "x!"}):
        assert not await paths.compare(FULL, variables, U1), variables
    for viewer in (ADMIN, PUBLISHER, ANONYMOUS, Viewer(role="student")):
        assert not await paths.compare(HOME, None, viewer), viewer  # answered, or its error
    body = await paths.run(paths.compiled, HOME, None, ANONYMOUS)
    assert body[1] and body[1][0][2] == "UNAUTHENTICATED"


async def test_a_student_never_sees_anothers_sets_or_lists(paths: Paths) -> None:
    for viewer, mine in ((U1, ["ss01", "ss02"]), (U2, ["ss03", "ss04"])):
        await warm(paths, HOME, None, viewer)
        body, errors, compiled = await paths.run(paths.compiled, HOME, None, viewer)
        assert compiled and not errors
        assert ids_of(body) == mine
        # a filter naming another student finds nothing, and the plan is the same one
        body, _, compiled = await paths.run(paths.compiled, FULL, {"f": {"userId": "u3"}}, viewer)
        assert compiled and ids_of(body) == []


async def rows(services: Services) -> dict[str, tuple[Any, ...]]:
    async with services.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT study_set_id, generation, book_ids IS NOT NULL FROM study_set_lists")
        )
        return {r[0]: tuple(r[1:]) for r in found}


async def test_an_event_makes_the_next_list_fresh(paths: Paths) -> None:
    services = paths.services
    assert await warm(paths, HOME, None, U1)
    before = await rows(services)
    assert before["ss01"] == (0, True)
    listed = orjson.loads((await paths.run(paths.normal, HOME, None, U1))[0])
    top = listed["studySets"]["edges"][0]["node"]["recommendations"]["items"][0]["book"]["id"]
    record = {
        "id": "new-event",
        "study_set_id": "ss01",
        "event_type": "complete",  # excluded from ss01's lists from now on
        "occurred_at": f.NOW.isoformat(),
        "book_id": top,
    }
    outcome = await apply_batch(
        services.engine, services.after_commit, "engagement_events", [record]
    )
    assert outcome.inserted == 1, outcome
    after = await rows(services)
    assert after["ss01"] == (1, False) and after["ss02"] == before["ss02"]  # a tombstone
    assert not await paths.compare(HOME, None, U1)  # recomputed, stored again
    assert (await rows(services))["ss01"] == (1, True)
    body, _, compiled = await paths.run(paths.compiled, HOME, None, U1)
    assert compiled
    ss01 = orjson.loads(body)["studySets"]["edges"][0]["node"]["recommendations"]["items"]
    assert ss01 and top not in [i["book"]["id"] for i in ss01]


async def test_a_list_computed_before_a_change_is_not_stored(paths: Paths) -> None:
    services = paths.services

    fetch = driver.fetcher(services.read_engine)

    s = services.settings.reco
    got = await stored.read(fetch, ["ss01", "ss02"], s.stored_list_max_age_seconds)
    inputs = await data.hybrid_inputs(fetch, ["ss01", "ss02"], s)
    computed = strategies.hybrid_lists(s, inputs, s.max_first)
    # meanwhile a batch changes ss01's topics
    record = {"id": "ss01", "user_id": "u1", "title": "My set", "topic_ids": ["t1"]}
    record |= {"subject_id": "s1", "grade_id": "g1", "created_at": f.NOW.isoformat()}
    outcome = await apply_batch(services.engine, services.after_commit, "study_sets", [record])
    assert outcome.updated == 1, outcome
    await stored.write(fetch, got, computed)
    assert await rows(services) == {"ss01": (1, False), "ss02": (0, True)}


async def test_ingestion_writes_only_rows_that_hold_a_list_or_a_claim(paths: Paths) -> None:
    """A batch touching a set nobody asked for, or one already a tombstone, writes no row of
    study_set_lists; a tombstone claimed by a computation under way is bumped (its write-back
    is then dropped)."""
    services = paths.services

    async def event(n: int, sid: str) -> None:
        record = {"id": f"e{n}", "study_set_id": sid, "event_type": "view", "book_id": "b1"}
        record["occurred_at"] = f.NOW.isoformat()
        outcome = await apply_batch(
            services.engine, services.after_commit, "engagement_events", [record]
        )
        assert outcome.inserted == 1, outcome

    fetch = driver.fetcher(services.read_engine)

    await event(1, "ss03")  # no row: none is made
    assert await rows(services) == {}
    assert await warm(paths, HOME, None, U1)  # ss01, ss02 stored
    await event(2, "ss01")
    assert (await rows(services))["ss01"] == (1, False)  # a tombstone
    await event(3, "ss01")
    assert (await rows(services))["ss01"] == (1, False)  # already one: left alone
    s = services.settings.reco
    got = await stored.read(fetch, ["ss01"], s.stored_list_max_age_seconds)  # claims it
    inputs = await data.hybrid_inputs(fetch, ["ss01"], s)
    computed = strategies.hybrid_lists(s, inputs, s.max_first)
    await event(4, "ss01")  # changes it while the computation is under way
    await stored.write(fetch, got, computed)
    assert (await rows(services))["ss01"] == (2, False)  # bumped, the stale list dropped
    assert not await paths.compare(HOME, None, U1)  # computed again, stored
    assert (await rows(services))["ss01"] == (2, True)


async def test_a_lists_job_run_or_age_makes_stored_lists_stale(paths: Paths) -> None:
    services = paths.services
    assert await warm(paths, HOME, None, U1)
    async with services.engine.begin() as conn:  # a lists job run ended
        await conn.execute(text("INSERT INTO worker_jobs (job, runs) VALUES ('lists', 1)"))
    services.reco_cache.clear_local()
    assert not await paths.compare(HOME, None, U1)
    assert await paths.compare(HOME, None, U1)
    async with services.engine.begin() as conn:
        await conn.execute(
            text("UPDATE study_set_lists SET computed_at = computed_at - interval '3601 seconds'")
        )
    assert not await paths.compare(HOME, None, U1)
    services.reco_cache.clear_local()  # the cached lists expire (cache.py)
    assert not await paths.compare(HOME, None, U1)
    assert await paths.compare(HOME, None, U1)


async def test_experiments_or_no_stored_lists_leave_it_to_normal_execution(
    services: Services,
) -> None:
    await world(services)
    for update in ({"experiments": [EXP]}, {"stored_list_max_age_seconds": 0}):
        reco = services.settings.reco.model_copy(update=update)
        settings = services.settings.model_copy(update={"reco": reco})
        paths = Paths.of(dataclasses.replace(services, settings=settings))
        assert not await warm(paths, HOME, None, U1), update
        assert await warm(paths, "{ studySets { edges { node { id topics { id } } } } }", None, U1)


async def test_hybrids_top_n_is_the_prefix_of_its_top_max_first(services: Services) -> None:
    await world(services)
    s = services.settings.reco

    fetch = driver.fetcher(services.read_engine)

    ids = [f"ss{n:02d}" for n in range(1, SETS + 1)]
    inputs = await data.hybrid_inputs(fetch, ids, s)
    longest = strategies.hybrid_lists(s, inputs, s.max_first)
    assert any(len(found.items) > 5 for found in longest.values())
    for first in (1, 2, 3, 5, 7, 10, s.max_first):
        direct = strategies.hybrid_lists(s, inputs, first)
        for sid in ids:
            assert direct[sid] == stored.prefix(longest[sid], first), (sid, first)


async def test_over_http_one_statement_the_same_bytes_and_the_fast_path(
    paths: Paths, sql: StatementCounter
) -> None:
    services = paths.services
    off = services.settings.model_copy(update={"compiled_reads": False})
    headers = auth_helpers.bearer(auth_helpers.token("u1"))
    bodies: dict[str, list[tuple[bytes, int]]] = {}
    for name, settings in (("normal", off), ("compiled", services.settings)):
        app = create_app(settings=settings, services=services)
        async with httpx.AsyncClient(
            transport=SettledTransport(app=app), base_url="http://test"
        ) as http:
            bodies[name] = []
            for _ in range(3):  # the pipeline, then the fast path (a document seen before)
                sql.reset()
                response = await http.post("/graphql", json={"query": HOME}, headers=headers)
                assert response.status_code == 200
                await services.stored_writes.drain()  # the lists it computed, stored
                bodies[name].append((response.content, sql.count))
    assert {b for b, _ in bodies["normal"] + bodies["compiled"]} == {bodies["normal"][0][0]}
    assert [n for _, n in bodies["compiled"]] == [1, 1, 1]
    assert b'"errors"' not in bodies["compiled"][0][0]


async def engage_u3(services: Services, prefix: str) -> None:
    """u3's sets ss05 and ss06 engaged through ingestion (the daily aggregates the worker reads)."""
    records = [
        {"id": f"{prefix}{sid}", "study_set_id": sid, "event_type": "view", "book_id": "b1"}
        | {"occurred_at": f.NOW.isoformat()}
        for sid in ("ss05", "ss06")
    ]
    await apply_batch(services.engine, services.after_commit, "engagement_events", records)


async def test_the_worker_stores_the_recently_engaged_sets_lists(paths: Paths) -> None:
    services = paths.services
    await engage_u3(services, "w")
    record = await run_job(services, "lists", 0.0)
    assert record["outcome"] == "ok" and record["stored_lists"] == 2, record
    # the batch wrote no row (neither set had one); the worker's fill stored both
    assert await rows(services) == {"ss05": (0, True), "ss06": (0, True)}
    # u3's first request is served from the store: compiled, the same bytes
    assert await paths.compare(HOME, None, Viewer(role="student", user_id="u3"))
    assert not await paths.compare(HOME, None, U2)  # not stored yet: computed, then stored


async def test_the_fill_starts_no_batch_after_its_time_budget(paths: Paths) -> None:
    services = paths.services
    await engage_u3(services, "t")

    fetch = driver.fetcher(services.read_engine)

    s = services.settings.reco
    # one set per batch and a budget spent at once: the first batch (the most recently
    # engaged set, then by id) is stored, no other batch starts
    assert await stored.fill(fetch, s, 2, batch=1, seconds=1e-9) == 1
    assert await rows(services) == {"ss05": (0, True)}
    # no limit: the other one too (the first holds a fresh list, so it is not computed again)
    assert await stored.fill(fetch, s, 2, batch=1, seconds=0) == 1
    assert await rows(services) == {"ss05": (0, True), "ss06": (0, True)}
