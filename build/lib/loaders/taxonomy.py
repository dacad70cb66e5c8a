"""Loaders for subjects, grades and categories."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import taxonomy
from app.db.records import Record
from loaders.base import ReadLoader, by_id


class SubjectByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(taxonomy.subjects_by_ids))  # type: ignore[assignment]


class GradeByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(taxonomy.grades_by_ids))  # type: ignore[assignment]


class CategoryByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(taxonomy.categories_by_ids))  # type: ignore[assignment]


class CategoriesByParentLoader(ReadLoader[str, list[Record]]):
    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[list[Record]]:
        found = await taxonomy.categories_by_parents(conn, keys)
        return [found[key] for key in keys]
