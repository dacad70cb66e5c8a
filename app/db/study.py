"""Study-set reads. Callers pass the viewer's scope; nothing here leaks across students."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson
from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.viewer import Viewer
from app.db.driver import driver_rows
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


def visible_owner(viewer: Viewer) -> str | bool:
    """Whose study sets a viewer may read: True for all (an admin), a student's own user id,
    else False (none). `visible_to` and `list_study_sets` both render this one policy."""
    if viewer.is_admin:
        return True
    if viewer.role == "student" and viewer.user_id is not None:
        return viewer.user_id
    return False


def visible_to(viewer: Viewer) -> ColumnElement[bool]:
    """`visible_owner` as a condition on study sets."""
    owner = visible_owner(viewer)
    if isinstance(owner, bool):
        return true() if owner else false()
    return StudySet.user_id == owner


class TopicRow(NamedTuple):
    """A topic as `catalog.topics_by_ids` reads it (the same attributes as its rows)."""

    id: str
    label: str
    subject_id: str | None
    grade_id: str | None
    category_id: str | None


def page_topics(rows: Sequence[Any]) -> dict[str, list[TopicRow]]:
    """Per study set of a page read `with_topics`: its topics, in topic id order."""
    out = {}
    for r in rows:
        raw = r.topics_json  # decoded by the driver's json codec (text without it)
        found = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
        out[r.id] = [TopicRow(*t) for t in found or ()]
    return out


async def study_sets_by_ids(
    conn: AsyncConnection, ids: Sequence[str], viewer: Viewer
) -> list[Record]:
    query = select(*STUDY_SET_COLUMNS).where(StudySet.id.in_(ids), visible_to(viewer))
    return list((await conn.execute(query)).all())


# A study set's canonical topics as JSON rows [id, label, subject, grade, category], in the
# order of `topic_ids_by_study_sets`: read with the page itself (`page_topics`).
_PAGE = (
    "SELECT s.id, s.user_id, s.subject_id, s.grade_id, s.title, s.created_at,"
    " (SELECT json_agg(json_build_array(t.id, t.label, t.subject_id, t.grade_id, t.category_id)"
    " ORDER BY t.id) FROM study_set_topics st JOIN topics t ON t.id = st.topic_id"
    " WHERE st.study_set_id = s.id) AS topics_json"
    " FROM study_sets s WHERE {where} ORDER BY s.id LIMIT ${limit}"
)


class StudySetPageRow(NamedTuple):
    """A row of a study-set page (`_PAGE`), as the driver reads it."""

    id: str
    user_id: str
    subject_id: str | None
    grade_id: str | None
    title: str
    created_at: Any
    topics_json: Any


def _page_statement(
    flt: StudySetFilter, page: PageArgs, viewer: Viewer
) -> tuple[str, tuple[Any, ...]]:
    """The page's statement and parameters: the viewer's scope (`visible_owner`), the filter
    and the keyset, one more row than the page to tell whether another follows."""
    conds: list[str] = []
    params: list[Any] = []

    def cond(column: str, op: str, value: str) -> None:
        params.append(value)
        conds.append(f"s.{column} {op} ${len(params)}")

    owner = visible_owner(viewer)
    if isinstance(owner, str):
        cond("user_id", "=", owner)
    elif not owner:
        conds.append("false")
    for column, value in (
        ("user_id", flt.user_id),
        ("subject_id", flt.subject_id),
        ("grade_id", flt.grade_id),
    ):
        if value is not None:
            cond(column, "=", value)
    if page.after is not None:
        (after_id,) = decode_cursor(page.after, (str,))
        cond("id", ">", after_id)
    params.append(page.first + 1)
    return _PAGE.format(where=" AND ".join(conds) or "true", limit=len(params)), tuple(params)


async def list_study_sets(
    conn: AsyncConnection, flt: StudySetFilter, page: PageArgs, viewer: Viewer
) -> Page[Record]:
    """A page of the study sets the viewer may read (`visible_owner`, in the statement), each row
    with its topics (`topics_json`): the page and its topics cost one statement. Plain driver
    SQL, as the loaders' queries: no statement building per request."""
    sql, params = _page_statement(flt, page, viewer)
    rows = (await conn.exec_driver_sql(sql, params)).all()
    return Page.from_rows(rows, page.first, lambda r: (r.id,))


async def read_study_sets(
    engine: AsyncEngine, flt: StudySetFilter, page: PageArgs, viewer: Viewer
) -> Page[StudySetPageRow]:
    """`list_study_sets`' page (the same statement) on the pooled asyncpg connection itself
    (app.db.driver): the per-request read of a student's home page, without SQLAlchemy's
    execution layer."""
    sql, params = _page_statement(flt, page, viewer)
    rows = await driver_rows(engine, sql, params, StudySetPageRow)
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
