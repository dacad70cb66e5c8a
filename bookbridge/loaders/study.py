"""Loaders for study sets and their canonical topics."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from bookbridge.app.db import study
from bookbridge.app.db.records import Record
from bookbridge.loaders.base import ReadLoader, by_id


class StudySetByIdLoader(ReadLoader[str, Record | None]):
    fetch = staticmethod(by_id(study.study_sets_by_ids))  # type: ignore[assignment]


class TopicIdsByStudySetLoader(ReadLoader[str, list[str]]):
    async def fetch(self, conn: AsyncConnection, keys: list[str]) -> list[list[str]]:
        found = await study.topic_ids_by_study_sets(conn, keys)
        return [found[key] for key in keys]
