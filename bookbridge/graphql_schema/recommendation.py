"""Recommendation lists: which books, how strongly, and why in words."""

from __future__ import annotations

from enum import Enum

import strawberry

from bookbridge.graphql_schema.catalog import Book


@strawberry.enum(description="How a recommendation list is computed.")
class RecommendationStrategy(Enum):
    TOPIC = "topic"
    COLLABORATIVE = "collaborative"
    CONTENT = "content"
    TRENDING = "trending"
    HYBRID = "hybrid"


@strawberry.type
class RecommendedBook:
    book: Book
    score: float
    reasons: list[str] = strawberry.field(description="Why this book was recommended, in words.")


@strawberry.type
class RecommendationList:
    items: list[RecommendedBook]
    strategy: RecommendationStrategy
    experiment: str | None = strawberry.field(
        default=None, description="The A/B experiment that chose the strategy, if any."
    )
    variant: str | None = None
