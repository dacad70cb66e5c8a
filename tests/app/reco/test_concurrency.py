"""Recommendations under more concurrent requests than the pool has connections."""

from __future__ import annotations

import asyncio

from app.reco import service
from app.runtime.services import Services
from tests import reco_factories as f
from tests.app.reco.test_topic import refresh, setup


async def test_hybrid_requests_beyond_the_pool_queue_instead_of_deadlocking(
    services: Services,
) -> None:
    # A HYBRID miss reads its four components at once, one connection each. Were a request to
    # hold one connection while it waits for the others, eight requests on a pool of two would
    # each hold one and wait for the rest until the pool timeout.
    await setup(services)
    for i in range(2, 9):
        await f.study_set(services, f"ss{i}", f"u{i}", ["t1"])
    await refresh(services)
    small = services.settings.model_copy(
        update={"db_pool_size": 2, "db_max_overflow": 0, "db_pool_timeout": 3.0}
    )
    s = Services.create(small)
    try:
        lists = await asyncio.wait_for(
            asyncio.gather(
                *(service.recommendations(s, f"ss{i}", 10, "HYBRID") for i in range(1, 9))
            ),
            timeout=30,
        )
    finally:
        await s.close()
    assert all(found.strategy == "HYBRID" and found.items for found in lists)
    assert {i.book_id for i in lists[0].items} <= {"b1", "b2", "b3", "b4"}
