"""Root fields for publishers, books and topics."""

from __future__ import annotations

import strawberry

from app.db import catalog
from graphql_schema.types.catalog import (
    Book,
    BookConnection,
    BookFilter,
    Publisher,
    PublisherConnection,
    Topic,
    TopicConnection,
    TopicFilter,
)
from graphql_schema.types.context import Info
from graphql_schema.types.pagination import page_args


async def publisher(info: Info, id: strawberry.ID) -> Publisher | None:
    row = await info.context.loaders.publisher_by_id.load(str(id))
    return Publisher.from_row(row) if row else None


async def publishers(
    info: Info, first: int | None = None, after: str | None = None
) -> PublisherConnection:
    args = page_args(info, first, after)
    async with info.context.services.read_engine.connect() as conn:
        return PublisherConnection.of(await catalog.list_publishers(conn, args))


async def book(info: Info, id: strawberry.ID) -> Book | None:
    row = await info.context.loaders.book_by_id.load(str(id))
    return Book.from_row(row) if row else None


async def books(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: BookFilter | None = None,
) -> BookConnection:
    args = page_args(info, first, after)
    flt = catalog.BookFilter(
        publisher_id=_opt(filter.publisher_id) if filter else None,
        topic_id=_opt(filter.topic_id) if filter else None,
        subject_id=_opt(filter.subject_id) if filter else None,
        grade_id=_opt(filter.grade_id) if filter else None,
        category_id=_opt(filter.category_id) if filter else None,
        search=filter.search if filter else None,
    )
    async with info.context.services.read_engine.connect() as conn:
        return BookConnection.of(await catalog.list_books(conn, flt, args))


async def topic(info: Info, id: strawberry.ID) -> Topic | None:
    row = await info.context.loaders.topic_by_id.load(str(id))
    return Topic.from_row(row) if row else None


async def topics(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: TopicFilter | None = None,
) -> TopicConnection:
    args = page_args(info, first, after)
    flt = catalog.TopicFilter(
        subject_id=_opt(filter.subject_id) if filter else None,
        grade_id=_opt(filter.grade_id) if filter else None,
        category_id=_opt(filter.category_id) if filter else None,
        search=filter.search if filter else None,
    )
    async with info.context.services.read_engine.connect() as conn:
        return TopicConnection.of(await catalog.list_topics(conn, flt, args))


def _opt(value: strawberry.ID | None) -> str | None:
    return None if value is None else str(value)
