"""Root fields for the taxonomy: small lists, read whole."""

from __future__ import annotations

from app.db import taxonomy
from graphql_schema.types.context import Info
from graphql_schema.types.taxonomy import Category, Grade, Subject


async def subjects(info: Info) -> list[Subject]:
    async with info.context.services.read_engine.connect() as conn:
        return [Subject.from_row(row) for row in await taxonomy.all_subjects(conn)]


async def grades(info: Info) -> list[Grade]:
    async with info.context.services.read_engine.connect() as conn:
        return [Grade.from_row(row) for row in await taxonomy.all_grades(conn)]


async def categories(info: Info) -> list[Category]:
    async with info.context.services.read_engine.connect() as conn:
        return [Category.from_row(row) for row in await taxonomy.all_categories(conn)]
