"""incremental analytics: the build's k, the days to recompute, and the triggers that mark them

Revision ID: 0005
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

# The analytics refresh recomputes only the days named in analytics_dirty_days. Triggers, not
# the application, write them: so every path that changes what the aggregates count (ingestion,
# erasure and the cascade from study_sets, COPY, manual SQL) marks its days in its own
# transaction, and the refresh cannot miss a change that committed after it looked.
_DAY = "(occurred_at AT TIME ZONE 'UTC')::date"


def _moved(column: str, event_key: str) -> str:
    """A trigger body marking every day of the events of rows whose `column` changed."""
    return f"""
        DECLARE moved text[];
        BEGIN
            SELECT array_agg(n.id) INTO moved FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE n.{column} IS DISTINCT FROM o.{column};
            IF moved IS NOT NULL THEN
                INSERT INTO analytics_dirty_days (day) SELECT DISTINCT {_DAY}
                FROM engagement_events WHERE {event_key} = ANY(moved);
            END IF;
            RETURN NULL;
        END"""


FUNCTIONS = {
    "bookbridge_analytics_events_changed": f"""
        BEGIN
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO analytics_dirty_days (day) SELECT DISTINCT {_DAY} FROM new_rows;
            END IF;
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                INSERT INTO analytics_dirty_days (day) SELECT DISTINCT {_DAY} FROM old_rows;
            END IF;
            RETURN NULL;
        END""",
    # A book's days count for its publisher: moving it changes both publishers on all its days.
    # (Only moved books reach engagement_events; most upserts move none and cost one join.)
    "bookbridge_analytics_books_moved": _moved("publisher_id", "book_id"),
    # Students are distinct users: giving a study set to another user changes its days' counts.
    "bookbridge_analytics_study_sets_moved": _moved("user_id", "study_set_id"),
    # TRUNCATE names no rows: forget the build, so the next refresh rebuilds every day.
    "bookbridge_analytics_events_truncated": """
        BEGIN
            DELETE FROM analytics_refresh;
            RETURN NULL;
        END""",
}
_CHANGED = "bookbridge_analytics_events_changed"
_BOTH = "OLD TABLE AS old_rows NEW TABLE AS new_rows"
# (trigger, event, table, transition tables, function)
TRIGGERS = (
    ("analytics_events_inserted", "INSERT", "engagement_events", "NEW TABLE AS new_rows", _CHANGED),
    ("analytics_events_updated", "UPDATE", "engagement_events", _BOTH, _CHANGED),
    ("analytics_events_deleted", "DELETE", "engagement_events", "OLD TABLE AS old_rows", _CHANGED),
    ("analytics_books_moved", "UPDATE", "books", _BOTH, "bookbridge_analytics_books_moved"),
    (
        "analytics_study_sets_moved",
        "UPDATE",
        "study_sets",
        _BOTH,
        "bookbridge_analytics_study_sets_moved",
    ),
    (
        "analytics_events_truncated",
        "TRUNCATE",
        "engagement_events",
        None,
        "bookbridge_analytics_events_truncated",
    ),
)


def upgrade() -> None:
    op.create_table(
        "analytics_dirty_days",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analytics_dirty_days")),
    )
    op.create_table(
        "analytics_refresh",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column(
            "refreshed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "rebuilt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_analytics_refresh")),
    )
    for name, body in FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}\n$$")
    for trigger, event, table, referencing, function in TRIGGERS:
        transition = f" REFERENCING {referencing}" if referencing else ""
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER {event} ON {table}{transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    for trigger, _, table, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for name in FUNCTIONS:
        op.execute(f"DROP FUNCTION {name}()")
    op.drop_table("analytics_refresh")
    op.drop_table("analytics_dirty_days")
