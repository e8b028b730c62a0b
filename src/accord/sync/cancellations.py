"""The queue of order cancellations to send back to channels, kept on ``channel_orders``.

An order Accord could not cover (or a seller cancellation from the order lifecycle) is recorded with
``status = cancelled`` and ``cancel_state = pending`` in the transaction that decided it, so it is never lost. The
sync worker takes due rows, sends them through the channel's connector and records the outcome here: sent, retried
later (``cancel_attempts``, not before ``cancel_next_at``, the error kept) or parked ``dead`` with the
marketplace's answer (``cancel_body``) — listed by ``accord sync cancellations``, counted on ``/metrics`` and
redrivable. The connector's ``cancel_order`` is idempotent per order, so a resend after a lost answer is harmless.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from accord.connectors.base import CancelReason
from accord.domain.errors import InvalidInput
from accord.store import sync_tables as st
from accord.store.db import Compiled, Database

PENDING, SENT, DEAD = "pending", "sent", "dead"
STATES = (PENDING, SENT, DEAD)
CANCELLED = "cancelled"  # channel_orders.status of an order whose cancellation goes back to the channel
MAX_ERROR = 2_000
MAX_BODY = 8_000

b = sa.bindparam


def reason_of(text: str | None) -> CancelReason:
    """The connector reason for the reason Accord recorded (``out of stock: ...``, ``cancelled by customer``...)."""
    t = (text or "").lower()
    if t.startswith("out of stock") or "stock" in t or "inventory" in t:
        return CancelReason.OUT_OF_STOCK
    if "customer" in t or "buyer" in t:
        return CancelReason.CUSTOMER_REQUEST
    if "price" in t or "pricing" in t:
        return CancelReason.PRICING_ERROR
    if "address" in t or "undeliverable" in t:
        return CancelReason.UNDELIVERABLE
    return CancelReason.OTHER


@dataclass(frozen=True, slots=True)
class PendingCancel:
    channel: str
    channel_order_id: str
    reason: CancelReason
    note: str
    attempts: int


@dataclass(frozen=True, slots=True)
class CancelRow:
    channel: str
    channel_order_id: str
    reason: str | None
    state: str
    attempts: int
    next_at: int
    last_error: str | None
    body: str | None
    updated_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "channel_order_id": self.channel_order_id,
            "reason": self.reason,
            "state": self.state,
            "attempts": self.attempts,
            "next_at": self.next_at,
            "last_error": self.last_error,
            "body": self.body,
            "updated_at": self.updated_at,
        }


def _bound(db: Database, stmt: sa.ClauseElement) -> tuple[Compiled, tuple[Any, ...]]:
    c = stmt.compile(dialect=db.dialect, compile_kwargs={"render_postcompile": True})
    comp = Compiled(c.string, tuple(getattr(c, "positiontup", None) or ()))
    return comp, tuple(c.params[n] for n in comp.names)


class CancelQueue:
    def __init__(self, db: Database) -> None:
        self.db = db
        o = st.channel_orders
        c = db.compile
        cols = (o.c.channel_id, o.c.channel_order_id, o.c.reason, o.c.cancel_attempts)
        due = sa.select(*cols).where(
            o.c.cancel_state == b("state"), o.c.cancel_next_at <= b("now"), o.c.status == b("status")
        )
        order = (o.c.cancel_next_at, o.c.updated_at, o.c.channel_id, o.c.channel_order_id)
        self._q_due = c(due.order_by(*order))
        self._q_due_ch = c(due.where(o.c.channel_id == b("ch")).order_by(*order))
        self._q_next = c(
            sa.select(sa.func.min(o.c.cancel_next_at)).where(o.c.cancel_state == b("state"), o.c.status == b("status"))
        )
        key = sa.and_(o.c.channel_id == b("ch"), o.c.channel_order_id == b("oid"), o.c.cancel_state == b("pending"))
        self._q_sent = c(
            sa.update(o)
            .where(key)
            .values(
                cancel_state=b("sent"),
                cancel_attempts=b("attempts"),
                cancel_error=sa.null(),
                cancel_body=sa.null(),
                updated_at=b("at"),
            )
        )
        self._q_retry = c(
            sa.update(o)
            .where(key)
            .values(cancel_attempts=b("attempts"), cancel_next_at=b("next"), cancel_error=b("err"), updated_at=b("at"))
        )
        self._q_park = c(
            sa.update(o)
            .where(key)
            .values(
                cancel_state=b("dead"),
                cancel_attempts=b("attempts"),
                cancel_error=b("err"),
                cancel_body=b("body"),
                updated_at=b("at"),
            )
        )

    # ------------------------------------------------------------------ writes

    def mark_sent(self, channel: str, channel_order_id: str, attempts: int, now_ms: int) -> None:
        with self.db.tx() as tx:
            vals = {"ch": channel, "oid": channel_order_id, "pending": PENDING, "sent": SENT, "attempts": attempts}
            tx.run(self._q_sent, self._q_sent.bind({**vals, "at": now_ms}))

    def retry(
        self, channel: str, channel_order_id: str, attempts: int, next_at_ms: int, error: str, now_ms: int
    ) -> None:
        """A retryable failure: stays pending, not due before ``next_at_ms``."""
        vals = {
            "ch": channel,
            "oid": channel_order_id,
            "pending": PENDING,
            "attempts": attempts,
            "next": next_at_ms,
            "err": error[:MAX_ERROR],
            "at": now_ms,
        }
        with self.db.tx() as tx:
            tx.run(self._q_retry, self._q_retry.bind(vals))

    def park(
        self, channel: str, channel_order_id: str, attempts: int, error: str, body: str | None, now_ms: int
    ) -> None:
        """Give up for now: dead, the error and the marketplace's answer kept; :meth:`redrive` puts it back."""
        vals = {
            "ch": channel,
            "oid": channel_order_id,
            "pending": PENDING,
            "dead": DEAD,
            "attempts": attempts,
            "err": error[:MAX_ERROR],
            "body": None if body is None else body[:MAX_BODY],
            "at": now_ms,
        }
        with self.db.tx() as tx:
            tx.run(self._q_park, self._q_park.bind(vals))

    def redrive(self, channel: str | None = None, channel_order_id: str | None = None, now_ms: int = 0) -> int:
        """Dead cancellations (of one channel, or one order) back to pending, due at ``now_ms``, attempts reset."""
        o = st.channel_orders
        cond = [o.c.cancel_state == DEAD]
        if channel:
            cond.append(o.c.channel_id == channel)
        if channel_order_id:
            cond.append(o.c.channel_order_id == channel_order_id)
        stmt = (
            sa.update(o)
            .where(*cond)
            .values(
                cancel_state=PENDING,
                cancel_attempts=0,
                cancel_next_at=now_ms,
                cancel_error=None,
                cancel_body=None,
                updated_at=now_ms,
            )
        )
        with self.db.tx() as tx:
            n = tx.run(*_bound(self.db, stmt)).rowcount
        return int(n or 0)

    # ------------------------------------------------------------------ reads

    def due(self, now_ms: int, limit: int = 50, channel: str | None = None) -> builtins.list[PendingCancel]:
        """Pending cancellations whose time has come, oldest first (a read transaction: never waits for writers)."""
        with self.db.read() as tx:
            if channel is None:
                tx.run(self._q_due, (PENDING, now_ms, CANCELLED))
            else:
                tx.run(self._q_due_ch, (PENDING, now_ms, CANCELLED, channel))
            rows = tx.cur.fetchmany(max(1, limit))
        return [
            PendingCancel(str(r[0]), str(r[1]), reason_of(r[2]), str(r[2] or "cancelled by the seller"), int(r[3]))
            for r in rows
        ]

    def next_due_ms(self) -> int | None:
        with self.db.read() as tx:
            row = tx.one(self._q_next, (PENDING, CANCELLED))
        return None if row is None or row[0] is None else int(row[0])

    def list(self, channel: str | None = None, state: str | None = None, limit: int = 1000) -> builtins.list[CancelRow]:
        if state is not None and state not in STATES:
            raise InvalidInput(f"unknown cancellation state {state!r}; one of {', '.join(STATES)}")
        if not 0 < limit <= 100_000:
            raise InvalidInput(f"limit must be 1-100000, got {limit}")
        o = st.channel_orders
        q = sa.select(
            o.c.channel_id,
            o.c.channel_order_id,
            o.c.reason,
            o.c.cancel_state,
            o.c.cancel_attempts,
            o.c.cancel_next_at,
            o.c.cancel_error,
            o.c.cancel_body,
            o.c.updated_at,
        ).where(o.c.cancel_state.in_(STATES))
        if channel:
            q = q.where(o.c.channel_id == channel)
        if state:
            q = q.where(o.c.cancel_state == state)
        q = q.order_by(o.c.updated_at, o.c.channel_id, o.c.channel_order_id).limit(limit)
        with self.db.read() as tx:
            rows = tx.all(*_bound(self.db, q))
        return [
            CancelRow(str(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]), int(r[5]), r[6], r[7], int(r[8])) for r in rows
        ]

    def counts(self) -> dict[tuple[str, str], int]:
        """(channel, state) → number of cancellations, for ``/metrics`` and ``accord sync status``."""
        o = st.channel_orders
        q = (
            sa.select(o.c.channel_id, o.c.cancel_state, sa.func.count())
            .where(o.c.cancel_state.in_(STATES))
            .group_by(o.c.channel_id, o.c.cancel_state)
        )
        with self.db.read() as tx:
            return {(str(r[0]), str(r[1])): int(r[2]) for r in tx.all(*_bound(self.db, q))}


def send_back_counts(db: Database) -> dict[str, dict[str, dict[str, int]]]:
    """channel → {"shipments": {state: n}, "cancellations": {state: n}}, every state present (zeros included):
    what goes back to each channel after its orders, for ``accord sync status`` and ``/metrics``."""
    from accord.orders.shipments import ShipmentOutbox  # local: the accord.orders package imports accord.sync

    out: dict[str, dict[str, dict[str, int]]] = {}
    for kind, counts in (("shipments", ShipmentOutbox(db).counts()), ("cancellations", CancelQueue(db).counts())):
        for (ch, state), n in counts.items():
            per = out.setdefault(ch, {"shipments": dict.fromkeys(STATES, 0), "cancellations": dict.fromkeys(STATES, 0)})
            per[kind][state] = per[kind].get(state, 0) + n
    return out
