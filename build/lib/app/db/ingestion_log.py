"""Reads of the ingestion log (ingestion_batches)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.errors import InvalidArgument
from app.core.viewer import BatchScope
from app.db.models import IngestionBatch
from app.db.pagination import Page, PageArgs, decode_cursor
from app.db.records import Record

COLUMNS = (
    IngestionBatch.id,
    IngestionBatch.entity,
    IngestionBatch.status,
    IngestionBatch.idempotency_key,
    IngestionBatch.received,
    IngestionBatch.inserted,
    IngestionBatch.updated,
    IngestionBatch.unchanged,
    IngestionBatch.duplicates,
    IngestionBatch.rejected,
    IngestionBatch.result,
    IngestionBatch.client,
    IngestionBatch.started_at,
    IngestionBatch.duration_ms,
)


def _visible(scope: BatchScope) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = true()
    if scope.entities is not None:
        condition = IngestionBatch.entity.in_(sorted(scope.entities))
    if scope.client is not None:
        condition = condition & (IngestionBatch.client == scope.client)
    return condition


async def batch_by_id(conn: AsyncConnection, batch_id: str, scope: BatchScope) -> Record | None:
    query = select(*COLUMNS).where(IngestionBatch.id == batch_id, _visible(scope))
    return (await conn.execute(query)).one_or_none()


async def list_batches(
    conn: AsyncConnection, page: PageArgs, entity: str | None, scope: BatchScope
) -> Page[Record]:
    """Newest first; the cursor is (started_at, id). Only the batches `scope` may see."""
    query = (
        select(*COLUMNS)
        .where(_visible(scope))
        .order_by(IngestionBatch.started_at.desc(), IngestionBatch.id.desc())
        .limit(page.first + 1)
    )
    if entity is not None:
        query = query.where(IngestionBatch.entity == entity)
    if page.after is not None:
        started, batch_id = decode_cursor(page.after, (str, str))
        try:
            when = datetime.fromisoformat(started)
        except ValueError:
            raise InvalidArgument("after", "is not a valid cursor") from None
        query = query.where(
            (IngestionBatch.started_at < when)
            | ((IngestionBatch.started_at == when) & (IngestionBatch.id < batch_id))
        )
    rows = (await conn.execute(query)).all()
    return Page.from_rows(rows, page.first, lambda r: (r.started_at.isoformat(), r.id))
