"""orders: channel orders adopted into the lifecycle (source, currency, hold reason, channel line ids), refund
money (order refund state and amounts; returnless return policies), an index of allocations by SKU (re-optimise on
stock changes) and the durable queue of ship confirmations to send back to channels

Revision ID: 0006_orders_adopt
Revises: 0005_sync_queue
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_orders_adopt"
down_revision = "0005_sync_queue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("source", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("currency", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("hold_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("refund_state", sa.String(length=16), nullable=False, server_default="none"))
        batch.add_column(sa.Column("refund_pending_minor", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("order_lines") as batch:
        batch.add_column(sa.Column("channel_line_id", sa.String(length=128), nullable=True))
    op.create_index("ix_order_allocations_sku", "order_allocations", ["sku_id", "location_id"])
    with op.batch_alter_table("return_policies") as batch:
        batch.add_column(sa.Column("refund_requires_receipt", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "channel_shipments",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("shipment_id", sa.String(length=96), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("channel_order_id", sa.String(length=128), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("tracking", sa.String(length=64), nullable=False),
        sa.Column("shipped_at", sa.BigInteger(), nullable=False),
        sa.Column("ship_from", sa.String(length=64), nullable=True),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "shipment_id", name=op.f("pk_channel_shipments")),
    )
    op.create_index("ix_channel_shipments_due", "channel_shipments", ["state", "next_at"])
    op.create_index("ix_channel_shipments_order", "channel_shipments", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_channel_shipments_order", table_name="channel_shipments")
    op.drop_index("ix_channel_shipments_due", table_name="channel_shipments")
    op.drop_table("channel_shipments")
    with op.batch_alter_table("return_policies") as batch:
        batch.drop_column("refund_requires_receipt")
    op.drop_index("ix_order_allocations_sku", table_name="order_allocations")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("channel_line_id")
    with op.batch_alter_table("orders") as batch:
        for name in ("refunded_minor", "refund_pending_minor", "refund_state", "hold_reason", "currency", "source"):
            batch.drop_column(name)
