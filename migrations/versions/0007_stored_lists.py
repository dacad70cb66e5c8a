"""stored lists: each study set's plain-HYBRID recommendation list, one row per set

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # app/db/models.py StudySetList says what a row means and when it is fresh
    op.create_table(
        "study_set_lists",
        sa.Column("study_set_id", sa.String(collation="C"), nullable=False),
        sa.Column("generation", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lists_run", sa.Integer(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("strategy", sa.Text(), nullable=True),
        sa.Column("book_ids", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("scores", postgresql.ARRAY(sa.Float()), nullable=True),
        sa.Column("reasons", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_set_id"],
            ["study_sets.id"],
            name="fk_study_set_lists_study_set_id_study_sets",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("study_set_id", name="pk_study_set_lists"),
    )


def downgrade() -> None:
    op.drop_table("study_set_lists")
