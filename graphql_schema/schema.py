"""Assembles the root Query from the resolvers and builds the schema with its extensions."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql import build_schema as build_graphql_schema
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from app.auth.ratelimit import RateLimiter
from app.core.errors import ClientError
from app.core.settings import Settings
from app.db.errors import is_bad_text, is_transient
from app.observability.metrics import OperationNames
from graphql_schema.execution.compiler.extension import PlanCache, answer_compiled
from graphql_schema.execution.compiler.fast import FastReads
from graphql_schema.execution.compiler.mapping import Table
from graphql_schema.execution.context import ExecutionContext as CoreExecutionContext
from graphql_schema.extensions.documents import DocumentCache
from graphql_schema.extensions.limits import CostSchema, limit_extensions
from graphql_schema.extensions.masking import mask_unexpected_errors
from graphql_schema.extensions.tracing import Finish, OperationTelemetry
from graphql_schema.extensions.unavailable import UNAVAILABLE, mark_unavailable
from graphql_schema.types import catalog as catalog_t
from graphql_schema.types import study_set as study_set_t
from graphql_schema.types import taxonomy as taxonomy_t
from graphql_schema.types.analytics import PublisherAnalytics
from graphql_schema.types.catalog import (
    Book,
    BookConnection,
    Publisher,
    PublisherConnection,
    Topic,
    TopicConnection,
)
from graphql_schema.types.erasure import ErasureResult
from graphql_schema.types.ingestion import (
    BatchResult,
    IngestionBatch,
    IngestionBatchConnection,
)
from graphql_schema.types.recommendation import ExperimentResults, RecommendationList
from graphql_schema.types.study_set import StudySet, StudySetConnection
from graphql_schema.types.taxonomy import Category, Grade, Subject
from resolvers import analytics as analytics_r
from resolvers import catalog as catalog_r
from resolvers import erasure as erasure_r
from resolvers import ingestion as ingestion_r
from resolvers import recommendations as recommendations_r
from resolvers import study_sets as study_sets_r
from resolvers import taxonomy as taxonomy_r

log = logging.getLogger("bookbridge.graphql")


@strawberry.type
class Query:
    publisher: Publisher | None = strawberry.field(resolver=catalog_r.publisher)
    publishers: PublisherConnection = strawberry.field(resolver=catalog_r.publishers)
    book: Book | None = strawberry.field(resolver=catalog_r.book)
    books: BookConnection = strawberry.field(resolver=catalog_r.books)
    subjects: list[Subject] = strawberry.field(resolver=taxonomy_r.subjects)
    grades: list[Grade] = strawberry.field(resolver=taxonomy_r.grades)
    categories: list[Category] = strawberry.field(resolver=taxonomy_r.categories)
    topic: Topic | None = strawberry.field(resolver=catalog_r.topic)
    topics: TopicConnection = strawberry.field(resolver=catalog_r.topics)
    study_set: StudySet | None = strawberry.field(resolver=study_sets_r.study_set)
    study_sets: StudySetConnection = strawberry.field(resolver=study_sets_r.study_sets)
    recommendations: RecommendationList = strawberry.field(
        resolver=recommendations_r.recommendations
    )
    similar_books: RecommendationList = strawberry.field(resolver=recommendations_r.similar_books)
    trending_books: RecommendationList = strawberry.field(resolver=recommendations_r.trending_books)
    publisher_analytics: PublisherAnalytics = strawberry.field(
        resolver=analytics_r.publisher_analytics
    )
    ingestion_batch: IngestionBatch | None = strawberry.field(resolver=ingestion_r.ingestion_batch)
    experiment_results: ExperimentResults = strawberry.field(
        resolver=recommendations_r.experiment_results,
        description="Per-variant exposures, attributed clicks and CTR of an A/B experiment.",
    )
    ingestion_batches: IngestionBatchConnection = strawberry.field(
        resolver=ingestion_r.ingestion_batches, description="The ingestion log, newest first."
    )


@strawberry.type(description="Batched, idempotent ingestion: each mutation applies one batch.")
class Mutation:
    upsert_publishers: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_publishers)
    upsert_subjects: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_subjects)
    upsert_grades: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_grades)
    upsert_categories: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_categories)
    upsert_topics: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_topics)
    upsert_books: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_books)
    upsert_topic_book_mappings: BatchResult = strawberry.mutation(
        resolver=ingestion_r.upsert_topic_book_mappings
    )
    upsert_study_sets: BatchResult = strawberry.mutation(resolver=ingestion_r.upsert_study_sets)
    record_engagement_events: BatchResult = strawberry.mutation(
        resolver=ingestion_r.record_engagement_events
    )
    delete_student_data: ErasureResult = strawberry.mutation(
        resolver=erasure_r.delete_student_data,
        description="Erase a student's study sets, events, dead letters and cache entries "
        "(the student themself or an admin).",
    )


class BookbridgeSchema(strawberry.Schema):
    documents: DocumentCache  # parsed and validated documents (the response cache reads it)
    fast: FastReads | None  # compiled reads of documents seen before, without the pipeline

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            if isinstance(original, ClientError):
                error.extensions = {**(error.extensions or {}), "code": original.code}
            elif original is None:
                # Limit refusals carry their own code; graphql-core's validation errors get this one.
                error.extensions = {"code": "GRAPHQL_VALIDATION_FAILED", **(error.extensions or {})}
            elif isinstance(original, GraphQLError) or _bad_variable(error):
                # Variable coercion ("Variable '$n' has invalid value ..."): the request's fault.
                error.extensions = {"code": "BAD_USER_INPUT", **(error.extensions or {})}
            elif is_bad_text(original):
                error.message = BAD_TEXT
                error.extensions = {"code": "BAD_USER_INPUT"}
            elif is_transient(original):
                log.warning("database unavailable: %s", original)
                error.message = "The database is unavailable just now; retry shortly"
                error.extensions = {"code": UNAVAILABLE}
            else:
                error_id = uuid.uuid4().hex[:16]
                error.extensions = {"code": "INTERNAL_SERVER_ERROR", "errorId": error_id}
                log.error(
                    "unexpected error %s", error_id, exc_info=original, extra={"error_id": error_id}
                )


BAD_TEXT = (
    "Text arguments must not contain NUL (\\u0000) or unpaired surrogate characters: "
    "PostgreSQL cannot store them"
)


def _bad_variable(error: GraphQLError) -> bool:
    return error.path is None and error.message.startswith("Variable '$")


def build_schema(settings: Settings | None = None, **_: Any) -> BookbridgeSchema:
    """The schema with its extensions; `settings` (default: the environment's) set the limits."""
    settings = settings or Settings()
    security = settings.security
    documents = DocumentCache(
        max_document_chars=security.max_document_chars,
        max_tokens=security.max_tokens,
        entries=security.document_cache_entries,
        max_chars=security.document_cache_bytes,
    )
    cost_schema = CostSchema()
    limiter = RateLimiter(
        retry_seconds=security.rate_limit_redis_retry_seconds,
        timeout=settings.reco.redis_timeout_seconds,
        busy_limit=settings.reco.redis_busy_limit_seconds,
    )
    retry_after = security.unavailable_retry_after_seconds
    plans = PlanCache(SQL_MAPPING, driver=settings.compiled_reads_driver)

    async def compiled(ec: ExecutionContext) -> None:
        await answer_compiled(plans, ec)

    # last step of the cost limiter's on_execute: after every limit, cost and rate-limit check
    then = compiled if settings.compiled_reads else None
    # Once the operation is complete, inside its span: the 503 status, then masking (these were
    # on_operation hooks of their own, nested in the same order; one hook is cheaper)
    finish: list[Finish] = [lambda ec: mark_unavailable(ec, retry_after)]
    if security.masking(production=settings.production):
        finish.append(mask_unexpected_errors)
    names = OperationNames(settings.observability.metrics_max_operations)
    extensions: list[Any] = [
        lambda: OperationTelemetry(names, finish),
        *limit_extensions(settings, limiter, documents, cost_schema, then),
    ]
    schema = BookbridgeSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        execution_context_class=CoreExecutionContext,
        config=StrawberryConfig(
            disable_field_suggestions=not security.switch(
                "field_suggestions", production=settings.production
            )
        ),
    )
    schema.documents = documents
    schema.fast = None
    # The same types rebuilt from the printed schema (public API only), for the cost walk and
    # the compiled read path's field collection.
    printed = build_graphql_schema(schema.as_str())
    cost_schema.schema = printed
    if settings.compiled_reads:
        plans.bind(printed)
        if settings.compiled_reads_fast_path:
            schema.fast = FastReads(settings, documents, plans, limiter, names)
    return schema


# What the compiled read path may answer: the mapping tables beside the types.
SQL_MAPPING: dict[str, Table] = {
    **catalog_t.SQL,
    **taxonomy_t.SQL,
    **study_set_t.SQL,
    "Query": Table("", {**catalog_t.QUERY_SQL, **taxonomy_t.QUERY_SQL, **study_set_t.QUERY_SQL}),
}
