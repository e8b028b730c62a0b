"""orders: lifecycle, lines, allocations, routing decisions, shipments, SLA and routing config, returns

Revision ID: 0004_orders
Revises: 0003_sync
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_orders"
down_revision = "0003_sync"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "return_policies",
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("return_shipping_paid_by", sa.String(length=16), nullable=False),
        sa.Column("restocking_fee_pct", sa.Integer(), nullable=False),
        sa.Column("return_label_cost_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("region", name=op.f("pk_return_policies")),
    )
    op.create_table(
        "routing_channels",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("max_splits", sa.Integer(), nullable=False),
        sa.Column("quick_commerce", sa.Boolean(), nullable=False),
        sa.Column("dark_store_radius_km", sa.Float(), nullable=False),
        sa.Column("promise_days", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_routing_channels")),
    )
    op.create_table(
        "routing_locations",
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("handling_days", sa.Float(), nullable=False),
        sa.Column("radius_km", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("location_id", name=op.f("pk_routing_locations")),
    )
    op.create_table(
        "sla_policies",
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("handling_hours", sa.Integer(), nullable=False),
        sa.Column("at_risk_hours", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_sla_policies")),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("channel_order_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("placed_at", sa.BigInteger(), nullable=False),
        sa.Column("ship_by", sa.BigInteger(), nullable=False),
        sa.Column("dest_region", sa.String(length=32), nullable=False),
        sa.Column("dest_lat", sa.Float(), nullable=False),
        sa.Column("dest_lon", sa.Float(), nullable=False),
        sa.Column("promise_days", sa.Float(), nullable=False),
        sa.Column("cancel_reason", sa.String(length=16), nullable=True),
        sa.Column("cancelled_at", sa.BigInteger(), nullable=True),
        sa.Column("delivered_at", sa.BigInteger(), nullable=True),
        sa.Column("refunded_at", sa.BigInteger(), nullable=True),
        sa.Column("sla_alert", sa.String(length=16), nullable=True),
        sa.Column("route_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id", "channel_order_id"],
            ["channel_orders.channel_id", "channel_orders.channel_order_id"],
            name="fk_orders_channel_orders",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("channel_id", "channel_order_id", name="uq_orders_channel_order"),
    )
    op.create_index("ix_orders_status", "orders", ["status", "ship_by"], unique=False)
    op.create_table(
        "order_allocations",
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("sku_id", sa.String(length=128), nullable=False),
        sa.Column("qty_reserved", sa.Integer(), nullable=False),
        sa.Column("qty_shipped", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_allocations_order_id_orders")),
        sa.PrimaryKeyConstraint("order_id", "line_id", "location_id", name=op.f("pk_order_allocations")),
    )
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("line_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sku_id", sa.String(length=128), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_lines_order_id_orders")),
        sa.PrimaryKeyConstraint("order_id", "line_id", name=op.f("pk_order_lines")),
    )
    op.create_table(
        "order_routes",
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=48), nullable=False),
        sa.Column("allocations", sa.Text(), nullable=False),
        sa.Column("shipments", sa.Integer(), nullable=False),
        sa.Column("shipping_cost", sa.Float(), nullable=False),
        sa.Column("sla_misses", sa.Integer(), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("cause", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_order_routes_order_id_orders")),
        sa.PrimaryKeyConstraint("order_id", "seq", name=op.f("pk_order_routes")),
    )
    op.create_table(
        "rmas",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refund_state", sa.String(length=16), nullable=False),
        sa.Column("refund_due_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("receiving_closed", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_rmas_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rmas")),
    )
    op.create_index("ix_rmas_order", "rmas", ["order_id"], unique=False)
    op.create_table(
        "shipments",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("tracking", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("shipped_at", sa.BigInteger(), nullable=False),
        sa.Column("confirm_state", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_shipments_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipments")),
    )
    op.create_index("ix_shipments_order", "shipments", ["order_id"], unique=False)
    op.create_table(
        "rma_lines",
        sa.Column("rma_id", sa.String(length=96), nullable=False),
        sa.Column("sku_id", sa.String(length=128), nullable=False),
        sa.Column("qty_requested", sa.Integer(), nullable=False),
        sa.Column("unit_price_minor", sa.BigInteger(), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("qty_received", sa.Integer(), nullable=False),
        sa.Column("qty_resellable", sa.Integer(), nullable=False),
        sa.Column("qty_refurbish", sa.Integer(), nullable=False),
        sa.Column("qty_damaged", sa.Integer(), nullable=False),
        sa.Column("qty_scrap", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["rma_id"], ["rmas.id"], name=op.f("fk_rma_lines_rma_id_rmas")),
        sa.PrimaryKeyConstraint("rma_id", "sku_id", name=op.f("pk_rma_lines")),
    )


def downgrade() -> None:
    op.drop_table("rma_lines")
    op.drop_index("ix_shipments_order", table_name="shipments")
    op.drop_table("shipments")
    op.drop_index("ix_rmas_order", table_name="rmas")
    op.drop_table("rmas")
    op.drop_table("order_routes")
    op.drop_table("order_lines")
    op.drop_table("order_allocations")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_table("orders")
    op.drop_table("sla_policies")
    op.drop_table("routing_locations")
    op.drop_table("routing_channels")
    op.drop_table("return_policies")
