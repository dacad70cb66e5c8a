"""Migration 0007 adds study_set_lists (the stored HYBRID lists) and takes it away again; its
rows go with their study set."""

from __future__ import annotations

from sqlalchemy import text

from app.db import models
from app.db.migrate import upgrade_async
from app.runtime.services import Services
from tests import reco_factories as f
from tests.factories import insert_rows
from tests.migrations.test_0006_partitioned_neighbours import downgrade

EXISTS = "SELECT to_regclass('study_set_lists') IS NOT NULL"


async def test_upgrade_and_downgrade(services: Services, database_url: str) -> None:
    try:
        await downgrade(database_url, "0006")
        async with services.engine.connect() as conn:
            assert not (await conn.execute(text(EXISTS))).scalar_one()
        await upgrade_async(database_url, "0007")
        async with services.engine.connect() as conn:
            assert (await conn.execute(text(EXISTS))).scalar_one()
    finally:
        await upgrade_async(database_url)
    await f.taxonomy(services)
    await f.study_set(services, "ss1", "u1", ["t1"])
    row = {"study_set_id": "ss1", "generation": 0, "book_ids": ["b1"], "scores": [0.5]}
    await insert_rows(services, models.StudySetList, [row | {"reasons": ['["why"]']}])
    async with services.engine.begin() as conn:
        await conn.execute(text("DELETE FROM study_sets WHERE id = 'ss1'"))
        assert (await conn.execute(text("SELECT count(*) FROM study_set_lists"))).scalar_one() == 0
