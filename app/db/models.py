"""The canonical model as SQLAlchemy 2 tables; ids are the source systems' string ids."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Source ids are compared byte-wise: keyset pagination and sorted batch writes need one stable order.
Id = String(collation="C")

EVENT_TYPES = ("view", "click", "save", "start", "progress", "complete", "rate", "share")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Publisher(Base):
    __tablename__ = "publishers"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    ingested_at: Mapped[datetime] = _now()


class Subject(Base):
    __tablename__ = "subjects"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    ingested_at: Mapped[datetime] = _now()


class Grade(Base):
    __tablename__ = "grades"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    ingested_at: Mapped[datetime] = _now()


class Category(Base):
    """A node of the taxonomy tree: subject -> category -> subcategory (via parent_id)."""

    __tablename__ = "categories"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Id, ForeignKey("subjects.id"), index=True)
    parent_id: Mapped[str | None] = mapped_column(Id, ForeignKey("categories.id"), index=True)
    ingested_at: Mapped[datetime] = _now()


class Topic(Base):
    __tablename__ = "topics"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    label: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Id, ForeignKey("subjects.id"), index=True)
    grade_id: Mapped[str | None] = mapped_column(Id, ForeignKey("grades.id"), index=True)
    category_id: Mapped[str | None] = mapped_column(Id, ForeignKey("categories.id"), index=True)
    ingested_at: Mapped[datetime] = _now()


class Book(Base):
    __tablename__ = "books"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    publisher_id: Mapped[str] = mapped_column(Id, ForeignKey("publishers.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime] = _now()
    search_vector: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed(
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', bookbridge_text_array(tags)), 'B') || "
            "setweight(to_tsvector('english', coalesce(description, '')), 'C')",
            persisted=True,
        ),
    )
    __table_args__ = (Index("ix_books_search_vector", "search_vector", postgresql_using="gin"),)


class TopicBookMapping(Base):
    __tablename__ = "topic_book_mappings"
    topic_id: Mapped[str] = mapped_column(Id, ForeignKey("topics.id"), primary_key=True)
    book_id: Mapped[str] = mapped_column(Id, ForeignKey("books.id"), primary_key=True)
    weight: Mapped[float] = mapped_column(Float)
    ingested_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint("weight >= 0", name="weight_non_negative"),
        Index("ix_topic_book_mappings_book_id", "book_id"),
        Index("ix_topic_book_mappings_topic_weight", "topic_id", "weight", "book_id"),
    )


class StudySet(Base):
    __tablename__ = "study_sets"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(Id, index=True)
    subject_id: Mapped[str | None] = mapped_column(Id, ForeignKey("subjects.id"), index=True)
    grade_id: Mapped[str | None] = mapped_column(Id, ForeignKey("grades.id"), index=True)
    title: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ingested_at: Mapped[datetime] = _now()


class StudySetList(Base):
    """A study set's plain-HYBRID recommendation list at `max_first` items (migration 0007): the
    one stored copy both read paths serve, sliced to `first` (HYBRID's top-n is the prefix of
    its top-`max_first`). A row is fresh while `book_ids` is set, `lists_run` is the lists job's
    current run count and `computed_at` is younger than the stored-list max age. Ingestion that
    changes a set's engagement or topics turns its row, when it holds a list or is `pending`,
    into a tombstone (`generation` + 1, the list NULL) in the same statement; a write-back only lands under the generation it read
    before computing, so a list computed from inputs older than a change never passes as fresh.
    `reasons` holds each item's reasons as the JSON text of their array (as orjson writes it)."""

    __tablename__ = "study_set_lists"
    study_set_id: Mapped[str] = mapped_column(
        Id, ForeignKey("study_sets.id", ondelete="CASCADE"), primary_key=True
    )
    generation: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lists_run: Mapped[int | None] = mapped_column(Integer)
    computed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    strategy: Mapped[str | None] = mapped_column(Text)
    book_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    scores: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    reasons: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # a computation of this set's list is under way (claimed by its read): a batch that
    # changes the set bumps `generation` even while the list is NULL
    pending: Mapped[bool] = mapped_column(Boolean, server_default=false())


class StudySetTopic(Base):
    """The canonical topics of a study set; `source` says whether they were sent or matched."""

    __tablename__ = "study_set_topics"
    study_set_id: Mapped[str] = mapped_column(
        Id, ForeignKey("study_sets.id", ondelete="CASCADE"), primary_key=True
    )
    topic_id: Mapped[str] = mapped_column(Id, ForeignKey("topics.id"), primary_key=True)
    source: Mapped[str] = mapped_column(Text, server_default="explicit")
    __table_args__ = (Index("ix_study_set_topics_topic_id", "topic_id"),)


class EngagementEvent(Base):
    __tablename__ = "engagement_events"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    study_set_id: Mapped[str] = mapped_column(
        Id, ForeignKey("study_sets.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    book_id: Mapped[str | None] = mapped_column(Id, ForeignKey("books.id"), index=True)
    topic_id: Mapped[str | None] = mapped_column(Id, ForeignKey("topics.id"), index=True)
    ingested_at: Mapped[datetime] = _now()
    __table_args__ = (
        CheckConstraint(
            "event_type IN (" + ", ".join(f"'{t}'" for t in EVENT_TYPES) + ")",
            name="known_event_type",
        ),
    )


class IngestionBatch(Base):
    """The ingestion log: one row per applied batch, with the result returned to the client."""

    __tablename__ = "ingestion_batches"
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    entity: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    received: Mapped[int] = mapped_column(Integer)
    inserted: Mapped[int] = mapped_column(Integer)
    updated: Mapped[int] = mapped_column(Integer)
    unchanged: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)
    client: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        Index(
            "uq_ingestion_batches_entity_key",
            "entity",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_ingestion_batches_started_at", "started_at"),
    )


class DeadLetter(Base):
    """A rejected record with its payload and reason, kept for operators to inspect and replay."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    batch_id: Mapped[str] = mapped_column(Id, index=True)
    entity: Mapped[str] = mapped_column(Text)
    record_index: Mapped[int] = mapped_column(Integer)
    record_id: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(Text, index=True)
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()


class _DailyEngagement:
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    event_type: Mapped[str] = mapped_column(Text, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)


class EngagementDailyBook(_DailyEngagement, Base):
    """Events per day, book and type; maintained with every insert of new events."""

    __tablename__ = "engagement_daily_book"
    book_id: Mapped[str] = mapped_column(Id, primary_key=True)
    __table_args__ = (Index("ix_engagement_daily_book_book_id", "book_id", "day"),)


class EngagementDailyTopic(_DailyEngagement, Base):
    """Events per day, topic and type (events that name a topic)."""

    __tablename__ = "engagement_daily_topic"
    topic_id: Mapped[str] = mapped_column(Id, primary_key=True)
    __table_args__ = (Index("ix_engagement_daily_topic_topic_id", "topic_id", "day"),)


class EngagementDailyStudySet(_DailyEngagement, Base):
    """Events per day, study set and type."""

    __tablename__ = "engagement_daily_study_set"
    study_set_id: Mapped[str] = mapped_column(
        Id, ForeignKey("study_sets.id", ondelete="CASCADE"), primary_key=True
    )
    __table_args__ = (Index("ix_engagement_daily_study_set_study_set_id", "study_set_id", "day"),)


# --- auth and trusted documents (migration 0004): API keys, registered GraphQL documents ---


class ApiKey(Base):
    """An API key of a sync client; only the SHA-256 of its secret is stored, never the key."""

    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(Id, primary_key=True)  # public part of the key
    name: Mapped[str] = mapped_column(Text, index=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    publisher_id: Mapped[str | None] = mapped_column(Id)  # bound keys write only this publisher
    secret_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rotated_from: Mapped[str | None] = mapped_column(Id)


class TrustedDocument(Base):
    """A registered GraphQL document (persisted query), keyed by the SHA-256 of its text."""

    __tablename__ = "trusted_documents"
    id: Mapped[str] = mapped_column(Id, primary_key=True)  # sha256 hex of `body`
    body: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


# --- recommendations (migration 0003): precomputed lists, rollups, experiments, worker state ---


class BookPopularity(Base):
    """Per-book rollup of the daily aggregates, refreshed by the worker: the formula's inputs."""

    __tablename__ = "book_popularity"
    book_id: Mapped[str] = mapped_column(Id, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    decayed: Mapped[float] = mapped_column(Float)  # sum of events x 2^(-age_days / half_life)
    base_score: Mapped[float] = mapped_column(Float)  # ln(events + 1) x decayed / events
    last_day: Mapped[date | None] = mapped_column(Date)
    refreshed_at: Mapped[datetime] = _now()


NEIGHBOUR_PARTITION_PREFIX = "book_neighbours_"


def is_neighbour_partition(table: str) -> bool:
    """A partition of `book_neighbours` (one per kind, made by migration 0006 and the lists
    job, not by these models)."""
    return table.startswith(NEIGHBOUR_PARTITION_PREFIX)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's `include_name`: its comparison of the database with these models (autogenerate,
    migrations/env.py and the tests) leaves out book_neighbours' per-kind partitions."""
    return not (type_ == "table" and name is not None and is_neighbour_partition(name))


class BookNeighbour(Base):
    """Precomputed neighbour lists: kind 'collab' (co-engagement), 'collab_alt' or 'content'
    (TF-IDF). Partitioned by kind (migration 0006), one partition per kind, each rewritten
    whole by a swap (`app.reco.neighbours.swap_neighbours`)."""

    __tablename__ = "book_neighbours"
    __table_args__ = {"postgresql_partition_by": "LIST (kind)"}
    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    book_id: Mapped[str] = mapped_column(Id, primary_key=True)
    neighbour_id: Mapped[str] = mapped_column(Id, primary_key=True)
    score: Mapped[float] = mapped_column(Float)


class TrendingBook(Base):
    """Time-decayed popularity per subject and grade ('' means any), ranked by the worker."""

    __tablename__ = "trending_books"
    subject_id: Mapped[str] = mapped_column(Id, primary_key=True)
    grade_id: Mapped[str] = mapped_column(Id, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    book_id: Mapped[str] = mapped_column(Id)
    score: Mapped[float] = mapped_column(Float)


class TopicTopBook(Base):
    """Each topic's best books by weight x ln(engagement + 1) x recency, ranked by the worker."""

    __tablename__ = "topic_top_books"
    topic_id: Mapped[str] = mapped_column(Id, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    book_id: Mapped[str] = mapped_column(Id)
    weight: Mapped[float] = mapped_column(Float)
    events: Mapped[int] = mapped_column(BigInteger)
    decayed: Mapped[float] = mapped_column(Float)
    base_score: Mapped[float] = mapped_column(Float)


class RecommendationExposure(Base):
    """One recommendation list shown under an A/B experiment (for exposures, clicks and CTR)."""

    __tablename__ = "recommendation_exposures"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    experiment: Mapped[str] = mapped_column(Text)
    variant: Mapped[str] = mapped_column(Text)
    strategy: Mapped[str] = mapped_column(Text)
    study_set_id: Mapped[str] = mapped_column(Id, index=True)
    user_id: Mapped[str] = mapped_column(Id)
    book_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    served_at: Mapped[datetime] = _now()
    __table_args__ = (Index("ix_recommendation_exposures_experiment", "experiment", "variant"),)


class _AnalyticsDaily:
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)
    students: Mapped[int] = mapped_column(Integer)  # distinct users behind `events`


class AnalyticsDailyPublisher(_AnalyticsDaily, Base):
    """A publisher's day over its k-safe book-days only (worker-maintained, for the k of
    `analytics_refresh`): the events of its books' days with k or more distinct students, and
    the distinct students behind those. Days without such a book-day have no row."""

    __tablename__ = "analytics_daily_publisher"
    publisher_id: Mapped[str] = mapped_column(Id, primary_key=True)


class AnalyticsDailyBook(_AnalyticsDaily, Base):
    """Events and distinct students per day and book (worker-maintained)."""

    __tablename__ = "analytics_daily_book"
    book_id: Mapped[str] = mapped_column(Id, primary_key=True)


class AnalyticsDailyTopic(_AnalyticsDaily, Base):
    """Events and distinct students per day on books mapped to a topic (worker-maintained)."""

    __tablename__ = "analytics_daily_topic"
    topic_id: Mapped[str] = mapped_column(Id, primary_key=True)


class WorkerJob(Base):
    """The last run of each worker job; replicas skip a job that ran within its interval."""

    __tablename__ = "worker_jobs"
    job: Mapped[str] = mapped_column(Text, primary_key=True)
    runs: Mapped[int] = mapped_column(Integer, server_default="0")
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[str | None] = mapped_column(Text)
    last_details: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


# --- incremental analytics (migration 0005): the build's k, the days to recompute ---


class AnalyticsRefresh(Base):
    """The analytics aggregates' build (one row, name 'analytics'): for which k, and when.

    No row means there is no complete build (first run, or engagement_events was truncated):
    the next refresh rebuilds every day. Another k than the build's also rebuilds every day.
    """

    __tablename__ = "analytics_refresh"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    k: Mapped[int] = mapped_column(Integer)
    refreshed_at: Mapped[datetime] = _now()
    rebuilt_at: Mapped[datetime] = _now()  # the last full rebuild


class AnalyticsDirtyDay(Base):
    """A UTC day whose analytics changed since the refresh last read this table.

    Written by triggers (migration 0005) in the transaction of the change itself: any insert,
    update or delete of engagement_events (ingestion, erasure and its cascades, COPY, manual
    SQL), a book moved to another publisher, a study set given to another student. Only ever
    inserted (one row per statement and day), so concurrent writers never wait for each other;
    the refresh deletes the rows it has read and recomputes those days.
    """

    __tablename__ = "analytics_dirty_days"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
