"""Stored HYBRID lists (`study_set_lists`, migration 0007): the one copy both read paths serve.

Each study set's plain-HYBRID list is stored at `max_first` items; any `first` is its prefix
(`strategies.ranked` orders by score, then tiebreak, then book id, from inputs that do not
depend on `first`). The reco service reads fresh rows before computing anything and writes
back what it had to compute; the compiled read path (graphql_schema/execution/compiler/
recommendations.py) reads the same rows with the same freshness condition (`fresh`).

A row is fresh while its list is set, it was computed under the lists job's current run count
(worker_jobs 'lists'.runs, which moves when a run ends) and it is younger than
`stored_list_max_age_seconds`. Ingestion that changes a set's engagement or topics turns the
row into a tombstone (`tombstone`: generation + 1, list NULL) under the set's `guard` key; a
write-back lands only under the generation read before its inputs were, so a list computed from
inputs that a later batch changed is dropped instead of stored. Ingestion only writes the rows that
hold a list or that a computation in flight has claimed (`pending`, set by `read`): a set no one
reads, or one already a tombstone, costs a batch nothing but an index probe.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.core.settings import RecoSettings
from app.reco import data, strategies
from app.reco.strategies import Item, RecList

Fetch = Callable[..., Awaitable[list[Any]]]
log = logging.getLogger("bookbridge.reco.stored")

# The lists job's current run count: what a fresh row's `lists_run` must equal.
CURRENT_RUN = "coalesce((SELECT w.runs FROM worker_jobs w WHERE w.job = 'lists'), 0)"


def fresh(alias: str, max_age_seconds: float) -> str:
    """SQL: the row `alias` of study_set_lists holds a fresh list (`max_age_seconds` is a
    setting, written as a literal: plans are built per process and settings)."""
    age = float(max_age_seconds)
    return (
        f"({alias}.book_ids IS NOT NULL AND {alias}.lists_run = {CURRENT_RUN}"
        f" AND {alias}.computed_at > now() - make_interval(secs => {age!r}))"
    )


# The advisory lock space (the two-int4 form: apart from the worker's and the idempotency keys'
# one-bigint locks) of the guard: a study set's key is one of GUARD_KEYS buckets of its id's hash,
# so a batch of any size takes at most GUARD_KEYS locks. PostgreSQL's shared lock table holds
# max_locks_per_transaction x max_connections (6,400 by default) for every transaction at once:
# 1,024 buckets let seven large batches in flight exhaust it ("out of shared memory"); 128 let
# fifty. A batch of a few hundred sets holds most buckets either way, so more buckets would
# spare claims little waiting.
GUARD_SPACE = 16
GUARD_KEYS = 128


def _guard(ids_sql: str, lock: str) -> str:
    """SQL: `lock` the guard keys of the study sets `ids_sql` selects, in key order (two
    transactions wanting several keys never wait for each other in a circle); one row."""
    keys = (
        f"SELECT DISTINCT hashtext(g.id) & {GUARD_KEYS - 1} AS k"
        f" FROM ({ids_sql}) AS g(id) ORDER BY 1"
    )
    return f"SELECT count({lock}({GUARD_SPACE}, q.k)) AS guarded FROM ({keys}) AS q"


def guard(ids_sql: str) -> str:
    """SQL (a statement of its own, run in a batch's transaction before the `tombstone` of the
    same sets): shared locks on the guard keys of the study sets `ids_sql` selects, held until
    the batch commits. A claim (`_READ`) takes the same keys exclusively, so a batch either
    commits before a claim on its sets commits (and is in the inputs read after the claim), or
    takes its tombstone's snapshot after that claim committed (and bumps the claimed row). Its
    own statement: a statement's snapshot is taken before it runs, so a tombstone in the
    statement that waited for a claim would not see it."""
    return _guard(ids_sql, "pg_advisory_xact_lock_shared")


def tombstone(ids_sql: str) -> str:
    """SQL (a statement, after the sets' `guard` in the same transaction): the stored lists of
    the study sets `ids_sql` selects become tombstones, locked in study set order (concurrent
    batches lock rows in one order). Only rows that hold a list or that a computation has
    claimed (`pending`, see `_READ`) are touched: a set nobody asked for, or one already a
    tombstone, costs the batch an index probe and no write."""
    return (
        "UPDATE study_set_lists AS l SET generation = l.generation + 1, pending = false,"
        " lists_run = NULL, computed_at = NULL, strategy = NULL, book_ids = NULL,"
        " scores = NULL, reasons = NULL"
        " FROM (SELECT o.study_set_id FROM study_set_lists o"
        f' WHERE o.study_set_id IN (SELECT i.id COLLATE "C" FROM ({ids_sql}) AS i(id))'
        " AND (o.book_ids IS NOT NULL OR o.pending)"
        " ORDER BY o.study_set_id FOR UPDATE OF o) AS k"
        " WHERE l.study_set_id = k.study_set_id"
    )


# The claim and the write-back commit without waiting for their WAL flush (this transaction
# only: each is one statement, its own transaction): a row of this table is a cache, and the
# flush was most of what the claim cost a cold request (7 of 8 ms at p50, loaded machine). A
# crash loses at most the last moments' rows, never their order: a batch's commit (flushed)
# flushes every claim written before it, so a claim a batch's tombstone saw is never lost; a
# claim lost with the crash leaves no row, and the write-back (an UPDATE) then stores nothing.
ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true) AS async_commit"

# The read also claims the sets it finds without a list (a missing row is inserted, a tombstone
# marked `pending`), in study set order and in the same statement: a batch that changes a claimed
# set before its computation's write-back bumps its generation, so that write-back is dropped;
# a batch that committed before the claim is in the inputs read after it. The claim holds the
# guard keys of the sets it claims exclusively until it commits (taken before any row is
# written: the Sort of the insert reads the whole join first), so a batch that ran its tombstone
# before the claim, holding the keys shared (`guard`), has committed before the claim does,
# and one that takes them after the claim takes its tombstone's snapshot after the claim
# committed: none can miss the claim and commit after the inputs were read
# (docs/recommendations.md, "The claim and the batches in flight").
_READ = (
    "WITH unlisted AS (SELECT s.id FROM study_sets s"
    " LEFT JOIN study_set_lists x ON x.study_set_id = s.id"
    " WHERE s.id = ANY($1::text[]) AND (x.study_set_id IS NULL OR (x.book_ids IS NULL"
    " AND NOT x.pending))),"
    f" guarded AS ({_guard('SELECT u.id FROM unlisted u', 'pg_advisory_xact_lock')}),"
    " claimed AS (INSERT INTO study_set_lists AS l (study_set_id, pending)"
    ' SELECT u.id, true FROM unlisted u, guarded ORDER BY u.id COLLATE "C"'
    " ON CONFLICT (study_set_id) DO UPDATE SET pending = true"
    " WHERE l.book_ids IS NULL AND NOT l.pending)"
    " SELECT s.id, s.user_id, coalesce(l.generation, 0) AS generation,"
    " CASE WHEN {fresh} THEN l.book_ids END AS book_ids, l.scores, l.reasons, l.strategy,"
    " r.run, r.at"
    f" FROM study_sets s CROSS JOIN (SELECT {{run}} AS run, now() AS at, {ASYNC_COMMIT}) r"
    " LEFT JOIN study_set_lists l ON l.study_set_id = s.id"
    " WHERE s.id = ANY($1::text[])"
)

# The stored lists of the sets in $1 (JSON records), each only where its row still has the
# generation read before the list's inputs were and is one a batch would bump (it holds a list,
# or a claim); rows locked in study set order, as `tombstone` locks them. An UPDATE: `read` made
# the row of every set it found, so a row that is gone or unclaimed (its claim lost, above)
# stores nothing rather than a list a batch since then could not have bumped.
_WRITE = (
    "UPDATE study_set_lists AS l SET lists_run = $2, computed_at = $3, strategy = r.strategy,"
    " book_ids = r.book_ids, scores = r.scores, reasons = r.reasons, pending = false"
    " FROM jsonb_to_recordset($1::jsonb) AS r(id text, generation bigint, strategy text,"
    " book_ids text[], scores float8[], reasons text[]),"
    " (SELECT o.study_set_id FROM study_set_lists o"
    ' WHERE o.study_set_id IN (SELECT x.id COLLATE "C"'
    " FROM jsonb_to_recordset($1::jsonb) AS x(id text))"
    f" ORDER BY o.study_set_id FOR UPDATE OF o) AS k, (SELECT {ASYNC_COMMIT}) AS c"
    ' WHERE l.study_set_id = k.study_set_id AND l.study_set_id = r.id COLLATE "C"'
    " AND l.generation = r.generation AND (l.pending OR l.book_ids IS NOT NULL)"
)


@dataclass(slots=True)
class Stored:
    """A known study set as read: its owner, the generation its row had (0: no row) and its
    stored list when fresh."""

    user_id: str
    generation: int
    found: RecList | None


@dataclass(frozen=True, slots=True)
class Read:
    sets: dict[str, Stored]
    run: int  # the lists job's run count when read
    at: datetime | None  # when read (None: no set found): what is computed after it is as old


def read_sql(max_age_seconds: float) -> str:
    """`read`'s statement (its claim included); $1 the study set ids."""
    return _READ.format(fresh=fresh("l", max_age_seconds), run=CURRENT_RUN)


async def read(fetch: Fetch, ids: Sequence[str], max_age_seconds: float) -> Read:
    """The study sets `ids` that exist, with their fresh stored lists (one statement)."""
    rows = await fetch(read_sql(max_age_seconds), list(ids))
    sets: dict[str, Stored] = {}
    run, at = 0, None
    for r in rows:
        run, at = r["run"], r["at"]
        found = None
        if r["book_ids"] is not None:
            items = [
                Item(b, float(s), orjson.loads(why))
                for b, s, why in zip(r["book_ids"], r["scores"], r["reasons"], strict=True)
            ]
            found = RecList(items, r["strategy"])
        sets[r["id"]] = Stored(r["user_id"], int(r["generation"]), found)
    return Read(sets, int(run), at)


async def write(fetch: Fetch, got: Read, lists: Mapping[str, RecList]) -> None:
    """Store freshly computed lists, each only under the generation `got` read (a batch that
    changed the set since has bumped it: that list is not stored)."""
    rows = [
        {
            "id": sid,
            "generation": got.sets[sid].generation,
            "strategy": found.strategy,
            "book_ids": [i.book_id for i in found.items],
            "scores": [i.score for i in found.items],
            "reasons": [orjson.dumps(i.reasons).decode() for i in found.items],
        }
        for sid, found in sorted(lists.items())
        if sid in got.sets
    ]
    if rows and got.at is not None:
        await fetch(_WRITE, orjson.dumps(rows).decode(), got.run, got.at)


class WriteBack:
    """Write-backs of computed lists after their responses (the reco service's misses): a
    cold request answers from the list it computed and does not wait for its row. At most
    `limit` writes run at once; a request that finds them all busy (or `limit` 0) writes its
    own before it answers, so writes never pile up. A write runs in a context of its own (no
    request's span or counters) and is the same `write` as before: it lands only under the
    generation read before the list's inputs. A lost write (an error) costs a recomputation,
    never a stale list. `drain` waits for the writes under way: the app's lifespan calls it
    before the engines close (and tests, to see the rows)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, fetch: Fetch, got: Read, lists: Mapping[str, RecList]) -> None:
        """Store `lists` (computed from inputs read after `got`), in the background if a slot
        is free, else now."""
        if len(self._tasks) >= self.limit:
            await write(fetch, got, lists)
            return
        work = self._write(fetch, got, dict(lists))
        task = asyncio.get_running_loop().create_task(work, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, fetch: Fetch, got: Read, lists: Mapping[str, RecList]) -> None:
        try:
            await write(fetch, got, lists)
        except Exception:  # the next miss computes the list again
            log.warning("storing %d computed lists failed", len(lists), exc_info=True)

    @property
    def pending(self) -> int:
        """Writes under way."""
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until no write is under way (those started meanwhile too)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def service_max_age(s: RecoSettings) -> float:
    """The age up to which the reco service serves a stored row: the compiled path's max age
    less the longest a list may then live in the cache (Redis TTL, in-process TTL and stale
    serving, revalidation), so a cached list never outlives its row's freshness (a compiled
    read would fall back for the rest of its life). At most 0: every miss recomputes."""
    lifetime = max(
        float(s.redis_ttl_seconds),
        s.cache_ttl_seconds + s.cache_stale_seconds,
        s.cache_max_age_seconds,
    )
    return max(0.0, s.stored_list_max_age_seconds - lifetime)


def prefix(found: RecList, first: int) -> RecList:
    """The top-`first` list of a stored top-`max_first` one."""
    return RecList(found.items[:first], found.strategy)


# The study sets engaged with most recently first: whose lists the worker stores ahead of reads.
_ACTIVE = (
    "SELECT study_set_id FROM engagement_daily_study_set GROUP BY 1"
    " ORDER BY max(day) DESC, study_set_id LIMIT $1"
)


async def fill(
    fetch: Fetch, s: RecoSettings, limit: int, batch: int = 200, seconds: float | None = None
) -> int:
    """Store the lists of the `limit` most recently engaged study sets that hold no fresh one,
    `batch` sets per computation (the worker, after each lists job run: a student's first
    request after it is already served from the store). No batch starts after `seconds`
    (None: the setting `stored_list_fill_seconds`; 0: no limit): the most recently engaged
    sets come first, and the rest are stored when first read. How many lists it stored."""
    if limit <= 0 or s.stored_list_max_age_seconds <= 0:
        return 0
    budget = s.stored_list_fill_seconds if seconds is None else seconds
    started = time.monotonic()
    ids = [r[0] for r in await fetch(_ACTIVE, limit)]
    return await store(fetch, s, ids, batch, started + budget if budget > 0 else None)


async def store(
    fetch: Fetch,
    s: RecoSettings,
    ids: Sequence[str],
    batch: int = 200,
    until: float | None = None,
) -> int:
    """Store the lists of the study sets `ids` that hold no fresh one, `batch` sets per
    computation; no batch after the first starts once `time.monotonic()` passes `until`
    (None: no limit). How many lists it stored."""
    done = 0
    for i in range(0, len(ids), batch):
        if until is not None and i > 0 and time.monotonic() >= until:
            break
        got = await read(fetch, ids[i : i + batch], service_max_age(s))
        missing = sorted(sid for sid, row in got.sets.items() if row.found is None)
        if missing:
            inputs = await data.hybrid_inputs(fetch, missing, s)
            computed = strategies.hybrid_lists(s, inputs, s.max_first)
            await write(fetch, got, computed)
            done += len(computed)
    return done
