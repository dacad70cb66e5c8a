"""Loaders for study sets and their canonical topics."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.viewer import Viewer
from app.db import study
from app.db.records import Record
from loaders.base import K, ReadLoader, V


class _ViewerLoader(ReadLoader[K, V]):
    """A loader of students' data: its queries are filtered by the viewer it was made for."""

    def __init__(self, engine: AsyncEngine, viewer: Viewer) -> None:
        super().__init__(engine)
        self.viewer = viewer


class StudySetByIdLoader(_ViewerLoader[str, Record | None]):
    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[Record | None]:
        found = {r.id: r for r in await study.study_sets_by_ids(conn, keys, self.viewer)}
        return [found.get(key) for key in keys]


class TopicIdsByStudySetLoader(_ViewerLoader[str, list[str]]):
    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[list[str]]:
        found = await study.topic_ids_by_study_sets(conn, keys, self.viewer)
        return [found[key] for key in keys]
