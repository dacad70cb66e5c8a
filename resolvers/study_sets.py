"""Root fields for study sets."""

from __future__ import annotations

from typing import cast

import strawberry

from app.db import study
from app.db.pagination import Page
from app.db.records import Record
from graphql_schema.types.context import Info
from graphql_schema.types.pagination import page_args
from graphql_schema.types.study_set import StudySet, StudySetConnection, StudySetFilter


async def study_set(info: Info, id: strawberry.ID) -> StudySet | None:
    row = await info.context.loaders.study_set_by_id.load(str(id))
    return StudySet.from_row(row) if row else None


async def study_sets(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: StudySetFilter | None = None,
) -> StudySetConnection:
    info.context.viewer.require_student_reader()
    args = page_args(info, first, after)
    flt = study.StudySetFilter(
        user_id=str(filter.user_id) if filter and filter.user_id else None,
        subject_id=str(filter.subject_id) if filter and filter.subject_id else None,
        grade_id=str(filter.grade_id) if filter and filter.grade_id else None,
    )
    page = await study.read_study_sets(
        info.context.services.read_engine, flt, args, info.context.viewer
    )
    # the nodes' topics came in the page's own statement: no topic batches after it
    found = study.page_topics(page.items)
    loaders = info.context.loaders
    loaders.topic_ids_by_study_set.put({sid: [t.id for t in ts] for sid, ts in found.items()})
    rows = {t.id: cast(Record, t) for ts in found.values() for t in ts}
    loaders.topic_by_id.put(cast(dict[str, Record | None], rows))
    return StudySetConnection.of(cast(Page[Record], page))
