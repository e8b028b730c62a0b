"""The durable send-back queue mechanism shared by ship confirmations and order cancellations.

Both are writes Accord owes a channel after an order: recorded in the transaction that decided them (so never
lost), taken by the sync worker when due, and settled here — sent; retried later (attempts, not before a time, the
error kept); or parked dead with the marketplace's answer, listed, counted and redrivable. The two kinds keep their
rows in different tables (a confirmation is a row of its own, a cancellation lives on its channel order), so a
queue is described by :class:`QueueColumns` and the statements are built from it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from accord.domain.errors import InvalidInput
from accord.store.db import Compiled, Database, Tx
from accord.store.sql import StatementRunner

PENDING, SENT, DEAD = "pending", "sent", "dead"
MAX_ERROR = 2_000
MAX_BODY = 8_000

b = sa.bindparam


@dataclass(frozen=True, slots=True)
class QueueColumns:
    """Where one queue keeps its rows. ``scope`` narrows the table to the queue's rows (bind-free: it is compiled)."""

    table: sa.Table
    channel: sa.Column[Any]
    key: sa.Column[Any]
    state: sa.Column[Any]
    attempts: sa.Column[Any]
    next_at: sa.Column[Any]
    error: sa.Column[Any]
    body: sa.Column[Any]
    updated_at: sa.Column[Any]
    scope: sa.ColumnElement[bool] | None = None


class SendBackQueue:
    """Settling, redriving and counting rows of one queue; the kinds add their own enqueue, due and list."""

    kind = "item"
    states: tuple[str, ...] = (PENDING, SENT, DEAD)

    def __init__(self, db: Database, cols: QueueColumns) -> None:
        self.db = db
        self.cols = cols
        self._sql = StatementRunner(db)
        c, q = db.compile, cols
        key = sa.and_(q.channel == b("ch"), q.key == b("key"))
        pending = q.state == b("pending")
        self._q_sent = c(
            sa.update(q.table)
            .where(key, q.state != b("sent"))  # from pending, or parked / awaiting a report the channel took after all
            .values(
                {
                    q.state: b("sent"),
                    q.attempts: b("attempts"),
                    q.error: sa.null(),
                    q.body: sa.null(),
                    q.updated_at: b("at"),
                }
            )
        )
        self._q_retry = c(
            sa.update(q.table)
            .where(key, pending)
            .values({q.attempts: b("attempts"), q.next_at: b("next"), q.error: b("err"), q.updated_at: b("at")})
        )
        self._q_park = c(
            sa.update(q.table)
            .where(key, pending)
            .values(
                {
                    q.state: b("dead"),
                    q.attempts: b("attempts"),
                    q.error: b("err"),
                    q.body: b("body"),
                    q.updated_at: b("at"),
                }
            )
        )

    # ------------------------------------------------------------------ hooks

    def on_state(self, tx: Tx, channel: str, key: str, state: str) -> None:
        """Called in the transaction that moved a row to ``state`` (the lifecycle may follow the queue)."""

    # ------------------------------------------------------------------ settling

    def mark_sent(self, channel: str, key: str, attempts: int, now_ms: int) -> None:
        """The channel accepted it after ``attempts`` tries in all."""
        vals = {"ch": channel, "key": key, "sent": SENT, "attempts": attempts}
        with self.db.tx() as tx:
            if tx.run(self._q_sent, self._q_sent.bind({**vals, "at": now_ms})).rowcount:
                self.on_state(tx, channel, key, SENT)

    def retry(self, channel: str, key: str, attempts: int, next_at_ms: int, error: str, now_ms: int) -> None:
        """A retryable failure: stays pending, not due before ``next_at_ms``."""
        vals = {"ch": channel, "key": key, "pending": PENDING, "attempts": attempts, "next": next_at_ms}
        with self.db.tx() as tx:
            tx.run(self._q_retry, self._q_retry.bind({**vals, "err": error[:MAX_ERROR], "at": now_ms}))

    def park(
        self,
        channel: str,
        key: str,
        attempts: int,
        error: str,
        body: str | None,
        now_ms: int,
        from_state: str = PENDING,
    ) -> None:
        """Give up for now: dead, the error and the marketplace's answer kept; :meth:`redrive` puts it back."""
        vals = {"ch": channel, "key": key, "pending": from_state, "dead": DEAD, "attempts": attempts, "at": now_ms}
        vals.update(err=error[:MAX_ERROR], body=None if body is None else body[:MAX_BODY])
        with self.db.tx() as tx:
            if tx.run(self._q_park, self._q_park.bind(vals)).rowcount:
                self.on_state(tx, channel, key, DEAD)

    def redrive(self, channel: str | None = None, key: str | None = None, now_ms: int = 0) -> int:
        """Dead rows (of one channel, or one key) back to pending, due at ``now_ms``, attempts reset."""
        q = self.cols
        cond = [q.state == DEAD]
        if q.scope is not None:
            cond.append(q.scope)
        if channel:
            cond.append(q.channel == channel)
        if key:
            cond.append(q.key == key)
        with self.db.tx() as tx:
            rows = [(str(r[0]), str(r[1])) for r in tx.all(*self._bound(sa.select(q.channel, q.key).where(*cond)))]
            if not rows:
                return 0
            values = {q.state: PENDING, q.attempts: 0, q.next_at: now_ms, q.error: None, q.body: None}
            values[q.updated_at] = now_ms
            tx.run(*self._bound(sa.update(q.table).where(*cond).values(values)))
            for ch, k in rows:
                self.on_state(tx, ch, k, PENDING)
        return len(rows)

    # ------------------------------------------------------------------ reads

    def counts(self) -> dict[tuple[str, str], int]:
        """(channel, state) → number of rows, for ``/metrics`` and ``accord sync status``."""
        q = self.cols
        stmt = sa.select(q.channel, q.state, sa.func.count()).where(q.state.in_(self.states))
        if q.scope is not None:
            stmt = stmt.where(q.scope)
        with self.db.read() as tx:
            return {(str(r[0]), str(r[1])): int(r[2]) for r in tx.all(*self._bound(stmt.group_by(q.channel, q.state)))}

    def check_listing(self, state: str | None, limit: int) -> None:
        if state is not None and state not in self.states:
            raise InvalidInput(f"unknown {self.kind} state {state!r}; one of {', '.join(self.states)}")
        if not 0 < limit <= 100_000:
            raise InvalidInput(f"limit must be 1-100000, got {limit}")

    def _bound(self, stmt: sa.ClauseElement) -> tuple[Compiled, tuple[Any, ...]]:
        return self._sql.bound(stmt)


def send_back_counts(db: Database) -> dict[str, dict[str, dict[str, int]]]:
    """channel → {"shipments": {state: n}, "cancellations": {state: n}}, every state present (zeros included):
    what goes back to each channel after its orders, for ``accord sync status`` and ``/metrics``."""
    from accord.orders.shipments import ShipmentOutbox  # local: the accord.orders package imports accord.sync
    from accord.sync.cancellations import CancelQueue

    queues: tuple[tuple[str, SendBackQueue], ...] = (
        ("shipments", ShipmentOutbox(db)),
        ("cancellations", CancelQueue(db)),
    )
    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind, queue in queues:
        for (ch, state), n in queue.counts().items():
            per = out.setdefault(ch, {k: dict.fromkeys(q.states, 0) for k, q in queues})
            per[kind][state] = per[kind].get(state, 0) + n
    return out
