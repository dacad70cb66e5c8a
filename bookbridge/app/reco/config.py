"""Recommendation settings (environment variables BOOKBRIDGE_RECO_*), nested in `Settings.reco`."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Variant(BaseModel):
    name: str
    strategy: str  # a RecommendationStrategy name: TOPIC, COLLABORATIVE, CONTENT, TRENDING, HYBRID
    share: float = Field(gt=0)


class Experiment(BaseModel):
    """An A/B experiment: users split by a stable hash of (experiment id, user id)."""

    id: str
    variants: list[Variant] = Field(min_length=1)


class RecoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKBRIDGE_RECO_", extra="ignore")

    half_life_days: float = Field(default=14.0, gt=0, description="recency half-life")
    exclude_event_types: list[str] = Field(
        default=["complete"], description="a student's books with these events are left out"
    )
    max_first: int = Field(default=50, description="largest `first` for recommendation lists")
    candidates_per_topic: int = Field(default=100, description="top books read per topic")
    candidates_per_strategy: int = Field(default=100, description="list length blended by HYBRID")
    seed_books: int = Field(
        default=100, description="a study set's most recent books used as seeds"
    )
    neighbours_k: int = Field(default=50, description="neighbours kept per book and kind")
    ease_lambda: float = Field(default=200.0, gt=0, description="EASE L2 regularisation")
    ease_max_items: int = Field(
        default=12_000, description="above this many engaged books, cosine item-kNN replaces EASE"
    )
    trending_size: int = Field(default=200, description="books kept per subject/grade trend list")
    hybrid_weights: dict[str, float] = Field(
        default={"COLLABORATIVE": 1.0, "TOPIC": 0.05, "CONTENT": 0.1, "TRENDING": 0.01},
        description="HYBRID blend of per-strategy scores, each normalised to its list maximum",
    )
    topic_match_limit: int = Field(default=5, description="topics matched from a study set title")
    # caching
    cache_ttl_seconds: float = Field(default=5.0, description="in-process cache TTL")
    cache_refresh_ahead_seconds: float = Field(
        default=1.0, ge=0, description="a hit this close to the TTL refreshes in the background"
    )
    cache_max_age_seconds: float = Field(
        default=60.0,
        ge=0,
        description="how long a refresh may keep a list whose inputs did not change",
    )
    cache_refresh_batch: int = Field(
        default=4, ge=1, description="lists computed together by one background refresh"
    )
    cache_stale_seconds: float = Field(
        default=2.0,
        ge=0,
        description="how long past its TTL an entry may be served while its refresh runs",
    )
    cache_max_entries: int = Field(default=10_000, description="in-process cache size bound")
    redis_ttl_seconds: int = Field(default=600, description="Redis cache TTL")
    redis_timeout_seconds: float = Field(
        default=0.05, description="the most a Redis call may cost before PostgreSQL answers"
    )
    redis_retry_seconds: float = Field(
        default=1.0, description="after a Redis failure, skip Redis this long, then try again"
    )
    # experiments and analytics
    experiments: list[Experiment] = Field(default=[], description="JSON list of A/B experiments")
    attribution_window_hours: float = Field(default=168.0, description="click attribution window")
    k_anonymity: int = Field(default=5, ge=1, description="counts from fewer students are hidden")
    # worker
    worker_interval_seconds: float = Field(default=60.0, description="how often jobs run")
