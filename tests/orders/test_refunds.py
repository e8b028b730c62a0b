"""Refund money on both backends: RMA refunds from unit prices × units less the policy's buyer-fault deductions,
pending on the order until paid; order refunds never exceed what was paid; events carry amount and currency."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from accord.cli import main
from accord.domain.errors import InvalidInput
from accord.domain.returns import Grade, Payer, ReturnPolicy, ReturnReason
from accord.orders import PlaceLine, PlaceOrder
from accord.store import orders_tables as ot
from accord.store import schema as t

from .conftest import World


def delivered(w: World, oid: str = "M1") -> None:
    w.orders.place(
        PlaceOrder("shop", (PlaceLine("A", 3, "1", 2500), PlaceLine("B", 2, "2", 1000)), oid, currency="USD")
    )
    for loc in sorted({a["location"] for a in w.orders.show(oid)["allocations"]}):
        w.orders.ship(oid, loc, "UPS", "1Z999AA10123456784")
    w.orders.deliver(oid)


def snapshot(w: World) -> tuple[int, ...]:
    return (w.count(ot.rmas), w.count(t.ledger), w.count(t.outbox))


def last_event(w: World, etype: str) -> dict[str, object]:
    with w.app.db.engine.connect() as conn:
        data = conn.execute(
            sa.select(t.outbox.c.data).where(t.outbox.c.type == etype).order_by(t.outbox.c.id.desc()).limit(1)
        ).scalar_one()
        conn.rollback()
    return dict(json.loads(data))


def test_rma_refund_arithmetic_and_order_refund_state(world: World) -> None:
    delivered(world)  # paid 3 × 25.00 + 2 × 10.00 = 95.00
    assert world.orders.show("M1")["refund"] == {
        "state": "none",
        "paid_minor": 9500,
        "pending_minor": 0,
        "refunded_minor": 0,
        "currency": "USD",
    }
    world.returns.create("M1", {"A": 2, "B": 1}, ReturnReason.CHANGED_MIND, "RM1")
    world.returns.receive("RM1", "A", 2, "WH-E")
    world.returns.receive("RM1", "B", 1, "WH-E")
    world.returns.grade("RM1", "A", 2, Grade.RESELLABLE)
    d = world.returns.grade("RM1", "B", 1, Grade.DAMAGED)
    # buyer's fault, US policy: 2 × 2500 + 1 × 1000 = 6000, less 10 % restocking (600), less the 500 label
    assert d["refund"] == {
        "units": 3,
        "value_minor": 6000,
        "restocking_fee_minor": 600,
        "return_shipping_minor": 500,
        "due_minor": 4900,
        "requires_receipt": True,
    }
    assert (d["refund_state"], d["refund_due_minor"], d["currency"]) == ("due", 4900, "USD")
    assert last_event(world, "ReturnGraded")["refund_due_minor"] == 4900
    o = world.orders.show("M1")["refund"]
    assert (o["state"], o["pending_minor"], o["refunded_minor"]) == ("pending", 4900, 0)
    d = world.returns.refund("RM1")
    assert (d["refund_state"], d["refunded_minor"]) == ("refunded", 4900)
    ev = last_event(world, "ReturnRefunded")
    assert (ev["amount_minor"], ev["currency"]) == (4900, "USD")
    o = world.orders.show("M1")["refund"]
    assert (o["state"], o["pending_minor"], o["refunded_minor"]) == ("refunded", 0, 4900)
    with pytest.raises(InvalidInput, match="already refunded"):
        world.returns.refund("RM1")


def test_seller_fault_returns_refund_in_full(world: World) -> None:
    delivered(world)
    world.returns.create("M1", {"A": 1}, ReturnReason.DEFECTIVE, "RM2")
    world.returns.receive("RM2", "A", 1, "WH-E")
    d = world.returns.grade("RM2", "A", 1, Grade.SCRAP)
    assert d["refund"]["due_minor"] == 2500 and d["refund"]["restocking_fee_minor"] == 0


def test_refund_before_receipt_is_rejected_when_the_policy_requires_receipt(world: World) -> None:
    delivered(world)
    world.returns.create("M1", {"A": 1}, ReturnReason.CHANGED_MIND, "RM3")
    before = snapshot(world)
    with pytest.raises(InvalidInput, match="refunds only once the units are received and graded"):
        world.returns.refund("RM3")
    world.returns.receive("RM3", "A", 1, "WH-E")
    after_receipt = snapshot(world)
    with pytest.raises(InvalidInput, match="not due"):
        world.returns.refund("RM3")  # received, not yet graded
    assert snapshot(world) == after_receipt and after_receipt[0] == before[0]
    assert world.orders.show("M1")["refund"]["state"] == "none"


def test_returnless_policy_refunds_on_request(world: World) -> None:
    world.returns.set_policy(ReturnPolicy("US-returnless", "us", 30, Payer.SELLER, 0, 0, refund_requires_receipt=False))
    delivered(world)
    d = world.returns.create("M1", {"B": 2}, ReturnReason.CHANGED_MIND, "RM4")
    assert d["refund"]["due_minor"] == 2000 and d["refund_due_minor"] == 2000
    assert world.orders.show("M1")["refund"]["state"] == "pending"
    assert last_event(world, "ReturnRequested")["refund_due_minor"] == 2000
    d = world.returns.refund("RM4")
    assert d["refund_state"] == "refunded"
    o = world.orders.show("M1")["refund"]
    assert (o["state"], o["pending_minor"], o["refunded_minor"]) == ("refunded", 0, 2000)


def test_refunds_never_exceed_what_was_paid(world: World) -> None:
    delivered(world)
    before = snapshot(world)
    with pytest.raises(InvalidInput, match=r"more than was paid: 9500 paid, 0 refunded already.*at most 9500"):
        world.orders.refund("M1", 9501)
    with pytest.raises(InvalidInput, match="whole number"):
        world.orders.refund("M1", -1)
    assert snapshot(world) == before and world.orders.show("M1")["status"] == "delivered"
    world.returns.create("M1", {"A": 1}, ReturnReason.DEFECTIVE, "RM5")
    world.returns.receive("RM5", "A", 1, "WH-E")
    world.returns.grade("RM5", "A", 1, Grade.RESELLABLE)
    with pytest.raises(InvalidInput, match="refund of 9999 exceeds the 2500 due"):
        world.returns.refund("RM5", 9999)
    # a pending RMA refund is held back from an order refund
    d = world.orders.refund("M1")
    assert d["status"] == "refunded"
    assert d["refund"] == {
        "state": "pending",
        "paid_minor": 9500,
        "pending_minor": 2500,
        "refunded_minor": 7000,
        "currency": "USD",
    }
    ev = last_event(world, "OrderRefunded")
    assert (ev["amount_minor"], ev["currency"], ev["refunded_total_minor"]) == (7000, "USD", 7000)
    world.returns.refund("RM5")
    assert world.orders.show("M1")["refund"]["refunded_minor"] == 9500


def test_rma_refund_is_capped_by_what_the_order_has_left(world: World) -> None:
    delivered(world)
    with pytest.raises(InvalidInput, match="at most 9500 left"):
        world.orders.refund("M1", 9600)
    world.orders.refund("M1")  # all 9500 back, no return
    world.returns.create("M1", {"A": 1}, ReturnReason.DEFECTIVE, "RM6")
    world.returns.receive("RM6", "A", 1, "WH-E")
    world.returns.grade("RM6", "A", 1, Grade.RESELLABLE)
    before = snapshot(world)
    with pytest.raises(InvalidInput, match=r"more than is left of what order M1 was paid \(9500 paid, 9500 refunded"):
        world.returns.refund("RM6")
    assert snapshot(world) == before
    assert world.returns.show("RM6")["refund_state"] == "due"


def test_cancelled_order_refund_and_cli(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.orders.place(PlaceOrder("shop", (PlaceLine("A", 2, "1", 1999),), "M2"))
    world.orders.cancel("M2")
    url = world.app.db.url
    capsys.readouterr()
    assert main(["--database-url", url, "order", "refund", "M2", "--amount-minor", "5000"]) == 2
    err = capsys.readouterr().err
    assert "at most 3998 left" in err and len(err.strip().splitlines()) == 1
    assert main(["--database-url", url, "order", "refund", "M2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "refunded" and d["refund"]["refunded_minor"] == 3998 and d["refund"]["state"] == "refunded"
