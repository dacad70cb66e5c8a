"""Study-set reads. Callers pass the viewer's scope; nothing here leaks across students."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.viewer import Viewer
from app.db.models import StudySet, StudySetTopic
from app.db.pagination import Page, PageArgs, decode_cursor
from app.db.records import Record

STUDY_SET_COLUMNS = (
    StudySet.id,
    StudySet.user_id,
    StudySet.subject_id,
    StudySet.grade_id,
    StudySet.title,
    StudySet.created_at,
)


@dataclass(frozen=True, slots=True)
class StudySetFilter:
    user_id: str | None = None
    subject_id: str | None = None
    grade_id: str | None = None


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """The study sets a viewer may read: all for an admin, a student's own, else none."""
    if viewer.is_admin:
        return true()
    if viewer.role == "student" and viewer.user_id is not None:
        return StudySet.user_id == viewer.user_id
    return false()


async def study_sets_by_ids(
    conn: AsyncConnection, ids: Sequence[str], viewer: Viewer
) -> list[Record]:
    query = select(*STUDY_SET_COLUMNS).where(StudySet.id.in_(ids), visible_to(viewer))
    return list((await conn.execute(query)).all())


async def list_study_sets(
    conn: AsyncConnection, flt: StudySetFilter, page: PageArgs, viewer: Viewer
) -> Page[Record]:
    query = (
        select(*STUDY_SET_COLUMNS)
        .where(visible_to(viewer))
        .order_by(StudySet.id)
        .limit(page.first + 1)
    )
    for column, value in (
        (StudySet.user_id, flt.user_id),
        (StudySet.subject_id, flt.subject_id),
        (StudySet.grade_id, flt.grade_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if page.after is not None:
        (after_id,) = decode_cursor(page.after, (str,))
        query = query.where(StudySet.id > after_id)
    rows = (await conn.execute(query)).all()
    return Page.from_rows(rows, page.first, lambda r: (r.id,))


async def topic_ids_by_study_sets(
    conn: AsyncConnection, study_set_ids: Sequence[str], viewer: Viewer
) -> dict[str, list[str]]:
    query = (
        select(StudySetTopic.study_set_id, StudySetTopic.topic_id)
        .join(StudySet, StudySet.id == StudySetTopic.study_set_id)
        .where(StudySetTopic.study_set_id.in_(study_set_ids), visible_to(viewer))
        .order_by(StudySetTopic.study_set_id, StudySetTopic.topic_id)
    )
    out: dict[str, list[str]] = {sid: [] for sid in study_set_ids}
    for study_set_id, topic_id in (await conn.execute(query)).all():
        out[study_set_id].append(topic_id)
    return out
