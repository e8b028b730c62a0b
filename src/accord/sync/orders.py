"""Order ingestion: an order placed on a channel reserves stock in the same transaction that records it, so every
other channel's ATS drops (and syncs) at once. Unknown SKUs are held with a reason; orders that cannot be covered
are recorded as cancelled and the cancellation is sent back to the channel by the worker.

With an ``adopter`` (the order lifecycle, ``accord.orders.OrderService``), every ingested order also becomes a
lifecycle order in the same transaction — routed, held or cancelled — whatever its source (API, webhook, poll)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa

from accord.app.engine import Engine
from accord.connectors.base import ChannelOrder, ms_from_datetime
from accord.domain.errors import InvalidInput, NotFound
from accord.domain.ledger import Movement, MovementKind
from accord.store import schema as t
from accord.store import sync_tables as st
from accord.store.db import Compiled, Database, Tx

PLACED, RESERVED, HELD, CANCELLED = "placed", "reserved", "held", "cancelled"
OUT_OF_STOCK = "out of stock"

b = sa.bindparam
# backend → the intake's compiled statements (``_q_*`` attributes): the dialect is fixed per backend
_COMPILED: dict[str, dict[str, Compiled]] = {}


@dataclass(frozen=True, slots=True)
class Ingested:
    channel: str
    channel_order_id: str
    status: str  # reserved | held | cancelled | duplicate
    reason: str | None = None
    # the recorded lines: [{"sku","qty","line_id","allocations":{loc: qty}}] (empty for a duplicate)
    lines: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)


class OrderAdopter(Protocol):
    """Turns an ingested channel order into a lifecycle order, inside the ingestion transaction."""

    def adopt(self, tx: Tx, channel: str, order: ChannelOrder, source: str, ingested: Ingested) -> None: ...


@dataclass(frozen=True, slots=True)
class OrderRow:
    channel: str
    channel_order_id: str
    status: str
    reason: str | None
    lines: list[dict[str, Any]]
    source: str
    cancel_state: str | None
    cancel_error: str | None


class OrderIngestor:
    def __init__(self, engine: Engine, db: Database | None = None, adopter: OrderAdopter | None = None) -> None:
        self.engine = engine
        self.db = db or engine.db
        self.adopter = adopter
        cached = _COMPILED.get(self.db.backend)
        if cached is not None:  # the intake is built per webhook request: its statements are compiled once
            vars(self).update(cached)
            return
        c = self.db.compile
        o, w, pc = st.channel_orders, st.webhook_ids, st.poll_cursors
        self._q_order = c(
            sa.select(o.c.status).where(o.c.channel_id == b("ch"), o.c.channel_order_id == b("oid")),
        )
        self._q_order_ins = c(
            sa.insert(o).values(
                channel_id=b("ch"),
                channel_order_id=b("oid"),
                status=b("status"),
                reason=b("reason"),
                lines=b("lines"),
                source=b("source"),
                cancel_state=b("cancel"),
                cancel_error=sa.null(),
                placed_at=b("placed"),
                ingested_at=b("at"),
                updated_at=b("at2"),
            )
        )
        self._q_held = c(
            sa.select(o.c.status, o.c.lines).where(o.c.channel_id == b("ch"), o.c.channel_order_id == b("oid"))
        )
        self._q_readmit = c(
            sa.update(o)
            .where(o.c.channel_id == b("ch"), o.c.channel_order_id == b("oid"))
            .values(
                status=b("status"), reason=b("reason"), lines=b("lines"), cancel_state=b("cancel"), updated_at=b("at")
            )
        )
        self._q_cancel_state = c(
            sa.update(o)
            .where(o.c.channel_id == b("ch"), o.c.channel_order_id == b("oid"))
            .values(cancel_state=b("state"), cancel_error=b("err"), updated_at=b("at"))
        )
        self._q_webhook = c(sa.select(w.c.webhook_id).where(w.c.channel_id == b("ch"), w.c.webhook_id == b("wid")))
        self._q_webhook_ins = c(sa.insert(w).values(channel_id=b("ch"), webhook_id=b("wid"), received_at=b("at")))
        self._q_cursor = c(sa.select(pc.c.cursor).where(pc.c.channel_id == b("ch")))
        self._q_cursor_del = c(sa.delete(pc).where(pc.c.channel_id == b("ch")))
        self._q_cursor_ins = c(sa.insert(pc).values(channel_id=b("ch"), cursor=b("cur"), updated_at=b("at")))
        self._q_sku = c(sa.select(t.skus.c.id).where(t.skus.c.id == b("sku")))
        self._q_pending_cancel = c(
            sa.select(
                o.c.channel_id,
                o.c.channel_order_id,
                o.c.status,
                o.c.reason,
                o.c.lines,
                o.c.source,
                o.c.cancel_state,
                o.c.cancel_error,
            )
            .where(o.c.status == b("status"), o.c.cancel_state == b("state"))
            .order_by(o.c.ingested_at, o.c.channel_id, o.c.channel_order_id)
        )
        bl = t.balances
        self._q_avail = c(
            sa.select(bl.c.location_id, bl.c.on_hand - bl.c.committed).where(bl.c.sku_id == b("sku")),
        )
        _COMPILED[self.db.backend] = {k: v for k, v in vars(self).items() if k.startswith("_q_")}

    # ------------------------------------------------------------------ ingestion

    def ingest(self, tx: Tx, channel: str, order: ChannelOrder, source: str) -> Ingested:
        """Record one order and reserve its stock in ``tx``. Idempotent by (channel, channel_order_id)."""
        oid = order.channel_order_id
        if tx.one(self._q_order, (channel, oid)) is not None:
            return Ingested(channel, oid, "duplicate")
        now = self.engine.clock.now_ms()
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, ln in enumerate(order.lines):
            line_id = ln.line_id or str(i)
            if line_id in seen:  # a repeated line id would share a reservation key: keep the lines apart
                line_id = f"{line_id}#{i}"
            seen.add(line_id)
            lines.append({"sku": ln.sku, "qty": ln.qty, "line_id": line_id, "allocations": {}})
        status, reason = self._admit(tx, channel, oid, lines)
        vals = {
            "ch": channel,
            "oid": oid,
            "status": status,
            "reason": reason,
            "lines": json.dumps(lines, separators=(",", ":")),
            "source": source,
            "cancel": "pending" if status == CANCELLED else None,
            "placed": ms_from_datetime(order.created_at),
            "at": now,
            "at2": now,
        }
        tx.run(self._q_order_ins, self._q_order_ins.bind(vals))
        out = Ingested(channel, oid, status, reason, lines)
        if self.adopter is not None:
            self.adopter.adopt(tx, channel, order, source, out)
        return out

    def readmit(self, tx: Tx, channel: str, oid: str) -> Ingested:
        """A held order, once its cause is fixed (SKU added, channel configured): reserve it now, or record it
        cancelled when stock is short (the cancellation is queued for the channel). Still held → nothing written."""
        row = tx.one(self._q_held, (channel, oid))
        if row is None:
            raise NotFound("channel order", f"{channel}/{oid}")
        if row[0] != HELD:
            raise InvalidInput(f"channel order {channel}/{oid} is {row[0]}, not held")
        lines: list[dict[str, Any]] = json.loads(row[1])
        for ln in lines:
            ln["allocations"] = {}
        status, reason = self._admit(tx, channel, oid, lines)
        if status == HELD:
            return Ingested(channel, oid, status, reason, lines)
        vals = {
            "ch": channel,
            "oid": oid,
            "status": status,
            "reason": reason,
            "lines": json.dumps(lines, separators=(",", ":")),
            "cancel": "pending" if status == CANCELLED else None,
            "at": self.engine.clock.now_ms(),
        }
        tx.run(self._q_readmit, self._q_readmit.bind(vals))
        return Ingested(channel, oid, status, reason, lines)

    def _admit(self, tx: Tx, channel: str, oid: str, lines: list[dict[str, Any]]) -> tuple[str, str | None]:
        """Check an order's lines and reserve its stock in ``tx`` (filling each line's allocations): reserved,
        held (unknown channel or SKU, bad quantity) or cancelled (stock short; nothing reserved)."""
        cfg = self.engine.config_in(tx)
        eligible = cfg.eligible.get(channel)
        status, reason = RESERVED, None
        movements: list[Movement] = []
        if eligible is None:
            status, reason = HELD, f"channel {channel!r} is not configured in Accord"
        elif not lines:
            status, reason = HELD, "order has no lines"
        else:
            for ln in lines:
                if not ln["sku"] or tx.one(self._q_sku, (ln["sku"],)) is None:
                    status, reason = HELD, f"unknown SKU {ln['sku']!r} on line {ln['line_id']}: not in the catalogue"
                    break
                if int(ln["qty"]) <= 0:
                    status, reason = HELD, f"line {ln['line_id']} has quantity {ln['qty']}"
                    break
        if status == RESERVED and eligible is not None:
            wanted: dict[str, int] = {}
            avail: dict[str, dict[str, int]] = {}
            for ln in lines:
                sku = str(ln["sku"])
                if sku not in avail:
                    avail[sku] = {r[0]: int(r[1]) for r in tx.all(self._q_avail, (sku,))}
                left = int(ln["qty"])
                wanted[sku] = wanted.get(sku, 0) + left
                for loc in eligible:
                    take = min(left, avail[sku].get(loc, 0))
                    if take > 0:
                        avail[sku][loc] -= take
                        left -= take
                        ln["allocations"][loc] = take
                        key = f"order:{channel}:{oid}:{ln['line_id']}"
                        if len(ln["allocations"]) > 1 or take < int(ln["qty"]):
                            key += f":{loc}"
                        movements.append(Movement(MovementKind.RESERVE, sku, loc, take, key, ref=f"{channel}:{oid}"))
                    if left == 0:
                        break
                if left > 0:
                    status, reason = CANCELLED, f"{OUT_OF_STOCK}: {sku} short by {left}"
                    break
        if status == RESERVED:
            self.engine.move_batch_in(tx, movements)
        else:
            for ln in lines:
                ln["allocations"] = {}
        return status, reason

    def ingest_one(self, channel: str, order: ChannelOrder, source: str) -> Ingested:
        with self.db.tx() as tx:
            return self.ingest(tx, channel, order, source)

    def ingest_webhook(self, channel: str, webhook_id: str | None, order: ChannelOrder) -> Ingested:
        """A verified webhook delivery: deduplicated by its id, then by the order id, in one transaction."""
        with self.db.tx() as tx:
            if webhook_id:
                if tx.one(self._q_webhook, (channel, webhook_id)) is not None:
                    return Ingested(channel, order.channel_order_id, "duplicate")
                tx.run(self._q_webhook_ins, (channel, webhook_id, self.engine.clock.now_ms()))
            return self.ingest(tx, channel, order, "webhook")

    # ------------------------------------------------------------------ cursors and cancellations

    def cursor(self, channel: str) -> str | None:
        with self.db.read() as tx:
            row = tx.one(self._q_cursor, (channel,))
        return str(row[0]) if row is not None and row[0] is not None else None

    def ingest_page(self, channel: str, orders: list[ChannelOrder], next_cursor: str | None) -> list[Ingested]:
        """A polled page and the cursor after it commit together."""
        with self.db.tx() as tx:
            out = [self.ingest(tx, channel, o, "poll") for o in orders]
            tx.run(self._q_cursor_del, (channel,))
            tx.run(self._q_cursor_ins, (channel, next_cursor, self.engine.clock.now_ms()))
        return out

    def set_cancel_state(self, channel: str, oid: str, state: str, error: str | None) -> None:
        with self.db.tx() as tx:
            vals = {"ch": channel, "oid": oid, "state": state, "err": error, "at": self.engine.clock.now_ms()}
            tx.run(self._q_cancel_state, self._q_cancel_state.bind(vals))

    def orders(self, channel: str | None = None, status: str | None = None, limit: int = 10_000) -> list[OrderRow]:
        o = st.channel_orders
        q = (
            sa.select(
                o.c.channel_id,
                o.c.channel_order_id,
                o.c.status,
                o.c.reason,
                o.c.lines,
                o.c.source,
                o.c.cancel_state,
                o.c.cancel_error,
            )
            .order_by(o.c.ingested_at, o.c.channel_id, o.c.channel_order_id)
            .limit(limit)
        )
        if channel:
            q = q.where(o.c.channel_id == channel)
        if status:
            q = q.where(o.c.status == status)
        with self.db.engine.connect() as conn:
            rows = conn.execute(q).all()
            conn.rollback()
        return [OrderRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows]

    def pending_cancellations(self, limit: int = 100) -> list[OrderRow]:
        """Cancelled orders whose cancellation is still to be sent (a read transaction: never waits for writers)."""
        with self.db.read() as tx:
            tx.run(self._q_pending_cancel, (CANCELLED, "pending"))
            rows = tx.cur.fetchmany(max(1, limit))
        return [OrderRow(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows]


def counts_by_status(rows: list[OrderRow]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r.status] = out.get(r.status, 0) + 1
    return out
