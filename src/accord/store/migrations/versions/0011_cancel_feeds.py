"""channel sync: a cancellation sent in a marketplace feed (Amazon order acknowledgement) waits as ``submitted``
with its feed id and message number until the feed's processing report says whether the channel took it

Revision ID: 0011_cancel_feeds
Revises: 0009_sync_cancel_retry
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_cancel_feeds"
down_revision = "0009_sync_cancel_retry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_orders") as batch:
        batch.add_column(sa.Column("cancel_feed", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cancel_feed_msg", sa.Integer(), nullable=True))


def downgrade() -> None:
    # a submitted cancellation becomes pending again: it is sent once more (harmless, the channel dedupes)
    op.execute("UPDATE channel_orders SET cancel_state = 'pending' WHERE cancel_state = 'submitted'")
    with op.batch_alter_table("channel_orders") as batch:
        batch.drop_column("cancel_feed_msg")
        batch.drop_column("cancel_feed")
