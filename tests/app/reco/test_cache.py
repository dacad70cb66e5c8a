"""The recommendation cache: versioned invalidation, single-flight, Redis down, hung, and back."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from app.core.settings import RecoSettings
from app.reco import service
from app.reco.cache import PREFIX, RecoCache
from app.reco.strategies import RecList
from app.runtime.services import Services, make_redis
from tests import reco_factories as f
from tests.app.reco.test_topic import refresh, setup
from tests.conftest import GraphQLClient

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


def replica(services: Services, redis_url: str | None = REDIS_URL, **reco: float) -> Services:
    """Another process's view: same database, its own in-process cache, a Redis client."""
    settings = services.settings.model_copy(
        update={
            "redis_url": redis_url,
            "reco": services.settings.reco.model_copy(update={"redis_retry_seconds": 0.2, **reco}),
        }
    )
    redis = make_redis(settings)
    return Services(
        settings=settings,
        engine=services.engine,
        read_engine=services.read_engine,
        redis=redis,
        reco_cache=RecoCache(settings.reco, redis),
    )


@pytest.fixture
async def flushed() -> AsyncIterator[None]:
    redis = make_redis(replica_settings_url())
    assert redis is not None
    await redis.flushdb()
    yield
    await redis.flushdb()
    await redis.aclose()


def replica_settings_url() -> object:
    from app.core.settings import Settings

    return Settings(redis_url=REDIS_URL)


async def ids(s: Services, sid: str = "ss1") -> list[str]:
    return [i.book_id for i in (await service.recommendations(s, sid, 10, "TOPIC")).items]


async def test_engagement_invalidates_that_study_set_only(
    services: Services, flushed: None
) -> None:
    await setup(services)
    await f.study_set(services, "ss2", "u2", ["t1"])
    await refresh(services)
    a = replica(services)
    assert await ids(a) == ["b1", "b2", "b3", "b4"]
    await ids(a, "ss2")
    await f.events(services, "ss1", ["b1"], "complete")
    assert await ids(a) == ["b1", "b2", "b3", "b4"]  # cached: nobody said anything changed
    before = dict(a.reco_cache.stats)
    await a.reco_cache.invalidate_study_sets(["ss1"])
    assert await ids(a) == ["b2", "b3", "b4"]
    await ids(a, "ss2")
    assert a.reco_cache.stats["misses"] == before["misses"] + 1  # ss2 still served from cache
    await a.close()


async def test_replicas_share_redis_and_its_versions(services: Services, flushed: None) -> None:
    await setup(services)
    await refresh(services)
    a, b = replica(services), replica(services, cache_ttl_seconds=0.0)
    await ids(a)
    assert (await b.reco_cache.get_or_compute("ss:ss1:TOPIC:10", "ss1", _never))[1] == "redis"
    await f.events(services, "ss1", ["b1"], "complete")
    await a.reco_cache.invalidate_study_sets(
        ["ss1"]
    )  # replica a ingested it; b learns through the version key
    assert await ids(b) == ["b2", "b3", "b4"]
    await a.reco_cache.invalidate_lists()  # e.g. the worker refreshed the neighbour lists
    assert await b.reco_cache.get_or_compute("ss:ss1:TOPIC:10", "ss1", _none) == (None, "miss")
    await a.close()
    await b.close()


async def _never() -> dict[str, object] | None:
    raise AssertionError("should have been a cache hit")


async def _none() -> dict[str, object] | None:
    return None


async def test_concurrent_misses_compute_once() -> None:
    cache = RecoCache()
    calls = 0
    gate = asyncio.Event()

    async def compute() -> dict[str, object] | None:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"n": calls}

    tasks = [asyncio.create_task(cache.get_or_compute("k", "ss", compute)) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert all(value == {"n": 1} for value, _ in results)


async def test_batches_and_single_lookups_share_one_flight_per_key() -> None:
    """Keys a batch is computing are awaited by single lookups and by other batches, which
    compute only the keys nobody has in flight; a failure reaches every waiter, and is not
    cached."""
    cache = RecoCache()
    calls: list[list[str]] = []
    gate = asyncio.Event()

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        calls.append(keys)
        await gate.wait()
        if "boom" in keys:
            raise RuntimeError("boom")
        return {k: {"k": k} for k in keys if k != "unknown"}

    async def one() -> dict[str, object] | None:
        raise AssertionError("a key in flight is not computed again")

    first = asyncio.create_task(cache.get_or_compute_many([("a", "s"), ("b", "s")], compute))
    await asyncio.sleep(0)
    single = asyncio.create_task(cache.get_or_compute("a", "s", one))
    other = asyncio.create_task(
        cache.get_or_compute_many([("b", "s"), ("c", "s"), ("unknown", "s")], compute)
    )
    await asyncio.sleep(0.01)
    gate.set()
    assert await first == [({"k": "a"}, "miss"), ({"k": "b"}, "miss")]
    assert await single == ({"k": "a"}, "miss")
    assert await other == [({"k": "b"}, "miss"), ({"k": "c"}, "miss"), (None, "miss")]
    assert calls == [["a", "b"], ["c", "unknown"]]
    assert await cache.get_or_compute_many([("a", "s"), ("c", "s")], compute) == [
        ({"k": "a"}, "local"),
        ({"k": "c"}, "local"),
    ]
    gate.clear()
    failing = asyncio.create_task(cache.get_or_compute_many([("boom", "s")], compute))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(cache.get_or_compute_many([("a", "s"), ("boom", "s")], compute))
    await asyncio.sleep(0.01)
    gate.set()
    for task in (failing, waiting):
        with pytest.raises(RuntimeError):
            await task
    assert not cache._inflight


async def test_a_batch_refreshes_its_expiring_hits_in_one_background_call() -> None:
    cache = RecoCache(RecoSettings(cache_ttl_seconds=60.0, cache_refresh_ahead_seconds=1.0))
    calls: list[list[str]] = []

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        calls.append(keys)
        return {k: {"n": len(calls)} for k in keys}

    lookups = [("a", "s1"), ("b", "s2"), ("c", "s3")]
    await cache.get_or_compute_many(lookups, compute)
    for key in ("a", "b"):
        cache._local[PREFIX + key].expires = time.monotonic() + 0.5  # in their last second
    assert [source for _, source in await cache.get_or_compute_many(lookups, compute)] == [
        "local"
    ] * 3
    await asyncio.gather(*cache._tasks)
    assert calls == [["a", "b", "c"], ["a", "b"]]
    assert [v for v, _ in await cache.get_or_compute_many(lookups, compute)] == [
        {"n": 2},
        {"n": 2},
        {"n": 1},
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def assert_survives(s: Services) -> None:
    """Answers come from PostgreSQL, each request bounded (never the OS's TCP timeouts), one
    list or a batch of them."""
    keys = [service.ListKey("ss1", 10, "TOPIC"), service.ListKey("ss1", 2, "TOPIC")]
    for _ in range(3):
        s.reco_cache.clear_local()
        got = await asyncio.wait_for(ids(s), timeout=5)
        assert got == ["b1", "b2", "b3", "b4"]
        s.reco_cache.clear_local()
        many = await asyncio.wait_for(service.recommendations_many(s, keys), timeout=5)
        lists = [[i.book_id for i in x.items] for x in many if isinstance(x, RecList)]
        assert lists == [got, got[:2]]
    assert s.reco_cache.stats["redis_errors"] >= 1


async def test_redis_down(services: Services) -> None:
    await setup(services)
    await refresh(services)
    s = replica(services, f"redis://127.0.0.1:{free_port()}/0")
    await assert_survives(s)
    await s.reco_cache.invalidate_study_sets(["ss1"])  # invalidation does not raise either
    await s.close()


async def test_redis_hung_then_back(services: Services, tmp_path: object) -> None:
    """A SIGSTOPped redis-server accepts connections and never answers; after SIGCONT the
    cache warms again. Without a redis-server binary, a socket that never answers stands in."""
    await setup(services)
    await refresh(services)
    port = free_port()
    binary = shutil.which("redis-server")
    if binary is None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
        s = replica(services, f"redis://127.0.0.1:{port}/0")
        await assert_survives(s)
        server.close()
        await s.close()
        return
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        s = replica(services, f"redis://127.0.0.1:{port}/0")
        for _ in range(50):
            try:
                assert s.redis is not None
                await s.redis.ping()
                break
            except Exception:
                await asyncio.sleep(0.05)
        await ids(s)
        proc.send_signal(signal.SIGSTOP)
        await assert_survives(s)
        proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.3)  # past redis_retry_seconds: Redis is tried again
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            s.reco_cache.clear_local()
            await ids(s)
            if s.reco_cache.stats["redis_hits"] > 0:
                break
            await asyncio.sleep(0.1)
        assert s.reco_cache.stats["redis_hits"] > 0
        await s.close()
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=5)


async def test_record_engagement_events_invalidates(services: Services, gql: GraphQLClient) -> None:
    """The mutation's hook: a completed book leaves the (cached) list at once."""
    await setup(services)
    await refresh(services)
    query = '{ recommendations(studySetId: "ss1", strategy: TOPIC) { items { book { id } } } }'
    first = await gql.data(query)
    assert first["recommendations"]["items"][0]["book"]["id"] == "b1"
    mutation = """mutation($r: [EngagementEventInput!]!) {
      recordEngagementEvents(input: {records: $r}) { inserted rejected { reason } } }"""
    event = {
        "id": "new-1",
        "studySetId": "ss1",
        "eventType": "complete",
        "occurredAt": f.NOW.isoformat(),
        "bookId": "b1",
    }
    done = await gql.data(mutation, {"r": [event]})
    assert done["recordEngagementEvents"]["inserted"] == 1
    again = await gql.data(query)
    assert "b1" not in [i["book"]["id"] for i in again["recommendations"]["items"]]


async def test_updated_study_set_topics_invalidate(services: Services, gql: GraphQLClient) -> None:
    await setup(services)
    await refresh(services)
    query = '{ recommendations(studySetId: "ss1", strategy: TOPIC) { items { book { id } } } }'
    assert (await gql.data(query))["recommendations"]["items"][0]["book"]["id"] == "b1"
    mutation = """mutation($r: [StudySetInput!]!) {
      upsertStudySets(input: {records: $r}) { updated rejected { reason } } }"""
    record = {
        "id": "ss1",
        "userId": "u1",
        "subjectId": "s1",
        "gradeId": "g1",
        "title": "My set",
        "createdAt": f.NOW.isoformat(),
        "topicIds": ["t2"],
    }
    assert (await gql.data(mutation, {"r": [record]}))["upsertStudySets"]["updated"] == 1
    items = (await gql.data(query))["recommendations"]["items"]
    assert items[0]["book"]["id"] == "b4"  # t2's best book now


async def test_a_hit_near_expiry_refreshes_in_the_background() -> None:
    cache = RecoCache(RecoSettings(cache_ttl_seconds=60.0, cache_refresh_ahead_seconds=1.0))
    calls: list[int] = []

    async def compute() -> dict[str, object]:
        calls.append(1)
        return {"n": len(calls)}

    assert await cache.get_or_compute("k", "ss1", compute) == ({"n": 1}, "miss")
    cache._local[PREFIX + "k"].expires = time.monotonic() + 0.5  # in its last second
    assert await cache.get_or_compute("k", "ss1", compute) == ({"n": 1}, "local")
    await asyncio.gather(*cache._tasks)
    assert await cache.get_or_compute("k", "ss1", compute) == ({"n": 2}, "local")
    cache._local[PREFIX + "k"].expires = time.monotonic() - 1.0  # past its TTL: never served
    assert await cache.get_or_compute("k", "ss1", compute) == ({"n": 3}, "miss")
    await cache.invalidate_study_sets(["ss1"])  # invalidated: never served either
    assert await cache.get_or_compute("k", "ss1", compute) == ({"n": 4}, "miss")


async def test_refreshes_of_one_group_are_merged_into_one_call() -> None:
    """Keys coming due while the group's refresh runs wait for the next one, computed together,
    whichever request's `compute` is used: not a queue of one refresh per key."""
    cache = RecoCache(RecoSettings(cache_ttl_seconds=60.0, cache_refresh_ahead_seconds=1.0))
    calls: list[list[str]] = []
    gate = asyncio.Event()

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        calls.append(sorted(keys))
        if len(calls) > 4:
            await gate.wait()
        return {k: {"n": len(calls)} for k in keys}

    for key in ("a", "b", "c", "d"):
        await cache.get_or_compute_many([(key, key)], compute, "lists")
    for key in ("a", "b", "c", "d"):
        cache._local[PREFIX + key].expires = time.monotonic() + 0.5  # in their last second
    # one request per key, as clients send them: the first starts a refresh that blocks
    for key in ("a", "b", "c", "d"):
        [(value, source)] = await cache.get_or_compute_many([(key, key)], compute, "lists")
        assert (value, source) == ({"n": ord(key) - ord("a") + 1}, "local")
        await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(*cache._tasks)
    assert calls[4:] == [["a"], ["b", "c", "d"]]
    assert not cache._refreshing and not cache._queued
    got = [await cache.get_or_compute_many([(k, k)], compute, "lists") for k in "abcd"]
    assert got == [[({"n": 5}, "local")]] + [[({"n": 6}, "local")]] * 3


async def test_an_entry_is_served_a_little_past_its_ttl_only_while_it_is_refreshed() -> None:
    settings = RecoSettings(
        cache_ttl_seconds=60.0, cache_refresh_ahead_seconds=1.0, cache_stale_seconds=2.0
    )
    cache = RecoCache(settings)
    gate = asyncio.Event()
    calls: list[int] = []

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        calls.append(1)
        if len(calls) > 1:
            await gate.wait()
        return {k: {"n": len(calls)} for k in keys}

    await cache.get_or_compute_many([("k", "ss1")], compute, "lists")
    cache._local[PREFIX + "k"].expires = time.monotonic() + 0.5
    assert (await cache.get_or_compute_many([("k", "ss1")], compute, "lists"))[0][1] == "local"
    await asyncio.sleep(0)  # the refresh is under way, held by the gate
    cache._local[PREFIX + "k"].expires = time.monotonic() - 1.0  # past its TTL, within 2 s
    assert await cache.get_or_compute_many([("k", "ss1")], compute, "lists") == [
        ({"n": 1}, "local")
    ]
    cache._local[PREFIX + "k"].expires = time.monotonic() - 3.0  # past the grace: a miss
    waiting = asyncio.create_task(cache.get_or_compute_many([("k", "ss1")], compute, "lists"))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # it waits for the refresh in flight rather than computing again
    gate.set()
    assert await waiting == [({"n": 2}, "miss")]
    await asyncio.gather(*cache._tasks)
    assert len(calls) == 2
    # an invalidation is never served, refresh or not
    cache._local[PREFIX + "k"].expires = time.monotonic() + 0.5
    await cache.get_or_compute_many([("k", "ss1")], compute, "lists")
    await cache.invalidate_study_sets(["ss1"])
    assert (await cache.get_or_compute_many([("k", "ss1")], compute, "lists"))[0][1] == "miss"


Compute = Callable[[list[str]], Awaitable[dict[str, dict[str, object] | None]]]


def marked_cache(
    settings: RecoSettings,
) -> tuple[RecoCache, list[object], list[list[str]], Compute]:
    """A cache whose lists marker is `marker[0]` (set it to simulate a worker run), and a
    `compute` that records its calls in `calls` and answers {"n": how many calls so far}."""
    cache = RecoCache(settings)
    marker: list[object] = [("lists", 1)]
    calls: list[list[str]] = []

    async def source() -> object:
        return marker[0]

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        calls.append(keys)
        return {k: {"n": len(calls)} for k in keys}

    cache.marker_source = source
    return cache, marker, calls, compute


async def test_a_refresh_revalidates_a_list_whose_inputs_did_not_change() -> None:
    settings = RecoSettings(
        cache_ttl_seconds=60.0, cache_refresh_ahead_seconds=1.0, cache_max_age_seconds=300.0
    )
    cache, marker, calls, compute = marked_cache(settings)

    async def refresh_due() -> list[tuple[dict[str, object] | None, str]]:
        cache._local[PREFIX + "k"].expires = time.monotonic() + 0.5  # in its last second
        got = await cache.get_or_compute_many([("k", "ss1")], compute, "lists")
        await asyncio.gather(*cache._tasks)
        return got

    await cache.get_or_compute_many([("k", "ss1")], compute, "lists")
    assert await refresh_due() == [({"n": 1}, "local")]
    # unchanged inputs: the entry lives on for another TTL, nothing computed
    assert len(calls) == 1 and cache.stats["revalidated"] == 1
    assert cache._local[PREFIX + "k"].expires > time.monotonic() + 50
    # the worker refreshed the lists: computed again
    marker[0] = ("lists", 2)
    cache._marker = None  # (the marker is read at most once a second)
    await refresh_due()
    assert len(calls) == 2
    assert (await cache.get_or_compute_many([("k", "ss1")], compute, "lists"))[0][0] == {"n": 2}
    # too old: computed again even though nothing changed
    cache._local[PREFIX + "k"].computed -= 301
    await refresh_due()
    assert len(calls) == 3
    # an invalidation is a miss at once, marker or not
    await cache.invalidate_study_sets(["ss1"])
    assert (await cache.get_or_compute_many([("k", "ss1")], compute, "lists"))[0] == (
        {"n": 4},
        "miss",
    )


async def test_without_redis_the_lists_marker_follows_the_workers_lists_runs(
    services: Services,
) -> None:
    assert services.redis is None and services.reco_cache.marker_source is not None
    before = await services.lists_marker()
    async with services.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO worker_jobs (job, runs, last_finished_at, last_status) "
                "VALUES ('lists', 1, now(), 'ok') ON CONFLICT (job) DO UPDATE "
                "SET runs = worker_jobs.runs + 1, last_finished_at = clock_timestamp()"
            )
        )
    after = await services.lists_marker()
    assert after != before and after == await services.lists_marker()


async def test_an_expired_list_whose_inputs_did_not_change_is_revalidated_not_computed() -> None:
    """A list asked less often than once a TTL (no request in its last second, so no refresh
    ahead): the next request revalidates it against the lists marker instead of computing it."""
    settings = RecoSettings(cache_ttl_seconds=60.0, cache_max_age_seconds=300.0)
    cache, marker, calls, compute = marked_cache(settings)

    async def expired() -> tuple[dict[str, object] | None, str]:
        cache._local[PREFIX + "k"].expires = time.monotonic() - 30  # long past its TTL
        return (await cache.get_or_compute_many([("k", "ss1")], compute, "lists"))[0]

    await cache.get_or_compute_many([("k", "ss1")], compute, "lists")
    assert await expired() == ({"n": 1}, "local")
    assert len(calls) == 1 and cache.stats["revalidated"] == 1
    assert cache._local[PREFIX + "k"].expires > time.monotonic() + 50
    marker[0] = ("lists", 2)  # the worker refreshed the lists
    cache._marker = None
    assert await expired() == ({"n": 2}, "miss")
    cache._local[PREFIX + "k"].computed -= 301  # too old
    assert await expired() == ({"n": 3}, "miss")
    await cache.get_or_compute_many([("k", "ss1")], compute, "lists")
    await cache.invalidate_study_sets(["ss1"])  # an invalidation: computed, marker or not
    assert await expired() == ({"n": 4}, "miss")
