"""Return (RMA) use cases: create under the region's policy, receive into quarantine, grade, refund.

Each step is one transaction: the RMA rows, the ledger movements the domain plans (``Engine.move_batch_in``) and
the outbox event. Received units go RECEIVE + QUARANTINE in one batch, so nothing is sellable before inspection.

Money: an RMA's refund (unit prices × units, less the buyer-fault restocking fee and return label) is pending on
its order from the moment it is due (after grading, or on request under a returnless policy) until it is refunded;
the order's ``refund_state`` (none → pending → refunded), pending and refunded amounts follow in the same
transaction, and no refund may exceed what the order's lines were paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from accord.app.engine import Engine
from accord.domain import events as ev
from accord.domain.errors import AlreadyExists, InvalidInput, NotFound
from accord.domain.orders import OrderStatus
from accord.domain.returns import (
    RMA_EVENTS,
    Grade,
    Payer,
    RefundState,
    ReturnPolicy,
    ReturnReason,
    Rma,
    RmaLine,
    RmaStatus,
    create_rma,
    release_refurbished,
)
from accord.orders.store import Sql, dumps, to_dt, to_ms
from accord.store import orders_tables as ot
from accord.store.db import Tx

GRADE_COLUMNS: dict[Grade, str] = {
    Grade.RESELLABLE: "qty_resellable",
    Grade.REFURBISH: "qty_refurbish",
    Grade.DAMAGED: "qty_damaged",
    Grade.SCRAP: "qty_scrap",
}


def policy_dict(p: ReturnPolicy) -> dict[str, Any]:
    return {
        "name": p.name,
        "region": p.region,
        "window_days": p.window_days,
        "return_shipping_paid_by": p.return_shipping_paid_by.value,
        "restocking_fee_pct": p.restocking_fee_pct,
        "return_label_cost_minor": p.return_label_cost_minor,
        "refund_requires_receipt": p.refund_requires_receipt,
    }


def _policy(d: Mapping[str, Any]) -> ReturnPolicy:
    return ReturnPolicy(
        d["name"],
        d["region"],
        int(d["window_days"]),
        Payer(d["return_shipping_paid_by"]),
        int(d["restocking_fee_pct"]),
        int(d["return_label_cost_minor"]),
        bool(d.get("refund_requires_receipt", True)),
    )


def order_refund_state(pending_minor: int, refunded_minor: int) -> str:
    """none → pending (money due back, not yet paid) → refunded."""
    if pending_minor > 0:
        return "pending"
    return "refunded" if refunded_minor > 0 else "none"


class ReturnService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.db = engine.db
        self.sql = Sql(self.db)

    def _emit(self, tx: Tx, events: list[ev.Event], now: int) -> None:
        self.sql.emit(tx, self.engine.sql.insert_outbox, events, now)

    # ------------------------------------------------------------------ policies

    def set_policy(self, policy: ReturnPolicy) -> None:
        policy.check()
        rp = ot.return_policies
        with self.db.tx() as tx:
            self.sql.run(tx, sa.delete(rp).where(rp.c.region == policy.region))
            self.sql.run(tx, sa.insert(rp).values(**policy_dict(policy)))

    def policies(self) -> dict[str, ReturnPolicy]:
        with self.db.read() as tx:
            return self._policies(tx)

    def _policies(self, tx: Tx) -> dict[str, ReturnPolicy]:
        return {r["region"]: _policy(r) for r in self.sql.rows(tx, sa.select(ot.return_policies))}

    # ------------------------------------------------------------------ load / save

    def _load(self, tx: Tx, rma_id: str, *, lock: bool = False) -> Rma:
        q = sa.select(ot.rmas).where(ot.rmas.c.id == rma_id)
        r = self.sql.row(tx, self.sql.lock(q) if lock else q)
        if r is None:
            raise NotFound("RMA", rma_id)
        lines: dict[str, RmaLine] = {}
        rl = ot.rma_lines
        for ln in self.sql.rows(tx, sa.select(rl).where(rl.c.rma_id == rma_id).order_by(rl.c.sku_id)):
            graded = {g: int(ln[col]) for g, col in GRADE_COLUMNS.items() if ln[col]}
            lines[ln["sku_id"]] = RmaLine(
                ln["sku_id"], ln["qty_requested"], ln["unit_price_minor"], ln["location_id"], ln["qty_received"], graded
            )
        return Rma(
            r["id"],
            r["order_id"],
            r["channel_id"],
            _policy(orjson.loads(r["policy"])),
            ReturnReason(r["reason"]),
            to_dt(r["requested_at"]),
            lines,
            RmaStatus(r["status"]),
            RefundState(r["refund_state"]),
            int(r["refunded_minor"]),
            bool(r["receiving_closed"]),
            int(r["seq"]),
        )

    @staticmethod
    def _pending_of(rma: Rma, stored_due: int) -> int:
        """What this RMA adds to its order's pending refund: its due amount while refundable and not refunded."""
        return stored_due if rma.refundable_now else 0

    def _order_money(self, tx: Tx, order_id: str, pending_delta: int, refunded_delta: int, now: int) -> None:
        o = ot.orders
        row = self.sql.row(tx, sa.select(o.c.refund_pending_minor, o.c.refunded_minor).where(o.c.id == order_id))
        assert row is not None
        pending = max(0, int(row["refund_pending_minor"]) + pending_delta)
        refunded = int(row["refunded_minor"]) + refunded_delta
        self.sql.run(
            tx,
            sa.update(o)
            .where(o.c.id == order_id)
            .values(
                refund_pending_minor=pending,
                refunded_minor=refunded,
                refund_state=order_refund_state(pending, refunded),
                updated_at=now,
            ),
        )

    def _paid(self, tx: Tx, order_id: str) -> tuple[int, int, str | None]:
        """(paid, refunded so far, currency) of an order, in minor units."""
        ol, o = ot.order_lines, ot.orders
        paid = sum(
            int(r["qty"]) * int(r["unit_price_minor"])
            for r in self.sql.rows(tx, sa.select(ol.c.qty, ol.c.unit_price_minor).where(ol.c.order_id == order_id))
        )
        row = self.sql.row(tx, sa.select(o.c.refunded_minor, o.c.currency).where(o.c.id == order_id))
        assert row is not None
        return paid, int(row["refunded_minor"]), row["currency"]

    def _currency(self, tx: Tx, order_id: str) -> str | None:
        o = ot.orders
        row = self.sql.row(tx, sa.select(o.c.currency).where(o.c.id == order_id))
        return None if row is None else row["currency"]

    def _save(self, tx: Tx, rma: Rma, now: int) -> None:
        before = self.sql.row(
            tx, sa.select(ot.rmas.c.refund_state, ot.rmas.c.refund_due_minor).where(ot.rmas.c.id == rma.id)
        )
        assert before is not None
        old_state = RefundState(before["refund_state"])
        old_pending = 0
        if old_state is RefundState.DUE or (
            old_state is RefundState.NOT_DUE and not rma.policy.refund_requires_receipt
        ):
            old_pending = int(before["refund_due_minor"])
        if rma.refund_state is RefundState.REFUNDED:
            due = rma.refunded_minor
        elif rma.refundable_now:
            due = rma.refund_due_minor()
        else:
            due = 0
        new_pending = self._pending_of(rma, due)
        if new_pending != old_pending:
            self._order_money(tx, rma.order_id, new_pending - old_pending, 0, now)
        self.sql.run(
            tx,
            sa.update(ot.rmas)
            .where(ot.rmas.c.id == rma.id)
            .values(
                status=rma.status.value,
                refund_state=rma.refund_state.value,
                refund_due_minor=due,
                refunded_minor=rma.refunded_minor,
                receiving_closed=rma.receiving_closed,
                seq=rma._seq,
                updated_at=now,
            ),
        )
        rl = ot.rma_lines
        for ln in rma.lines.values():
            vals: dict[str, Any] = {"location_id": ln.location, "qty_received": ln.qty_received}
            vals.update({col: ln.graded.get(g, 0) for g, col in GRADE_COLUMNS.items()})
            self.sql.run(tx, sa.update(rl).where(rl.c.rma_id == rma.id, rl.c.sku_id == ln.sku).values(**vals))

    def _event(self, name: str, rma: Rma, currency: str | None = None, **data: Any) -> ev.Event:
        return ev.Event(
            RMA_EVENTS[name],
            rma.id,
            {
                "rma_id": rma.id,
                "order_id": rma.order_id,
                "channel": rma.channel,
                "status": rma.status.value,
                "refund_state": rma.refund_state.value,
                "currency": currency,
                **data,
            },
        )

    # ------------------------------------------------------------------ use cases

    def create(
        self,
        order_id: str,
        items: Mapping[str, int],
        reason: ReturnReason = ReturnReason.CHANGED_MIND,
        rma_id: str | None = None,
        requested_at_ms: int | None = None,
    ) -> dict[str, Any]:
        """Open an RMA. The region's policy (from the channel's region) is enforced here: a request outside the
        window is rejected naming the rule; more units than were shipped is rejected. Nothing is written then."""
        cfg = self.engine.config()
        now = self.engine.clock.now_ms()
        requested_ms = requested_at_ms if requested_at_ms is not None else now
        rid = rma_id or self.engine.ids.new("RMA")
        with self.db.tx() as tx:
            o = self.sql.row(tx, self.sql.lock(sa.select(ot.orders).where(ot.orders.c.id == order_id)))
            if o is None:
                raise NotFound("order", order_id)
            if self.sql.row(tx, sa.select(ot.rmas.c.id).where(ot.rmas.c.id == rid)) is not None:
                raise AlreadyExists(f"RMA {rid!r} already exists")
            lines = self.sql.rows(tx, sa.select(ot.order_lines).where(ot.order_lines.c.order_id == order_id))
            sku_of = {ln["line_id"]: ln["sku_id"] for ln in lines}
            price: dict[str, int] = {}
            for ln in lines:
                price.setdefault(ln["sku_id"], int(ln["unit_price_minor"]))
            shipped: dict[str, int] = {}
            last_ship = None
            for s in self.sql.rows(tx, sa.select(ot.shipments).where(ot.shipments.c.order_id == order_id)):
                last_ship = max(last_ship or 0, int(s["shipped_at"]))
                for lid, q in orjson.loads(s["lines"]).items():
                    shipped[sku_of[lid]] = shipped.get(sku_of[lid], 0) + int(q)
            rl = ot.rma_lines
            back: dict[str, int] = {}
            q_back = (
                sa.select(rl.c.sku_id, rl.c.qty_requested)
                .select_from(rl.join(ot.rmas, ot.rmas.c.id == rl.c.rma_id))
                .where(ot.rmas.c.order_id == order_id)
            )
            for r in self.sql.rows(tx, q_back):
                back[r["sku_id"]] = back.get(r["sku_id"], 0) + int(r["qty_requested"])
            delivered_ms = o["delivered_at"] or last_ship or o["placed_at"]
            channel = cfg.channels.get(o["channel_id"])
            region = channel.region if channel is not None else ""
            rma = create_rma(
                rid,
                order_id,
                o["channel_id"],
                region,
                self._policies(tx),
                delivered_at=to_dt(delivered_ms),
                requested_at=to_dt(requested_ms),
                requested=items,
                shipped=shipped,
                unit_price_minor=price,
                already_returned=back,
                reason=reason,
            )
            if o["status"] not in (OrderStatus.SHIPPED, OrderStatus.DELIVERED, OrderStatus.PARTIALLY_SHIPPED) and (
                o["status"] != OrderStatus.REFUNDED
            ):  # pragma: no cover - shipped units imply one of these
                raise NotFound("shipped order", order_id)
            self.sql.run(
                tx,
                sa.insert(ot.rmas).values(
                    id=rid,
                    order_id=order_id,
                    channel_id=o["channel_id"],
                    region=region,
                    policy=dumps(policy_dict(rma.policy)),
                    reason=reason.value,
                    status=rma.status.value,
                    refund_state=rma.refund_state.value,
                    refund_due_minor=0,
                    refunded_minor=0,
                    receiving_closed=False,
                    seq=0,
                    requested_at=requested_ms,
                    updated_at=now,
                ),
            )
            for rline in rma.lines.values():
                self.sql.run(
                    tx,
                    sa.insert(rl).values(
                        rma_id=rid,
                        sku_id=rline.sku,
                        qty_requested=rline.qty_requested,
                        unit_price_minor=rline.unit_price_minor,
                        location_id=None,
                        qty_received=0,
                        **{col: 0 for col in GRADE_COLUMNS.values()},
                    ),
                )
            self._save(tx, rma, now)  # a returnless policy makes the refund pending on the order at once
            items_data = [{"sku": ln.sku, "qty": ln.qty_requested} for ln in rma.lines.values()]
            due = rma.refund_due_minor() if rma.refundable_now else None
            self._emit(
                tx,
                [
                    self._event(
                        "requested",
                        rma,
                        o["currency"],
                        policy=rma.policy.name,
                        region=region,
                        items=items_data,
                        refund_due_minor=due,
                    )
                ],
                now,
            )
        return self.show(rid)

    def receive(self, rma_id: str, sku: str, qty: int, location: str) -> dict[str, Any]:
        """Units arrive at ``location``: RECEIVE + QUARANTINE with the RMA update, one transaction."""
        with self.db.tx() as tx:
            rma = self._load(tx, rma_id, lock=True)
            moves = rma.receive(sku, qty, location)
            now = self.engine.clock.now_ms()
            self.engine.move_batch_in(tx, moves)
            self._save(tx, rma, now)
            self._emit(
                tx,
                [self._event("received", rma, self._currency(tx, rma.order_id), sku=sku, qty=qty, location=location)],
                now,
            )
        return self.show(rma_id)

    def grade(self, rma_id: str, sku: str, qty: int, grade: Grade) -> dict[str, Any]:
        """Inspect and grade received units; the grade's ledger movements commit with the RMA update."""
        with self.db.tx() as tx:
            rma = self._load(tx, rma_id, lock=True)
            moves = rma.grade(sku, qty, grade)
            now = self.engine.clock.now_ms()
            self.engine.move_batch_in(tx, moves)
            self._save(tx, rma, now)
            line = rma.lines[sku]
            due = rma.refund_due_minor() if rma.refund_state is RefundState.DUE else None
            self._emit(
                tx,
                [
                    self._event(
                        "graded",
                        rma,
                        self._currency(tx, rma.order_id),
                        sku=sku,
                        qty=qty,
                        grade=grade.value,
                        location=line.location,
                        refund_due_minor=due,
                    )
                ],
                now,
            )
        return self.show(rma_id)

    def release(self, rma_id: str, sku: str, qty: int) -> dict[str, Any]:
        """Refurbished units are sellable again (quarantine → on_hand)."""
        with self.db.tx() as tx:
            rma = self._load(tx, rma_id, lock=True)
            moves = release_refurbished(rma, sku, qty)
            now = self.engine.clock.now_ms()
            self.engine.move_batch_in(tx, moves)
            self._save(tx, rma, now)
            self._emit(
                tx,
                [
                    self._event(
                        "graded", rma, self._currency(tx, rma.order_id), sku=sku, qty=qty, grade="refurbished-released"
                    )
                ],
                now,
            )
        return self.show(rma_id)

    def refund(self, rma_id: str, amount_minor: int | None = None) -> dict[str, Any]:
        """Pay back what the RMA's policy says is due (default: all of it). Rejected, writing nothing, before the
        return is received and graded (unless the policy refunds on request), when it exceeds the amount due, or
        when it exceeds what is left of what the order was paid."""
        with self.db.tx() as tx:
            rma = self._load(tx, rma_id, lock=True)
            self.sql.row(tx, self.sql.lock(sa.select(ot.orders.c.id).where(ot.orders.c.id == rma.order_id)))
            amount = rma.refund_due_minor() if amount_minor is None else amount_minor
            rma.mark_refunded(amount)
            paid, refunded, currency = self._paid(tx, rma.order_id)
            if amount > paid - refunded:
                raise InvalidInput(
                    f"RMA {rma_id}: refund of {amount} is more than is left of what order {rma.order_id} was paid "
                    f"({paid} paid, {refunded} refunded already)"
                )
            now = self.engine.clock.now_ms()
            self._save(tx, rma, now)
            self._order_money(tx, rma.order_id, 0, amount, now)
            self._emit(tx, [self._event("refunded", rma, currency, amount_minor=amount)], now)
        return self.show(rma_id)

    def show(self, rma_id: str) -> dict[str, Any]:
        with self.db.read() as tx:
            rma = self._load(tx, rma_id)
            row = self.sql.row(
                tx, sa.select(ot.rmas.c.region, ot.rmas.c.refund_due_minor).where(ot.rmas.c.id == rma_id)
            )
            currency = self._currency(tx, rma.order_id)
        assert row is not None
        bd = rma.refund_breakdown()
        return {
            "id": rma.id,
            "order_id": rma.order_id,
            "channel": rma.channel,
            "region": row["region"],
            "policy": policy_dict(rma.policy),
            "reason": rma.reason.value,
            "status": rma.status.value,
            "refund_state": rma.refund_state.value,
            "refund_due_minor": row["refund_due_minor"],
            "refunded_minor": rma.refunded_minor,
            "currency": currency,
            "refund": {
                "units": bd.units,
                "value_minor": bd.value_minor,
                "restocking_fee_minor": bd.restocking_fee_minor,
                "return_shipping_minor": bd.return_shipping_minor,
                "due_minor": bd.due_minor,
                "requires_receipt": rma.policy.refund_requires_receipt,
            },
            "requested_at": to_ms(rma.requested_at),
            "lines": [
                {
                    "sku": ln.sku,
                    "qty_requested": ln.qty_requested,
                    "qty_received": ln.qty_received,
                    "location": ln.location,
                    "graded": {g.value: q for g, q in ln.graded.items() if q},
                    "awaiting_grade": ln.qty_awaiting_grade,
                }
                for ln in rma.lines.values()
            ],
        }
