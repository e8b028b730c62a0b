"""Stock going up re-optimises the routed, unreleased orders that want that SKU — through the relay, once per event,
bounded per event, never feeding on routing's own moves."""

from __future__ import annotations

import sqlalchemy as sa

from accord.app.relay import Relay
from accord.domain.events import recorded_movements
from accord.domain.ledger import Movement, MovementKind
from accord.orders import Destination, PlaceLine, PlaceOrder
from accord.orders.reoptimise import ReoptimiseSubscriber, raises_stock
from accord.store import orders_tables as ot

from .conftest import World

NY = Destination("us", 40.7, -74.0)


def place_ny(w: World, oid: str, sku: str = "A", qty: int = 1) -> None:
    w.orders.place(PlaceOrder("shop", (PlaceLine(sku, qty),), oid, destination=NY))


def location_of(w: World, oid: str) -> list[str]:
    return sorted(a["location"] for a in w.orders.show(oid)["allocations"] if a["qty_reserved"] > 0)


def route_causes(w: World, oid: str) -> list[str]:
    with w.app.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(ot.order_routes.c.cause).where(ot.order_routes.c.order_id == oid).order_by(ot.order_routes.c.seq)
        ).all()
        conn.rollback()
    return [r[0] for r in rows]


def test_received_stock_reroutes_open_orders_through_the_bootstrapped_relay(world: World) -> None:
    assert "order-reoptimise" in world.app.relay.subscribers  # wired by build_app
    world.app.relay.drain()
    world.app.engine.move(Movement(MovementKind.ADJUST, "A", "WH-E", -10, "empty-e", reason="count"))
    place_ny(world, "N1")
    place_ny(world, "N2", "B")  # wants B only: untouched by A arriving
    world.app.relay.drain()
    assert location_of(world, "N1") == ["WH-W"] and location_of(world, "N2") == ["WH-W"]
    world.app.engine.move(Movement(MovementKind.RECEIVE, "A", "WH-E", 10, "pallet-e"))
    world.app.relay.drain()
    assert location_of(world, "N1") == ["WH-E"]  # nearer the NY buyer now
    assert route_causes(world, "N1") == ["placed", "stock:StockReceived"]
    assert route_causes(world, "N2") == ["placed"]
    assert world.balance("A", "WH-W")[1] == 0 and world.balance("A", "WH-E")[1] == 1
    # the re-route's own release/reserve events, delivered next, change nothing more
    world.app.relay.drain()
    assert route_causes(world, "N1") == ["placed", "stock:StockReceived"]
    assert world.app.engine.verify() == []


def test_each_stock_event_is_handled_once_and_bounded(world: World) -> None:
    world.app.engine.move(Movement(MovementKind.ADJUST, "A", "WH-E", -10, "empty-e", reason="count"))
    for i in range(3):
        place_ny(world, f"N{i}")
    sub = ReoptimiseSubscriber(world.orders, max_orders=2)
    relay = Relay(world.app.db, [sub], world.clock, gap_timeout_ms=0)
    relay.drain()
    world.app.engine.move(Movement(MovementKind.RECEIVE, "A", "WH-E", 10, "pallet-e"))
    relay.drain()
    moved = [oid for oid in ("N0", "N1", "N2") if location_of(world, oid) == ["WH-E"]]
    assert moved == ["N0", "N1"]  # at most two orders per event, soonest ship-by (then id) first
    relay.drain()  # nothing new: the inbox already holds the receive event
    assert [oid for oid in ("N0", "N1", "N2") if location_of(world, oid) == ["WH-E"]] == moved
    # the next stock-up event for A picks up the rest
    world.app.engine.move(Movement(MovementKind.RECEIVE, "A", "WH-E", 1, "more-e"))
    relay.drain()
    assert all(location_of(world, oid) == ["WH-E"] for oid in ("N0", "N1", "N2"))


def test_which_movements_count_as_stock_going_up() -> None:
    def moved(kind: str, **data: object) -> dict[str, object]:
        return {"kind": kind, "sku": "A", "location": "WH-E", "key": "k", "qty": 1, **data}

    assert raises_stock(moved("receive"))
    assert raises_stock(moved("transfer_in"))
    assert raises_stock(moved("unquarantine"))
    assert raises_stock(moved("adjust", qty=3)) and not raises_stock(moved("adjust", qty=-3))
    assert raises_stock(moved("release", key="order:shop:O1:1:cancel:WH-E"))  # a cancellation frees stock
    assert not raises_stock(moved("release", key="order:shop:O1:1:r2:WH-E:release"))  # routing's own move
    assert not raises_stock(moved("reserve"))
    # a movement event written before MovementsRecorded (one per movement, named by kind) is still understood
    legacy = recorded_movements("StockReceived", {"sku": "A", "location": "WH-E", "qty": 1, "key": "k"})
    assert [raises_stock(m) for m in legacy] == [True]
    assert recorded_movements("StockReserved", {"sku": "A", "location": "WH-E", "qty": 1})[0]["kind"] == "reserve"
    assert recorded_movements("ChannelAvailabilityChanged", {"sku": "A"}) == []


def test_a_batch_reoptimises_each_sku_and_location_once(world: World) -> None:
    world.app.engine.move(Movement(MovementKind.ADJUST, "A", "WH-E", -10, "empty-e", reason="count"))
    place_ny(world, "N1")
    world.app.relay.drain()
    assert location_of(world, "N1") == ["WH-W"]
    # one transaction, one MovementsRecorded event: two receipts of A at WH-E and a reservation elsewhere
    world.app.engine.move_batch(
        [
            Movement(MovementKind.RECEIVE, "A", "WH-E", 4, "pallet-e1"),
            Movement(MovementKind.RECEIVE, "A", "WH-E", 6, "pallet-e2"),
            Movement(MovementKind.RESERVE, "B", "WH-W", 1, "hold-b"),
        ]
    )
    world.app.relay.drain()
    assert location_of(world, "N1") == ["WH-E"]
    assert route_causes(world, "N1") == ["placed", "stock:StockReceived"]
    assert world.app.engine.verify() == []
