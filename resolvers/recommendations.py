"""Root fields for recommendations: thin wrappers over app.reco.service."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import cast

import strawberry

from app.db.catalog import PublisherRow
from app.db.records import Record
from app.observability import metrics
from app.reco import service
from app.reco.strategies import RecList
from graphql_schema.types.catalog import Book
from graphql_schema.types.context import Info
from graphql_schema.types.recommendation import (
    ExperimentResults,
    ExperimentVariantResult,
    RecommendationList,
    RecommendationStrategy,
    RecommendedBook,
)
from resolvers.guards import require_internal_analytics, student_scope


async def _to_graphql(info: Info, found: RecList) -> RecommendationList:
    ids = [i.book_id for i in found.items]
    loaders = info.context.loaders
    # the books and their publishers in one statement (batched over a page's lists): a
    # selected `book { publisher }` needs no batch of its own
    rows = await loaders.book_with_publisher_by_id.load_many(ids)
    loaders.book_by_id.put({r.id: r for r in rows if r is not None})
    loaders.publisher_by_id.put(
        {r.publisher_id: _publisher_row(r.publisher_id, r.publisher_name) for r in rows if r}
    )
    items = [
        RecommendedBook(book=Book.from_row(row), score=item.score, reasons=item.reasons)
        for item, row in zip(found.items, rows, strict=True)
        if row is not None
    ]
    return RecommendationList(
        items=items,
        strategy=RecommendationStrategy[found.strategy],
        experiment=found.experiment,
        variant=found.variant,
    )


def _publisher_row(publisher_id: str, name: str | None) -> Record | None:
    return None if name is None else cast(Record, PublisherRow(publisher_id, name))


async def recommendations_for(
    info: Info, study_set_id: str, first: int | None, strategy: RecommendationStrategy | None
) -> RecommendationList:
    """The root field's list, through the single path."""
    services = info.context.services
    service.check_first(services, first)
    # Its student or an admin; others get NOT_FOUND. The service checks the owner it caches
    # with the list, so a cache hit needs no study-set query.
    scope = student_scope(info)
    name = strategy.name if strategy else None
    return await _served(info, service.recommendations(services, study_set_id, first, name, scope))


async def study_set_recommendations(
    info: Info, study_set_id: str, first: int | None
) -> RecommendationList:
    """StudySet.recommendations: through the request's loader, so a page of study sets looks
    its lists up in one batch and computes the misses together (the same lists, cache entries
    and exposures as the root field). The loader checks the viewer's scope as the root does."""
    n = service.check_first(info.context.services, first)
    student_scope(info)  # the role check; the loader filters by the same viewer's scope
    loader = info.context.loaders.recommendations_by_study_set
    return await _served(info, loader.load(service.ListKey(study_set_id, n)))


async def _served(info: Info, pending: Awaitable[RecList]) -> RecommendationList:
    """Time the list for the metric and turn it into its GraphQL type."""
    started = time.perf_counter()
    found = await pending
    metrics.observe_recommendation(found.strategy, time.perf_counter() - started)
    return await _to_graphql(info, found)


async def recommendations(
    info: Info,
    study_set_id: strawberry.ID,
    first: int | None = 10,
    strategy: RecommendationStrategy | None = None,
) -> RecommendationList:
    return await recommendations_for(info, str(study_set_id), first, strategy)


async def similar_books(
    info: Info, book_id: strawberry.ID, first: int | None = 10
) -> RecommendationList:
    found = await service.similar_books(info.context.services, str(book_id), first)
    return await _to_graphql(info, found)


async def trending_books(
    info: Info,
    subject_id: strawberry.ID | None = None,
    grade_id: strawberry.ID | None = None,
    first: int | None = 10,
) -> RecommendationList:
    found = await service.trending_books(
        info.context.services,
        str(subject_id) if subject_id else None,
        str(grade_id) if grade_id else None,
        first,
    )
    return await _to_graphql(info, found)


async def experiment_results(info: Info, experiment_id: strawberry.ID) -> ExperimentResults:
    require_internal_analytics(info)
    rows = await service.experiment_report(info.context.services, str(experiment_id))
    return ExperimentResults(
        experiment_id=experiment_id,
        variants=[
            ExperimentVariantResult(
                variant=r.variant,
                strategy=RecommendationStrategy[r.strategy],
                exposures=r.exposures,
                clicks=r.clicks,
                completions=r.completions,
                ctr=r.ctr,
            )
            for r in rows
        ],
    )
