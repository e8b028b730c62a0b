"""Small storage helpers for the orders service: one-off statements bound with their values, rows as dicts,
epoch-millisecond ↔ datetime conversion and outbox writes (same table and columns as ``Engine._emit``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from accord.domain import events as ev
from accord.store.db import Compiled, Tx
from accord.store.sql import StatementRunner

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CHUNK = 500


def to_dt(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=int(ms))


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(milliseconds=1)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Sql(StatementRunner):
    """:class:`~accord.store.sql.StatementRunner` with the orders service's helpers: IN lists in chunks, row locks
    on PostgreSQL and outbox writes."""

    def rows_in(
        self, tx: Tx, table: sa.Table, column: str, values: Sequence[Any], *order_by: Any
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(values), CHUNK):
            q = sa.select(table).where(table.c[column].in_(list(values[i : i + CHUNK])))
            if order_by:
                q = q.order_by(*order_by)
            out.extend(self.rows(tx, q))
        return out

    def lock(self, stmt: sa.Select[Any]) -> sa.Select[Any]:
        """PostgreSQL: lock the selected rows until commit (SQLite writers are serialised already)."""
        return stmt.with_for_update() if self.db.backend == "postgresql" else stmt

    def emit(self, tx: Tx, insert_outbox: Compiled, events: Sequence[ev.Event], now_ms: int) -> None:
        tx.many(insert_outbox, [(e.type, e.key, dumps(e.data), now_ms) for e in events])
