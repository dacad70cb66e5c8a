"""deleteStudentData: only the student or an admin; afterwards nothing in PostgreSQL or Redis
names the student or their study sets, and other students' data is untouched."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.core.settings import Settings
from app.db.models import Base
from app.runtime.services import Services
from app.server.factory import create_app
from tests import auth_helpers, factories
from tests.auth_helpers import token
from tests.conftest import GraphQLClient
from tests.ingest_helpers import apply

STUDENT = "stu-erase-5e1f"
OTHER = "stu-keep-0a7c"
ERASE = (
    "mutation($u: ID!) { deleteStudentData(userId: $u) { userId studySets events deadLetters "
    "ingestionLogEntries otherRows cacheEntries } }"
)


@pytest.fixture
async def redis_services(settings: Settings) -> AsyncIterator[Services]:
    redis_url = os.environ.get("TEST_REDIS_URL")
    if not redis_url:
        if os.environ.get("CI"):
            pytest.fail("TEST_REDIS_URL must be set in CI")
        pytest.skip("no TEST_REDIS_URL")
    services = Services.create(settings.model_copy(update={"redis_url": redis_url}))
    assert services.redis is not None
    await services.redis.flushdb()
    yield services
    await services.redis.flushdb()
    await services.close()


@pytest.fixture
async def client(redis_services: Services) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(services=redis_services))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield GraphQLClient(http)


async def _world(services: Services, gql: GraphQLClient) -> None:
    await factories.catalog(services, books=6)
    backend = gql.as_(await auth_helpers.api_key(services, "studysets:write,events:write"))
    when = "2026-01-02T00:00:00Z"
    sets = [
        {"id": "ss-e1", "userId": STUDENT, "title": "A", "createdAt": when, "topicIds": ["t0"]},
        {"id": "ss-e2", "userId": STUDENT, "title": "B", "createdAt": when},
        {"id": "ss-k1", "userId": OTHER, "title": "C", "createdAt": when, "topicIds": ["t0"]},
        {"id": "ss-bad", "userId": STUDENT, "title": "x", "createdAt": when, "gradeId": "no"},
    ]
    assert len((await apply(backend, "study_sets", sets))["rejected"]) == 1
    events = [
        {
            "id": f"ev{i}",
            "studySetId": sid,
            "eventType": "view",
            "occurredAt": when,
            "bookId": "b0001",
        }
        for i, sid in enumerate(["ss-e1", "ss-e1", "ss-e2", "ss-k1"])
    ]
    events.append(
        {"id": "ev-bad", "studySetId": "ss-e1", "eventType": "teleport", "occurredAt": when}
    )
    assert len((await apply(backend, "engagement_events", events))["rejected"]) == 1


async def _traces_in_postgres(services: Services, needles: list[str]) -> list[str]:
    found = []
    async with services.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = (await conn.execute(text(f"SELECT t::text FROM {table.name} AS t"))).scalars()
            found += [f"{table.name}: {row}" for row in rows if any(n in row for n in needles)]
    return found


async def _traces_in_redis(services: Services, needles: list[str]) -> list[str]:
    assert services.redis is not None
    found = []
    async for key in services.redis.scan_iter("*"):
        kind = (await services.redis.type(key)).decode()
        value: Any = (
            await services.redis.get(key) if kind == "string" else await services.redis.dump(key)
        )
        blob = key + b" " + (value or b"")
        found += [f"{key!r}" for n in needles if n.encode() in blob]
    return found


async def test_erasure_leaves_nothing_that_names_the_student(
    services: Services, redis_services: Services, client: GraphQLClient
) -> None:
    # (`services` is asked for so that the tables are emptied after this test.)
    await _world(redis_services, client)
    me = client.as_(token(STUDENT))
    listed = await me.data('{ recommendations(studySetId: "ss-e1") { strategy items { score } } }')
    assert listed["recommendations"]["strategy"]
    await client.as_(token(OTHER)).data('{ recommendations(studySetId: "ss-k1") { strategy } }')
    needles = [STUDENT, "ss-e1", "ss-e2", "ss-bad"]
    assert await _traces_in_postgres(redis_services, needles)

    done = (await me.data(ERASE, {"u": STUDENT}))["deleteStudentData"]
    assert done["studySets"] == 2 and done["events"] == 3
    assert done["deadLetters"] == 2 and done["ingestionLogEntries"] == 2

    assert await _traces_in_postgres(redis_services, needles) == []
    assert await _traces_in_redis(redis_services, needles) == []
    assert (await me.data("{ studySets { edges { node { id } } } }"))["studySets"]["edges"] == []
    kept = await client.data('{ studySet(id: "ss-k1") { userId topics { id } } }')
    assert kept["studySet"] == {"userId": OTHER, "topics": [{"id": "t0"}]}
    again = (await me.data(ERASE, {"u": STUDENT}))["deleteStudentData"]
    assert again["studySets"] == 0 and again["events"] == 0


async def test_only_the_student_or_an_admin_may_erase(
    services: Services, gql: GraphQLClient
) -> None:
    await _world(services, gql)
    publisher_key = await auth_helpers.api_key(services, "catalog:write,analytics:read", "p0")
    for who, expected in [
        (token("editor", "publisher", publisher_id="p0"), "FORBIDDEN"),
        (publisher_key, "FORBIDDEN"),
        (token(OTHER), "FORBIDDEN"),
        (None, "UNAUTHENTICATED"),
    ]:
        body = await gql.as_(who)(ERASE, {"u": STUDENT})
        assert body["errors"][0]["extensions"]["code"] == expected, body
        assert STUDENT not in body["errors"][0]["message"]
    admin_key = await auth_helpers.api_key(services, "admin")
    done = (await gql.as_(admin_key).data(ERASE, {"u": STUDENT}))["deleteStudentData"]
    assert done["studySets"] == 2
