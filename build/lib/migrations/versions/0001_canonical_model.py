"""canonical model

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


TEXT_ARRAY_FN = (
    "CREATE FUNCTION bookbridge_text_array(text[]) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT coalesce(array_to_string($1, ' '), '') $$"
)


def upgrade() -> None:
    # array_to_string is only STABLE; the generated search column needs an IMMUTABLE wrapper.
    op.execute(TEXT_ARRAY_FN)
    op.create_table(
        "grades",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grades")),
    )
    op.create_table(
        "publishers",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publishers")),
    )
    op.create_table(
        "subjects",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subjects")),
    )
    op.create_table(
        "books",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("publisher_id", sa.String(collation="C"), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('english', coalesce(title, '')), 'A') || setweight(to_tsvector('english', bookbridge_text_array(tags)), 'B') || setweight(to_tsvector('english', coalesce(description, '')), 'C')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["publisher_id"], ["publishers.id"], name=op.f("fk_books_publisher_id_publishers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_books")),
    )
    op.create_index(op.f("ix_books_publisher_id"), "books", ["publisher_id"], unique=False)
    op.create_index(
        "ix_books_search_vector", "books", ["search_vector"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.String(collation="C"), nullable=True),
        sa.Column("parent_id", sa.String(collation="C"), nullable=True),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["categories.id"], name=op.f("fk_categories_parent_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_categories_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
    )
    op.create_index(op.f("ix_categories_parent_id"), "categories", ["parent_id"], unique=False)
    op.create_index(op.f("ix_categories_subject_id"), "categories", ["subject_id"], unique=False)
    op.create_table(
        "study_sets",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("user_id", sa.String(collation="C"), nullable=False),
        sa.Column("subject_id", sa.String(collation="C"), nullable=True),
        sa.Column("grade_id", sa.String(collation="C"), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["grade_id"], ["grades.id"], name=op.f("fk_study_sets_grade_id_grades")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_study_sets_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_study_sets")),
    )
    op.create_index(op.f("ix_study_sets_grade_id"), "study_sets", ["grade_id"], unique=False)
    op.create_index(op.f("ix_study_sets_subject_id"), "study_sets", ["subject_id"], unique=False)
    op.create_index(op.f("ix_study_sets_user_id"), "study_sets", ["user_id"], unique=False)
    op.create_table(
        "topics",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("subject_id", sa.String(collation="C"), nullable=True),
        sa.Column("grade_id", sa.String(collation="C"), nullable=True),
        sa.Column("category_id", sa.String(collation="C"), nullable=True),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_topics_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["grade_id"], ["grades.id"], name=op.f("fk_topics_grade_id_grades")
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_topics_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topics")),
    )
    op.create_index(op.f("ix_topics_category_id"), "topics", ["category_id"], unique=False)
    op.create_index(op.f("ix_topics_grade_id"), "topics", ["grade_id"], unique=False)
    op.create_index(op.f("ix_topics_subject_id"), "topics", ["subject_id"], unique=False)
    op.create_table(
        "engagement_events",
        sa.Column("id", sa.String(collation="C"), nullable=False),
        sa.Column("study_set_id", sa.String(collation="C"), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("book_id", sa.String(collation="C"), nullable=True),
        sa.Column("topic_id", sa.String(collation="C"), nullable=True),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "event_type IN ('view', 'click', 'save', 'start', 'progress', 'complete', 'rate', 'share')",
            name=op.f("ck_engagement_events_known_event_type"),
        ),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name=op.f("fk_engagement_events_book_id_books")
        ),
        sa.ForeignKeyConstraint(
            ["study_set_id"],
            ["study_sets.id"],
            name=op.f("fk_engagement_events_study_set_id_study_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_engagement_events_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_events")),
    )
    op.create_index(
        op.f("ix_engagement_events_book_id"), "engagement_events", ["book_id"], unique=False
    )
    op.create_index(
        op.f("ix_engagement_events_occurred_at"), "engagement_events", ["occurred_at"], unique=False
    )
    op.create_index(
        op.f("ix_engagement_events_study_set_id"),
        "engagement_events",
        ["study_set_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_engagement_events_topic_id"), "engagement_events", ["topic_id"], unique=False
    )
    op.create_table(
        "study_set_topics",
        sa.Column("study_set_id", sa.String(collation="C"), nullable=False),
        sa.Column("topic_id", sa.String(collation="C"), nullable=False),
        sa.Column("source", sa.Text(), server_default="explicit", nullable=False),
        sa.ForeignKeyConstraint(
            ["study_set_id"],
            ["study_sets.id"],
            name=op.f("fk_study_set_topics_study_set_id_study_sets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_study_set_topics_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("study_set_id", "topic_id", name=op.f("pk_study_set_topics")),
    )
    op.create_index("ix_study_set_topics_topic_id", "study_set_topics", ["topic_id"], unique=False)
    op.create_table(
        "topic_book_mappings",
        sa.Column("topic_id", sa.String(collation="C"), nullable=False),
        sa.Column("book_id", sa.String(collation="C"), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("weight >= 0", name=op.f("ck_topic_book_mappings_weight_non_negative")),
        sa.ForeignKeyConstraint(
            ["book_id"], ["books.id"], name=op.f("fk_topic_book_mappings_book_id_books")
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_topic_book_mappings_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("topic_id", "book_id", name=op.f("pk_topic_book_mappings")),
    )
    op.create_index(
        "ix_topic_book_mappings_book_id", "topic_book_mappings", ["book_id"], unique=False
    )
    op.create_index(
        "ix_topic_book_mappings_topic_weight",
        "topic_book_mappings",
        ["topic_id", "weight", "book_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_topic_book_mappings_topic_weight", table_name="topic_book_mappings")
    op.drop_index("ix_topic_book_mappings_book_id", table_name="topic_book_mappings")
    op.drop_table("topic_book_mappings")
    op.drop_index("ix_study_set_topics_topic_id", table_name="study_set_topics")
    op.drop_table("study_set_topics")
    op.drop_index(op.f("ix_engagement_events_topic_id"), table_name="engagement_events")
    op.drop_index(op.f("ix_engagement_events_study_set_id"), table_name="engagement_events")
    op.drop_index(op.f("ix_engagement_events_occurred_at"), table_name="engagement_events")
    op.drop_index(op.f("ix_engagement_events_book_id"), table_name="engagement_events")
    op.drop_table("engagement_events")
    op.drop_index(op.f("ix_topics_subject_id"), table_name="topics")
    op.drop_index(op.f("ix_topics_grade_id"), table_name="topics")
    op.drop_index(op.f("ix_topics_category_id"), table_name="topics")
    op.drop_table("topics")
    op.drop_index(op.f("ix_study_sets_user_id"), table_name="study_sets")
    op.drop_index(op.f("ix_study_sets_subject_id"), table_name="study_sets")
    op.drop_index(op.f("ix_study_sets_grade_id"), table_name="study_sets")
    op.drop_table("study_sets")
    op.drop_index(op.f("ix_categories_subject_id"), table_name="categories")
    op.drop_index(op.f("ix_categories_parent_id"), table_name="categories")
    op.drop_table("categories")
    op.drop_index("ix_books_search_vector", table_name="books", postgresql_using="gin")
    op.drop_index(op.f("ix_books_publisher_id"), table_name="books")
    op.drop_table("books")
    op.drop_table("subjects")
    op.drop_table("publishers")
    op.drop_table("grades")
    op.execute("DROP FUNCTION bookbridge_text_array(text[])")
