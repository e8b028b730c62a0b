"""Order lifecycle, routing, shipments, SLA and returns tables (issue 5) on the shared metadata.

An order here extends the channel order that channel sync (issue 4) ingests: ``orders`` references
``channel_orders`` by (channel_id, channel_order_id) and adds the lifecycle on top. Times are epoch milliseconds;
money is in minor units; structured detail is JSON text.
"""

from __future__ import annotations

import sqlalchemy as sa

from accord.store.schema import ID, metadata

SKU = sa.String(128)
OID = sa.String(200)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# lifecycle state of one order (placed → reserved → routed → (partially) shipped → delivered; cancelled; refunded)
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", OID, primary_key=True),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("channel_order_id", sa.String(128), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("placed_at", sa.BigInteger, nullable=False),
    sa.Column("ship_by", sa.BigInteger, nullable=False),  # SLA: from the channel or the channel's policy
    sa.Column("dest_region", sa.String(32), nullable=False),
    sa.Column("dest_lat", sa.Float, nullable=False),
    sa.Column("dest_lon", sa.Float, nullable=False),
    sa.Column("promise_days", sa.Float, nullable=False),
    sa.Column("cancel_reason", sa.String(16), nullable=True),
    sa.Column("cancelled_at", sa.BigInteger, nullable=True),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.Column("refunded_at", sa.BigInteger, nullable=True),
    sa.Column("sla_alert", sa.String(16), nullable=True),  # last SLA alert raised: at_risk | breached
    sa.Column("route_seq", sa.Integer, nullable=False),  # routing decisions so far (keys reservation moves)
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # 0006_orders_adopt: channel orders adopted into the lifecycle, held orders, refund money
    sa.Column("source", sa.String(16), nullable=True),  # api | webhook | poll
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("hold_reason", sa.Text, nullable=True),  # status held: why (unknown SKU, unconfigured channel, ...)
    sa.Column("refund_state", sa.String(16), nullable=False, server_default="none"),  # none | pending | refunded
    sa.Column("refund_pending_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
    sa.ForeignKeyConstraint(
        ["channel_id", "channel_order_id"],
        ["channel_orders.channel_id", "channel_orders.channel_order_id"],
        name="fk_orders_channel_orders",
    ),
    sa.UniqueConstraint("channel_id", "channel_order_id", name="uq_orders_channel_order"),
    sa.Index("ix_orders_status", "status", "ship_by"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("order_id", OID, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("line_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("sku_id", SKU, nullable=False),
    sa.Column("qty", sa.Integer, nullable=False),
    sa.Column("unit_price_minor", sa.BigInteger, nullable=False),
    sa.Column("channel_line_id", sa.String(128), nullable=True),  # 0006: the channel's own line id, when it sent one
)

# where each line's units are held now (qty_reserved = committed in the ledger) and what left from there
order_allocations = sa.Table(
    "order_allocations",
    metadata,
    sa.Column("order_id", OID, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("line_id", sa.String(64), primary_key=True),
    sa.Column("location_id", ID, primary_key=True),
    sa.Column("sku_id", SKU, nullable=False),
    sa.Column("qty_reserved", sa.Integer, nullable=False),
    sa.Column("qty_shipped", sa.Integer, nullable=False),
    # 0006: orders holding a SKU (re-optimise on stock changes)
    sa.Index("ix_order_allocations_sku", "sku_id", "location_id"),
    # 0012: parcels waiting at a location (routing's open load per capacity-limited location)
    sa.Index(
        "ix_order_allocations_open",
        "location_id",
        "order_id",
        sqlite_where=sa.text("qty_reserved > 0"),
        postgresql_where=sa.text("qty_reserved > 0"),
    ),
)

# every routing decision, with the router's explanation text
order_routes = sa.Table(
    "order_routes",
    metadata,
    sa.Column("order_id", OID, sa.ForeignKey("orders.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("method", sa.String(48), nullable=False),
    sa.Column("allocations", sa.Text, nullable=False),  # JSON [{"line_id","sku","location","qty"}]
    sa.Column("shipments", sa.Integer, nullable=False),
    sa.Column("shipping_cost", sa.Float, nullable=False),
    sa.Column("sla_misses", sa.Integer, nullable=False),
    sa.Column("objective", sa.Float, nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("cause", sa.String(64), nullable=False),  # placed | reoptimised | reroute:LOC | manual
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

# each parcel with carrier and tracking; confirm_state: the ship confirmation the channel connector sends
shipments = sa.Table(
    "shipments",
    metadata,
    sa.Column("id", sa.String(96), primary_key=True),
    sa.Column("order_id", OID, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("location_id", ID, nullable=False),
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("tracking", sa.String(64), nullable=False),
    sa.Column("lines", sa.Text, nullable=False),  # JSON {line_id: units}
    sa.Column("shipped_at", sa.BigInteger, nullable=False),
    sa.Column("confirm_state", sa.String(16), nullable=False),  # pending | sent | failed
    sa.Index("ix_shipments_order", "order_id"),
    sa.Index("ix_shipments_location_shipped", "location_id", "shipped_at"),  # 0012: parcels shipped today
)

# ship-by policy per channel (when the channel does not send its own ship-by)
sla_policies = sa.Table(
    "sla_policies",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("handling_hours", sa.Integer, nullable=False),
    sa.Column("at_risk_hours", sa.Integer, nullable=False),
)

# routing geography: coordinates and handling per location, split rules per channel (defaults when absent)
routing_locations = sa.Table(
    "routing_locations",
    metadata,
    sa.Column("location_id", ID, primary_key=True),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("handling_days", sa.Float, nullable=False),
    sa.Column("radius_km", sa.Float, nullable=True),
)

# 0012: daily shipping capacity per location (parcels per local day); no row = unlimited
routing_capacities = sa.Table(
    "routing_capacities",
    metadata,
    sa.Column("location_id", ID, primary_key=True),
    sa.Column("parcels_per_day", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint("parcels_per_day > 0", name="parcels_per_day_positive"),
)

routing_channels = sa.Table(
    "routing_channels",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("max_splits", sa.Integer, nullable=False),
    sa.Column("quick_commerce", sa.Boolean, nullable=False),
    sa.Column("dark_store_radius_km", sa.Float, nullable=False),
    sa.Column("promise_days", sa.Float, nullable=False),
)

# region return policies, enforced when an RMA is created
return_policies = sa.Table(
    "return_policies",
    metadata,
    sa.Column("region", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("window_days", sa.Integer, nullable=False),
    sa.Column("return_shipping_paid_by", sa.String(16), nullable=False),
    sa.Column("restocking_fee_pct", sa.Integer, nullable=False),
    sa.Column("return_label_cost_minor", sa.BigInteger, nullable=False),
    # 0006: False → refund on request (returnless), before the units come back
    sa.Column("refund_requires_receipt", sa.Boolean, nullable=False, server_default=sa.true()),
)

rmas = sa.Table(
    "rmas",
    metadata,
    sa.Column("id", sa.String(96), primary_key=True),
    sa.Column("order_id", OID, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("policy", sa.Text, nullable=False),  # JSON snapshot of the policy applied at creation
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # requested | received | inspected | graded
    sa.Column("refund_state", sa.String(16), nullable=False),  # not_due | due | refunded
    sa.Column("refund_due_minor", sa.BigInteger, nullable=False),
    sa.Column("refunded_minor", sa.BigInteger, nullable=False),
    sa.Column("receiving_closed", sa.Boolean, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),  # steps so far (keys ledger movements)
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_rmas_order", "order_id"),
)

rma_lines = sa.Table(
    "rma_lines",
    metadata,
    sa.Column("rma_id", sa.String(96), sa.ForeignKey("rmas.id"), primary_key=True),
    sa.Column("sku_id", SKU, primary_key=True),
    sa.Column("qty_requested", sa.Integer, nullable=False),
    sa.Column("unit_price_minor", sa.BigInteger, nullable=False),
    sa.Column("location_id", ID, nullable=True),
    sa.Column("qty_received", sa.Integer, nullable=False),
    sa.Column("qty_resellable", sa.Integer, nullable=False),
    sa.Column("qty_refurbish", sa.Integer, nullable=False),
    sa.Column("qty_damaged", sa.Integer, nullable=False),
    sa.Column("qty_scrap", sa.Integer, nullable=False),
)

# ship confirmations to send back to channels (0006_orders_adopt): a durable queue keyed by the shipment
channel_shipments = sa.Table(
    "channel_shipments",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("shipment_id", sa.String(96), primary_key=True),
    sa.Column("order_id", OID, nullable=False),
    sa.Column("channel_order_id", sa.String(128), nullable=False),
    sa.Column("carrier", sa.String(64), nullable=False),
    sa.Column("tracking", sa.String(64), nullable=False),
    sa.Column("shipped_at", sa.BigInteger, nullable=False),
    sa.Column("ship_from", ID, nullable=True),
    sa.Column("lines", sa.Text, nullable=False),  # JSON [{"sku","qty","line_id"}]
    sa.Column("state", sa.String(16), nullable=False),  # pending | sent | dead
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=True),  # the marketplace's answer when parked
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_channel_shipments_due", "state", "next_at"),
    sa.Index("ix_channel_shipments_order", "order_id"),
)

TABLES: tuple[sa.Table, ...] = (
    orders,
    order_lines,
    order_allocations,
    order_routes,
    shipments,
    sla_policies,
    routing_locations,
    routing_capacities,
    routing_channels,
    return_policies,
    rmas,
    rma_lines,
    channel_shipments,
)
