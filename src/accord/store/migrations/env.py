"""Alembic environment: runs against the connection Accord hands over (see accord.store.migrate)."""

from __future__ import annotations

from alembic import context

from accord.store import orders_tables as _orders_tables  # noqa: F401  (orders and returns, issue 5)
from accord.store import pim_tables as _pim_tables  # noqa: F401  (PIM tables, issue 3)
from accord.store import sync_tables as _sync_tables  # noqa: F401  (channel-sync tables, issue 4)
from accord.store.schema import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through accord.store.migrate
    raise RuntimeError("run migrations through `accord init` (accord.store.migrate.upgrade)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
