"""Trusted documents (persisted queries): registered GraphQL texts keyed by their SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.models import TrustedDocument


def digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


async def register(conn: AsyncConnection, body: str, name: str | None) -> str:
    """Store a document (idempotent) and return its hex digest."""
    key = digest(body)
    await conn.execute(
        insert(TrustedDocument)
        .values(id=key, body=body, name=name)
        .on_conflict_do_nothing(index_elements=[TrustedDocument.id])
    )
    return key


async def bodies_by_ids(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, str]:
    query = select(TrustedDocument.id, TrustedDocument.body).where(TrustedDocument.id.in_(ids))
    return {row.id: row.body for row in (await conn.execute(query)).all()}


async def list_documents(conn: AsyncConnection) -> list[tuple[str, str | None]]:
    query = select(TrustedDocument.id, TrustedDocument.name).order_by(TrustedDocument.name)
    return [(row.id, row.name) for row in (await conn.execute(query)).all()]
