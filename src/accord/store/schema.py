"""Tables. One MetaData is the source for Alembic migrations and for every statement Accord runs.

Quantities are integers; times are epoch milliseconds (BIGINT) so both backends agree exactly.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = sa.String(64)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False),
)

locations = sa.Table(
    "locations",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("owner_channel", ID, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("dialect", sa.String(32), nullable=False),
    sa.Column("region", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("buffer_units", sa.Integer, nullable=False),
    sa.Column("max_qty", sa.Integer, nullable=True),
    sa.Column("pool_pct", sa.Integer, nullable=False),
    sa.Column("zero_at_or_below", sa.Integer, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

channel_locations = sa.Table(
    "channel_locations",
    metadata,
    sa.Column("channel_id", ID, sa.ForeignKey("channels.id"), primary_key=True),
    sa.Column("location_id", ID, sa.ForeignKey("locations.id"), primary_key=True),
    sa.Column("priority", sa.Integer, nullable=False),
)

skus = sa.Table(
    "skus",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

balances = sa.Table(
    "balances",
    metadata,
    sa.Column("sku_id", ID, primary_key=True),
    sa.Column("location_id", ID, primary_key=True),
    sa.Column("on_hand", sa.BigInteger, nullable=False),
    sa.Column("committed", sa.BigInteger, nullable=False),
    sa.Column("in_transit", sa.BigInteger, nullable=False),
    sa.Column("damaged", sa.BigInteger, nullable=False),
    sa.Column("quarantine", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    # invariant 2, enforced by the database as a last line of defence
    sa.CheckConstraint(
        "on_hand >= 0 AND committed >= 0 AND in_transit >= 0 AND damaged >= 0 AND quarantine >= 0"
        " AND committed <= on_hand",
        name="buckets_valid",
    ),
    sqlite_with_rowid=False,  # one b-tree instead of table + primary-key index: fewer pages per commit
)

# one row per leg of a movement; the idempotency key (with the leg number) is the identity, so a
# retried movement can never be written twice. SQLite stores it WITHOUT ROWID: one b-tree per commit.
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("idem_key", sa.String(200), primary_key=True),
    sa.Column("leg", sa.SmallInteger, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("sku_id", ID, nullable=False),
    sa.Column("location_id", ID, nullable=False),
    sa.Column("d_on_hand", sa.BigInteger, nullable=False),
    sa.Column("d_committed", sa.BigInteger, nullable=False),
    sa.Column("d_in_transit", sa.BigInteger, nullable=False),
    sa.Column("d_damaged", sa.BigInteger, nullable=False),
    sa.Column("d_quarantine", sa.BigInteger, nullable=False),
    sa.Column("qty", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.String(200), nullable=True),
    sa.Column("ref", sa.String(200), nullable=True),
    sa.Column("fingerprint", sa.String(32), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

transfers = sa.Table(
    "transfers",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("sku_id", ID, nullable=False),
    sa.Column("from_location", ID, nullable=False),
    sa.Column("to_location", ID, nullable=False),
    sa.Column("qty_shipped", sa.BigInteger, nullable=False),
    sa.Column("qty_received", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint("qty_received >= 0 AND qty_received <= qty_shipped", name="received_le_shipped"),
)

# one packed row per SKU, what the movement write path reads and writes (migration 0013):
# ``ats``: available-to-sell on every channel, a JSON object {channel: qty} (missing = 0); one row per SKU keeps a
# movement that changes 12 channels at one row write instead of 12.
# ``balances``: a copy of the SKU's ``balances`` rows, {location: [on_hand, committed, in_transit, damaged,
# quarantine]}, written in the same transaction, so a movement reads one row instead of one per location.
sku_ats = sa.Table(
    "sku_ats",
    metadata,
    sa.Column("sku_id", ID, primary_key=True),
    sa.Column("ats", sa.Text, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Column("balances", sa.Text, nullable=False, server_default="{}"),
    sqlite_with_rowid=False,
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)
# PostgreSQL: the id default is ``accord_outbox_next_id()`` (migration 0010): a transaction announces itself with
# a transaction-scoped advisory lock before its first outbox id, so the relay never passes an id still in flight.

# one row per subscriber: the outbox id up to which every event was handed over (or parked)
relay_cursors = sa.Table(
    "relay_cursors",
    metadata,
    sa.Column("subscriber", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

# exactly-once in effect: a subscriber's handler and this row commit together
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("subscriber", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("handled_at", sa.BigInteger, nullable=False),
)

# failed deliveries: retried with backoff until max attempts, then dead (visible, retryable by a person)
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("subscriber", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.BigInteger, primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("dead", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.Index("ix_deliveries_due", "dead", "next_attempt_at"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
)

# idempotency for non-movement requests (API Idempotency-Key on creates, batches)
request_keys = sa.Table(
    "request_keys",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)
