"""Recommendation cache: in-process (TTL, bounded LRU) over Redis, versioned keys, single-flight.

Invalidation bumps a version instead of deleting keys: `ver:ss:<study set>` for a study set's
lists and `ver:nb` for everything derived from neighbour/trend lists. A cached value carries the
versions it was computed under and is ignored once they move on. A hit in the last
`cache_refresh_ahead_seconds` of an entry's TTL refreshes it in the background (one refresh
at a time). Keys of one `group` (the study-set lists) are refreshed together: the keys that come
due while a refresh runs wait for the next one, which computes them all in one call, so a busy
replica refreshes its hot lists in a few batched calls (`cache_refresh_batch` keys each) rather
than a queue of one per key. While
its refresh is under way an entry may be served up to `cache_stale_seconds` past its TTL, never
past an invalidation (versions). When the process can tell that a list's inputs did not change
(`marker_source`: the worker's last `lists` run, read from PostgreSQL), a refresh revalidates
instead of recomputing: the entry lives on for another TTL, up to `cache_max_age_seconds` since
it was computed; an entry that expired without a request in its last second is revalidated the
same way by the next request that asks for it. Redis that is down or hung costs at most
`redis_timeout_seconds` per call (`redis_busy_limit_seconds` while the event loop is behind: a
reply waiting for its turn is not Redis failing, `app.core.deadline`), and is skipped for
`redis_retry_seconds` after a failure (a call that reached the busy limit with the loop still
behind falls back without skipping, up to `BEHIND_STRIKES` in a row); answers then come from PostgreSQL and the cache warms
again once Redis answers.

Lookups are batched (`get_or_compute_many`; `get_or_compute` is the batch of one): a batch reads
Redis in one MGET, writes it in one pipeline and computes its misses in one call, so a page of
study sets costs what one does. Single-flight is per key, whichever call a key came in.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from app.core.deadline import LoopBehind, within
from app.core.settings import RecoSettings
from app.observability import metrics
from app.reco.tracing import span as reco_span

if TYPE_CHECKING:
    from redis.asyncio import Redis


log = logging.getLogger("bookbridge.reco.cache")
PREFIX = "bb:reco:"
# Redis calls in a row that reach the busy limit with the loop behind before Redis is skipped
BEHIND_STRIKES = 3
NB_VERSION = PREFIX + "ver:nb"
T = TypeVar("T")
Payload = dict[str, Any]


# INCR of every key given: the study sets' versions bumped in one round trip and one reply.
_BUMP = "for _, key in ipairs(KEYS) do redis.call('INCR', key) end return #KEYS"


def ss_version_key(study_set_id: str) -> str:
    return f"{PREFIX}ver:ss:{study_set_id}"


@dataclass(slots=True)
class _Entry:
    expires: float
    ss_version: int
    nb_version: int
    value: Payload
    computed: float = 0.0  # when it was computed here (monotonic)
    marker: object = None  # `marker_source` then; _UNKNOWN for a value read from Redis


_UNKNOWN = object()


Compute = Callable[[], Awaitable[Payload | None]]
# Given the keys nobody has a value for, a value (None: nothing to cache) for each of them.
ComputeMany = Callable[[list[str]], Awaitable[Mapping[str, Payload | None]]]


@dataclass(frozen=True, slots=True)
class _Want:
    """One key looked up, with the versions current when the lookup began: a value computed
    meanwhile is stored under these, so an invalidation during the computation wins."""

    key: str  # the caller's key; stored under PREFIX + key
    study_set_id: str
    ss_version: int
    nb_version: int


class RecoCache:
    def __init__(self, settings: RecoSettings | None = None, redis: Redis | None = None) -> None:
        self.settings = settings or RecoSettings()
        self.redis = redis
        self._local: OrderedDict[str, _Entry] = OrderedDict()
        self._ss_versions: dict[str, int] = {}
        self._nb_version = 0
        self._inflight: dict[str, asyncio.Future[Payload | None]] = {}
        self._refreshing: set[str] = set()
        self._queued: dict[str, dict[str, _Want]] = {}  # group -> keys due for its next refresh
        self._group_compute: dict[str, ComputeMany] = {}
        self._draining: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresh_gate = asyncio.Semaphore(1)
        self._redis_skip_until = 0.0
        self._behind = 0  # LoopBehind timeouts in a row
        # what the lists are computed from, as a value that changes when it does (None: unknown)
        self.marker_source: Callable[[], Awaitable[object]] | None = None
        self._marker: tuple[float, object] | None = None
        self._markers: dict[str, object] = {}  # key -> the marker its fresh value was made under
        self.stats = {
            "local_hits": 0,
            "redis_hits": 0,
            "misses": 0,
            "redis_errors": 0,
            "redis_late": 0,  # calls past the busy limit with the loop behind (not skipped)
            "revalidated": 0,
        }

    async def get_or_compute(
        self, key: str, study_set_id: str, compute: Compute
    ) -> tuple[Payload | None, str]:
        """The cached value of `key` or a fresh one; also says where it came from."""

        async def compute_one(keys: list[str]) -> dict[str, Payload | None]:
            return {key: await compute()}

        return (await self.get_or_compute_many([(key, study_set_id)], compute_one))[0]

    async def get_or_compute_many(
        self, lookups: Sequence[tuple[str, str]], compute: ComputeMany, group: str | None = None
    ) -> list[tuple[Payload | None, str]]:
        """Per (key, study set id): the cached value or a fresh one, and where it came from.

        In-process hits first; the rest in one Redis round trip; what is still missing in one
        call of `compute`, so a batch of misses costs one computation, not one per key. Keys
        that another caller is computing are awaited, never computed twice. Callers passing
        the same `group` promise that any of their `compute`s computes any key of the group:
        their background refreshes are then merged."""
        found: dict[str, tuple[Payload | None, str]] = {}
        wants, expiring = [], []
        now = time.monotonic()
        for key, study_set_id in dict.fromkeys(lookups):
            want = self._want(key, study_set_id)
            entry = self._local_hit(want, now)
            if entry is None:
                wants.append(want)
                continue
            found[key] = entry.value, "local"
            if entry.expires - now < self.settings.cache_refresh_ahead_seconds:
                expiring.append(want)
        if expiring:
            self._refresh_ahead(expiring, compute, group)
        if wants:
            # a span only for the lookups that leave the in-process cache (revived, Redis, or
            # computed): a hit here is told by the caller's span (`reco.cache.source=local`),
            # and is most requests of a busy replica, for whom a child span is pure cost
            leaving = wants
            with reco_span("reco.cache.lookup", {"reco.cache.keys": len(leaving)}) as span:
                if self.marker_source is not None:
                    wants = await self._revive(wants, found, now)
                if wants:
                    found.update(await self._fetch(wants, compute))
                if span.is_recording():  # revived entries count as "local"
                    sources = sorted({found[w.key][1] for w in leaving})
                    span.set_attribute("reco.cache.source", ",".join(sources))
        for _, source in found.values():
            metrics.cache_lookup("reco", hit=source != "miss")
        return [found[key] for key, _ in lookups]

    def _want(self, key: str, study_set_id: str) -> _Want:
        return _Want(key, study_set_id, self._ss_versions.get(study_set_id, 0), self._nb_version)

    def _local_hit(self, want: _Want, now: float) -> _Entry | None:
        """The in-process entry while it is current (its versions) and fresh (its TTL, or a
        little past it while a refresh of it is under way)."""
        key = PREFIX + want.key
        entry = self._local.get(key)
        if entry is None:
            return None
        if entry.expires <= now and (
            key not in self._refreshing or now - entry.expires > self.settings.cache_stale_seconds
        ):
            return None
        if (entry.ss_version, entry.nb_version) != (want.ss_version, want.nb_version):
            return None
        self._local.move_to_end(key)
        self.stats["local_hits"] += 1
        return entry

    async def _revive(
        self, wants: list[_Want], found: dict[str, tuple[Payload | None, str]], now: float
    ) -> list[_Want]:
        """Expired in-process entries whose inputs did not change (same versions, same marker,
        younger than `cache_max_age_seconds`) live on for another TTL and are served, as a
        refresh would have done had a request come in their last second: a list asked less
        often than once a TTL is not computed again each time. The others, to be fetched."""
        alive = []
        for want in wants:
            entry = self._local.get(PREFIX + want.key)
            if (
                entry is not None
                and entry.marker is not _UNKNOWN
                and (entry.ss_version, entry.nb_version) == (want.ss_version, want.nb_version)
                and now - entry.computed < self.settings.cache_max_age_seconds
            ):
                alive.append((want, entry))
        if not alive:
            return wants
        marker = await self._marker_or_unknown()
        if marker is _UNKNOWN:
            return wants
        revived = set()
        for want, entry in alive:
            current = self._ss_versions.get(want.study_set_id, 0), self._nb_version
            if entry.marker == marker and (entry.ss_version, entry.nb_version) == current:
                entry.expires = time.monotonic() + self._ttl()
                self._local.move_to_end(PREFIX + want.key)
                self.stats["revalidated"] += 1
                self.stats["local_hits"] += 1
                found[want.key] = entry.value, "local"
                revived.add(want.key)
        return [w for w in wants if w.key not in revived]

    async def _fetch(
        self, wants: list[_Want], compute: ComputeMany
    ) -> dict[str, tuple[Payload | None, str]]:
        """Redis, else PostgreSQL (once for concurrent callers); stored in both."""
        remote = await self._redis_get(wants)
        out: dict[str, tuple[Payload | None, str]] = {}
        missing = []
        for want in wants:
            value = remote[want.key][0] if remote is not None else None
            if value is None:
                missing.append(want)
                continue
            self._store_local(want, value, _UNKNOWN)
            self.stats["redis_hits"] += 1
            out[want.key] = value, "redis"
        if not missing:
            return out
        values = await self._single_flight([w.key for w in missing], compute)
        store: list[tuple[str, tuple[int, int], Payload]] = []
        for want in missing:
            value = values[want.key]
            marker = self._markers.pop(want.key, _UNKNOWN)
            out[want.key] = value, "miss"
            if value is not None:
                self._store_local(want, value, marker)
                if remote is not None:
                    store.append((want.key, remote[want.key][1], value))
        if store:
            await self._redis_set(store)
        return out

    def _refresh_ahead(self, wants: list[_Want], compute: ComputeMany, group: str | None) -> None:
        """Hot entries close to their expiry are fetched again in the background, so requests
        keep hitting: one task for the lot, or, for a `group`, into its next batched refresh."""
        wants = [
            w
            for w in wants
            if PREFIX + w.key not in self._inflight and PREFIX + w.key not in self._refreshing
        ]
        if not wants:
            return
        self._refreshing |= {PREFIX + w.key for w in wants}
        if group is None:
            self._spawn(self._refresh(wants, compute))
            return
        self._queued.setdefault(group, {}).update((w.key, w) for w in wants)
        self._group_compute[group] = compute
        if group not in self._draining:
            self._draining.add(group)
            self._spawn(self._drain(group))

    async def _refresh(self, wants: list[_Want], compute: ComputeMany) -> None:
        try:
            async with self._refresh_gate:  # one at a time: requests keep the loop
                if stale := await self._revalidate(wants):
                    await self._fetch(stale, compute)
        except Exception:  # the next request past the TTL computes them again
            log.warning("refresh-ahead of %d keys failed", len(wants), exc_info=True)
        finally:
            self._refreshing -= {PREFIX + w.key for w in wants}

    async def _revalidate(self, wants: list[_Want]) -> list[_Want]:
        """Extend the entries whose inputs are unchanged (same versions, same marker, younger
        than `cache_max_age_seconds`); the others, to be fetched again."""
        if self.marker_source is None:
            return wants
        marker = await self._marker_or_unknown()
        if marker is _UNKNOWN:
            return wants
        now, stale = time.monotonic(), []
        for want in wants:
            entry = self._local.get(PREFIX + want.key)
            current = self._ss_versions.get(want.study_set_id, 0), self._nb_version
            if (
                entry is not None
                and entry.marker == marker
                and (entry.ss_version, entry.nb_version) == current
                and now - entry.computed < self.settings.cache_max_age_seconds
            ):
                entry.expires = now + self._ttl()
                self.stats["revalidated"] += 1
            else:
                stale.append(want)
        return stale

    async def _marker_or_unknown(self) -> object:
        try:
            return await self._current_marker()
        except Exception:
            log.warning("reading the cache marker failed", exc_info=True)
            return _UNKNOWN

    async def _current_marker(self) -> object:
        """`marker_source`'s value, read at most once a second."""
        if self.marker_source is None:
            return None
        now = time.monotonic()
        if self._marker is not None and now - self._marker[0] < 1.0:
            return self._marker[1]
        value = await self.marker_source()
        self._marker = (now, value)
        return value

    async def _drain(self, group: str) -> None:
        """Refresh the group's queued keys, a batch per call, until none are left."""
        try:
            while queued := self._queued.pop(group, None):
                # a few keys per call: one call's synchronous steps grow with its keys, and
                # requests wait for them on this event loop
                wants, size = list(queued.values()), max(1, self.settings.cache_refresh_batch)
                if len(wants) > size:
                    self._queued[group] = {w.key: w for w in wants[size:]}
                await self._refresh(wants[:size], self._group_compute[group])
        finally:
            self._draining.discard(group)
            self._refreshing -= {PREFIX + k for k in self._queued.pop(group, {})}

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _single_flight(
        self, keys: list[str], compute: ComputeMany
    ) -> dict[str, Payload | None]:
        """Values of `keys`: the ones in flight awaited, the others computed together."""
        pending = {k: self._inflight[PREFIX + k] for k in keys if PREFIX + k in self._inflight}
        mine = [k for k in keys if k not in pending]
        parts = [self._wait(k, future) for k, future in pending.items()]
        if mine:
            parts.append(self._compute(mine, compute))
        if len(parts) == 1:
            return await parts[0]
        out: dict[str, Payload | None] = {}
        # every part run to its end, so no exception is left unretrieved
        for part in await asyncio.gather(*parts, return_exceptions=True):
            if isinstance(part, BaseException):
                raise part
            out.update(part)
        return out

    @staticmethod
    async def _wait(key: str, future: asyncio.Future[Payload | None]) -> dict[str, Payload | None]:
        return {key: await asyncio.shield(future)}

    async def _compute(self, keys: list[str], compute: ComputeMany) -> dict[str, Payload | None]:
        """One call of `compute` for `keys`, announced in flight so that concurrent callers of
        any of them wait for it instead of computing again."""
        loop = asyncio.get_running_loop()
        futures: dict[str, asyncio.Future[Payload | None]] = {}
        for key in keys:
            futures[key] = self._inflight[PREFIX + key] = loop.create_future()
        self.stats["misses"] += len(keys)
        try:
            # read before computing (a change meanwhile is seen by the next refresh), and after
            # the keys are announced in flight, so concurrent callers wait instead of computing
            marker = await self._marker_or_unknown()
            got = await compute(keys)
        except BaseException as exc:
            for future in futures.values():
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters (if any) re-raise it
            raise
        finally:
            for key in keys:
                self._inflight.pop(PREFIX + key, None)
        values = {key: got.get(key) for key in keys}
        self._markers.update(dict.fromkeys(keys, marker))
        for key, future in futures.items():
            future.set_result(values[key])
        return values

    def _ttl(self) -> float:
        # up to 10% shorter at random, so entries stored together do not all expire together
        return self.settings.cache_ttl_seconds * (1.0 - 0.1 * random.random())

    def _store_local(self, want: _Want, value: Payload, marker: object) -> None:
        now = time.monotonic()
        key = PREFIX + want.key
        self._local[key] = _Entry(
            now + self._ttl(), want.ss_version, want.nb_version, value, now, marker
        )
        self._local.move_to_end(key)
        while len(self._local) > self.settings.cache_max_entries:
            self._local.popitem(last=False)

    # --- Redis, each call bounded by a fixed timeout ---

    async def _bounded(self, op: str, call: Callable[[Redis], Awaitable[T]]) -> T | None:
        if self.redis is None or time.monotonic() < self._redis_skip_until:
            return None
        with reco_span(f"reco.cache.redis.{op}") as span:
            try:
                got = await within(
                    call(self.redis),
                    self.settings.redis_timeout_seconds,
                    self.settings.redis_busy_limit_seconds,
                )
                self._behind = 0
                return got
            except LoopBehind:
                # The busy limit passed while this process's loop was behind: the reply may
                # have been waiting for its turn. This call falls through to PostgreSQL, but
                # Redis is not skipped unless it happens BEHIND_STRIKES times in a row (a
                # hung Redis under a busy loop then costs at most that many limits).
                self._behind += 1
                self.stats["redis_late"] += 1
                span.set_attribute("error", True)
                if self._behind < BEHIND_STRIKES:
                    log.info("redis %s: no reply by the busy limit, loop behind", op)
                    return None
                self._skip(op, "LoopBehind")
                return None
            except Exception as exc:  # down, hung or refusing: fall through to PostgreSQL
                self._skip(op, type(exc).__name__)
                span.set_attribute("error", True)
                return None

    def _skip(self, op: str, why: str) -> None:
        """A Redis failure: skip Redis for `redis_retry_seconds`."""
        self._behind = 0
        self._redis_skip_until = time.monotonic() + self.settings.redis_retry_seconds
        self.stats["redis_errors"] += 1
        log.warning(
            "redis %s failed (%s); skipping Redis for %.1fs",
            op,
            why,
            self.settings.redis_retry_seconds,
        )

    async def _redis_get(
        self, wants: Sequence[_Want]
    ) -> dict[str, tuple[Payload | None, tuple[int, int]]] | None:
        """Per key: (value if current, current versions), all in one MGET; None when Redis is
        not usable."""
        keys = [PREFIX + w.key for w in wants]
        keys += [ss_version_key(w.study_set_id) for w in wants]
        raw = await self._bounded("get", lambda r: r.mget([*keys, NB_VERSION]))
        if raw is None:
            return None
        n, nb = len(wants), int(raw[-1] or 0)
        out: dict[str, tuple[Payload | None, tuple[int, int]]] = {}
        for i, want in enumerate(wants):
            versions = (int(raw[n + i] or 0), nb)
            body, value = raw[i], None
            if body:
                stored = orjson.loads(body)
                if tuple(stored["v"]) == versions:
                    value = stored["d"]
            out[want.key] = value, versions
        return out

    async def _redis_set(self, entries: Sequence[tuple[str, tuple[int, int], Payload]]) -> None:
        """Store (key, versions computed under, value) entries in one round trip."""
        ttl = self.settings.redis_ttl_seconds
        bodies = [
            (PREFIX + key, orjson.dumps({"v": list(versions), "d": value}))
            for key, versions, value in entries
        ]

        async def put(r: Redis) -> Any:
            async with r.pipeline(transaction=False) as pipe:
                for key, body in bodies:
                    pipe.set(key, body, ex=ttl)
                return await pipe.execute()

        await self._bounded("set", put)

    # --- invalidation ---

    async def invalidate_study_sets(self, study_set_ids: Sequence[str]) -> None:
        ids = sorted(set(study_set_ids))
        for sid in ids:
            self._ss_versions[sid] = self._ss_versions.get(sid, 0) + 1
        if ids:
            # One command and one reply for the lot: a batch of events can touch thousands of
            # study sets, and parsing thousands of pipelined replies in Python took longer than
            # the call's budget on a loop that kept up (a "failure" that skipped Redis for 1 s).
            keys = [ss_version_key(sid) for sid in ids]
            await self._bounded("invalidate", lambda r: r.eval(_BUMP, len(keys), *keys))

    async def invalidate_lists(self) -> None:
        self._nb_version += 1
        await self._bounded("invalidate", lambda r: r.incr(NB_VERSION))

    def clear_local(self) -> None:
        self._local.clear()
