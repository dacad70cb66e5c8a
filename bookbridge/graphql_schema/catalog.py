"""Publisher, Book and Topic: the catalog types, which refer to each other, and their filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from bookbridge.app.db.pagination import Page
from bookbridge.app.db.records import Record
from bookbridge.graphql_schema.context import Info
from bookbridge.graphql_schema.pagination import (
    AFTER_DESCRIPTION,
    FIRST_DESCRIPTION,
    PageInfo,
    page_args,
)
from bookbridge.graphql_schema.taxonomy import (
    Category,
    Grade,
    Subject,
    load_category,
    load_grade,
    load_subject,
)
from bookbridge.loaders.catalog import ChildPageKey


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

    @strawberry.field
    async def publisher(self, info: Info) -> Publisher | None:
        row = await info.context.loaders.publisher_by_id.load(self.publisher_id)
        return Publisher.from_row(row) if row else None

    @strawberry.field(description="The book's topics, heaviest mapping first.")
    async def topics(self, info: Info) -> list[BookTopic]:
        weights = await info.context.loaders.topic_weights_by_book.load(self.id)
        return [BookTopic(topic_id=topic_id, weight=weight) for topic_id, weight in weights]


@strawberry.type(description="A topic a book is mapped to, with the mapping's weight.")
class BookTopic:
    weight: float
    topic_id: strawberry.Private[str]

    @strawberry.field
    async def topic(self, info: Info) -> Topic:
        row = await info.context.loaders.topic_by_id.load(self.topic_id)
        assert row is not None, "a mapping's topic exists (foreign key)"
        return Topic.from_row(row)


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
    async def subject(self, info: Info) -> Subject | None:
        return await load_subject(info, self.subject_id)

    @strawberry.field
    async def grade(self, info: Info) -> Grade | None:
        return await load_grade(info, self.grade_id)

    @strawberry.field
    async def category(self, info: Info) -> Category | None:
        return await load_category(info, self.category_id)

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


@strawberry.type
class BookConnection:
    edges: list[BookEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Record]) -> BookConnection:
        edges = [
            BookEdge(cursor=c, node=Book.from_row(r))
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


@strawberry.type(description="A book of a topic, with the weight of its mapping.")
class TopicBookEdge:
    cursor: str
    node: Book
    weight: float


@strawberry.type
class TopicBookConnection:
    edges: list[TopicBookEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Record]) -> TopicBookConnection:
        edges = [
            TopicBookEdge(cursor=c, node=Book.from_row(r), weight=r.weight)
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


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


@strawberry.type
class TopicConnection:
    edges: list[TopicEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Record]) -> TopicConnection:
        edges = [
            TopicEdge(cursor=c, node=Topic.from_row(r))
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


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
