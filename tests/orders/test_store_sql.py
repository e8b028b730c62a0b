"""The orders service's statement runner caches compiled SQL by statement shape; values must never leak between
calls (LIMIT values, IN lists of another length, NULLs)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from accord.orders.store import Sql
from accord.store import orders_tables as ot
from accord.store.db import Database


def test_cached_statements_bind_each_calls_own_values(backend: Any) -> None:
    db = Database(backend.url)
    try:
        sql = Sql(db)
        sp = ot.sla_policies
        with db.tx() as tx:
            for ch, hours in (("a", 1), ("b", 2), ("c", 3)):
                sql.run(tx, sa.insert(sp).values(channel_id=ch, handling_hours=hours, at_risk_hours=0))
            sql.run(tx, sa.update(sp).where(sp.c.channel_id == "c").values(handling_hours=30))
            q = sa.select(sp.c.channel_id).order_by(sp.c.channel_id)
            assert [r["channel_id"] for r in sql.rows(tx, q.limit(1))] == ["a"]
            assert [r["channel_id"] for r in sql.rows(tx, q.limit(2))] == ["a", "b"]
            assert [r["channel_id"] for r in sql.rows(tx, q.where(sp.c.channel_id.in_(["c"])))] == ["c"]
            assert [r["channel_id"] for r in sql.rows(tx, q.where(sp.c.channel_id.in_(["a", "c"])))] == ["a", "c"]
            hours = {r["channel_id"]: r["handling_hours"] for r in sql.rows(tx, sa.select(sp))}
        assert hours == {"a": 1, "b": 2, "c": 30}
        assert len(sql._cache) >= 2  # the insert and the LIMIT select were compiled once each
    finally:
        db.dispose()
