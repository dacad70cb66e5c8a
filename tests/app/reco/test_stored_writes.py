"""A list computed on a miss is answered first and stored after the response (stored.WriteBack).

What users rely on: the cold answer is the prefix of the list then stored (so the compiled path,
reading the row, answers the same); a write-back still under way lands before the services close
(nothing is left behind at shutdown); a list computed before a change to its study set is not
stored, however late its write-back runs; the writes in flight are bounded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import text

from app.db import driver
from app.ingest.service import apply_batch
from app.reco import data, service, stored, strategies
from app.reco.stored import WriteBack
from app.runtime.services import Services
from tests import reco_factories as f
from tests.app.reco.test_batch import SETS, world

IDS = [f"ss{n:02d}" for n in range(1, SETS + 1)]


def fetcher(services: Services) -> stored.Fetch:
    return driver.fetcher(services.read_engine)


async def stored_lists(services: Services, ids: list[str]) -> dict[str, stored.Stored]:
    s = services.settings.reco
    return (await stored.read(fetcher(services), ids, s.stored_list_max_age_seconds)).sets


async def test_a_cold_answer_is_the_prefix_of_the_list_stored_after_it(
    services: Services,
) -> None:
    await world(services)
    assert services.stored_writes.limit > 0  # the default: stored after the response
    s = services.settings.reco
    answers = {sid: await service.recommendations(services, sid, 7, None) for sid in IDS}
    await services.stored_writes.drain()
    rows = await stored_lists(services, IDS)
    assert any(len(a.items) == 7 for a in answers.values())
    for sid, answer in answers.items():
        found = rows[sid].found
        assert found is not None, sid
        assert len(found.items) <= s.max_first
        assert stored.prefix(found, 7) == answer, sid
    # a later request with another `first` (in no cache) is served from the row: its prefix
    services.reco_cache.clear_local()
    for sid in IDS:
        found = rows[sid].found
        assert found is not None
        longer = await service.recommendations(services, sid, 12, None)
        assert longer == stored.prefix(found, 12), sid
    assert services.stored_writes.pending == 0


async def test_closing_the_services_waits_for_the_write_backs(services: Services) -> None:
    await world(services)
    mine = Services.create(services.settings)
    try:
        answer = await service.recommendations(mine, "ss02", 5, None)
    finally:
        await mine.close()  # the lifespan's end: the write-back under way lands first
    assert mine.stored_writes.pending == 0
    found = (await stored_lists(services, ["ss02"]))["ss02"].found
    assert found is not None and stored.prefix(found, 5) == answer


async def test_a_late_write_back_does_not_store_a_list_computed_before_a_change(
    services: Services,
) -> None:
    await world(services)
    s, fetch = services.settings.reco, fetcher(services)
    got = await stored.read(fetch, ["ss01", "ss02"], s.stored_list_max_age_seconds)  # claims
    inputs = await data.hybrid_inputs(fetch, ["ss01", "ss02"], s)
    computed = strategies.hybrid_lists(s, inputs, s.max_first)
    writes = WriteBack(4)
    await writes.submit(fetch, got, computed)
    assert writes.pending == 1  # not written yet: after the response
    # the batch lands before the write-back does: ss01's list was computed before it
    record = {"id": "late", "study_set_id": "ss01", "event_type": "view", "book_id": "b1"}
    record["occurred_at"] = f.NOW.isoformat()
    outcome = await apply_batch(
        services.engine, services.after_commit, "engagement_events", [record]
    )
    assert outcome.inserted == 1, outcome
    await writes.drain()
    rows = await stored_lists(services, ["ss01", "ss02"])
    assert rows["ss01"].generation == 1 and rows["ss01"].found is None  # a tombstone
    assert rows["ss02"].generation == 0 and rows["ss02"].found == computed["ss02"]


async def test_write_backs_in_flight_are_bounded(services: Services) -> None:
    """Past the limit a request stores its list before it answers; limit 0: always before."""
    await world(services)
    s, fetch = services.settings.reco, fetcher(services)
    inputs = await data.hybrid_inputs(fetch, IDS[:3], s)
    computed = strategies.hybrid_lists(s, inputs, s.max_first)
    got = await stored.read(fetch, IDS[:3], s.stored_list_max_age_seconds)
    writes = WriteBack(1)
    await writes.submit(fetch, got, {"ss01": computed["ss01"]})  # the one slot
    await writes.submit(fetch, got, {"ss02": computed["ss02"]})  # no slot: written now
    rows = await stored_lists(services, ["ss02"])
    assert rows["ss02"].found == computed["ss02"]
    assert writes.pending <= 1
    await writes.drain()
    assert (await stored_lists(services, ["ss01"]))["ss01"].found == computed["ss01"]
    inline = WriteBack(0)
    await inline.submit(fetch, got, {"ss03": computed["ss03"]})
    assert inline.pending == 0
    assert (await stored_lists(services, ["ss03"]))["ss03"].found == computed["ss03"]


async def test_a_failed_write_back_is_dropped_quietly(
    services: Services,
) -> None:
    """A write-back that fails (here: the database refuses it) does not fail the request that
    already answered, nor `drain`; the set is computed again by the next miss."""
    await world(services)
    s, fetch = services.settings.reco, fetcher(services)
    got = await stored.read(fetch, ["ss01"], s.stored_list_max_age_seconds)

    async def refusing(sql: str, *params: Any) -> list[Any]:
        raise OSError("connection lost")

    writes = WriteBack(2)
    computed = strategies.hybrid_lists(s, await data.hybrid_inputs(fetch, ["ss01"], s), 5)
    await writes.submit(refusing, got, computed)
    await asyncio.wait_for(writes.drain(), 5)
    assert writes.pending == 0
    assert (await stored_lists(services, ["ss01"]))["ss01"].found is None


async def test_a_write_back_whose_claim_is_gone_stores_nothing(services: Services) -> None:
    """The claim commits without waiting for its WAL flush, so a PostgreSQL crash may lose it:
    no row (a new set's claim) or a tombstone not marked pending. A batch after the crash would
    not bump such a row, so the write-back must not store there; a claimed row is stored."""
    await world(services)
    s, fetch = services.settings.reco, fetcher(services)
    ids = ["ss01", "ss02", "ss03"]
    first = await stored.read(fetch, ["ss02"], s.stored_list_max_age_seconds)
    lists = strategies.hybrid_lists(s, await data.hybrid_inputs(fetch, ids, s), s.max_first)
    await stored.write(fetch, first, {"ss02": lists["ss02"]})
    record = {"id": "x", "study_set_id": "ss02", "event_type": "view", "book_id": "b1"}
    record["occurred_at"] = f.NOW.isoformat()
    await apply_batch(services.engine, services.after_commit, "engagement_events", [record])
    got = await stored.read(fetch, ids, s.stored_list_max_age_seconds)  # claims all three
    assert got.sets["ss02"].generation == 1  # a tombstone, claimed again
    lists = strategies.hybrid_lists(s, await data.hybrid_inputs(fetch, ids, s), s.max_first)
    async with services.engine.begin() as conn:  # what a crash may leave of two claims
        await conn.execute(text("DELETE FROM study_set_lists WHERE study_set_id = 'ss01'"))
        await conn.execute(
            text("UPDATE study_set_lists SET pending = false WHERE study_set_id = 'ss02'")
        )
    await stored.write(fetch, got, lists)
    rows = await stored_lists(services, ids)
    assert rows["ss01"].found is None and rows["ss02"].found is None
    assert rows["ss03"].found == lists["ss03"]
