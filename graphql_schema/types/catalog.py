"""Publisher, Book and Topic: the catalog types, which refer to each other, and their filters."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Annotated, cast

import strawberry
from strawberry.types.nodes import SelectedField

from app.db.pagination import Page
from app.db.records import Record
from graphql_schema.execution.compiler.mapping import (
    Children,
    Column,
    Connection,
    Contains,
    Eq,
    FieldSql,
    FullText,
    Lookup,
    Order,
    Ref,
    Table,
    Through,
)
from graphql_schema.types.context import Info
from graphql_schema.types.lookahead import children, inside, selection, under
from graphql_schema.types.pagination import (
    AFTER_DESCRIPTION,
    FIRST_DESCRIPTION,
    PageInfo,
    page_args,
)
from graphql_schema.types.taxonomy import (
    Category,
    Grade,
    Subject,
)
from loaders.base import MISSING
from loaders.catalog import ChildPageKey


@strawberry.type(description="A publisher of the catalog (publisher backend's id).")
class Publisher:
    id: strawberry.ID
    name: str

    @classmethod
    def from_row(cls, row: Record) -> Publisher:
        return cls(id=strawberry.ID(row.id), name=row.name)

    @strawberry.field(description="The publisher's books, by id.")
    async def books(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> BookConnection:
        args = page_args(info, first, after)
        key = ChildPageKey(self.id, args.first, args.after)
        return BookConnection.of(await info.context.loaders.books_by_publisher.load(key))


@strawberry.type(description="A book of the catalog (publisher backend's id).")
class Book:
    id: strawberry.ID
    title: str
    description: str | None
    tags: list[str]
    updated_at: datetime = strawberry.field(description="The source's version of this record.")
    publisher_id: strawberry.Private[str]

    @classmethod
    def from_row(cls, row: Record) -> Book:
        return cls(
            id=strawberry.ID(row.id),
            title=row.title,
            description=row.description,
            tags=row.tags,
            updated_at=row.updated_at,
            publisher_id=row.publisher_id,
        )

    # Plain (non-async) resolvers: the data is usually loaded ahead by the list above
    # (prime_books), so they return values and graphql-core stays on its synchronous path.
    @strawberry.field
    def publisher(self, info: Info) -> Publisher | None:
        return info.context.loaders.publisher_by_id.now_or_later(self.publisher_id, _publisher)

    @strawberry.field(description="The book's topics, heaviest mapping first.")
    def topics(self, info: Info) -> list[BookTopic]:
        weights = info.context.loaders.topic_weights_by_book.peek(self.id)
        if weights is not MISSING:
            return _book_topics(weights)
        return cast(list[BookTopic], self._load_topics(info))

    async def _load_topics(self, info: Info) -> list[BookTopic]:
        await _prime_book_topics(info, [self.id], selection(info))
        return _book_topics(info.context.loaders.topic_weights_by_book.peek(self.id))


def _subject(row: Record | None) -> Subject | None:
    return Subject.from_row(row) if row else None


def _grade(row: Record | None) -> Grade | None:
    return Grade.from_row(row) if row else None


def _category(row: Record | None) -> Category | None:
    return Category.from_row(row) if row else None


def _publisher(row: Record | None) -> Publisher | None:
    return Publisher.from_row(row) if row else None


def _book_topics(weights: list[tuple[str, float]]) -> list[BookTopic]:
    return [BookTopic(topic_id=topic_id, weight=weight) for topic_id, weight in weights]


def _topic(row: Record | None) -> Topic:
    assert row is not None, "a mapping's topic exists (foreign key)"
    return Topic.from_row(row)


def _unique(values: Sequence[str | None]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v is not None]


async def prime_books(info: Info, rows: Sequence[Record], wanted: list[SelectedField]) -> None:
    """Load, one batch per relation and level, what `wanted` (the selection under Book) needs."""
    jobs: list[Awaitable[object]] = []
    if under(wanted, "publisher"):
        ids = _unique([r.publisher_id for r in rows])
        jobs.append(info.context.loaders.publisher_by_id.load_many(ids))
    if topics := under(wanted, "topics"):
        jobs.append(_prime_book_topics(info, [r.id for r in rows], children(topics)))
    await asyncio.gather(*jobs)


async def _prime_book_topics(info: Info, book_ids: list[str], wanted: list[SelectedField]) -> None:
    loaders = info.context.loaders
    weights = await loaders.topic_weights_by_book.load_many(book_ids)
    if topic := under(wanted, "topic"):
        rows = await loaders.topic_by_id.load_many(_unique([t for w in weights for t, _ in w]))
        await prime_topics(info, [r for r in rows if r is not None], children(topic))


async def prime_topics(info: Info, rows: Sequence[Record], wanted: list[SelectedField]) -> None:
    """Load the subjects, grades and categories `wanted` (the selection under Topic) needs."""
    loaders = info.context.loaders
    jobs: list[Awaitable[object]] = []
    if under(wanted, "subject") and (ids := _unique([r.subject_id for r in rows])):
        jobs.append(loaders.subject_by_id.load_many(ids))
    if under(wanted, "grade") and (ids := _unique([r.grade_id for r in rows])):
        jobs.append(loaders.grade_by_id.load_many(ids))
    if under(wanted, "category") and (ids := _unique([r.category_id for r in rows])):
        jobs.append(loaders.category_by_id.load_many(ids))
    await asyncio.gather(*jobs)


@strawberry.type(description="A topic a book is mapped to, with the mapping's weight.")
class BookTopic:
    weight: float
    topic_id: strawberry.Private[str]

    @strawberry.field
    def topic(self, info: Info) -> Topic:
        return info.context.loaders.topic_by_id.now_or_later(self.topic_id, _topic)


@strawberry.type(description="A canonical study topic, e.g. Photosynthesis.")
class Topic:
    id: strawberry.ID
    label: str
    subject_id: strawberry.Private[str | None]
    grade_id: strawberry.Private[str | None]
    category_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: Record) -> Topic:
        return cls(
            id=strawberry.ID(row.id),
            label=row.label,
            subject_id=row.subject_id,
            grade_id=row.grade_id,
            category_id=row.category_id,
        )

    @strawberry.field
    def subject(self, info: Info) -> Subject | None:
        if self.subject_id is None:
            return None
        return info.context.loaders.subject_by_id.now_or_later(self.subject_id, _subject)

    @strawberry.field
    def grade(self, info: Info) -> Grade | None:
        if self.grade_id is None:
            return None
        return info.context.loaders.grade_by_id.now_or_later(self.grade_id, _grade)

    @strawberry.field
    def category(self, info: Info) -> Category | None:
        if self.category_id is None:
            return None
        return info.context.loaders.category_by_id.now_or_later(self.category_id, _category)

    @strawberry.field(description="Books mapped to this topic, heaviest mapping first.")
    async def books(
        self,
        info: Info,
        first: Annotated[int | None, strawberry.argument(description=FIRST_DESCRIPTION)] = None,
        after: Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)] = None,
    ) -> TopicBookConnection:
        args = page_args(info, first, after)
        key = ChildPageKey(self.id, args.first, args.after)
        return TopicBookConnection.of(await info.context.loaders.books_by_topic.load(key))


@strawberry.type
class BookEdge:
    cursor: str
    node: Book


async def _book_edges(root: BookConnection, info: Info) -> list[BookEdge]:
    await prime_books(info, root.rows, inside(selection(info), "node"))
    return [
        BookEdge(cursor=c, node=Book.from_row(r))
        for r, c in zip(root.rows, root.cursors, strict=True)
    ]


@strawberry.type
class BookConnection:
    edges: list[BookEdge] = strawberry.field(resolver=_book_edges)
    page_info: PageInfo
    rows: strawberry.Private[list[Record]]
    cursors: strawberry.Private[list[str]]

    @classmethod
    def of(cls, page: Page[Record]) -> BookConnection:
        return cls(page_info=PageInfo.of(page), rows=page.items, cursors=page.cursors)  # type: ignore[arg-type]


@strawberry.type(description="A book of a topic, with the weight of its mapping.")
class TopicBookEdge:
    cursor: str
    node: Book
    weight: float


async def _topic_book_edges(root: TopicBookConnection, info: Info) -> list[TopicBookEdge]:
    await prime_books(info, root.rows, inside(selection(info), "node"))
    return [
        TopicBookEdge(cursor=c, node=Book.from_row(r), weight=r.weight)
        for r, c in zip(root.rows, root.cursors, strict=True)
    ]


@strawberry.type
class TopicBookConnection:
    edges: list[TopicBookEdge] = strawberry.field(resolver=_topic_book_edges)
    page_info: PageInfo
    rows: strawberry.Private[list[Record]]
    cursors: strawberry.Private[list[str]]

    @classmethod
    def of(cls, page: Page[Record]) -> TopicBookConnection:
        return cls(page_info=PageInfo.of(page), rows=page.items, cursors=page.cursors)  # type: ignore[arg-type]


@strawberry.type
class PublisherEdge:
    cursor: str
    node: Publisher


@strawberry.type
class PublisherConnection:
    edges: list[PublisherEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Record]) -> PublisherConnection:
        edges = [
            PublisherEdge(cursor=c, node=Publisher.from_row(r))
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


@strawberry.type
class TopicEdge:
    cursor: str
    node: Topic


async def _topic_edges(root: TopicConnection, info: Info) -> list[TopicEdge]:
    await prime_topics(info, root.rows, inside(selection(info), "node"))
    return [
        TopicEdge(cursor=c, node=Topic.from_row(r))
        for r, c in zip(root.rows, root.cursors, strict=True)
    ]


@strawberry.type
class TopicConnection:
    edges: list[TopicEdge] = strawberry.field(resolver=_topic_edges)
    page_info: PageInfo
    rows: strawberry.Private[list[Record]]
    cursors: strawberry.Private[list[str]]

    @classmethod
    def of(cls, page: Page[Record]) -> TopicConnection:
        return cls(page_info=PageInfo.of(page), rows=page.items, cursors=page.cursors)  # type: ignore[arg-type]


@strawberry.input(description="Every given condition must hold.")
class BookFilter:
    publisher_id: strawberry.ID | None = None
    topic_id: strawberry.ID | None = None
    subject_id: strawberry.ID | None = strawberry.field(
        default=None, description="Books mapped to a topic of this subject."
    )
    grade_id: strawberry.ID | None = strawberry.field(
        default=None, description="Books mapped to a topic of this grade."
    )
    category_id: strawberry.ID | None = strawberry.field(
        default=None, description="Books mapped to a topic of this category."
    )
    search: str | None = strawberry.field(
        default=None,
        description="Full-text search over title, tags and description (web-search syntax: "
        '"quoted phrases", -excluded, or). Results are ordered by relevance.',
    )


@strawberry.input(description="Every given condition must hold.")
class TopicFilter:
    subject_id: strawberry.ID | None = None
    grade_id: strawberry.ID | None = None
    category_id: strawberry.ID | None = None
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of the label."
    )


# --- the compiled read path (graphql_schema/execution/compiler): fields -> tables and columns ---
_BY_ID = (Order("id"),)
_BY_WEIGHT = (Order("weight", descending=True, kind=float), Order("topic_id"))
_TOPIC_BOOKS = (Order("weight", descending=True, kind=float), Order("book_id", descending=True))
SQL: dict[str, Table] = {
    "Publisher": Table(
        "publishers",
        {
            "id": Column("id"),
            "name": Column("name"),
            "books": Connection(
                "BookConnection",
                "BookEdge",
                "Book",
                table="books",
                order=_BY_ID,
                key="publisher_id",
            ),
        },
    ),
    "Book": Table(
        "books",
        {
            "id": Column("id"),
            "title": Column("title"),
            "description": Column("description", nullable=True),
            "tags": Column("tags", "text[]"),
            "updatedAt": Column("updated_at", "datetime"),
            "publisher": Ref("Publisher", "publisher_id"),
            "topics": Children("BookTopic", "book_id", _BY_WEIGHT),
        },
    ),
    "BookTopic": Table(
        "topic_book_mappings",
        {"weight": Column("weight", "float"), "topic": Ref("Topic", "topic_id", nullable=False)},
    ),
    "Topic": Table(
        "topics",
        {
            "id": Column("id"),
            "label": Column("label"),
            "subject": Ref("Subject", "subject_id"),
            "grade": Ref("Grade", "grade_id"),
            "category": Ref("Category", "category_id"),
            "books": Connection(
                "TopicBookConnection",
                "TopicBookEdge",
                "Book",
                table="topic_book_mappings",
                order=_TOPIC_BOOKS,
                key="topic_id",
                node_column="book_id",
                edge_fields={"weight": Column("weight", "float")},
            ),
        },
    ),
}
_MAPPED = ("topic_book_mappings", "book_id", "topic_id")
QUERY_SQL: dict[str, FieldSql] = {
    "publisher": Lookup("Publisher"),
    "book": Lookup("Book"),
    "topic": Lookup("Topic"),
    "publishers": Connection(
        "PublisherConnection", "PublisherEdge", "Publisher", table="publishers", order=_BY_ID
    ),
    "books": Connection(
        "BookConnection",
        "BookEdge",
        "Book",
        table="books",
        order=_BY_ID,
        filters={
            "publisherId": Eq("publisher_id"),
            "topicId": Through(*_MAPPED, "topic_id"),
            "subjectId": Through(*_MAPPED, "subject_id", via="topics"),
            "gradeId": Through(*_MAPPED, "grade_id", via="topics"),
            "categoryId": Through(*_MAPPED, "category_id", via="topics"),
            "search": FullText("search_vector"),
        },
    ),
    "topics": Connection(
        "TopicConnection",
        "TopicEdge",
        "Topic",
        table="topics",
        order=_BY_ID,
        filters={
            "subjectId": Eq("subject_id"),
            "gradeId": Eq("grade_id"),
            "categoryId": Eq("category_id"),
            "search": Contains("label"),
        },
    ),
}
