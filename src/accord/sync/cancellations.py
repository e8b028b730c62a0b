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
from accord.store import sync_tables as st
from accord.store.db import Database
from accord.sync.sendback import DEAD, PENDING, SENT, QueueColumns, SendBackQueue

SUBMITTED = "submitted"  # in a feed the channel accepted; its processing report has the final word
STATES = (PENDING, SUBMITTED, SENT, DEAD)
CANCELLED = "cancelled"  # channel_orders.status of an order whose cancellation goes back to the channel

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


@dataclass(frozen=True, slots=True)
class SubmittedCancel:
    """A cancellation in a feed awaiting its processing report: MessageID ``message`` of feed ``feed_id``."""

    channel_order_id: str
    feed_id: str
    message: int
    attempts: int


class CancelQueue(SendBackQueue):
    kind = "cancellation"
    states = STATES

    def __init__(self, db: Database) -> None:
        o = st.channel_orders
        super().__init__(
            db,
            QueueColumns(
                o,
                o.c.channel_id,
                o.c.channel_order_id,
                o.c.cancel_state,
                o.c.cancel_attempts,
                o.c.cancel_next_at,
                o.c.cancel_error,
                o.c.cancel_body,
                o.c.updated_at,
                scope=o.c.status == sa.literal_column(f"'{CANCELLED}'"),
            ),
        )
        c = db.compile
        cols = (o.c.channel_id, o.c.channel_order_id, o.c.reason, o.c.cancel_attempts)
        due = sa.select(*cols).where(
            o.c.cancel_state == b("state"), o.c.cancel_next_at <= b("now"), o.c.status == b("status")
        )
        order = (o.c.cancel_next_at, o.c.updated_at, o.c.channel_id, o.c.channel_order_id)
        self._q_due = c(due.order_by(*order))
        self._q_due_ch = c(due.where(o.c.channel_id == b("ch")).order_by(*order))
        self._q_next = c(
            sa.select(sa.func.min(o.c.cancel_next_at)).where(
                sa.or_(o.c.cancel_state == b("state"), o.c.cancel_state == b("submitted")), o.c.status == b("status")
            )
        )
        key = sa.and_(o.c.channel_id == b("ch"), o.c.channel_order_id == b("oid"))
        self._q_submit = c(
            sa.update(o)
            .where(key, o.c.cancel_state == b("pending"))
            .values(
                cancel_state=b("submitted"),
                cancel_attempts=b("attempts"),
                cancel_next_at=b("check"),
                cancel_feed=b("feed"),
                cancel_feed_msg=b("msg"),
                cancel_error=sa.null(),
                updated_at=b("at"),
            )
        )
        self._q_submitted = c(
            sa.select(o.c.channel_order_id, o.c.cancel_feed, o.c.cancel_feed_msg, o.c.cancel_attempts)
            .where(o.c.channel_id == b("ch"), o.c.cancel_state == b("submitted"), o.c.cancel_next_at <= b("now"))
            .order_by(o.c.cancel_feed, o.c.cancel_feed_msg)
        )
        self._q_recheck = c(
            sa.update(o)
            .where(o.c.channel_id == b("ch"), o.c.cancel_feed == b("feed"), o.c.cancel_state == b("submitted"))
            .values(cancel_next_at=b("next"), updated_at=b("at"))
        )

    # ------------------------------------------------------------------ feeds

    def mark_submitted(
        self,
        channel: str,
        channel_order_id: str,
        feed_id: str,
        message: int,
        attempts: int,
        check_at_ms: int,
        now_ms: int,
    ) -> None:
        """In feed ``feed_id`` as MessageID ``message``, accepted by the channel; its report is read from
        ``check_at_ms`` on (:meth:`submitted`)."""
        vals: dict[str, Any] = {"ch": channel, "oid": channel_order_id, "pending": PENDING, "submitted": SUBMITTED}
        vals.update(attempts=attempts, check=check_at_ms, feed=feed_id, msg=message, at=now_ms)
        with self.db.tx() as tx:
            tx.run(self._q_submit, self._q_submit.bind(vals))

    def submitted(self, channel: str, now_ms: int) -> dict[str, builtins.list[SubmittedCancel]]:
        """Feed id → its cancellations (by MessageID) whose report is due to be read."""
        with self.db.read() as tx:
            rows = tx.all(self._q_submitted, (channel, SUBMITTED, now_ms))
        out: dict[str, builtins.list[SubmittedCancel]] = {}
        for r in rows:
            out.setdefault(str(r[1]), []).append(SubmittedCancel(str(r[0]), str(r[1]), int(r[2]), int(r[3])))
        return out

    def recheck(self, channel: str, feed_id: str, next_at_ms: int, now_ms: int) -> None:
        """The feed is still being processed: read its report again from ``next_at_ms``."""
        vals = {"next": next_at_ms, "at": now_ms, "ch": channel, "feed": feed_id, "submitted": SUBMITTED}
        with self.db.tx() as tx:
            tx.run(self._q_recheck, self._q_recheck.bind(vals))

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
            row = tx.one(
                self._q_next, self._q_next.bind({"state": PENDING, "submitted": SUBMITTED, "status": CANCELLED})
            )
        return None if row is None or row[0] is None else int(row[0])

    def list(self, channel: str | None = None, state: str | None = None, limit: int = 1000) -> builtins.list[CancelRow]:
        self.check_listing(state, limit)
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
            rows = tx.all(*self._bound(q))
        return [
            CancelRow(str(r[0]), str(r[1]), r[2], str(r[3]), int(r[4]), int(r[5]), r[6], r[7], int(r[8])) for r in rows
        ]
