"""StudySet: a student's set of study material, tied to canonical topics."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry

from app.db.pagination import Page
from app.db.records import Record
from graphql_schema.execution.compiler.mapping import (
    Column,
    Connection,
    Eq,
    FieldSql,
    Linked,
    Order,
    Ref,
    StoredList,
    Table,
)
from graphql_schema.types.catalog import Topic
from graphql_schema.types.context import Info
from graphql_schema.types.pagination import PageInfo
from graphql_schema.types.recommendation import RecommendationList
from graphql_schema.types.taxonomy import Grade, Subject, load_grade, load_subject
from loaders.base import MISSING


@strawberry.type(description="A student's study set (student backend's id).")
class StudySet:
    id: strawberry.ID
    user_id: strawberry.ID
    title: str
    created_at: datetime
    subject_id: strawberry.Private[str | None]
    grade_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: Record) -> StudySet:
        return cls(
            id=strawberry.ID(row.id),
            user_id=strawberry.ID(row.user_id),
            title=row.title,
            created_at=row.created_at,
            subject_id=row.subject_id,
            grade_id=row.grade_id,
        )

    @strawberry.field
    async def subject(self, info: Info) -> Subject | None:
        return await load_subject(info, self.subject_id)

    @strawberry.field
    async def grade(self, info: Info) -> Grade | None:
        return await load_grade(info, self.grade_id)

    @strawberry.field(description="The canonical topics this study set is tied to.")
    def topics(self, info: Info) -> list[Topic]:
        # read with the page (resolvers/study_sets.py): a plain value, no batch
        loaders = info.context.loaders
        topic_ids = loaders.topic_ids_by_study_set.peek(self.id)
        if topic_ids is not MISSING:
            rows = [loaders.topic_by_id.peek(t) for t in topic_ids]
            if all(row is not MISSING for row in rows):
                return [Topic.from_row(row) for row in rows if row is not None]
        return cast(list[Topic], self._load_topics(info))

    async def _load_topics(self, info: Info) -> list[Topic]:
        topic_ids = await info.context.loaders.topic_ids_by_study_set.load(self.id)
        rows = await info.context.loaders.topic_by_id.load_many(topic_ids)
        return [Topic.from_row(row) for row in rows if row is not None]

    @strawberry.field(description="Books recommended for this study set.")
    async def recommendations(self, info: Info, first: int | None = 10) -> RecommendationList:
        from resolvers.recommendations import study_set_recommendations

        return await study_set_recommendations(info, str(self.id), first)


@strawberry.type
class StudySetEdge:
    cursor: str
    node: StudySet


@strawberry.type
class StudySetConnection:
    edges: list[StudySetEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: Page[Record]) -> StudySetConnection:
        edges = [
            StudySetEdge(cursor=c, node=StudySet.from_row(r))
            for r, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=PageInfo.of(page))  # type: ignore[arg-type]


@strawberry.input(description="Every given condition must hold.")
class StudySetFilter:
    user_id: strawberry.ID | None = None
    subject_id: strawberry.ID | None = None
    grade_id: strawberry.ID | None = None


# --- the compiled read path (graphql_schema/execution/compiler): fields -> tables and columns ---
# A student's home page (`studySets { ... recommendations }`) in one statement: the student's own
# sets only (`owner`), topics in id order as `app.db.study` reads them, the stored HYBRID list.
_BY_ID = (Order("id"),)
SQL: dict[str, Table] = {
    "StudySet": Table(
        "study_sets",
        {
            "id": Column("id"),
            "userId": Column("user_id"),
            "title": Column("title"),
            "createdAt": Column("created_at", "datetime"),
            "subject": Ref("Subject", "subject_id"),
            "grade": Ref("Grade", "grade_id"),
            "topics": Linked("Topic", "study_set_topics", "study_set_id", "topic_id", _BY_ID),
            "recommendations": StoredList(),
        },
    ),
}
QUERY_SQL: dict[str, FieldSql] = {
    "studySets": Connection(
        "StudySetConnection",
        "StudySetEdge",
        "StudySet",
        table="study_sets",
        order=_BY_ID,
        owner="user_id",
        filters={
            "userId": Eq("user_id", empty_unset=True),
            "subjectId": Eq("subject_id", empty_unset=True),
            "gradeId": Eq("grade_id", empty_unset=True),
        },
    ),
}
