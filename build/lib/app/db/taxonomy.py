"""Taxonomy reads: subjects, grades and the category tree. Small tables, read whole or by id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.catalog import by_ids
from app.db.models import Category, Grade, Subject
from app.db.records import Record

CATEGORY_COLUMNS = (Category.id, Category.name, Category.subject_id, Category.parent_id)


async def all_subjects(conn: AsyncConnection) -> list[Record]:
    return list((await conn.execute(select(Subject.id, Subject.name).order_by(Subject.id))).all())


async def all_grades(conn: AsyncConnection) -> list[Record]:
    return list((await conn.execute(select(Grade.id, Grade.name).order_by(Grade.id))).all())


async def all_categories(conn: AsyncConnection) -> list[Record]:
    query = select(*CATEGORY_COLUMNS).order_by(Category.id)
    return list((await conn.execute(query)).all())


async def subjects_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    return await by_ids(conn, "SELECT id, name FROM subjects WHERE id = ANY($1::text[])", ids)


async def grades_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    return await by_ids(conn, "SELECT id, name FROM grades WHERE id = ANY($1::text[])", ids)


async def categories_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    sql = "SELECT id, name, subject_id, parent_id FROM categories WHERE id = ANY($1::text[])"
    return await by_ids(conn, sql, ids)


async def categories_by_parents(
    conn: AsyncConnection, parent_ids: Sequence[str]
) -> dict[str, list[Record]]:
    query = (
        select(*CATEGORY_COLUMNS)
        .where(Category.parent_id.in_(parent_ids))
        .order_by(Category.parent_id, Category.id)
    )
    out: dict[str, list[Record]] = {pid: [] for pid in parent_ids}
    for row in (await conn.execute(query)).all():
        out[row.parent_id].append(row)
    return out
