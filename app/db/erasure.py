"""Erasure of one student: every row that names them (or their study sets) goes; aggregates stay,
since they keep no identity. The analytics aggregates (distinct students) drop the student's
counts on the worker's next analytics run: deleting the events marks their days (migration 0005)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table, bindparam, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.models import Base, DeadLetter, EngagementEvent, StudySet

STUDENT_ENTITIES = ("study_sets", "engagement_events")


def like_any(values: Sequence[str]) -> list[str]:
    """LIKE patterns that match a value anywhere in a text: as a JSON string, or quoted the way
    rejection reasons name values ('value')."""
    escaped = [v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for v in values]
    return [f'%"{v}"%' for v in escaped] + [f"%'{v}'%" for v in escaped]


async def erase_student(conn: AsyncConnection, user_id: str) -> tuple[dict[str, int], list[str]]:
    """Delete the student's rows in one transaction; return (rows per table, study set ids)."""
    set_ids = list(
        (await conn.execute(select(StudySet.id).where(StudySet.user_id == user_id))).scalars()
    )
    event_ids = list(
        (
            await conn.execute(
                select(EngagementEvent.id).where(EngagementEvent.study_set_id.in_(set_ids))
            )
        ).scalars()
    )
    # The student's rejected study sets (never stored) are known only by their dead letters:
    # their ids go too, and so does whatever names them (events sent for them, reasons).
    rejected_sets = (
        await conn.execute(
            select(DeadLetter.record_id).where(
                (DeadLetter.user_id == user_id) & (DeadLetter.entity == "study_sets")
            )
        )
    ).scalars()
    patterns = like_any([user_id, *set_ids, *event_ids, *(r for r in rejected_sets if r)])
    named_letters = (DeadLetter.user_id == user_id) | (
        DeadLetter.entity.in_(STUDENT_ENTITIES)
        & text("(payload::text || ' ' || reason) LIKE ANY(:patterns)").bindparams(
            bindparam("patterns", patterns)
        )
    )
    rejected_ids = (await conn.execute(select(DeadLetter.record_id).where(named_letters))).scalars()
    patterns += like_any([r for r in rejected_ids if r])
    dead = await conn.execute(delete(DeadLetter).where(named_letters))
    counts: dict[str, int] = {"dead_letters": int(dead.rowcount or 0)}
    for table in reversed(Base.metadata.sorted_tables):  # children before study_sets
        if table.name != "dead_letters":
            counts[table.name] = await _delete_rows(conn, table, user_id, set_ids)
    scrubbed = await conn.execute(
        text(
            """
            UPDATE ingestion_batches SET result = jsonb_set(result, '{rejected}', (
                SELECT coalesce(jsonb_agg(e), '[]'::jsonb)
                FROM jsonb_array_elements(result->'rejected') AS e
                WHERE NOT (e::text LIKE ANY(:patterns))))
            WHERE entity IN ('study_sets', 'engagement_events')
              AND result::text LIKE ANY(:patterns)
            """
        ).bindparams(bindparam("patterns", patterns))
    )
    counts["ingestion_batches"] = int(scrubbed.rowcount or 0)
    return counts, set_ids


async def _delete_rows(
    conn: AsyncConnection, table: Table, user_id: str, set_ids: Sequence[str]
) -> int:
    if "user_id" in table.c:
        result = await conn.execute(delete(table).where(table.c.user_id == user_id))
    elif "study_set_id" in table.c and set_ids:
        result = await conn.execute(delete(table).where(table.c.study_set_id.in_(set_ids)))
    else:
        return 0
    return int(result.rowcount or 0)
