"""Redis under a busy event loop: a reply that waits for its turn is not Redis failing.

With one worker and dozens of requests in flight, a Redis reply can sit unread for longer than
`redis_timeout_seconds` while other requests hold the loop. The cache and the rate limiter
then must keep using Redis (no fallback to PostgreSQL / local counts); a Redis that really
does not answer still fails, after the budget on an idle loop and by the busy limit on a busy
one (tests/app/reco/test_cache.py covers down and SIGSTOPped Redis on an idle loop)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.auth.ratelimit import RateLimiter
from app.core.deadline import LoopBehind, within
from app.core.settings import RecoSettings, Settings
from app.reco.cache import BEHIND_STRIKES, RecoCache, ss_version_key
from app.runtime.services import make_redis
from tests.app.reco.test_cache import REDIS_URL, free_port

BUSY_TURN = 0.03  # each busy task holds the loop this long per turn


RECO = RecoSettings(redis_timeout_seconds=0.05, redis_busy_limit_seconds=5.0)


def client() -> Redis:
    """A client as the service makes it, with RECO's budget and busy limit."""
    made = make_redis(Settings(redis_url=REDIS_URL, reco=RECO))
    assert made is not None
    return made


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client_ = client()
    await client_.flushdb()
    yield client_
    await client_.flushdb()
    await client_.aclose()


async def _busy(until: float) -> None:
    """A request's synchronous work, a turn at a time (blocks the loop as CPU work does)."""
    while time.monotonic() < until:
        turn = time.perf_counter() + BUSY_TURN
        while time.perf_counter() < turn:  # CPU work: nothing else runs on the loop meanwhile
            pass
        await asyncio.sleep(0)


async def _under_load(seconds: float, tasks: int = 6) -> list[asyncio.Task[None]]:
    until = time.monotonic() + seconds
    busy = [asyncio.create_task(_busy(until)) for _ in range(tasks)]
    await asyncio.sleep(0)  # they hold the loop from here on: each turn takes ~tasks * BUSY_TURN
    return busy


async def test_a_reply_waiting_for_a_busy_loop_is_a_redis_hit(redis: Redis) -> None:
    writer = RecoCache(RECO, client())
    computed: list[list[str]] = []

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        computed.append(keys)
        return {k: {"list": k} for k in keys}

    await writer.get_or_compute_many([("k1", "ss1"), ("k2", "ss2")], compute)  # into Redis
    assert computed == [["k1", "k2"]]
    assert writer.redis is not None
    await writer.redis.aclose()

    reader = RecoCache(RECO, client())  # another replica
    busy = await _under_load(1.0)
    got = await reader.get_or_compute_many([("k1", "ss1"), ("k2", "ss2")], compute)
    await asyncio.gather(*busy)
    # each loop turn took ~0.18 s, past the 50 ms budget: still Redis's answer, no failure
    assert got == [({"list": "k1"}, "redis"), ({"list": "k2"}, "redis")]
    assert reader.stats["redis_errors"] == 0
    assert computed == [["k1", "k2"]]
    assert reader.redis is not None
    await reader.redis.aclose()


async def test_one_long_stall_after_the_command_is_not_a_redis_failure(redis: Redis) -> None:
    """A single long step (a garbage collection, the process descheduled) right after the
    command went out: the loop is idle again when the budget's timer fires, late."""
    cache = RecoCache(RECO, redis)
    await redis.set("bb:reco:warm", b"1")  # the connection is made beforehand

    async def stall() -> None:
        await asyncio.sleep(0)
        turn = time.perf_counter() + 0.3
        while time.perf_counter() < turn:
            pass

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        return {k: {"list": k} for k in keys}

    blocker = asyncio.create_task(stall())
    got = await cache.get_or_compute_many([("k1", "ss1")], compute)
    await blocker
    assert got == [({"list": "k1"}, "miss")]  # not in Redis: computed, then stored there
    assert cache.stats["redis_errors"] == 0
    assert await redis.exists("bb:reco:k1") == 1


async def test_the_rate_limiter_keeps_counting_in_redis_under_a_busy_loop(redis: Redis) -> None:
    limiter = RateLimiter(timeout=0.05, busy_limit=5.0)
    busy = await _under_load(1.0)
    verdicts = [await limiter.hit(redis, "student-1", 3, 100) for _ in range(3)]
    await asyncio.gather(*busy)
    assert limiter.redis_failures == 0
    assert [v.used for v in verdicts] == [3, 6, 9]
    assert limiter.local == {}  # counted in Redis, shared with the other replicas


async def test_a_silent_service_still_times_out_idle_and_busy() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    # idle loop: after the budget (well before the busy limit)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(asyncio.shield(never), 0.05, 30.0)
    assert time.monotonic() - started < 10.0
    # busy loop: the budget is extended while the loop is behind, never past the busy limit
    busy = await _under_load(3.0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(asyncio.shield(never), 0.05, 0.5)
    waited = time.monotonic() - started
    await asyncio.gather(*busy)
    assert waited < 2.5  # the limit (0.5 s) plus at most a few busy turns
    never.cancel()


async def test_a_result_in_time_is_returned() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 7

    assert await within(answer(), 0.05, 0.5) == 7


async def test_invalidating_thousands_of_study_sets_is_one_call_within_budget(
    redis: Redis,
) -> None:
    """A batch of events touching thousands of study sets bumps every version, in a call that
    fits the budget (a pipeline of thousands of INCRs did not: its replies' parsing alone
    outlasted 50 ms and counted as a Redis failure)."""
    cache = RecoCache(RecoSettings(redis_timeout_seconds=0.05, redis_busy_limit_seconds=0.5), redis)
    ids = [f"ss-{i}" for i in range(3000)]
    for _ in range(3):
        await cache.invalidate_study_sets(ids)
    assert cache.stats["redis_errors"] == 0
    versions = await redis.mget([ss_version_key(i) for i in ids])
    assert set(versions) == {b"3"}


async def test_a_limit_reached_while_the_budget_is_looked_at_fails_quietly() -> None:
    """The limit's timer and the budget's fire in one turn of a stalled loop, and the look at
    the loop comes after the limit began cancelling the call: a TimeoutError, and no error from
    the loop's callbacks (it was "Cannot change state of expiring Timeout", logged under load)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        # a callback that holds the loop past the budget (0.05) and the limit (0.055), within
        # the grace (a fifth of the budget)
        loop.call_soon(time.sleep, 0.057)
        with pytest.raises(TimeoutError):
            await within(asyncio.sleep(1), 0.05, 0.055)
        await asyncio.sleep(0.02)  # the timers that were left run
    finally:
        loop.set_exception_handler(None)
    assert errors == []


async def test_the_busy_limit_reached_behind_a_loop_raises_loop_behind() -> None:
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError) as idle:  # idle: Redis's fault
        await within(asyncio.shield(never), 0.05, 0.5)
    assert not isinstance(idle.value, LoopBehind)
    busy = await _under_load(1.5)
    with pytest.raises(LoopBehind):
        await within(asyncio.shield(never), 0.05, 0.3)
    await asyncio.gather(*busy)
    never.cancel()


async def test_a_busy_loop_timeout_falls_back_without_skipping_redis_twice_then_skips() -> None:
    """Past even the busy limit with the loop behind, a call falls back to PostgreSQL without
    skipping Redis (its reply may have been waiting for its turn: the last note's 1 s of lists
    from PostgreSQL under load); BEHIND_STRIKES such calls in a row do skip it (a hung Redis
    under a busy loop costs at most that many limits). A socket that never answers stands in
    for the hung Redis."""
    port = free_port()
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    hung = make_redis(Settings(redis_url=f"redis://127.0.0.1:{port}/0", reco=RECO))
    cache = RecoCache(RecoSettings(redis_timeout_seconds=0.05, redis_busy_limit_seconds=0.3), hung)

    async def compute(keys: list[str]) -> dict[str, dict[str, object] | None]:
        return {k: {"list": k} for k in keys}

    busy = await _under_load(6.0)
    seen = []
    for i in range(BEHIND_STRIKES):
        cache.clear_local()
        got = await cache.get_or_compute_many([(f"k{i}", "ss1")], compute)
        assert got == [({"list": f"k{i}"}, "miss")]
        seen.append((cache.stats["redis_late"], cache.stats["redis_errors"]))
    await asyncio.gather(*busy)
    # each lookup: the MGET late (and, for the first ones, the SET of the computed value)
    assert seen[0][1] == 0 and seen[0][0] >= 1
    assert seen[-1][1] == 1  # the strikes ran out: Redis skipped
    assert hung is not None
    await hung.aclose()
    server.close()
