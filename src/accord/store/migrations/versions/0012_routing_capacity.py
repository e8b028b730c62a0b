"""orders: capacity-aware routing — a daily shipping capacity per location (``routing_capacities``; no row =
unlimited), and the indexes that make a location's open load cheap to read: parcels waiting (allocations still
reserved, a partial index) and parcels shipped since the location's local midnight

Revision ID: 0012_routing_capacity
Revises: 0006_orders_adopt
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_routing_capacity"
down_revision = "0006_orders_adopt"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_capacities",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("parcels_per_day", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("parcels_per_day > 0", name=op.f("ck_routing_capacities_parcels_per_day_positive")),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_routing_capacities")),
    )
    op.create_index(
        "ix_order_allocations_open",
        "order_allocations",
        ["location_id", "order_id"],
        sqlite_where=sa.text("qty_reserved > 0"),
        postgresql_where=sa.text("qty_reserved > 0"),
    )
    op.create_index("ix_shipments_location_shipped", "shipments", ["location_id", "shipped_at"])


def downgrade() -> None:
    op.drop_index("ix_shipments_location_shipped", table_name="shipments")
    op.drop_index("ix_order_allocations_open", table_name="order_allocations")
    op.drop_table("routing_capacities")
