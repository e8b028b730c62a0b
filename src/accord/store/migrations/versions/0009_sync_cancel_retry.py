"""channel sync: cancellations sent back to channels retry with backoff and park as dead letters (attempts, next
attempt time, the marketplace's answer), found by an index on (cancel_state, cancel_next_at)

Revision ID: 0009_sync_cancel_retry
Revises: 0005_sync_queue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_sync_cancel_retry"
down_revision = "0005_sync_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_orders") as batch:
        batch.add_column(sa.Column("cancel_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_next_at", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cancel_body", sa.Text(), nullable=True))
    op.create_index("ix_channel_orders_cancel_due", "channel_orders", ["cancel_state", "cancel_next_at"])


def downgrade() -> None:
    op.drop_index("ix_channel_orders_cancel_due", table_name="channel_orders")
    with op.batch_alter_table("channel_orders") as batch:
        batch.drop_column("cancel_body")
        batch.drop_column("cancel_next_at")
        batch.drop_column("cancel_attempts")
