"""The canonical model as SQLAlchemy 2 tables; ids are the source systems' string ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
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
