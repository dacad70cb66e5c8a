"""The committed schema.graphql is the live schema, and the migrations build the models' tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db.models import Base, include_name
from app.runtime.services import Services
from graphql_schema.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_committed_schema_matches_live_schema() -> None:
    committed = (ROOT / "schema.graphql").read_text()
    assert committed.strip() == build_schema().as_str().strip(), "run `make schema` and commit"


async def test_migrations_match_models(services: Services) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        opts = {"compare_type": True, "include_name": include_name}  # as migrations/env.py
        context = MigrationContext.configure(sync_conn, opts=opts)
        return list(compare_metadata(context, Base.metadata))

    async with services.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []
