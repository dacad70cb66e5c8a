"""Root fields for recommendations (the recommendation issue fills these in)."""

from __future__ import annotations

import strawberry

from bookbridge.app.errors import NotImplementedYet
from bookbridge.graphql_schema.context import Info
from bookbridge.graphql_schema.recommendation import RecommendationList, RecommendationStrategy


async def recommendations_for(
    info: Info, study_set_id: str, first: int | None, strategy: RecommendationStrategy | None
) -> RecommendationList:
    raise NotImplementedYet("recommendations")


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
    raise NotImplementedYet("similarBooks")


async def trending_books(
    info: Info,
    subject_id: strawberry.ID | None = None,
    grade_id: strawberry.ID | None = None,
    first: int | None = 10,
) -> RecommendationList:
    raise NotImplementedYet("trendingBooks")
