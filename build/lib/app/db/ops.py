"""Operational reads for /metrics and /readyz."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.models import DeadLetter


async def dead_letter_count(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(DeadLetter))).scalar_one())
