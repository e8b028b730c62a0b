"""Channel-sync tables (issue 4) on the shared metadata: endpoints, desired state, dead letters, counters,
latency histograms, ingested orders, webhook ids and poll cursors.

Times are epoch milliseconds; values are JSON text so quantity, price, content and published share one table.
"""

from __future__ import annotations

import sqlalchemy as sa

from accord.store.schema import ID, metadata

SKU = sa.String(128)
# a sync_desired row still to send, spelt as each backend renders ``dead == false()`` so the planner matches it
PENDING_SQLITE = "dead = 0 AND version > acked_version"
PENDING_PG = "dead = false AND version > acked_version"

# how to reach each channel (connector ChannelConfig); credentials and options are JSON objects
sync_endpoints = sa.Table(
    "sync_endpoints",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("dialect", sa.String(32), nullable=False),
    sa.Column("base_url", sa.String(512), nullable=False),
    sa.Column("credentials", sa.Text, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# desired state per (channel, sku, field); pending while version > acked_version and not dead.
# Coalescing: a newer value overwrites value/version in place, so only the latest is ever sent.
sync_desired = sa.Table(
    "sync_desired",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("sku_id", SKU, primary_key=True),
    sa.Column("field", sa.String(16), primary_key=True),  # quantity | price | content | published
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),  # 0 critical (zero / threshold) .. 3 content
    sa.Column("enqueued_at", sa.BigInteger, nullable=False),  # commit time of the oldest unsent change
    sa.Column("acked_value", sa.Text, nullable=True),  # what the channel acknowledged (or reconcile observed)
    sa.Column("acked_version", sa.BigInteger, nullable=False),
    sa.Column("acked_at", sa.BigInteger, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("dead", sa.Boolean, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # pending keys only, in the order the worker takes them (one range scan per channel with a LIMIT)
    sa.Index(
        "ix_sync_desired_pending",
        "channel_id",
        "priority",
        "enqueued_at",
        "sku_id",
        "field",
        sqlite_where=sa.text(PENDING_SQLITE),
        postgresql_where=sa.text(PENDING_PG),
    ),
    sa.Index("ix_sync_desired_sku", "sku_id", "field"),  # every channel's row for one (sku, field)
)

# parked failures: visible in `accord sync status` and the API, with the marketplace body kept
sync_dead_letters = sa.Table(
    "sync_dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("channel_id", ID, nullable=False),
    sa.Column("sku_id", SKU, nullable=False),
    sa.Column("field", sa.String(16), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Index("ix_sync_dead_letters_channel", "channel_id", "id"),
)

# counters per channel: calls, http_429, acked, retries, conflicts, dead, drift, reconciled ...
sync_counters = sa.Table(
    "sync_counters",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# propagation latency histogram per channel and class (critical | other): count per upper bound (ms)
sync_latency = sa.Table(
    "sync_latency",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("klass", sa.String(16), primary_key=True),
    sa.Column("le_ms", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

# orders ingested from channels (webhook or poll)
channel_orders = sa.Table(
    "channel_orders",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("channel_order_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # placed | reserved | held | cancelled
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("lines", sa.Text, nullable=False),  # JSON [{"sku","qty","line_id","allocations":{loc: qty}}]
    sa.Column("source", sa.String(16), nullable=False),  # webhook | poll
    sa.Column("cancel_state", sa.String(16), nullable=True),  # pending | submitted | sent | dead (cancelled orders)
    sa.Column("cancel_error", sa.Text, nullable=True),
    # sending the cancellation back: retries with backoff (attempts, not before next_at), the answer kept when dead
    sa.Column("cancel_attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_next_at", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("cancel_body", sa.Text, nullable=True),
    # submitted in a feed (Amazon): the feed and the order's MessageID in it, until the processing report is read
    sa.Column("cancel_feed", sa.String(64), nullable=True),
    sa.Column("cancel_feed_msg", sa.Integer, nullable=True),
    sa.Column("placed_at", sa.BigInteger, nullable=False),
    sa.Column("ingested_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_channel_orders_cancel_due", "cancel_state", "cancel_next_at"),
)

# webhook delivery ids already processed (X-Shopify-Webhook-Id)
webhook_ids = sa.Table(
    "webhook_ids",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("webhook_id", sa.String(128), primary_key=True),
    sa.Column("received_at", sa.BigInteger, nullable=False),
)

# order-polling cursors per channel
poll_cursors = sa.Table(
    "poll_cursors",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("cursor", sa.Text, nullable=True),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# the channel's own listing id per SKU (Shopify inventory item gid, Mercado Libre item id, ...)
sync_listing_refs = sa.Table(
    "sync_listing_refs",
    metadata,
    sa.Column("channel_id", ID, primary_key=True),
    sa.Column("sku_id", SKU, primary_key=True),
    sa.Column("ref", sa.String(256), nullable=False),
)

TABLES: tuple[sa.Table, ...] = (
    sync_endpoints,
    sync_desired,
    sync_dead_letters,
    sync_counters,
    sync_latency,
    channel_orders,
    webhook_ids,
    poll_cursors,
    sync_listing_refs,
)
