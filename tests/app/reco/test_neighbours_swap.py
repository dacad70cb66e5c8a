"""Rewriting a kind's neighbour lists by a partition swap (`stage_neighbours`, `swap_neighbours`):
exactly the new rows, other kinds untouched, the old lists kept when a rewrite fails, and
readers during a swap see the old lists or the new ones, never none and never an error."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.reco import data, neighbours
from app.runtime.services import Services

Rows = list[tuple[str, str, float]]


def lists(prefix: str, books: int = 20, k: int = 5) -> Rows:
    return [
        (f"b{i:03d}", f"{prefix}{(i + j) % books:03d}", 1.0 / (j + 1))
        for i in range(books)
        for j in range(1, k + 1)
    ]


async def rows_of(conn: AsyncConnection, kind: str) -> set[tuple[str, str, float]]:
    result = await conn.execute(
        text("SELECT book_id, neighbour_id, score FROM book_neighbours WHERE kind = :kind"),
        {"kind": kind},
    )
    return {(r.book_id, r.neighbour_id, r.score) for r in result}


async def partitions(conn: AsyncConnection) -> dict[str, str]:
    """Partition name -> its bound, and tables left over from staging."""
    result = await conn.execute(
        text(
            "SELECT c.relname, coalesce(pg_get_expr(c.relpartbound, c.oid), '') AS bound "
            "FROM pg_class c WHERE c.relname LIKE 'book\\_neighbours\\_%' AND c.relkind = 'r'"
        )
    )
    return {r.relname: r.bound for r in result}


async def test_a_rewrite_leaves_exactly_the_new_rows_and_other_kinds_untouched(
    services: Services,
) -> None:
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "content", lists("c"))
        await neighbours.replace_neighbours(conn, "collab", lists("x"))
    for version in ("y", "z"):
        async with services.engine.begin() as conn:
            assert await neighbours.replace_neighbours(conn, "collab", lists(version, k=3)) == 60
    async with services.engine.connect() as conn:
        assert await rows_of(conn, "collab") == set(lists("z", k=3))
        assert await rows_of(conn, "content") == set(lists("c"))
        # one partition per kind, under its own name, and no staging table left behind
        found = await partitions(conn)
        assert found["book_neighbours_collab"] == "FOR VALUES IN ('collab')"
        assert not [name for name in found if name.endswith("_next")]


async def test_a_new_kind_gets_a_partition_of_its_own_on_its_first_write(
    services: Services,
) -> None:
    odd = "Trial run: it's new"  # not an identifier: the partition is named by a hash
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "trial", lists("t"))
        await neighbours.replace_neighbours(conn, odd, lists("o"))
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, odd, lists("p"))
    try:
        async with services.engine.connect() as conn:
            assert await rows_of(conn, "trial") == set(lists("t"))
            assert await rows_of(conn, odd) == set(lists("p"))
            found = await partitions(conn)
            assert found["book_neighbours_trial"] == "FOR VALUES IN ('trial')"
            assert found[neighbours.partition_name(odd)] == "FOR VALUES IN ('Trial run: it''s new')"
    finally:  # kinds of this test only: the next tests' database has the migration's kinds
        async with services.engine.begin() as conn:
            for kind in ("trial", odd):
                await conn.execute(text(f"DROP TABLE {neighbours.partition_name(kind)}"))


@pytest.mark.parametrize(
    "bad",
    [
        [("b001", "x002", 0.5), ("b001", "x002", 0.4)],  # the same pair twice: the key build fails
        [("b001", "x002", None)],  # no score: the COPY fails
    ],
    ids=["duplicate-pair", "null-score"],
)
async def test_a_failed_rewrite_leaves_the_old_lists(services: Services, bad: Rows) -> None:
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "collab", lists("x"))
    with pytest.raises((sqlalchemy.exc.DBAPIError, asyncpg.PostgresError)):
        async with services.engine.begin() as conn:
            await neighbours.replace_neighbours(conn, "collab", lists("y") + bad)
    async with services.engine.connect() as conn:
        assert await rows_of(conn, "collab") == set(lists("x"))
        assert not [name for name in await partitions(conn) if name.endswith("_next")]
    # and the next rewrite goes through
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "collab", lists("y"))
    async with services.engine.connect() as conn:
        assert await rows_of(conn, "collab") == set(lists("y"))


async def test_readers_during_swaps_see_the_old_or_the_new_lists(services: Services) -> None:
    books = [f"b{i:03d}" for i in range(20)]
    versions = {prefix: lists(prefix) for prefix in ("x", "y")}
    expected = {
        prefix: {
            b: sorted((n, s) for a, n, s in rows if a == b) for b in books
        }  # what `data.neighbours` returns for each version
        for prefix, rows in versions.items()
    }
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "collab", versions["x"])
    seen: list[str] = []
    done = asyncio.Event()

    async def reader() -> None:
        # the service's own read, on pooled connections with their prepared statements
        while not done.is_set():
            async with services.engine.connect() as conn:
                got = await data.neighbours(conn, "collab", books)
            as_sorted = {b: sorted(v) for b, v in got.items()}
            match = [p for p, lists_ in expected.items() if lists_ == as_sorted]
            assert match, f"a reader saw neither version: {len(got)} books"
            seen.append(match[0])
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(3)]
    try:
        for prefix in ("y", "x", "y", "x", "y"):
            async with services.engine.begin() as conn:
                staged = await neighbours.stage_neighbours(conn, "collab", versions[prefix])
                await neighbours.swap_neighbours(conn, [staged])
                # the swap holds the table until commit: readers queue behind it meanwhile
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.05)
    finally:
        done.set()
        await asyncio.gather(*readers)  # a reader's error or assertion fails the test here
    assert {"x", "y"} <= set(seen), "the readers did not run across the swaps"


async def test_reads_of_a_kind_touch_only_its_partition_by_its_primary_key(
    services: Services,
) -> None:
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "content", lists("c"))
        await neighbours.replace_neighbours(conn, "collab", lists("x"))
    async with services.engine.begin() as conn:
        await conn.execute(text("SET LOCAL enable_seqscan = off"))  # tiny tables: as if large
        plan = "\n".join(
            (
                await conn.execute(
                    text(
                        "EXPLAIN SELECT book_id, neighbour_id, score FROM book_neighbours "
                        "WHERE kind = 'collab' AND book_id = ANY(ARRAY['b001', 'b002'])"
                    )
                )
            ).scalars()
        )
    assert "book_neighbours_collab_pkey" in plan
    assert "book_neighbours_content" not in plan and "collab_alt" not in plan


async def test_lists_as_arrays_stage_exactly_the_rows_tuples_do(services: Services) -> None:
    """`stage_neighbours` takes the lists job's arrays (`neighbours.Lists`) as well as tuples,
    and writes the same rows from either."""
    rows = lists("x", books=30, k=4)
    ids = sorted({a for a, _, _ in rows} | {b for _, b, _ in rows})
    at = {b: i for i, b in enumerate(ids)}
    arrays = neighbours.Lists.of(
        ids,
        (
            np.array([at[a] for a, _, _ in rows]),
            np.array([at[b] for _, b, _ in rows]),
            np.array([s for _, _, s in rows]),
        ),
    )
    async with services.engine.begin() as conn:
        assert await neighbours.replace_neighbours(conn, "collab", arrays) == len(rows)
        await neighbours.replace_neighbours(conn, "content", rows)
    async with services.engine.connect() as conn:
        assert await rows_of(conn, "collab") == await rows_of(conn, "content") == set(rows)


async def test_a_swap_blocked_by_a_long_query_gives_up_and_tries_again(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """A query holding `book_neighbours` does not keep the swap (and every reader queued behind
    it) waiting: the swap gives up after its lock timeout, keeps its staged lists, tries again
    and goes through once the query ends; it fails with the lock error after its last try."""
    async with services.engine.begin() as conn:
        await neighbours.replace_neighbours(conn, "collab", lists("x"))
    async with services.engine.connect() as holder:
        await holder.execute(text("BEGIN"))
        await holder.execute(text("LOCK TABLE book_neighbours IN ACCESS SHARE MODE"))
        # while it holds the lock: every try gives up, the old lists stay
        with pytest.raises(sqlalchemy.exc.DBAPIError) as failed:
            async with services.engine.begin() as conn:
                staged = await neighbours.stage_neighbours(conn, "collab", lists("y"))
                await neighbours.swap_neighbours(conn, [staged], lock_timeout_ms=50, attempts=2)
        assert getattr(failed.value.orig, "sqlstate", None) == neighbours.LOCK_NOT_AVAILABLE

        # a swap that starts while it holds the lock goes through once the holder lets go
        async def release_later() -> None:
            await asyncio.sleep(1.5)
            await holder.execute(text("COMMIT"))

        releasing = asyncio.create_task(release_later())
        async with services.engine.begin() as conn:
            staged = await neighbours.stage_neighbours(conn, "collab", lists("z"))
            await neighbours.swap_neighbours(conn, [staged], lock_timeout_ms=100, attempts=10)
        await releasing
    assert "swap attempt 1 of 10" in caplog.text
    async with services.engine.connect() as conn:
        assert await rows_of(conn, "collab") == set(lists("z"))
        assert not [name for name in await partitions(conn) if name.endswith("_next")]
