"""Migration 0006 turns book_neighbours into a table partitioned by kind and back, keeping every
row, of the kinds the service writes and of any other."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db.migrate import alembic_config, upgrade_async
from app.runtime.services import Services

ROWS = {
    (kind, f"b{i}", f"n{i}", i / 10)
    for kind in ("content", "collab", "collab_alt", "legacy")
    for i in range(5)
}


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(command.downgrade, alembic_config(url), revision)


async def state(conn: AsyncConnection) -> tuple[str, set[tuple[str, str, str, float]], set[str]]:
    """book_neighbours' relkind ('p' partitioned, 'r' plain), its rows, its partitions."""
    kind = (
        await conn.execute(
            text("SELECT relkind::text FROM pg_class WHERE relname = 'book_neighbours'")
        )
    ).scalar_one()
    rows = await conn.execute(
        text("SELECT kind, book_id, neighbour_id, score FROM book_neighbours")
    )
    parts = await conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'book_neighbours'::regclass"
        )
    )
    return kind, {tuple(r) for r in rows}, set(parts.scalars())


async def test_upgrade_and_downgrade_keep_the_rows(services: Services, database_url: str) -> None:
    try:
        await downgrade(database_url, "0005b")
        async with services.engine.begin() as conn:
            for row in ROWS:
                await conn.execute(
                    text("INSERT INTO book_neighbours VALUES (:k, :b, :n, :s)"),
                    dict(zip("kbns", row, strict=True)),
                )
        await upgrade_async(database_url, "0006")
        async with services.engine.connect() as conn:
            relkind, rows, parts = await state(conn)
        assert relkind == "p" and rows == ROWS
        assert parts == {
            "book_neighbours_content",
            "book_neighbours_collab",
            "book_neighbours_collab_alt",
            "book_neighbours_legacy",  # a kind found in the table gets a partition too
        }
        await downgrade(database_url, "0005b")
        async with services.engine.connect() as conn:
            relkind, rows, parts = await state(conn)
        assert relkind == "r" and rows == ROWS and parts == set()
    finally:
        await upgrade_async(database_url)
        async with services.engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS book_neighbours_legacy"))
