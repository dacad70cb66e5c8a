"""A stored list never misses a batch that committed before it (app/reco/stored.py, the claim).

What users rely on: once an ingestion batch has committed, no stored list of a set it changed
is served without it, whatever the order of the batch's statements, its commit, the claim of a
computation, the reads of its inputs and its write-back (several processes alike: they meet
only in PostgreSQL). The batches here hold their transaction open between the statement that
turns the sets' rows into tombstones and their commit, the widest that window can be.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text

from app.db import driver
from app.ingest import sql
from app.ingest.service import apply_batch
from app.reco import data, stored, strategies
from app.runtime.services import Services
from tests import reco_factories as f
from tests.app.reco.test_batch import SETS, world

IDS = [f"ss{n:02d}" for n in range(1, SETS + 1)]
Record = dict[str, Any]


async def books_now(services: Services, ids: list[str]) -> dict[str, list[str]]:
    """The lists' book ids computed now, from everything committed."""
    s, fetch = services.settings.reco, driver.fetcher(services.read_engine)
    lists = strategies.hybrid_lists(s, await data.hybrid_inputs(fetch, ids, s), s.max_first)
    return {sid: [i.book_id for i in found.items] for sid, found in lists.items()}


async def stored_books(services: Services, ids: list[str]) -> dict[str, list[str] | None]:
    """The stored lists' book ids (None: no list stored)."""
    async with services.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT study_set_id, book_ids FROM study_set_lists WHERE study_set_id = ANY(:i)"),
            {"i": ids},
        )
        found: dict[str, list[str] | None] = dict.fromkeys(ids)
        found |= {r[0]: r[1] for r in rows}
        return found


async def waiting(services: Services, condition: str) -> bool:
    """Some backend waits for a lock that `condition` (on pg_locks) describes."""
    async with services.engine.connect() as conn:
        sql_ = f"SELECT count(*) FROM pg_locks WHERE NOT granted AND {condition}"
        return bool(await conn.scalar(text(sql_)))


ON_THE_LOG = "relation = 'ingestion_batches'::regclass"  # a batch's last statement
ON_A_KEY = "locktype = 'advisory'"  # a claim waiting for a batch's guard key


async def until(check: Callable[[], Awaitable[bool]], task: asyncio.Task[Any]) -> None:
    """Until `check()` holds or `task` is done."""
    while not await check():
        done, _ = await asyncio.wait({task}, timeout=0.005)
        if done:
            return


def completes(sid: str, book: str, n: int) -> tuple[str, list[Record]]:
    """An events batch: `sid` completes `book` (completed books leave the set's lists)."""
    record = {"id": f"race-{n}", "study_set_id": sid, "event_type": "complete"}
    record |= {"book_id": book, "topic_id": None, "occurred_at": f.NOW.isoformat()}
    return "engagement_events", [record]


def retopics(sid: str, user: str, topics: list[str]) -> tuple[str, list[Record]]:
    """A study sets batch: `sid`'s explicit topics become `topics`."""
    record = {"id": sid, "user_id": user, "title": "My set", "subject_id": "s1"}
    record |= {"grade_id": "g1", "created_at": f.NOW.isoformat(), "topic_ids": topics}
    return "study_sets", [record]


async def claim_across_an_open_batch(
    services: Services, sid: str, batch: tuple[str, list[Record]] | None
) -> None:
    """The batch (`apply_batch`, as the API applies it) runs all its statements but its last
    (its tombstones included: the batch log's insert waits behind a table lock the test holds)
    and stays open; a computation claims `sid` and, if it can while the batch is still open,
    reads its inputs; then the batch commits and the computation writes its list back."""
    s, fetch = services.settings.reco, driver.fetcher(services.read_engine)
    async with services.engine.connect() as gate:
        tx = await gate.begin()
        await gate.execute(text("LOCK TABLE ingestion_batches IN SHARE MODE"))
        applied = None
        if batch is not None:
            entity, records = batch
            work = apply_batch(services.engine, services.after_commit, entity, records)
            applied = asyncio.create_task(work)
            await until(lambda: waiting(services, ON_THE_LOG), applied)
            assert not applied.done(), applied.result()
        claim = asyncio.create_task(stored.read(fetch, [sid], s.stored_list_max_age_seconds))
        await until(lambda: waiting(services, ON_A_KEY), claim)
        if not claim.done():  # the claim waits for the batch: let the batch end
            await tx.rollback()
        got = await claim
        inputs = await data.hybrid_inputs(fetch, [sid], s)  # the batch may still be open
        if tx.is_active:
            await tx.rollback()
    if applied is not None:
        outcome = await applied
        assert outcome.inserted + outcome.updated == 1, outcome
    await stored.write(fetch, got, strategies.hybrid_lists(s, inputs, s.max_first))


@pytest.mark.parametrize("row", ["missing", "tombstone"])
async def test_an_events_batch_open_across_the_claim_is_never_missed(
    services: Services, row: str
) -> None:
    await world(services)
    sid = "ss01"
    before = (await books_now(services, [sid]))[sid]
    if row == "tombstone":  # stored, then turned into a tombstone by a batch
        await claim_across_an_open_batch(services, sid, None)
        assert (await stored_books(services, [sid]))[sid] == before
        entity, records = completes(sid, before[-1], 0)
        await apply_batch(services.engine, services.after_commit, entity, records)
        assert (await stored_books(services, [sid]))[sid] is None
        before = (await books_now(services, [sid]))[sid]
    await claim_across_an_open_batch(services, sid, completes(sid, before[0], 1))
    after = (await books_now(services, [sid]))[sid]
    assert before[0] not in after  # the batch changed the list
    assert (await stored_books(services, [sid]))[sid] in (None, after)


async def test_a_topics_batch_open_across_the_claim_is_never_missed(services: Services) -> None:
    await world(services)
    sid = "ss01"  # explicit topic t2
    before = (await books_now(services, [sid]))[sid]
    await claim_across_an_open_batch(services, sid, retopics(sid, "u1", ["t1"]))
    after = (await books_now(services, [sid]))[sid]
    assert after != before  # the batch changed the list
    assert (await stored_books(services, [sid]))[sid] in (None, after)


async def test_no_interleaving_stores_a_list_that_misses_a_committed_batch(
    services: Services,
) -> None:
    """Batches (each completing one of the top books of a set's list) and computations (claim,
    inputs, write-back) of random sets, side by side, with random pauses between their steps;
    after each round no stored list holds a book its set completed in a committed batch. (Only
    that: other sets' events move every list a little, through the books' engagement, and are
    no set's change.)"""
    await world(services)
    s, fetch = services.settings.reco, driver.fetcher(services.read_engine)
    rng = random.Random(16)
    completed: dict[str, set[str]] = {sid: set() for sid in IDS}
    serial = 0

    async def pause() -> None:
        await asyncio.sleep(rng.choice([0, 0, 0.001, 0.005, 0.02]))

    async def batch(sid: str, book: str) -> None:
        """The events statements of a batch (its tombstones last), a pause, its commit."""
        nonlocal serial
        serial += 1
        _, records = completes(sid, book, 1000 + serial)
        await pause()
        async with services.engine.connect() as conn:
            tx = await conn.begin()
            assert await sql.insert_events(conn, records) == 1
            await pause()
            await tx.commit()
        completed[sid].add(book)

    async def computation(ids: list[str]) -> None:
        await pause()
        got = await stored.read(fetch, ids, s.stored_list_max_age_seconds)
        await pause()
        missing = sorted(sid for sid, row in got.sets.items() if row.found is None)
        if not missing:
            return
        inputs = await data.hybrid_inputs(fetch, missing, s)
        await pause()
        await stored.write(fetch, got, strategies.hybrid_lists(s, inputs, s.max_first))

    stores = 0
    for _ in range(12):
        listed = await books_now(services, IDS)
        sets = rng.sample(sorted(sid for sid in IDS if listed[sid]), 3)
        work = [batch(sid, rng.choice(listed[sid][:3])) for sid in sets]
        work += [computation(sorted({rng.choice(sets), rng.choice(IDS)})) for _ in range(3)]
        rng.shuffle(work)
        await asyncio.gather(*work)
        kept = await stored_books(services, IDS)
        stale = {sid: books for sid, books in kept.items() if set(books or ()) & completed[sid]}
        assert not stale, (stale, completed)
        stores += sum(books is not None for books in kept.values())
    assert stores  # lists were stored, not only dropped


async def test_many_large_batches_in_flight_fit_the_lock_table(services: Services) -> None:
    """Eighteen batches (nearly one process's pool, 10 + 10), each over 3,000 study sets, hold
    their guard keys at once without exhausting PostgreSQL's shared lock table at its default
    size (64 x 100 entries, about 10,000-20,000 locks in all here): with 1,024 buckets they
    failed with "out of shared memory"."""
    guard = text(stored.guard("SELECT unnest(CAST(:ids AS text[]))"))
    held: list[Any] = []
    pids: list[int] = []
    taken = 0
    try:
        for batch in range(18):
            conn = await services.engine.connect()
            held.append(conn)
            await conn.begin()
            pids.append(await conn.scalar(text("SELECT pg_backend_pid()")))
            ids = [f"lock-{batch}-{n}" for n in range(3000)]
            keys = (await conn.execute(guard, {"ids": ids})).scalar_one()
            assert 0 < keys <= stored.GUARD_KEYS
            taken += keys
        async with services.engine.connect() as probe:
            locks = await probe.scalar(
                # only these sessions' locks: another database's work on the same server (a
                # worker's job lock) holds advisory locks of its own
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = ANY(CAST(:pids AS int[]))"
                ),
                {"pids": pids},
            )
        assert locks == taken
    finally:
        for conn in held:
            await conn.rollback()
            await conn.close()
