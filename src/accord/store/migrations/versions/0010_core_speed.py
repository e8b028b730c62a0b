"""core: gap-safe outbox reading on PostgreSQL

PostgreSQL hands out outbox ids at insert time but transactions commit in any order: id 51 can be visible
while id 50 is still in flight. The id default now *announces* a transaction before its first outbox id:
it takes a transaction-scoped shared advisory lock keyed on the sequence's last value (which is at most the
id it then takes) and holds it until commit or rollback. The relay reads the highest id handed out, then the
smallest key still locked, and only then (a later snapshot) the rows: every id below both belongs to a
transaction that has finished, so it is visible now or never. SQLite serialises writers: ids commit in order.

Revision ID: 0010_core_speed
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0010_core_speed"
down_revision = "0001"
branch_labels = None
depends_on = None

# advisory lock keys of outbox announcements: OUTBOX_LOCK_BASE + id, far from the relay's subscriber locks
OUTBOX_LOCK_BASE = 1 << 62

PG_UP = [
    f"""
    CREATE FUNCTION accord_outbox_next_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
    DECLARE
        me text := pg_current_xact_id()::text;
    BEGIN
        IF current_setting('accord.outbox_xact', true) IS DISTINCT FROM me THEN
            -- first outbox id of this transaction: announce it (key <= the id taken below) until it ends
            PERFORM pg_advisory_xact_lock_shared({OUTBOX_LOCK_BASE} + (SELECT last_value FROM outbox_id_seq));
            PERFORM set_config('accord.outbox_xact', me, true);
        END IF;
        RETURN nextval('outbox_id_seq');
    END $$
    """,
    "ALTER TABLE outbox ALTER COLUMN id SET DEFAULT accord_outbox_next_id()",
]

PG_DOWN = [
    "ALTER TABLE outbox ALTER COLUMN id SET DEFAULT nextval('outbox_id_seq')",
    "DROP FUNCTION accord_outbox_next_id()",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_UP:
            op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_DOWN:
            op.execute(stmt)
