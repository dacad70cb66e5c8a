"""Taxonomy reads: subjects, grades and the category tree. Small tables, read whole or by id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bookbridge.app.db.models import Category, Grade, Subject
from bookbridge.app.db.records import Record

CATEGORY_COLUMNS = (Category.id, Category.name, Category.subject_id, Category.parent_id)


async def all_subjects(conn: AsyncConnection) -> list[Record]:
    return list((await conn.execute(select(Subject.id, Subject.name).order_by(Subject.id))).all())


async def all_grades(conn: AsyncConnection) -> list[Record]:
    return list((await conn.execute(select(Grade.id, Grade.name).order_by(Grade.id))).all())


async def all_categories(conn: AsyncConnection) -> list[Record]:
    query = select(*CATEGORY_COLUMNS).order_by(Category.id)
    return list((await conn.execute(query)).all())


async def subjects_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    query = select(Subject.id, Subject.name).where(Subject.id.in_(ids))
    return list((await conn.execute(query)).all())


async def grades_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    query = select(Grade.id, Grade.name).where(Grade.id.in_(ids))
    return list((await conn.execute(query)).all())


async def categories_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> list[Record]:
    query = select(*CATEGORY_COLUMNS).where(Category.id.in_(ids))
    return list((await conn.execute(query)).all())


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
