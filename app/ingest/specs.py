"""What each ingestible entity is: how a record is cleaned, what it references, how it is keyed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.db.models import EVENT_TYPES
from app.ingest import validate as v

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reference:
    """A field that must name an existing row of `table` (or, if `in_batch`, a record of the batch)."""

    field: str
    camel: str
    table: str
    in_batch: bool = False


@dataclass(frozen=True, slots=True)
class EntitySpec:
    name: str
    table: str
    key_fields: tuple[str, ...]
    clean: Callable[[Record], Record]
    references: tuple[Reference, ...] = field(default=())

    def key(self, record: Record) -> tuple[str, ...]:
        fields = self.key_fields
        if len(fields) == 1:
            return (record[fields[0]],)
        return tuple(record[f] for f in fields)


def _named(record: Record) -> Record:
    return {"id": v.ident(record, "id", "id"), "name": v.text(record, "name", "name")}


def _category(record: Record) -> Record:
    cleaned = _named(record) | {
        "subject_id": v.ident(record, "subject_id", "subjectId", required=False),
        "parent_id": v.ident(record, "parent_id", "parentId", required=False),
    }
    if cleaned["parent_id"] == cleaned["id"]:
        raise v.RecordInvalid("parentId must not be the category itself")
    return cleaned


def _topic(record: Record) -> Record:
    return {
        "id": v.ident(record, "id", "id"),
        "label": v.text(record, "label", "label"),
        "subject_id": v.ident(record, "subject_id", "subjectId", required=False),
        "grade_id": v.ident(record, "grade_id", "gradeId", required=False),
        "category_id": v.ident(record, "category_id", "categoryId", required=False),
    }


def _book(record: Record) -> Record:
    return {
        "id": v.ident(record, "id", "id"),
        "publisher_id": v.ident(record, "publisher_id", "publisherId"),
        "title": v.text(record, "title", "title", limit=1000),
        "description": v.text(
            record, "description", "description", limit=v.MAX_TEXT, required=False
        ),
        "tags": v.string_list(record, "tags", "tags", max_items=v.MAX_TAGS, max_len=v.MAX_TAG)
        or [],
        "updated_at": v.timestamp(record, "updated_at", "updatedAt"),
    }


def _mapping(record: Record) -> Record:
    return {
        "topic_id": v.ident(record, "topic_id", "topicId"),
        "book_id": v.ident(record, "book_id", "bookId"),
        "weight": v.weight(record, "weight", "weight"),
    }


def _study_set(record: Record) -> Record:
    return {
        "id": v.ident(record, "id", "id"),
        "user_id": v.ident(record, "user_id", "userId"),
        "subject_id": v.ident(record, "subject_id", "subjectId", required=False),
        "grade_id": v.ident(record, "grade_id", "gradeId", required=False),
        "title": v.text(record, "title", "title", limit=1000),
        "created_at": v.timestamp(record, "created_at", "createdAt"),
        "topic_ids": v.string_list(
            record, "topic_ids", "topicIds", max_items=v.MAX_TOPICS, max_len=v.MAX_ID
        ),
    }


def _event(record: Record) -> Record:
    event_type = v.text(record, "event_type", "eventType", limit=32)
    assert event_type is not None
    event_type = event_type.strip().lower()
    if event_type not in EVENT_TYPES:
        raise v.RecordInvalid(f"eventType must be one of {', '.join(EVENT_TYPES)}")
    return {
        "id": v.ident(record, "id", "id"),
        "study_set_id": v.ident(record, "study_set_id", "studySetId"),
        "event_type": event_type,
        "occurred_at": v.timestamp(record, "occurred_at", "occurredAt"),
        "book_id": v.ident(record, "book_id", "bookId", required=False),
        "topic_id": v.ident(record, "topic_id", "topicId", required=False),
    }


SPECS: dict[str, EntitySpec] = {
    spec.name: spec
    for spec in (
        EntitySpec("publishers", "publishers", ("id",), _named),
        EntitySpec("subjects", "subjects", ("id",), _named),
        EntitySpec("grades", "grades", ("id",), _named),
        EntitySpec(
            "categories",
            "categories",
            ("id",),
            _category,
            (
                Reference("subject_id", "subjectId", "subjects"),
                Reference("parent_id", "parentId", "categories", in_batch=True),
            ),
        ),
        EntitySpec(
            "topics",
            "topics",
            ("id",),
            _topic,
            (
                Reference("subject_id", "subjectId", "subjects"),
                Reference("grade_id", "gradeId", "grades"),
                Reference("category_id", "categoryId", "categories"),
            ),
        ),
        EntitySpec(
            "books",
            "books",
            ("id",),
            _book,
            (Reference("publisher_id", "publisherId", "publishers"),),
        ),
        EntitySpec(
            "topic_book_mappings",
            "topic_book_mappings",
            ("topic_id", "book_id"),
            _mapping,
            (Reference("topic_id", "topicId", "topics"), Reference("book_id", "bookId", "books")),
        ),
        EntitySpec(
            "study_sets",
            "study_sets",
            ("id",),
            _study_set,
            (
                Reference("subject_id", "subjectId", "subjects"),
                Reference("grade_id", "gradeId", "grades"),
            ),
        ),
        EntitySpec(
            "engagement_events",
            "engagement_events",
            ("id",),
            _event,
            (
                Reference("study_set_id", "studySetId", "study_sets"),
                Reference("book_id", "bookId", "books"),
                Reference("topic_id", "topicId", "topics"),
            ),
        ),
    )
}
