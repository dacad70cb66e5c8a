"""Ingestion mutations (one batch each) and the ingestion-log queries."""

from __future__ import annotations

from typing import Any

import strawberry

from app.db import ingestion_log
from app.ingest.service import apply_batch
from graphql_schema.types.context import Info
from graphql_schema.types.ingestion import (
    BatchResult,
    IngestionBatch,
    IngestionBatchConnection,
    RecordEngagementEventsInput,
    UpsertBooksInput,
    UpsertCategoriesInput,
    UpsertGradesInput,
    UpsertPublishersInput,
    UpsertStudySetsInput,
    UpsertSubjectsInput,
    UpsertTopicBookMappingsInput,
    UpsertTopicsInput,
    record_dicts,
)
from graphql_schema.types.pagination import page_args
from resolvers.guards import batch_visibility, require_write


async def _ingest(info: Info, entity: str, records: list[Any], key: str | None) -> BatchResult:
    publisher_scope = require_write(info, entity)
    services = info.context.services
    outcome = await apply_batch(
        services.engine,
        services.after_commit,
        entity,
        record_dicts(records),
        key,
        publisher_scope=publisher_scope,
        client=info.context.viewer.subject,
    )
    return BatchResult.of(outcome)


async def upsert_publishers(info: Info, input: UpsertPublishersInput) -> BatchResult:
    return await _ingest(info, "publishers", input.records, input.idempotency_key)


async def upsert_subjects(info: Info, input: UpsertSubjectsInput) -> BatchResult:
    return await _ingest(info, "subjects", input.records, input.idempotency_key)


async def upsert_grades(info: Info, input: UpsertGradesInput) -> BatchResult:
    return await _ingest(info, "grades", input.records, input.idempotency_key)


async def upsert_categories(info: Info, input: UpsertCategoriesInput) -> BatchResult:
    return await _ingest(info, "categories", input.records, input.idempotency_key)


async def upsert_topics(info: Info, input: UpsertTopicsInput) -> BatchResult:
    return await _ingest(info, "topics", input.records, input.idempotency_key)


async def upsert_books(info: Info, input: UpsertBooksInput) -> BatchResult:
    return await _ingest(info, "books", input.records, input.idempotency_key)


async def upsert_topic_book_mappings(
    info: Info, input: UpsertTopicBookMappingsInput
) -> BatchResult:
    return await _ingest(info, "topic_book_mappings", input.records, input.idempotency_key)


async def upsert_study_sets(info: Info, input: UpsertStudySetsInput) -> BatchResult:
    return await _ingest(info, "study_sets", input.records, input.idempotency_key)


async def record_engagement_events(info: Info, input: RecordEngagementEventsInput) -> BatchResult:
    return await _ingest(info, "engagement_events", input.records, input.idempotency_key)


async def ingestion_batch(info: Info, id: strawberry.ID) -> IngestionBatch | None:
    visible = batch_visibility(info)
    async with info.context.services.read_engine.connect() as conn:
        row = await ingestion_log.batch_by_id(conn, str(id), visible)
    return IngestionBatch.from_row(row) if row else None


async def ingestion_batches(
    info: Info, first: int | None = None, after: str | None = None, entity: str | None = None
) -> IngestionBatchConnection:
    visible = batch_visibility(info)
    args = page_args(info, first, after)
    async with info.context.services.read_engine.connect() as conn:
        page = await ingestion_log.list_batches(conn, args, entity, visible)
    return IngestionBatchConnection.of(page)
