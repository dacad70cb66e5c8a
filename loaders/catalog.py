"""Loaders for publishers, books, topics and their mappings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import catalog
from app.db.catalog import ChildPage
from app.db.pagination import Page
from app.db.records import Record
from loaders.base import ReadLoader, by_id


@dataclass(frozen=True, slots=True)
class ChildPageKey:
    """A parent id and the page of its children wanted; equal pages share one query."""

    parent_id: str
    first: int
    after: str | None

    @property
    def page(self) -> ChildPage:
        return ChildPage(self.first, self.after)


class PublisherByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(catalog.publishers_by_ids))  # type: ignore[assignment]


class BookByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(catalog.books_by_ids))  # type: ignore[assignment]


class BookWithPublisherByIdLoader(ReadLoader[str, Record | None]):
    """Books with their publisher's name (`publisher_name`): lists of books whose publishers
    are wanted too put both into `book_by_id` and `publisher_by_id` from one statement."""

    fetch = staticmethod(by_id(catalog.books_with_publishers_by_ids))  # type: ignore[assignment]

    async def load_batch(self, keys: list[str]) -> Sequence[Record | None]:
        """`fetch`'s answer, read on the pooled asyncpg connection itself (app.db.driver): one
        statement per page of recommendation lists, without SQLAlchemy's execution layer."""
        rows = await catalog.read_books_with_publishers(self._engine, keys)
        found = {row.id: cast(Record, row) for row in rows}
        values = [found.get(key) for key in keys]
        self._done.update(zip(keys, values, strict=True))
        return values


class TopicByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(catalog.topics_by_ids))  # type: ignore[assignment]


class TopicWeightsByBookLoader(ReadLoader[str, list[tuple[str, float]]]):
    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[list[tuple[str, float]]]:
        found = await catalog.mappings_by_books(conn, keys)
        return [found[key] for key in keys]


async def _child_pages(
    conn: AsyncConnection,
    keys: Sequence[ChildPageKey],
    fetch: Any,
) -> list[Page[Record]]:
    by_page: dict[ChildPage, list[str]] = defaultdict(list)
    for key in keys:
        by_page[key.page].append(key.parent_id)
    pages: dict[ChildPageKey, Page[Record]] = {}
    for page, parent_ids in by_page.items():
        found = await fetch(conn, parent_ids, page)
        for parent_id in parent_ids:
            pages[ChildPageKey(parent_id, page.first, page.after)] = found[parent_id]
    return [pages[key] for key in keys]


class BooksByPublisherLoader(ReadLoader[ChildPageKey, Page[Record]]):
    async def fetch(self, conn: AsyncConnection, keys: list[ChildPageKey]) -> list[Page[Record]]:
        return await _child_pages(conn, keys, catalog.books_by_publishers)


class BooksByTopicLoader(ReadLoader[ChildPageKey, Page[Record]]):
    async def fetch(self, conn: AsyncConnection, keys: list[ChildPageKey]) -> list[Page[Record]]:
        return await _child_pages(conn, keys, catalog.books_by_topics)
