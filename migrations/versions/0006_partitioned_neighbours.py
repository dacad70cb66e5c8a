"""book_neighbours partitioned by kind: one partition per kind, each rewritten by a swap

Revision ID: 0006
Revises: 0005b

The lists job rewrites a kind's neighbour lists whole. Deleting and re-inserting millions of
rows in one table left as many dead rows, and the new rows' unique checks met them: a rewrite
cost four times the first write at 100,000 books, plus a VACUUM. With one partition per kind
the job COPYs a kind's lists into a fresh table, builds its primary key after (a sorted build)
and swaps it in (DETACH the old partition, ATTACH the new one, DROP the old) in one short
transaction: no dead rows, no VACUUM (app/reco/neighbours.py).

No DEFAULT partition: every kind lives in a partition of its own, created on its first write
by the lists job, so every rewrite is a swap and no ATTACH ever has a default partition to
scan. The kinds the service writes today get theirs here; the rows of any other kind already
in the table get one each too, so no row is lost.
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005b"
branch_labels = None
depends_on = None

KINDS = ("content", "collab", "collab_alt")


def _partition(kind: str) -> str:
    """The same names as `app.reco.neighbours.partition_name` (a migration does not import the
    application: it must keep working as the application changes)."""
    if re.fullmatch(r"[a-z][a-z0-9_]{0,39}", kind):
        return f"book_neighbours_{kind}"
    return "book_neighbours_k" + hashlib.sha256(kind.encode()).hexdigest()[:16]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _create_table(partitioning: str) -> None:
    """`book_neighbours` as 0003 made it, partitioned as `partitioning` says (or not)."""
    op.execute(
        f"""
        CREATE TABLE book_neighbours (
            kind text NOT NULL,
            book_id varchar COLLATE "C" NOT NULL,
            neighbour_id varchar COLLATE "C" NOT NULL,
            score double precision NOT NULL,
            CONSTRAINT pk_book_neighbours PRIMARY KEY (kind, book_id, neighbour_id)
        ) {partitioning}
        """
    )


def upgrade() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE book_neighbours RENAME TO book_neighbours_unpartitioned")
    op.execute(
        "ALTER TABLE book_neighbours_unpartitioned "
        "RENAME CONSTRAINT pk_book_neighbours TO pk_book_neighbours_unpartitioned"
    )
    _create_table("PARTITION BY LIST (kind)")
    present = bind.execute(
        sa.text("SELECT DISTINCT kind FROM book_neighbours_unpartitioned")
    ).scalars()
    for kind in sorted(set(KINDS) | set(present)):
        op.execute(
            f"CREATE TABLE {_partition(kind)} PARTITION OF book_neighbours "
            f"FOR VALUES IN ({_literal(kind)})"
        )
    op.execute("INSERT INTO book_neighbours SELECT * FROM book_neighbours_unpartitioned")
    op.execute("DROP TABLE book_neighbours_unpartitioned")
    op.execute("ANALYZE book_neighbours")


def downgrade() -> None:
    op.execute("ALTER TABLE book_neighbours RENAME TO book_neighbours_partitioned")
    op.execute(
        "ALTER TABLE book_neighbours_partitioned "
        "RENAME CONSTRAINT pk_book_neighbours TO pk_book_neighbours_partitioned"
    )
    _create_table("")
    op.execute("INSERT INTO book_neighbours SELECT * FROM book_neighbours_partitioned")
    op.execute("DROP TABLE book_neighbours_partitioned")  # and its partitions
    op.execute("ANALYZE book_neighbours")
