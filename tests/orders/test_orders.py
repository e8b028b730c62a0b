"""Order lifecycle on both backends: place → reserve → route → ship → deliver, cancel, refund, re-route,
re-optimisation, SLA and channel health — ledger, state rows and outbox events in one transaction each."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from accord.domain.errors import InsufficientStock, InvalidInput, NotFound
from accord.domain.ledger import Movement, MovementKind
from accord.domain.orders import CancelReason, SlaPolicy
from accord.orders import Destination, PlaceLine, PlaceOrder
from accord.store import orders_tables as ot
from accord.store import schema as t
from accord.store import sync_tables as st

from .conftest import World

LA = Destination("us", 34.0, -118.0)
NY = Destination("us", 40.7, -74.0)


def events(w: World, order_id: str | None = None) -> list[tuple[str, dict[str, object]]]:
    with w.app.db.engine.connect() as conn:
        rows = conn.execute(sa.select(t.outbox.c.type, t.outbox.c.key, t.outbox.c.data).order_by(t.outbox.c.id)).all()
        conn.rollback()
    return [(r[0], json.loads(r[2])) for r in rows if order_id is None or r[1] == order_id]


def place(w: World, *lines: tuple[str, int], dest: Destination = LA, channel: str = "shop", oid: str = "O1") -> str:
    d = w.orders.place(
        PlaceOrder(channel, tuple(PlaceLine(s, q, unit_price_minor=1000) for s, q in lines), oid, destination=dest)
    )
    return str(d["id"])


def test_place_reserves_at_once_and_routing_moves_the_reservation(world: World) -> None:
    # ingestion reserves A at WH-E (first in priority); the router puts A and B in one parcel from WH-W
    oid = place(world, ("A", 1), ("B", 1))
    d = world.orders.show(oid)
    assert d["status"] == "routed"
    assert {(a["sku"], a["location"], a["qty_reserved"]) for a in d["allocations"]} == {
        ("A", "WH-W", 1),
        ("B", "WH-W", 1),
    }
    assert world.balance("A", "WH-E") == (10, 0, 0, 0, 0)  # released in the routing batch
    assert world.balance("A", "WH-W") == (5, 1, 0, 0, 0)
    types = [e for e, _ in events(world, oid)]
    assert types == ["OrderPlaced", "OrderReserved", "OrderRouted"]
    moved = [m["kind"] for e, data in events(world) if e == "MovementsRecorded" for m in data["movements"]]
    assert [k for k in moved if k in ("reserve", "release")] == ["reserve", "reserve", "release", "reserve"]
    assert world.app.engine.verify() == []
    with world.app.db.engine.connect() as conn:  # channel sync's record of the order follows the reservations
        co = conn.execute(sa.select(st.channel_orders.c.status, st.channel_orders.c.lines)).one()
        conn.rollback()
    assert co[0] == "reserved"
    assert {ln["sku"]: ln["allocations"] for ln in json.loads(co[1])} == {"A": {"WH-W": 1}, "B": {"WH-W": 1}}
    text = world.orders.explain(oid)
    assert "line 1 (1 × A): 1 from WH-W" in text and "WH-E" in text


def test_ship_deliver_refund_with_ship_confirmation_event(world: World) -> None:
    oid = place(world, ("A", 2))
    d = world.orders.show(oid)
    loc = d["allocations"][0]["location"]
    d = world.orders.ship(oid, loc, "UPS", "1Z999AA10123456784")
    assert d["status"] == "shipped"
    assert d["shipments"][0]["carrier"] == "UPS" and d["shipments"][0]["confirm_state"] == "pending"
    assert world.balance("A", loc)[:2] == ((10 if loc == "WH-E" else 5) - 2, 0)
    conf = [data for e, data in events(world) if e == "OrderShipmentRecorded"]
    assert conf and conf[0]["tracking"] == "1Z999AA10123456784" and conf[0]["channel_order_id"] == oid
    assert world.orders.deliver(oid)["status"] == "delivered"
    assert world.orders.refund(oid)["status"] == "refunded"
    assert [e for e, _ in events(world, oid)][-3:] == ["OrderShipped", "OrderDelivered", "OrderRefunded"]
    assert world.app.engine.verify() == []


def test_partial_shipment_then_rest(world: World) -> None:
    oid = place(world, ("A", 3), dest=NY)
    loc = world.orders.show(oid)["allocations"][0]["location"]
    assert world.orders.ship(oid, loc, "UPS", "1Z999AA10123456784", {"1": 1})["status"] == "partially_shipped"
    assert world.orders.ship(oid, loc, "UPS", "1Z999AA10123456785")["status"] == "shipped"
    assert world.app.engine.verify() == []


def test_invalid_transitions_are_rejected_and_write_nothing(world: World) -> None:
    oid = place(world, ("A", 1))
    before = len(events(world))
    with pytest.raises(InvalidInput, match="order cannot go from routed to delivered"):
        world.orders.deliver(oid)
    with pytest.raises(InvalidInput, match="from routed to refunded"):
        world.orders.refund(oid)
    world.orders.cancel(oid, CancelReason.BUYER)
    with pytest.raises(InvalidInput, match="from cancelled to shipped"):
        world.orders.ship(oid, "WH-W", "UPS", "1Z999AA10123456784")
    with pytest.raises(InvalidInput, match="from cancelled to cancelled"):
        world.orders.cancel(oid)
    assert [e for e, _ in events(world)[before:]] == [
        "MovementsRecorded",
        "ChannelAvailabilityChanged",
        "OrderCancelled",
    ]
    assert world.orders.show(oid)["status"] == "cancelled"


def test_cancel_releases_every_reservation_and_queues_the_channel_cancel(world: World) -> None:
    oid = place(world, ("A", 1), ("B", 2))
    world.orders.cancel(oid)
    assert world.balance("A", "WH-W")[1] == 0 and world.balance("B", "WH-W")[1] == 0
    assert world.app.engine.ats("B", "shop") == {"shop": 5}
    with world.app.db.engine.connect() as conn:
        row = conn.execute(sa.select(st.channel_orders.c.status, st.channel_orders.c.cancel_state)).one()
        conn.rollback()
    assert tuple(row) == ("cancelled", "pending")
    assert world.app.engine.verify() == []


@pytest.mark.parametrize(
    ("channel", "lines", "error", "text"),
    [
        ("shop", (("NOPE", 1),), NotFound, "unknown SKU 'NOPE'"),
        ("nowhere", (("A", 1),), NotFound, "unknown channel 'nowhere'"),
        ("shop", (("A", 0),), InvalidInput, "quantity must be a positive whole number, got 0"),
        ("shop", (("A", 1), ("B", -2)), InvalidInput, "got -2"),
    ],
)
def test_bad_orders_are_rejected_and_write_nothing(
    world: World, channel: str, lines: tuple[tuple[str, int], ...], error: type[Exception], text: str
) -> None:
    before = (len(events(world)), world.count(ot.orders), world.count(st.channel_orders), world.count(t.ledger))
    with pytest.raises(error, match=text):
        place(world, *lines, channel=channel)
    after = (len(events(world)), world.count(ot.orders), world.count(st.channel_orders), world.count(t.ledger))
    assert after == before


def test_out_of_stock_order_is_recorded_cancelled_by_seller(world: World) -> None:
    oid = place(world, ("B", 50))
    d = world.orders.show(oid)
    assert d["status"] == "cancelled" and d["cancel_reason"] == "seller"
    assert world.balance("B", "WH-W") == (5, 0, 0, 0, 0)
    h = world.orders.health("shop")[0]
    assert h.metrics["cancellation_rate"].value_pct == 100.0 and not h.ok


def test_reroute_when_a_location_fails_to_ship(world: World) -> None:
    oid = place(world, ("A", 2), dest=NY)
    assert world.orders.show(oid)["allocations"][0]["location"] == "WH-E"
    d = world.orders.reroute(oid, "WH-E")
    assert [(a["location"], a["qty_reserved"]) for a in d["allocations"]] == [("WH-W", 2)]
    assert world.balance("A", "WH-E")[1] == 0 and world.balance("A", "WH-W")[1] == 2
    assert "reroute:WH-E" in world.orders.explain(oid)
    with pytest.raises(InvalidInput, match="nothing waiting to ship at WH-E"):
        world.orders.reroute(oid, "WH-E")
    only_west = place(world, ("B", 1), oid="O2")  # B is stocked at WH-W only
    before = len(events(world))
    with pytest.raises(InsufficientStock, match="cannot re-route order O2 away from WH-W"):
        world.orders.reroute(only_west, "WH-W")
    assert len(events(world)) == before and world.balance("B", "WH-W")[1] == 1
    assert world.app.engine.verify() == []


def test_reoptimise_moves_unreleased_orders_when_stock_arrives(world: World) -> None:
    # NY buyer, no stock near: A goes from WH-W; then a pallet lands at WH-E and re-optimisation moves it
    world.app.engine.move(Movement(MovementKind.ADJUST, "A", "WH-E", -10, "empty-e", reason="count"))
    oid = place(world, ("A", 1), dest=NY)
    assert world.orders.show(oid)["allocations"][0]["location"] == "WH-W"
    world.app.engine.move(Movement(MovementKind.RECEIVE, "A", "WH-E", 10, "pallet-e"))
    res = world.orders.reoptimise()
    assert res["changed"] == [oid]
    assert world.orders.show(oid)["allocations"][0]["location"] == "WH-E"
    assert world.balance("A", "WH-W")[1] == 0 and world.balance("A", "WH-E")[1] == 1
    assert world.orders.reoptimise()["changed"] == []
    assert world.app.engine.verify() == []


def test_sla_alerts_once_per_state_and_health_rates(world: World) -> None:
    world.orders.set_sla_policy("shop", SlaPolicy(handling_hours=24, at_risk_hours=4))
    late = place(world, ("A", 1), oid="LATE")
    ok = place(world, ("B", 1), oid="OK")
    hour = 3_600_000
    world.clock.advance(21 * hour)
    assert {(a.order_id, a.state.value) for a in world.orders.sla()} == {("LATE", "at_risk"), ("OK", "at_risk")}
    world.orders.ship(ok, "WH-W", "UPS", "1Z999AA10123456784")
    world.clock.advance(4 * hour)
    assert [(a.order_id, a.state.value) for a in world.orders.sla()] == [("LATE", "breached")]
    world.orders.sla()  # no repeated alert
    alerts = [(e, d["order_id"]) for e, d in events(world) if e.startswith("OrderSla")]
    assert alerts == [("OrderSlaAtRisk", "LATE"), ("OrderSlaAtRisk", "OK"), ("OrderSlaBreached", "LATE")]
    loc = world.orders.show(late)["allocations"][0]["location"]
    world.orders.ship(late, loc, "Acme", "bad")  # recorded, but not a valid tracking number
    h = {x.channel: x for x in world.orders.health()}["shop"]
    assert h.metrics["late_shipment_rate"].value_pct == 50.0
    assert h.metrics["valid_tracking_rate"].value_pct == 50.0
    assert h.failing() == ["late_shipment_rate", "valid_tracking_rate"]
