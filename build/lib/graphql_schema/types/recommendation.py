"""Recommendation lists: which books, how strongly, and why in words; A/B experiment results."""

from __future__ import annotations

from enum import Enum

import strawberry

from graphql_schema.types.catalog import Book


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


@strawberry.type(description="One variant of an experiment: lists shown and attributed events.")
class ExperimentVariantResult:
    variant: str
    strategy: RecommendationStrategy
    exposures: int = strawberry.field(description="Recommendation lists served.")
    clicks: int = strawberry.field(description="Click events on a shown book after the exposure.")
    completions: int = strawberry.field(description="Complete events on a shown book.")
    ctr: float = strawberry.field(description="clicks / exposures")


@strawberry.type
class ExperimentResults:
    experiment_id: strawberry.ID
    variants: list[ExperimentVariantResult]
