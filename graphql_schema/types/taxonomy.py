"""Subject, Grade and Category: the taxonomy a topic or study set is placed in."""

from __future__ import annotations

import strawberry

from app.db.records import Record
from graphql_schema.execution.compiler.mapping import (
    All,
    Children,
    Column,
    FieldSql,
    Order,
    Ref,
    Table,
)
from graphql_schema.types.context import Info


@strawberry.type(description="A school subject, e.g. Science.")
class Subject:
    id: strawberry.ID
    name: str

    @classmethod
    def from_row(cls, row: Record) -> Subject:
        return cls(id=strawberry.ID(row.id), name=row.name)


@strawberry.type(description="A grade or reading level, e.g. Young adult.")
class Grade:
    id: strawberry.ID
    name: str

    @classmethod
    def from_row(cls, row: Record) -> Grade:
        return cls(id=strawberry.ID(row.id), name=row.name)


@strawberry.type(description="A node of the category tree: subject -> category -> subcategory.")
class Category:
    id: strawberry.ID
    name: str
    subject_id: strawberry.Private[str | None]
    parent_id: strawberry.Private[str | None]

    @classmethod
    def from_row(cls, row: Record) -> Category:
        return cls(
            id=strawberry.ID(row.id),
            name=row.name,
            subject_id=row.subject_id,
            parent_id=row.parent_id,
        )

    @strawberry.field
    async def subject(self, info: Info) -> Subject | None:
        return await load_subject(info, self.subject_id)

    @strawberry.field(description="The parent category; null for a top-level category.")
    async def parent(self, info: Info) -> Category | None:
        return await load_category(info, self.parent_id)

    @strawberry.field(description="Direct subcategories, by id.")
    async def children(self, info: Info) -> list[Category]:
        rows = await info.context.loaders.categories_by_parent.load(self.id)
        return [Category.from_row(row) for row in rows]


async def load_subject(info: Info, subject_id: str | None) -> Subject | None:
    if subject_id is None:
        return None
    row = await info.context.loaders.subject_by_id.load(subject_id)
    return Subject.from_row(row) if row else None


async def load_grade(info: Info, grade_id: str | None) -> Grade | None:
    if grade_id is None:
        return None
    row = await info.context.loaders.grade_by_id.load(grade_id)
    return Grade.from_row(row) if row else None


async def load_category(info: Info, category_id: str | None) -> Category | None:
    if category_id is None:
        return None
    row = await info.context.loaders.category_by_id.load(category_id)
    return Category.from_row(row) if row else None


# --- the compiled read path (graphql_schema/execution/compiler): fields -> tables and columns ---
_BY_ID = (Order("id"),)
SQL: dict[str, Table] = {
    "Subject": Table("subjects", {"id": Column("id"), "name": Column("name")}),
    "Grade": Table("grades", {"id": Column("id"), "name": Column("name")}),
    "Category": Table(
        "categories",
        {
            "id": Column("id"),
            "name": Column("name"),
            "subject": Ref("Subject", "subject_id"),
            "parent": Ref("Category", "parent_id"),
            "children": Children("Category", "parent_id", _BY_ID),
        },
    ),
}
QUERY_SQL: dict[str, FieldSql] = {
    "subjects": All("Subject", _BY_ID),
    "grades": All("Grade", _BY_ID),
    "categories": All("Category", _BY_ID),
}
