"""The durable queue of ship confirmations to send back to channels.

``OrderService.ship`` enqueues a confirmation in the same transaction as the ledger SHIP movement, so a shipment
that happened is never lost and a rolled-back one is never confirmed. The sync worker takes due rows, sends them
through the channel's connector and records the outcome (:class:`~accord.sync.sendback.SendBackQueue`): sent,
retried later (attempts, next time, error) or parked as dead with the marketplace's answer — visible in listings and
``/metrics``, and redrivable. On a channel that keeps one tracking number per order, a later parcel of an order the
channel already has confirmed is marked covered instead of being sent.

A row is keyed by (channel, shipment id): enqueueing the same shipment twice is a no-op, and the shipment id is
the idempotency key the connector sends where the protocol accepts one. The lifecycle ``shipments.confirm_state``
follows the queue (pending → sent or covered, or failed while parked).
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from accord.connectors.base import ShipmentConfirmation, ShipmentLine, ms_from_datetime
from accord.domain.errors import InvalidInput
from accord.store import orders_tables as ot
from accord.store.db import Database, Tx
from accord.sync.sendback import DEAD, PENDING, SENT, QueueColumns, SendBackQueue

COVERED = "covered"
STATES = (PENDING, SENT, DEAD, COVERED)
# lifecycle shipments.confirm_state for each queue state; covered: a channel that keeps one tracking number per
# order had the order confirmed by another parcel of it, so this one is not sent
CONFIRM_STATE = {PENDING: "pending", SENT: "sent", DEAD: "failed", COVERED: "covered"}

b = sa.bindparam


@dataclass(frozen=True, slots=True)
class PendingShipment:
    channel: str
    order_id: str
    attempts: int
    confirmation: ShipmentConfirmation


@dataclass(frozen=True, slots=True)
class ShipmentRow:
    channel: str
    shipment_id: str
    order_id: str
    channel_order_id: str
    carrier: str
    tracking: str
    state: str
    attempts: int
    last_error: str | None
    updated_at: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "shipment_id": self.shipment_id,
            "order_id": self.order_id,
            "channel_order_id": self.channel_order_id,
            "carrier": self.carrier,
            "tracking": self.tracking,
            "state": self.state,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "updated_at": self.updated_at,
        }


def _lines_json(lines: tuple[ShipmentLine, ...]) -> str:
    return json.dumps([{"sku": ln.sku, "qty": ln.qty, "line_id": ln.line_id} for ln in lines], separators=(",", ":"))


def _lines(text: str) -> tuple[ShipmentLine, ...]:
    return tuple(
        ShipmentLine(str(d["sku"]), int(d["qty"]), None if d.get("line_id") is None else str(d["line_id"]))
        for d in json.loads(text)
    )


class ShipmentOutbox(SendBackQueue):
    kind = "ship confirmation"
    states = STATES

    def __init__(self, db: Database) -> None:
        s = ot.channel_shipments
        queue = QueueColumns(
            s, s.c.channel_id, s.c.shipment_id, s.c.state, s.c.attempts, s.c.next_at, s.c.last_error, s.c.body,
            s.c.updated_at,
        )  # fmt: skip
        super().__init__(db, queue)
        c = db.compile
        self._q_exists = c(sa.select(s.c.state).where(s.c.channel_id == b("ch"), s.c.shipment_id == b("sid")))
        self._q_insert = c(
            sa.insert(s).values(
                channel_id=b("ch"),
                shipment_id=b("sid"),
                order_id=b("oid"),
                channel_order_id=b("coid"),
                carrier=b("carrier"),
                tracking=b("tracking"),
                shipped_at=b("shipped"),
                ship_from=b("from_"),
                lines=b("lines"),
                state=b("state"),
                attempts=b("attempts"),
                next_at=b("next"),
                last_error=sa.null(),
                body=sa.null(),
                created_at=b("at"),
                updated_at=b("at2"),
            )
        )
        cols = (
            s.c.channel_id,
            s.c.shipment_id,
            s.c.order_id,
            s.c.channel_order_id,
            s.c.carrier,
            s.c.tracking,
            s.c.shipped_at,
            s.c.ship_from,
            s.c.lines,
            s.c.attempts,
        )
        due = sa.select(*cols).where(s.c.state == b("state"), s.c.next_at <= b("now"))
        order = (s.c.next_at, s.c.created_at, s.c.channel_id, s.c.shipment_id)
        self._q_due = c(due.order_by(*order))
        self._q_due_ch = c(due.where(s.c.channel_id == b("ch")).order_by(*order))
        key = sa.and_(s.c.channel_id == b("ch"), s.c.shipment_id == b("sid"))
        self._q_sent_sibling = c(
            sa.select(s.c.shipment_id)
            .where(
                s.c.channel_id == b("ch"),
                s.c.channel_order_id == b("coid"),
                s.c.state == b("sent"),
                s.c.shipment_id != b("sid"),
            )
            .order_by(s.c.updated_at, s.c.shipment_id)
        )
        self._q_covered = c(
            sa.update(s)
            .where(key, s.c.state == b("pending"))
            .values(state=b("covered"), last_error=b("note"), body=sa.null(), updated_at=b("at"))
        )
        sh = ot.shipments
        self._q_confirm_state = c(sa.update(sh).where(sh.c.id == b("sid")).values(confirm_state=b("state")))

    # ------------------------------------------------------------------ writes

    def enqueue(self, tx: Tx, channel: str, order_id: str, confirmation: ShipmentConfirmation, now_ms: int) -> bool:
        """Queue ``confirmation`` for ``channel`` in ``tx``; False when (channel, shipment id) is queued already."""
        cf = confirmation
        if not channel or not cf.shipment_id or not cf.channel_order_id:
            raise InvalidInput("a ship confirmation needs a channel, a shipment id and the channel's order id")
        if not cf.carrier.strip() or not cf.tracking.strip():
            raise InvalidInput(f"ship confirmation {cf.shipment_id}: carrier and tracking number are required")
        if not cf.lines or any(ln.qty <= 0 for ln in cf.lines):
            raise InvalidInput(f"ship confirmation {cf.shipment_id}: needs lines with positive quantities")
        if tx.one(self._q_exists, (channel, cf.shipment_id)) is not None:
            return False
        vals = {
            "ch": channel,
            "sid": cf.shipment_id,
            "oid": order_id,
            "coid": cf.channel_order_id,
            "carrier": cf.carrier.strip(),
            "tracking": cf.tracking.strip(),
            "shipped": ms_from_datetime(cf.shipped_at),
            "from_": cf.ship_from_location,
            "lines": _lines_json(cf.lines),
            "state": PENDING,
            "attempts": 0,
            "next": now_ms,
            "at": now_ms,
            "at2": now_ms,
        }
        tx.run(self._q_insert, self._q_insert.bind(vals))
        return True

    def on_state(self, tx: Tx, channel: str, key: str, state: str) -> None:
        tx.run(self._q_confirm_state, (CONFIRM_STATE[state], key))

    def sent_sibling(self, channel: str, channel_order_id: str, shipment_id: str) -> str | None:
        """Another shipment of the same channel order whose confirmation the channel accepted, if any."""
        with self.db.read() as tx:
            vals = {"ch": channel, "coid": channel_order_id, "sent": SENT, "sid": shipment_id}
            row = tx.one(self._q_sent_sibling, self._q_sent_sibling.bind(vals))
        return None if row is None else str(row[0])

    def mark_covered(self, channel: str, shipment_id: str, by_shipment_id: str, now_ms: int) -> None:
        """Not sent: the channel keeps one tracking number per order and ``by_shipment_id`` already confirmed it."""
        note = f"covered by shipment {by_shipment_id}: the channel keeps one tracking number per order"
        with self.db.tx() as tx:
            vals = {"ch": channel, "sid": shipment_id, "pending": PENDING, "covered": COVERED, "note": note}
            if tx.run(self._q_covered, self._q_covered.bind({**vals, "at": now_ms})).rowcount:
                self.on_state(tx, channel, shipment_id, COVERED)

    # ------------------------------------------------------------------ reads

    def due(self, now_ms: int, limit: int = 100, channel: str | None = None) -> builtins.list[PendingShipment]:
        """Pending confirmations whose time has come, oldest first (a read transaction: never waits for writers)."""
        lim = max(1, limit)
        with self.db.read() as tx:
            if channel is None:
                tx.run(self._q_due, (PENDING, now_ms))
            else:
                tx.run(self._q_due_ch, (PENDING, now_ms, channel))
            rows = tx.cur.fetchmany(lim)
        return [
            PendingShipment(
                str(r[0]),
                str(r[2]),
                int(r[9]),
                ShipmentConfirmation(
                    channel_order_id=str(r[3]),
                    shipment_id=str(r[1]),
                    carrier=str(r[4]),
                    tracking=str(r[5]),
                    shipped_at=datetime.fromtimestamp(int(r[6]) / 1000, UTC),
                    lines=_lines(str(r[8])),
                    ship_from_location=None if r[7] is None else str(r[7]),
                ),
            )
            for r in rows
        ]

    def list(
        self, channel: str | None = None, state: str | None = None, limit: int = 1000
    ) -> builtins.list[ShipmentRow]:
        self.check_listing(state, limit)
        s = ot.channel_shipments
        q = sa.select(
            s.c.channel_id,
            s.c.shipment_id,
            s.c.order_id,
            s.c.channel_order_id,
            s.c.carrier,
            s.c.tracking,
            s.c.state,
            s.c.attempts,
            s.c.last_error,
            s.c.updated_at,
        )
        if channel:
            q = q.where(s.c.channel_id == channel)
        if state:
            q = q.where(s.c.state == state)
        q = q.order_by(s.c.created_at, s.c.channel_id, s.c.shipment_id).limit(limit)
        with self.db.read() as tx:
            rows = tx.all(*self._bound(q))
        return [ShipmentRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], int(r[7]), r[8], int(r[9])) for r in rows]
