"""channel sync: endpoints, desired state, dead letters, counters, latency, orders, webhook ids, poll cursors

Revision ID: 0003_sync
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_sync"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(length=64)
SKU = sa.String(length=128)


def upgrade() -> None:
    op.create_table(
        "sync_endpoints",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("dialect", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.String(length=512), nullable=False),
        sa.Column("credentials", sa.Text(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_sync_endpoints")),
    )
    op.create_table(
        "sync_desired",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("sku_id", SKU, nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("enqueued_at", sa.BigInteger(), nullable=False),
        sa.Column("acked_value", sa.Text(), nullable=True),
        sa.Column("acked_version", sa.BigInteger(), nullable=False),
        sa.Column("acked_at", sa.BigInteger(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("dead", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "sku_id", "field", name=op.f("pk_sync_desired")),
    )
    op.create_index("ix_sync_desired_queue", "sync_desired", ["channel_id", "dead", "priority", "enqueued_at"])
    op.create_table(
        "sync_dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("sku_id", SKU, nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_dead_letters")),
    )
    op.create_index("ix_sync_dead_letters_channel", "sync_dead_letters", ["channel_id", "id"])
    op.create_table(
        "sync_counters",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "name", name=op.f("pk_sync_counters")),
    )
    op.create_table(
        "sync_latency",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("klass", sa.String(length=16), nullable=False),
        sa.Column("le_ms", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "klass", "le_ms", name=op.f("pk_sync_latency")),
    )
    op.create_table(
        "channel_orders",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("channel_order_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("cancel_state", sa.String(length=16), nullable=True),
        sa.Column("cancel_error", sa.Text(), nullable=True),
        sa.Column("placed_at", sa.BigInteger(), nullable=False),
        sa.Column("ingested_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "channel_order_id", name=op.f("pk_channel_orders")),
    )
    op.create_table(
        "webhook_ids",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("webhook_id", sa.String(length=128), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "webhook_id", name=op.f("pk_webhook_ids")),
    )
    op.create_table(
        "poll_cursors",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_poll_cursors")),
    )
    op.create_table(
        "sync_listing_refs",
        sa.Column("channel_id", ID, nullable=False),
        sa.Column("sku_id", SKU, nullable=False),
        sa.Column("ref", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "sku_id", name=op.f("pk_sync_listing_refs")),
    )


def downgrade() -> None:
    op.drop_table("sync_listing_refs")
    for name in ("poll_cursors", "webhook_ids", "channel_orders", "sync_latency", "sync_counters"):
        op.drop_table(name)
    op.drop_index("ix_sync_dead_letters_channel", table_name="sync_dead_letters")
    op.drop_table("sync_dead_letters")
    op.drop_index("ix_sync_desired_queue", table_name="sync_desired")
    op.drop_table("sync_desired")
    op.drop_table("sync_endpoints")
