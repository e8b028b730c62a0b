"""channel sync: a partial index of pending keys (due-work selection) and a (sku, field) index (coalescing)

Revision ID: 0005_sync_queue
Revises: 0004_orders
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_sync_queue"
down_revision = "0004_orders"
branch_labels = None
depends_on = None

# spelt as each backend renders ``dead == false()`` in queries, so the planner matches the partial index
PENDING_SQLITE = "dead = 0 AND version > acked_version"
PENDING_PG = "dead = false AND version > acked_version"


def upgrade() -> None:
    # only pending keys are indexed, in the order the worker takes them: the due query is one range scan with a LIMIT
    op.create_index(
        "ix_sync_desired_pending",
        "sync_desired",
        ["channel_id", "priority", "enqueued_at", "sku_id", "field"],
        sqlite_where=sa.text(PENDING_SQLITE),
        postgresql_where=sa.text(PENDING_PG),
    )
    # the subscriber reads every channel's row for one (sku, field); the primary key starts with channel_id
    op.create_index("ix_sync_desired_sku", "sync_desired", ["sku_id", "field"])
    op.drop_index("ix_sync_desired_queue", table_name="sync_desired")


def downgrade() -> None:
    op.create_index("ix_sync_desired_queue", "sync_desired", ["channel_id", "dead", "priority", "enqueued_at"])
    op.drop_index("ix_sync_desired_sku", table_name="sync_desired")
    op.drop_index("ix_sync_desired_pending", table_name="sync_desired")
