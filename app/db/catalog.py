"""Catalog reads: publishers, books, topics and their mappings. Every function is set-based."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import and_, exists, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.db.driver import driver_rows
from app.db.models import Book, Publisher, Topic, TopicBookMapping
from app.db.pagination import Page, PageArgs, decode_cursor
from app.db.records import AnySelect, Record

PUBLISHER_COLUMNS = (Publisher.id, Publisher.name)
BOOK_COLUMNS = (
    Book.id,
    Book.publisher_id,
    Book.title,
    Book.description,
    Book.tags,
    Book.updated_at,
)
TOPIC_COLUMNS = (Topic.id, Topic.label, Topic.subject_id, Topic.grade_id, Topic.category_id)
MAX_SEARCH_LENGTH = 200


@dataclass(frozen=True, slots=True)
class BookFilter:
    publisher_id: str | None = None
    topic_id: str | None = None
    subject_id: str | None = None
    grade_id: str | None = None
    category_id: str | None = None
    search: str | None = None


@dataclass(frozen=True, slots=True)
class TopicFilter:
    subject_id: str | None = None
    grade_id: str | None = None
    category_id: str | None = None
    search: str | None = None


# Loader queries are plain driver SQL (`= ANY($1)`): no statement building or compiling per
# batch, a third of the CPU of the equivalent Core select with an expanding IN (bench/).
_PUBLISHERS_BY_IDS = "SELECT id, name FROM publishers WHERE id = ANY($1::text[])"
_BOOKS_BY_IDS = (
    "SELECT id, publisher_id, title, description, tags, updated_at FROM books"
    " WHERE id = ANY($1::text[])"
)
_BOOKS_WITH_PUBLISHERS_BY_IDS = (
    "SELECT b.id, b.publisher_id, b.title, b.description, b.tags, b.updated_at,"
    " p.name AS publisher_name FROM books b LEFT JOIN publishers p ON p.id = b.publisher_id"
    " WHERE b.id = ANY($1::text[])"
)
_TOPICS_BY_IDS = (
    "SELECT id, label, subject_id, grade_id, category_id FROM topics WHERE id = ANY($1::text[])"
)
_MAPPINGS_BY_BOOKS = (
    "SELECT book_id, topic_id, weight FROM topic_book_mappings WHERE book_id = ANY($1::text[])"
    " ORDER BY book_id, weight DESC, topic_id"
)


async def by_ids(conn: AsyncConnection, sql: str, ids: Sequence[str]) -> list[Record]:
    """Rows of a `... = ANY($1::text[])` query, sent to the driver as is."""
    return list((await conn.exec_driver_sql(sql, (list(ids),))).all())


async def publishers_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    return await by_ids(conn, _PUBLISHERS_BY_IDS, ids)


async def list_publishers(conn: AsyncConnection, page: PageArgs) -> Page[Record]:
    query = select(*PUBLISHER_COLUMNS).order_by(Publisher.id).limit(page.first + 1)
    if page.after is not None:
        (after_id,) = decode_cursor(page.after, (str,))
        query = query.where(Publisher.id > after_id)
    rows = (await conn.execute(query)).all()
    return Page.from_rows(rows, page.first, lambda r: (r.id,))


async def books_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    return await by_ids(conn, _BOOKS_BY_IDS, ids)


class PublisherRow(NamedTuple):
    """A publisher as `publishers_by_ids` reads it."""

    id: str
    name: str


async def books_with_publishers_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    """Books as `books_by_ids` reads them, each with its publisher's name (`publisher_name`,
    null when the publisher is unknown): a book and its publisher in one statement."""
    return await by_ids(conn, _BOOKS_WITH_PUBLISHERS_BY_IDS, ids)


class BookWithPublisherRow(NamedTuple):
    """A row of `books_with_publishers_by_ids`, as the driver reads it."""

    id: str
    publisher_id: str
    title: str
    description: str | None
    tags: list[str]
    updated_at: Any
    publisher_name: str | None


async def read_books_with_publishers(
    engine: AsyncEngine, ids: Sequence[str]
) -> list[BookWithPublisherRow]:
    """`books_with_publishers_by_ids` (the same statement) on the pooled asyncpg connection
    itself (app.db.driver): the books of every recommendation list a page shows."""
    return await driver_rows(
        engine, _BOOKS_WITH_PUBLISHERS_BY_IDS, (list(ids),), BookWithPublisherRow
    )


def _book_filter(query: AnySelect, flt: BookFilter) -> AnySelect:
    m = TopicBookMapping
    if flt.publisher_id is not None:
        query = query.where(Book.publisher_id == flt.publisher_id)
    if flt.topic_id is not None:
        query = query.where(exists().where(m.book_id == Book.id, m.topic_id == flt.topic_id))
    for column, value in (
        (Topic.subject_id, flt.subject_id),
        (Topic.grade_id, flt.grade_id),
        (Topic.category_id, flt.category_id),
    ):
        if value is not None:
            query = query.where(
                exists()
                .where(m.book_id == Book.id, Topic.id == m.topic_id, column == value)
                .correlate(Book)
            )
    return query


async def list_books(conn: AsyncConnection, flt: BookFilter, page: PageArgs) -> Page[Record]:
    """Books by id, or by relevance (then id) when the filter has a text search."""
    query: AnySelect = _book_filter(select(*BOOK_COLUMNS), flt).limit(page.first + 1)
    search = (flt.search or "").strip()
    if not search:
        query = query.order_by(Book.id)
        if page.after is not None:
            (after_id,) = decode_cursor(page.after, (str,))
            query = query.where(Book.id > after_id)
        rows = (await conn.execute(query)).all()
        return Page.from_rows(rows, page.first, lambda r: (r.id,))
    tsquery = func.websearch_to_tsquery(text("'english'"), search[:MAX_SEARCH_LENGTH])
    rank: Any = func.ts_rank(Book.search_vector, tsquery).cast(_float8()).label("rank")
    query = query.add_columns(rank).where(Book.search_vector.op("@@")(tsquery))
    query = query.order_by(rank.desc(), Book.id)
    if page.after is not None:
        after_rank, after_id = decode_cursor(page.after, (float, str))
        query = query.where(or_(rank < after_rank, and_(rank == after_rank, Book.id > after_id)))
    rows = (await conn.execute(query)).all()
    return Page.from_rows(rows, page.first, lambda r: (r.rank, r.id))


def _float8() -> type:
    from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION

    return DOUBLE_PRECISION


@dataclass(frozen=True, slots=True)
class ChildPage:
    """Which page of each parent's children to load: one query serves every parent."""

    first: int
    after: str | None


async def books_by_publishers(
    conn: AsyncConnection, publisher_ids: Sequence[str], page: ChildPage
) -> dict[str, Page[Record]]:
    after_id = decode_cursor(page.after, (str,))[0] if page.after else ""
    sql = text(
        """
        SELECT b.id, b.publisher_id, b.title, b.description, b.tags, b.updated_at
        FROM unnest(CAST(:ids AS text[])) AS p(id)
        CROSS JOIN LATERAL (
            SELECT * FROM books
            WHERE books.publisher_id = p.id AND books.id > :after_id
            ORDER BY books.id LIMIT :n
        ) AS b
        """
    )
    rows = (
        await conn.execute(
            sql, {"ids": list(publisher_ids), "after_id": after_id, "n": page.first + 1}
        )
    ).all()
    grouped: dict[str, list[Record]] = {pid: [] for pid in publisher_ids}
    for row in rows:
        grouped[row.publisher_id].append(row)
    return {
        pid: Page.from_rows(items, page.first, lambda r: (r.id,)) for pid, items in grouped.items()
    }


async def books_by_topics(
    conn: AsyncConnection, topic_ids: Sequence[str], page: ChildPage
) -> dict[str, Page[Record]]:
    """Each topic's books, heaviest mapping first (ties by book id, descending)."""
    if page.after:
        after_weight, after_id = decode_cursor(page.after, (float, str))
        keyset = "AND (m.weight, m.book_id) < (:after_weight, :after_id)"
        params = {"after_weight": after_weight, "after_id": after_id}
    else:
        keyset, params = "", {}
    sql = text(
        f"""
        SELECT t.id AS topic_id, mb.weight, b.id, b.publisher_id, b.title, b.description,
               b.tags, b.updated_at
        FROM unnest(CAST(:ids AS text[])) AS t(id)
        CROSS JOIN LATERAL (
            SELECT m.book_id, m.weight FROM topic_book_mappings m
            WHERE m.topic_id = t.id {keyset}
            ORDER BY m.weight DESC, m.book_id DESC LIMIT :n
        ) AS mb
        JOIN books b ON b.id = mb.book_id
        ORDER BY t.id, mb.weight DESC, mb.book_id DESC
        """
    )
    params |= {"ids": list(topic_ids), "n": page.first + 1}
    rows = (await conn.execute(sql, params)).all()
    grouped: dict[str, list[Record]] = {tid: [] for tid in topic_ids}
    for row in rows:
        grouped[row.topic_id].append(row)
    return {
        tid: Page.from_rows(items, page.first, lambda r: (r.weight, r.id))
        for tid, items in grouped.items()
    }


async def mappings_by_books(
    conn: AsyncConnection, book_ids: Sequence[str]
) -> dict[str, list[tuple[str, float]]]:
    """(topic id, weight) pairs of each book, heaviest first."""
    rows = await by_ids(conn, _MAPPINGS_BY_BOOKS, book_ids)
    out: dict[str, list[tuple[str, float]]] = {bid: [] for bid in book_ids}
    for book_id, topic_id, weight in rows:
        out[book_id].append((topic_id, weight))
    return out


async def topics_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    return await by_ids(conn, _TOPICS_BY_IDS, ids)


async def list_topics(conn: AsyncConnection, flt: TopicFilter, page: PageArgs) -> Page[Record]:
    query = select(*TOPIC_COLUMNS).order_by(Topic.id).limit(page.first + 1)
    for column, value in (
        (Topic.subject_id, flt.subject_id),
        (Topic.grade_id, flt.grade_id),
        (Topic.category_id, flt.category_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if flt.search and flt.search.strip():
        pattern = "%" + _escape_like(flt.search.strip()[:MAX_SEARCH_LENGTH]) + "%"
        query = query.where(Topic.label.ilike(pattern, escape="\\"))
    if page.after is not None:
        (after_id,) = decode_cursor(page.after, (str,))
        query = query.where(Topic.id > after_id)
    rows = (await conn.execute(query)).all()
    return Page.from_rows(rows, page.first, lambda r: (r.id,))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
