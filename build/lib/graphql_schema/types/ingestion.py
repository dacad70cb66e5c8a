"""Ingestion: record inputs, the batch inputs of each mutation, BatchResult and the batch log."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import strawberry
from strawberry.utils.str_converters import to_camel_case

from app.db.pagination import Page
from app.db.records import Record
from app.ingest.service import BatchOutcome
from graphql_schema.types.pagination import PageInfo

TIMESTAMP = "ISO-8601 date-time; without an offset it is taken as UTC."
REQUIRED = "Required; checked per record, so one bad record does not sink the batch."


@strawberry.type(description="A record that was not applied, and why.")
class RecordError:
    index: int = strawberry.field(description="Position of the record in `records`.")
    id: str | None
    reason: str


@strawberry.type(description="What one ingestion batch did.")
class BatchResult:
    batch_id: strawberry.ID
    replayed: bool = strawberry.field(
        description="True when this idempotencyKey was already applied: same result, "
        "nothing re-applied."
    )
    received: int
    inserted: int
    updated: int
    unchanged: int = strawberry.field(description="Identical, or older than what is stored.")
    duplicates: int = strawberry.field(
        description="Event ids already recorded, or keys repeated inside the batch "
        "(the last occurrence wins)."
    )
    rejected: list[RecordError]

    @classmethod
    def of(cls, outcome: BatchOutcome) -> BatchResult:
        return cls(
            batch_id=strawberry.ID(outcome.batch_id),
            replayed=outcome.replayed,
            received=outcome.received,
            inserted=outcome.inserted,
            updated=outcome.updated,
            unchanged=outcome.unchanged,
            duplicates=outcome.duplicates,
            rejected=[
                RecordError(index=e.index, id=e.id, reason=e.reason) for e in outcome.rejected
            ],
        )


@strawberry.input
class PublisherInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    name: str | None = None


@strawberry.input
class SubjectInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    name: str | None = None


@strawberry.input
class GradeInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    name: str | None = None


@strawberry.input
class CategoryInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    name: str | None = None
    subject_id: strawberry.ID | None = None
    parent_id: strawberry.ID | None = strawberry.field(
        default=None, description="Parent category: an existing one or one in this batch."
    )


@strawberry.input
class TopicInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    label: str | None = None
    subject_id: strawberry.ID | None = None
    grade_id: strawberry.ID | None = None
    category_id: strawberry.ID | None = None


@strawberry.input
class BookInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    publisher_id: strawberry.ID | None = None
    title: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    updated_at: str | None = strawberry.field(
        default=None,
        description="The source's version (" + TIMESTAMP + ") An older version never "
        "overwrites a newer one.",
    )


@strawberry.input
class TopicBookMappingInput:
    topic_id: strawberry.ID | None = None
    book_id: strawberry.ID | None = None
    weight: float | None = strawberry.field(default=None, description="0 to 1000000.")


@strawberry.input
class StudySetInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    user_id: strawberry.ID | None = None
    subject_id: strawberry.ID | None = None
    grade_id: strawberry.ID | None = None
    title: str | None = None
    created_at: str | None = strawberry.field(default=None, description=TIMESTAMP)
    topic_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="The canonical topics; when omitted the stored ones are kept (or matched "
        "from subject, grade and title).",
    )


@strawberry.input
class EngagementEventInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=REQUIRED)
    study_set_id: strawberry.ID | None = None
    event_type: str | None = strawberry.field(
        default=None,
        description="One of view, click, save, start, progress, complete, rate, share.",
    )
    occurred_at: str | None = strawberry.field(default=None, description=TIMESTAMP)
    book_id: strawberry.ID | None = None
    topic_id: strawberry.ID | None = None


BATCH = "Up to 10,000 records. Reusing an idempotencyKey with a different payload is an error."


@strawberry.input(description=BATCH)
class UpsertPublishersInput:
    idempotency_key: str | None = None
    records: list[PublisherInput]


@strawberry.input(description=BATCH)
class UpsertSubjectsInput:
    idempotency_key: str | None = None
    records: list[SubjectInput]


@strawberry.input(description=BATCH)
class UpsertGradesInput:
    idempotency_key: str | None = None
    records: list[GradeInput]


@strawberry.input(description=BATCH)
class UpsertCategoriesInput:
    idempotency_key: str | None = None
    records: list[CategoryInput]


@strawberry.input(description=BATCH)
class UpsertTopicsInput:
    idempotency_key: str | None = None
    records: list[TopicInput]


@strawberry.input(description=BATCH)
class UpsertBooksInput:
    idempotency_key: str | None = None
    records: list[BookInput]


@strawberry.input(description=BATCH)
class UpsertTopicBookMappingsInput:
    idempotency_key: str | None = None
    records: list[TopicBookMappingInput]


@strawberry.input(description=BATCH)
class UpsertStudySetsInput:
    idempotency_key: str | None = None
    records: list[StudySetInput]


@strawberry.input(description=BATCH)
class RecordEngagementEventsInput:
    idempotency_key: str | None = None
    records: list[EngagementEventInput]


def record_dicts(records: list[Any]) -> list[dict[str, Any]]:
    """Records as plain dicts with snake_case keys, as the ingestion service takes them."""
    return [r if isinstance(r, dict) else dict(vars(r)) for r in records]


@dataclass(frozen=True, slots=True)
class BatchValue:
    """What a batch input argument is at run time: the key and the records as plain dicts."""

    idempotency_key: str | None
    records: list[dict[str, Any]]


def _batch_builder(record_type: type) -> Callable[[type, Mapping[str, Any], Any], BatchValue]:
    """Build batch inputs straight from graphql-core's coerced dicts.

    graphql-core has already checked every value against the schema; Strawberry's generic
    conversion into one dataclass per record costs about 0.25 ms a record (2.5 s for a batch
    of 10,000), so the records stay dicts, with their keys renamed once to snake_case.
    """
    definition = record_type.__strawberry_definition__  # type: ignore[attr-defined]
    renames = {to_camel_case(f.python_name): f.python_name for f in definition.fields}

    def build(cls: type, value: Mapping[str, Any], context: Any) -> BatchValue:
        records = value.get("records") or []
        return BatchValue(
            value.get("idempotencyKey"),
            [{renames.get(k, k): v for k, v in record.items()} for record in records],
        )

    return build


BATCH_INPUTS: tuple[tuple[Any, type], ...] = (
    (UpsertPublishersInput, PublisherInput),
    (UpsertSubjectsInput, SubjectInput),
    (UpsertGradesInput, GradeInput),
    (UpsertCategoriesInput, CategoryInput),
    (UpsertTopicsInput, TopicInput),
    (UpsertBooksInput, BookInput),
    (UpsertTopicBookMappingsInput, TopicBookMappingInput),
    (UpsertStudySetsInput, StudySetInput),
    (RecordEngagementEventsInput, EngagementEventInput),
)
for _batch_type, _record_type in BATCH_INPUTS:
    _batch_type.__strawberry_definition__.from_input = _batch_builder(_record_type)


@strawberry.type(description="One applied ingestion batch and what it did.")
class IngestionBatch:
    id: strawberry.ID
    entity: str
    status: str
    idempotency_key: str | None
    received: int
    inserted: int
    updated: int
    unchanged: int
    duplicates: int
    rejected_count: int
    rejected: list[RecordError]
    started_at: datetime
    duration_ms: float

    @classmethod
    def from_row(cls, row: Record) -> IngestionBatch:
        return cls(
            id=strawberry.ID(row.id),
            entity=row.entity,
            status=row.status,
            idempotency_key=row.idempotency_key,
            received=row.received,
            inserted=row.inserted,
            updated=row.updated,
            unchanged=row.unchanged,
            duplicates=row.duplicates,
            rejected_count=row.rejected,
            rejected=[RecordError(**e) for e in row.result.get("rejected", [])],
            started_at=row.started_at,
            duration_ms=row.duration_ms,
        )


@strawberry.type
class IngestionBatchEdge:
    cursor: str
    node: IngestionBatch


@strawberry.type
class IngestionBatchConnection:
    edges: list[IngestionBatchEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Record]) -> IngestionBatchConnection:
        edges = [
            IngestionBatchEdge(cursor=c, node=IngestionBatch.from_row(r))
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]
