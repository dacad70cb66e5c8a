"""merge the auth (0004) and incremental analytics (0005) branches into one head

Revision ID: 0005b
Revises: 0004, 0005

Both branches grew from the ingestion/recommendation tables and touch different ones (api keys
and trusted documents; analytics triggers), so the merge runs nothing. A merge rather than
rewriting 0005 to follow 0004: databases already migrated to both heads record both in
alembic_version, and a rewritten linear history refuses them ("Requested revision 0005 overlaps
with other requested revisions 0004").
"""

from __future__ import annotations

revision = "0005b"
down_revision = ("0004", "0005")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
