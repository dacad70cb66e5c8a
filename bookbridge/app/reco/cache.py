"""Recommendation cache: in-process (TTL, bounded LRU) over Redis, versioned keys, single-flight.

Invalidation bumps a version instead of deleting keys: `ver:ss:<study set>` for a study set's
lists and `ver:nb` for everything derived from neighbour/trend lists. A cached value carries the
versions it was computed under and is ignored once they move on. A hit in the last
`cache_refresh_ahead_seconds` of an entry's TTL refreshes it in the background (one refresh
at a time). Redis that is down or hung
costs at most `redis_timeout_seconds` per call, and is skipped for `redis_retry_seconds` after a
failure; answers then come from PostgreSQL and the cache warms again once Redis answers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from bookbridge.app.observability import metrics
from bookbridge.app.reco.config import RecoSettings
from bookbridge.app.reco.tracing import span as reco_span

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bookbridge.app.services import Services

log = logging.getLogger("bookbridge.reco.cache")
PREFIX = "bb:reco:"
NB_VERSION = PREFIX + "ver:nb"
T = TypeVar("T")
Payload = dict[str, Any]


def ss_version_key(study_set_id: str) -> str:
    return f"{PREFIX}ver:ss:{study_set_id}"


@dataclass(slots=True)
class _Entry:
    expires: float
    ss_version: int
    nb_version: int
    value: Payload


class RecoCache:
    def __init__(self, settings: RecoSettings | None = None, redis: Redis | None = None) -> None:
        self.settings = settings or RecoSettings()
        self.redis = redis
        self._local: OrderedDict[str, _Entry] = OrderedDict()
        self._ss_versions: dict[str, int] = {}
        self._nb_version = 0
        self._inflight: dict[str, asyncio.Future[Payload | None]] = {}
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh_gate = asyncio.Semaphore(1)
        self._redis_skip_until = 0.0
        self.stats = {"local_hits": 0, "redis_hits": 0, "misses": 0, "redis_errors": 0}

    async def get_or_compute(
        self, key: str, study_set_id: str, compute: Callable[[], Awaitable[Payload | None]]
    ) -> tuple[Payload | None, str]:
        """The cached value of `key` or a fresh one; also says where it came from."""
        key = PREFIX + key
        ss_v, nb_v = self._ss_versions.get(study_set_id, 0), self._nb_version
        entry = self._local.get(key)
        if entry and (entry.ss_version, entry.nb_version) == (ss_v, nb_v):
            left = entry.expires - time.monotonic()
            if left > 0:
                if left < self.settings.cache_refresh_ahead_seconds:
                    self._refresh_ahead(key, study_set_id, ss_v, nb_v, compute)
                self._local.move_to_end(key)
                self.stats["local_hits"] += 1
                metrics.cache_lookup("reco", hit=True)
                return entry.value, "local"
        value, source = await self._fetch(key, study_set_id, ss_v, nb_v, compute)
        metrics.cache_lookup("reco", hit=source != "miss")
        return value, source

    async def _fetch(
        self,
        key: str,
        study_set_id: str,
        ss_v: int,
        nb_v: int,
        compute: Callable[[], Awaitable[Payload | None]],
    ) -> tuple[Payload | None, str]:
        """Redis, else PostgreSQL (once for concurrent callers); stored in both."""
        remote = await self._redis_get(key, study_set_id)
        if remote is not None and remote[0] is not None:
            self._store_local(key, ss_v, nb_v, remote[0])
            self.stats["redis_hits"] += 1
            return remote[0], "redis"
        versions = remote[1] if remote else None
        value = await self._single_flight(key, compute)
        if value is not None:
            self._store_local(key, ss_v, nb_v, value)
            if versions is not None:
                await self._redis_set(key, versions, value)
        return value, "miss"

    def _refresh_ahead(
        self,
        key: str,
        study_set_id: str,
        ss_v: int,
        nb_v: int,
        compute: Callable[[], Awaitable[Payload | None]],
    ) -> None:
        """A hot entry close to its expiry is fetched again in the background, so requests keep
        hitting; the entry itself is never served past its TTL."""
        if key in self._inflight or key in self._refreshing:
            return
        self._refreshing.add(key)

        async def run() -> None:
            try:
                async with self._refresh_gate:  # one at a time: requests keep the loop
                    await self._fetch(key, study_set_id, ss_v, nb_v, compute)
            except Exception:  # the next request past the TTL computes it again
                log.warning("refresh-ahead of %s failed", key, exc_info=True)
            finally:
                self._refreshing.discard(key)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _single_flight(
        self, key: str, compute: Callable[[], Awaitable[Payload | None]]
    ) -> Payload | None:
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Payload | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        self.stats["misses"] += 1
        try:
            value = await compute()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters (if any) re-raise it
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(value)
        return value

    def _store_local(self, key: str, ss_v: int, nb_v: int, value: Payload) -> None:
        # up to 10% shorter at random, so entries stored together do not all expire together
        ttl = self.settings.cache_ttl_seconds * (1.0 - 0.1 * random.random())
        expires = time.monotonic() + ttl
        self._local[key] = _Entry(expires, ss_v, nb_v, value)
        self._local.move_to_end(key)
        while len(self._local) > self.settings.cache_max_entries:
            self._local.popitem(last=False)

    # --- Redis, each call bounded by a fixed timeout ---

    async def _bounded(self, op: str, call: Callable[[Redis], Awaitable[T]]) -> T | None:
        if self.redis is None or time.monotonic() < self._redis_skip_until:
            return None
        with reco_span(f"reco.cache.redis.{op}") as span:
            try:
                return await asyncio.wait_for(
                    call(self.redis), timeout=self.settings.redis_timeout_seconds
                )
            except Exception as exc:  # down, hung or refusing: fall through to PostgreSQL
                self._redis_skip_until = time.monotonic() + self.settings.redis_retry_seconds
                self.stats["redis_errors"] += 1
                span.set_attribute("error", True)
                log.warning(
                    "redis %s failed (%s); skipping Redis for %.1fs",
                    op,
                    type(exc).__name__,
                    self.settings.redis_retry_seconds,
                )
                return None

    async def _redis_get(
        self, key: str, study_set_id: str
    ) -> tuple[Payload | None, tuple[int, int]] | None:
        """(value if current, current versions), or None when Redis is not usable."""
        keys = [key, ss_version_key(study_set_id), NB_VERSION]
        raw = await self._bounded("get", lambda r: r.mget(keys))
        if raw is None:
            return None
        versions = (int(raw[1] or 0), int(raw[2] or 0))
        if raw[0]:
            stored = orjson.loads(raw[0])
            if tuple(stored["v"]) == versions:
                return stored["d"], versions
        return None, versions

    async def _redis_set(self, key: str, versions: tuple[int, int], value: Payload) -> None:
        body = orjson.dumps({"v": list(versions), "d": value})
        await self._bounded("set", lambda r: r.set(key, body, ex=self.settings.redis_ttl_seconds))

    # --- invalidation ---

    async def invalidate_study_sets(self, study_set_ids: Sequence[str]) -> None:
        ids = sorted(set(study_set_ids))
        for sid in ids:
            self._ss_versions[sid] = self._ss_versions.get(sid, 0) + 1
        if ids:

            async def bump(r: Redis) -> Any:
                async with r.pipeline(transaction=False) as pipe:
                    for sid in ids:
                        pipe.incr(ss_version_key(sid))
                    return await pipe.execute()

            await self._bounded("invalidate", bump)

    async def invalidate_lists(self) -> None:
        self._nb_version += 1
        await self._bounded("invalidate", lambda r: r.incr(NB_VERSION))

    def clear_local(self) -> None:
        self._local.clear()


async def note_engagement(services: Services, study_set_ids: Sequence[str]) -> None:
    """Ingestion hook: new engagement on these study sets invalidates their cached lists."""
    await services.reco_cache.invalidate_study_sets(study_set_ids)


async def note_lists_refreshed(services: Services) -> None:
    """Worker hook: refreshed neighbour, popularity or trend lists invalidate every cached list."""
    await services.reco_cache.invalidate_lists()


note_neighbours_refreshed = note_lists_refreshed
