"""Returns on both backends: policy enforced at creation, receive into quarantine, grade, refund; bad input."""

from __future__ import annotations

import pytest

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.returns import Grade, ReturnReason, ReturnRejected
from accord.orders import PlaceLine, PlaceOrder
from accord.store import orders_tables as ot
from accord.store import schema as t

from .conftest import DAY_MS, World


def delivered_order(w: World, qty: int = 3) -> str:
    w.orders.place(PlaceOrder("shop", (PlaceLine("A", qty, unit_price_minor=2500),), "R1"))
    loc = w.orders.show("R1")["allocations"][0]["location"]
    w.orders.ship("R1", loc, "UPS", "1Z999AA10123456784")
    w.orders.deliver("R1")
    return loc


def snapshot(w: World) -> tuple[int, ...]:
    return (w.count(ot.rmas), w.count(ot.rma_lines), w.count(t.ledger), w.count(t.outbox))


def test_return_flow_quarantine_then_grades_then_refund(world: World) -> None:
    ship_loc = delivered_order(world)
    d = world.returns.create("R1", {"A": 3}, ReturnReason.CHANGED_MIND, "RMA1")
    assert d["status"] == "requested" and d["policy"]["name"] == "US-30-day"
    before = world.balance("A", "WH-E")
    ats_before = world.app.engine.ats("A", "shop")["shop"]
    d = world.returns.receive("RMA1", "A", 3, "WH-E")
    # RECEIVE + QUARANTINE in one transaction: on_hand unchanged, quarantine +3, nothing sellable
    assert world.balance("A", "WH-E") == (before[0], before[1], 0, 0, before[4] + 3)
    assert world.app.engine.ats("A", "shop")["shop"] == ats_before
    assert d["status"] == "received"
    world.returns.grade("RMA1", "A", 1, Grade.RESELLABLE)
    assert world.balance("A", "WH-E")[0] == before[0] + 1
    world.returns.grade("RMA1", "A", 1, Grade.DAMAGED)
    d = world.returns.grade("RMA1", "A", 1, Grade.SCRAP)
    assert world.balance("A", "WH-E") == (before[0] + 1, before[1], 0, 1, 0)
    assert d["status"] == "graded" and d["refund_state"] == "due"
    # buyer's fault: 3 × 25.00 − 10 % restocking − 5.00 label
    assert d["refund_due_minor"] == 7500 - 750 - 500
    d = world.returns.refund("RMA1")
    assert d["refund_state"] == "refunded" and d["refunded_minor"] == 6250
    assert ship_loc in ("WH-E", "WH-W")
    assert world.app.engine.verify() == []


def test_return_of_more_than_shipped_is_rejected_and_writes_nothing(world: World) -> None:
    delivered_order(world, qty=2)
    before = snapshot(world)
    with pytest.raises(InvalidInput, match="returning 3 of A but only 2 shipped"):
        world.returns.create("R1", {"A": 3})
    world.returns.create("R1", {"A": 2}, rma_id="RMA1")
    before = snapshot(world)
    with pytest.raises(InvalidInput, match=r"only 2 shipped \(2 already returned\)"):
        world.returns.create("R1", {"A": 1})
    with pytest.raises(InvalidInput, match="B was never shipped"):
        world.returns.create("R1", {"B": 1})
    assert snapshot(world) == before


def test_return_outside_the_window_names_the_rule(world: World) -> None:
    delivered_order(world)
    before = snapshot(world)
    world.clock.advance(31 * DAY_MS)
    with pytest.raises(ReturnRejected, match="rule 'US-30-day'") as exc:
        world.returns.create("R1", {"A": 1})
    assert exc.value.rule == "US-30-day"
    assert snapshot(world) == before


def test_grading_units_never_received_is_rejected_and_writes_nothing(world: World) -> None:
    delivered_order(world)
    world.returns.create("R1", {"A": 2}, rma_id="RMA1")
    before = snapshot(world)
    with pytest.raises(InvalidInput, match="cannot grade 1 of A: only 0 received"):
        world.returns.grade("RMA1", "A", 1, Grade.RESELLABLE)
    with pytest.raises(NotFound, match="unknown location 'NOWHERE'"):
        world.returns.receive("RMA1", "A", 1, "NOWHERE")
    assert snapshot(world) == before
    world.returns.receive("RMA1", "A", 1, "WH-W")
    before = snapshot(world)
    with pytest.raises(InvalidInput, match="cannot grade 2 of A: only 1 received"):
        world.returns.grade("RMA1", "A", 2, Grade.RESELLABLE)
    with pytest.raises(InvalidInput, match="exceed the 2 requested"):
        world.returns.receive("RMA1", "A", 2, "WH-W")
    assert snapshot(world) == before


def test_returns_need_a_shipped_order_and_a_policy(world: World) -> None:
    world.orders.place(PlaceOrder("shop", (PlaceLine("A", 1),), "NOT-SHIPPED"))
    with pytest.raises(InvalidInput, match="never shipped"):
        world.returns.create("NOT-SHIPPED", {"A": 1})
    with pytest.raises(NotFound, match="unknown order"):
        world.returns.create("NOPE", {"A": 1})
