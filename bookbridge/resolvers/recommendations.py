"""Root fields for recommendations: thin wrappers over bookbridge.app.reco.service."""

from __future__ import annotations

import time

import strawberry

from bookbridge.app.observability import metrics
from bookbridge.app.reco import service
from bookbridge.app.reco.strategies import RecList
from bookbridge.graphql_schema.catalog import Book
from bookbridge.graphql_schema.context import Info
from bookbridge.graphql_schema.recommendation import (
    ExperimentResults,
    ExperimentVariantResult,
    RecommendationList,
    RecommendationStrategy,
    RecommendedBook,
)
from bookbridge.resolvers.guards import require_internal_analytics, student_scope


async def _to_graphql(info: Info, found: RecList) -> RecommendationList:
    rows = await info.context.loaders.book_by_id.load_many([i.book_id for i in found.items])
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


async def recommendations_for(
    info: Info, study_set_id: str, first: int | None, strategy: RecommendationStrategy | None
) -> RecommendationList:
    service.check_first(info.context.services, first)
    # Its student or an admin; others get NOT_FOUND. The service checks the owner it caches
    # with the list, so a cache hit needs no study-set query.
    scope = student_scope(info)
    name = strategy.name if strategy else None
    started = time.perf_counter()
    found = await service.recommendations(info.context.services, study_set_id, first, name, scope)
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
