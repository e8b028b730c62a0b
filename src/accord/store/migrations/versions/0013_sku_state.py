"""core: each SKU's packed row (``sku_ats``) also holds its balances, so a movement reads one row per SKU

``sku_ats.balances`` is a JSON object ``{location: [on_hand, committed, in_transit, damaged, quarantine]}`` with
every location where the SKU has a ``balances`` row: a copy written in the same transaction as those rows. The
movement write path reads it (and the packed ATS) instead of every balance row of the SKU; ``balances`` stays the
table every query reads and the ledger's replay target. Existing rows are filled from ``balances``; a SKU with
balances but no packed row gets one (its ATS is ``{}`` until the next movement or ``accord recompute-ats``,
which is what a missing row meant before).

Revision ID: 0013_sku_state
Revises: 0010_core_speed
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_sku_state"
down_revision = "0010_core_speed"
branch_labels = None
depends_on = None

SQLITE_PACK = (
    "SELECT json_group_object(b.location_id, json_array(b.on_hand, b.committed, b.in_transit, b.damaged,"
    " b.quarantine)) FROM balances b WHERE b.sku_id = {sku}"
)
PG_PACK = (
    "SELECT json_object_agg(b.location_id, json_build_array(b.on_hand, b.committed, b.in_transit, b.damaged,"
    " b.quarantine))::text FROM balances b WHERE b.sku_id = {sku}"
)


def upgrade() -> None:
    op.add_column("sku_ats", sa.Column("balances", sa.Text(), nullable=False, server_default="{}"))
    pack = SQLITE_PACK if op.get_bind().dialect.name == "sqlite" else PG_PACK
    op.execute(
        "INSERT INTO sku_ats (sku_id, ats, balances, updated_at)"
        " SELECT DISTINCT b.sku_id, '{}', '{}', 0 FROM balances b"
        " WHERE NOT EXISTS (SELECT 1 FROM sku_ats a WHERE a.sku_id = b.sku_id)"
    )
    op.execute(
        f"UPDATE sku_ats SET balances = ({pack.format(sku='sku_ats.sku_id')})"
        " WHERE EXISTS (SELECT 1 FROM balances b WHERE b.sku_id = sku_ats.sku_id)"
    )


def downgrade() -> None:
    # SQLite ≥ 3.35 and PostgreSQL both drop a column in place (a batch rebuild would lose WITHOUT ROWID)
    op.execute("ALTER TABLE sku_ats DROP COLUMN balances")
