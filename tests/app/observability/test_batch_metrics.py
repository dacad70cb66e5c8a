"""Ingestion metrics the alerts read: the last successful batch per entity, and batches that
raised, told apart as refused (the caller's error) or failed (anything else)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.errors import ClientError
from app.ingest.service import MAX_BATCH, apply_batch
from app.runtime.services import Services


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


LAST = "bookbridge_ingestion_last_success_timestamp_seconds"
BATCHES = "bookbridge_ingestion_batches_total"


async def test_a_committed_batch_sets_its_entitys_last_success(services: Services) -> None:
    before = time.time()
    await apply_batch(services.engine, [], "subjects", [{"id": "s1", "name": "Maths"}])
    assert before <= sample(LAST, entity="subjects") <= time.time()


async def test_a_batch_that_rejects_everything_is_no_success(services: Services) -> None:
    stamp = sample(LAST, entity="grades")
    outcome = await apply_batch(services.engine, [], "grades", [{"id": "", "name": "bad"}])
    assert outcome.rejected and sample(LAST, entity="grades") == stamp


async def test_refused_and_failed_batches_are_counted_apart(services: Services) -> None:
    refused = sample(BATCHES, entity="topics", outcome="refused")
    too_many = [{"id": f"t{i}", "name": "x"} for i in range(MAX_BATCH + 1)]
    with pytest.raises(ClientError):
        await apply_batch(services.engine, [], "topics", too_many)
    assert sample(BATCHES, entity="topics", outcome="refused") == refused + 1

    failed = sample(BATCHES, entity="topics", outcome="failed")
    nowhere = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        with pytest.raises(OSError):
            await apply_batch(nowhere, [], "topics", [{"id": "t1", "name": "x"}])
    finally:
        await nowhere.dispose()
    assert sample(BATCHES, entity="topics", outcome="failed") == failed + 1
