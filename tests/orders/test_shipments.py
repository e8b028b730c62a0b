"""The ship-confirmation queue on both backends: queued in the ship transaction, due → sent / retried / parked,
redrive, listings and counts; idempotent by (channel, shipment id)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from accord.connectors.base import ShipmentConfirmation, ShipmentLine
from accord.domain.errors import InvalidInput, NotFound
from accord.orders import Destination, PlaceLine, PlaceOrder
from accord.orders.shipments import ShipmentOutbox
from accord.store import orders_tables as ot

from .conftest import World

LA = Destination("us", 34.0, -118.0)


def confirmation(sid: str, coid: str = "C-1") -> ShipmentConfirmation:
    return ShipmentConfirmation(
        channel_order_id=coid,
        shipment_id=sid,
        carrier="UPS",
        tracking="1Z999AA10123456784",
        shipped_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        lines=(ShipmentLine("A", 2, "li-1"), ShipmentLine("B", 1, None)),
        ship_from_location="WH-E",
    )


def test_enqueue_is_idempotent_and_due_round_trips_the_confirmation(world: World) -> None:
    q = ShipmentOutbox(world.app.db)
    with world.app.db.tx() as tx:
        assert q.enqueue(tx, "shop", "O1", confirmation("S1"), 1_000) is True
        assert q.enqueue(tx, "shop", "O1", confirmation("S1"), 1_000) is False  # same key: no second row
        assert q.enqueue(tx, "amz", "O1", confirmation("S1"), 2_000) is True  # another channel, another key
    assert world.count(ot.channel_shipments) == 2
    assert q.due(999) == []
    due = q.due(1_000)
    assert [(p.channel, p.order_id, p.attempts) for p in due] == [("shop", "O1", 0)]
    assert due[0].confirmation == confirmation("S1")
    assert [p.channel for p in q.due(5_000, channel="amz")] == ["amz"]
    assert len(q.due(5_000, limit=1)) == 1


def test_rolled_back_ship_transaction_queues_nothing(world: World) -> None:
    q = ShipmentOutbox(world.app.db)
    with pytest.raises(RuntimeError), world.app.db.tx() as tx:
        q.enqueue(tx, "shop", "O1", confirmation("S1"), 1_000)
        raise RuntimeError("crash after enqueue")
    assert q.list() == []


def test_retry_park_redrive_and_counts(world: World) -> None:
    q = ShipmentOutbox(world.app.db)
    with world.app.db.tx() as tx:
        q.enqueue(tx, "shop", "O1", confirmation("S1"), 1_000)
        q.enqueue(tx, "shop", "O2", confirmation("S2", "C-2"), 1_000)
        q.enqueue(tx, "amz", "O3", confirmation("S3", "C-3"), 1_000)
    q.retry("shop", "S1", 1, 60_000, "HTTP 503", 2_000)
    assert [p.confirmation.shipment_id for p in q.due(10_000)] == ["S3", "S2"]  # S1 waits for its backoff
    assert [(p.confirmation.shipment_id, p.attempts) for p in q.due(60_000, channel="shop")] == [("S2", 0), ("S1", 1)]
    q.mark_sent("shop", "S2", 1, 3_000)
    q.park("amz", "S3", 5, "rejected: unknown order", '{"errors":[{"code":"InvalidInput"}]}', 4_000)
    rows = {r.shipment_id: r for r in q.list()}
    assert (rows["S1"].state, rows["S1"].attempts, rows["S1"].last_error) == ("pending", 1, "HTTP 503")
    assert rows["S2"].state == "sent" and rows["S2"].last_error is None
    assert (rows["S3"].state, rows["S3"].attempts, rows["S3"].updated_at) == ("dead", 5, 4_000)
    assert q.counts() == {("shop", "pending"): 1, ("shop", "sent"): 1, ("amz", "dead"): 1}
    assert [r.shipment_id for r in q.list(state="dead")] == ["S3"]
    assert [r.shipment_id for r in q.list(channel="shop", state="pending")] == ["S1"]
    # a sent confirmation is never parked or retried by a late worker
    q.park("shop", "S2", 9, "late", None, 5_000)
    q.retry("shop", "S2", 9, 9_000, "late", 5_000)
    assert {r.shipment_id: r.state for r in q.list(channel="shop")}["S2"] == "sent"
    assert q.redrive(channel="shop", now_ms=6_000) == 0  # nothing dead on shop
    assert q.redrive(key="S3", now_ms=7_000) == 1
    again = [p for p in q.due(7_000) if p.confirmation.shipment_id == "S3"]
    assert again and again[0].attempts == 0
    assert q.counts()[("amz", "pending")] == 1


def test_listing_rejects_bad_filters(world: World) -> None:
    q = ShipmentOutbox(world.app.db)
    with pytest.raises(InvalidInput, match="unknown ship confirmation state 'lost'"):
        q.list(state="lost")
    with pytest.raises(InvalidInput, match="limit"):
        q.list(limit=0)


def test_enqueue_rejects_incomplete_confirmations(world: World) -> None:
    q = ShipmentOutbox(world.app.db)
    bad = ShipmentConfirmation("C-1", "S1", "UPS", " ", datetime(2026, 3, 1, tzinfo=UTC), (ShipmentLine("A", 1),))
    with world.app.db.tx() as tx:
        with pytest.raises(InvalidInput, match="tracking"):
            q.enqueue(tx, "shop", "O1", bad, 1_000)
        with pytest.raises(InvalidInput, match="positive"):
            q.enqueue(tx, "shop", "O1", ShipmentConfirmation("C-1", "S1", "UPS", "T1", bad.shipped_at, ()), 1_000)
    assert q.list() == []


def test_ship_queues_the_confirmation_in_the_ship_transaction(world: World) -> None:
    d = world.orders.place(
        PlaceOrder("shop", (PlaceLine("A", 2, "L1", 1500),), "O1", destination=LA),
    )
    loc = d["allocations"][0]["location"]
    world.clock.advance(5_000)
    world.orders.ship("O1", loc, "UPS", "1Z999AA10123456784", shipment_id="O1-S1")
    q = world.orders.shipments
    due = q.due(world.clock.now_ms())
    assert len(due) == 1
    p = due[0]
    assert (p.channel, p.order_id) == ("shop", "O1")
    cf = p.confirmation
    assert (cf.channel_order_id, cf.shipment_id, cf.carrier, cf.tracking) == (
        "O1",
        "O1-S1",
        "UPS",
        "1Z999AA10123456784",
    )
    assert cf.lines == (ShipmentLine("A", 2, "L1"),)  # the line id the order came with
    assert cf.ship_from_location == loc
    assert int(cf.shipped_at.timestamp() * 1000) == world.clock.now_ms()
    # the lifecycle view of the shipment follows the queue
    q.park("shop", "O1-S1", 3, "rejected", None, world.clock.now_ms())
    assert world.orders.show("O1")["shipments"][0]["confirm_state"] == "failed"
    q.redrive("shop", now_ms=world.clock.now_ms())
    q.mark_sent("shop", "O1-S1", 1, world.clock.now_ms())
    assert world.orders.show("O1")["shipments"][0]["confirm_state"] == "sent"
    # a failed ship (nothing held there) queues nothing
    with pytest.raises((InvalidInput, NotFound)):
        world.orders.ship("O1", loc, "UPS", "1Z999AA10123456785")
    assert len(q.list()) == 1


def test_ship_and_deliver_summaries_agree_with_show(world: World) -> None:
    """``ship_summary`` / ``deliver_summary`` (the simulator's calls) write what ``ship`` / ``deliver`` write and
    report the status, placement time and shipments ``show`` reads back."""
    world.orders.place(PlaceOrder("shop", (PlaceLine("A", 3, "L1", 1500),), "O1", destination=LA))
    loc = world.orders.show("O1")["allocations"][0]["location"]
    world.clock.advance(5_000)
    first = world.orders.ship_summary("O1", loc, "UPS", "1Z999AA10123456784", lines={"L1": 1})
    shown = world.orders.show("O1")
    assert (first.order_id, first.channel, first.status) == ("O1", "shop", "partially_shipped")
    assert first.status == shown["status"] and first.placed_at_ms == shown["placed_at"]
    assert first.shipments == tuple((s["location"], s["shipped_at"]) for s in shown["shipments"])
    world.clock.advance(5_000)
    second = world.orders.ship_summary("O1", loc, "UPS", "1Z999AA10123456785")
    shown = world.orders.show("O1")
    assert second.status == shown["status"] == "shipped"
    assert second.shipments == tuple((s["location"], s["shipped_at"]) for s in shown["shipments"])
    assert len(second.shipments) == 2
    assert len(world.orders.shipments.list()) == 2  # both confirmations queued, as with ``ship``
    world.clock.advance(5_000)
    done = world.orders.deliver_summary("O1")
    shown = world.orders.show("O1")
    assert done.status == shown["status"] == "delivered"
    assert done.placed_at_ms == shown["placed_at"] and done.shipments == second.shipments
