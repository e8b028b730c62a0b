"""Channel orders (webhook, poll) become lifecycle orders in the intake transaction: routed, cancelled when stock is
short (the cancellation still queued for the channel) or held with a reason and released once it is fixed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from accord.api.app import create_app
from accord.app.tokens import create_token
from accord.cli import main
from accord.connectors.base import ChannelOrder, OrderLine, ShipmentLine
from accord.domain.availability import Channel
from accord.domain.catalog import Sku
from accord.domain.errors import InvalidInput, NotFound
from accord.domain.ledger import Movement, MovementKind
from accord.orders.service import channel_intake, to_ms
from accord.store import orders_tables as ot
from accord.store import schema as t
from accord.store import sync_tables as st

from .conftest import World
from .test_cli_api import api_call

PLACED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def channel_order(
    oid: str, *lines: tuple[str, int, str], ship_by: datetime | None = None, currency: str = "USD"
) -> ChannelOrder:
    return ChannelOrder(
        oid,
        PLACED,
        "Unshipped",
        tuple(OrderLine(sku, qty, Decimal(price), f"li-{i}") for i, (sku, qty, price) in enumerate(lines)),
        currency=currency,
        ship_by=ship_by,
        ship_to_region="us",
        ship_to_lat=34.0,
        ship_to_lon=-118.0,
    )


def events(w: World, key: str) -> list[tuple[str, dict[str, object]]]:
    with w.app.db.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.outbox.c.type, t.outbox.c.data).where(t.outbox.c.key == key).order_by(t.outbox.c.id)
        ).all()
        conn.rollback()
    return [(r[0], json.loads(r[1])) for r in rows]


def test_webhook_order_is_adopted_routed_and_ships_back_with_channel_ids(world: World) -> None:
    intake = channel_intake(world.app.engine)
    ship_by = PLACED + timedelta(hours=30)
    res = intake.ingest_webhook(
        "amz", "wh-1", channel_order("113-1", ("A", 2, "12.34"), ("B", 1, "5"), ship_by=ship_by)
    )
    assert res.status == "reserved"
    d = world.orders.show("amz:113-1")
    assert (d["status"], d["source"], d["currency"], d["channel_order_id"]) == ("routed", "webhook", "USD", "113-1")
    assert d["ship_by"] == to_ms(ship_by)  # the channel's own ship-by, not the policy's
    assert d["destination"] == {"region": "us", "lat": 34.0, "lon": -118.0}
    assert [(ln["sku"], ln["qty"], ln["unit_price_minor"]) for ln in d["lines"]] == [("A", 2, 1234), ("B", 1, 500)]
    assert sum(a["qty_reserved"] for a in d["allocations"]) == 3
    assert [e for e, _ in events(world, "amz:113-1")] == ["OrderPlaced", "OrderReserved", "OrderRouted"]
    assert "routing decision" in world.orders.explain("amz:113-1")
    # a redelivery (same webhook id, or a new one) adopts nothing more
    assert intake.ingest_webhook("amz", "wh-1", channel_order("113-1", ("A", 2, "12.34"))).status == "duplicate"
    assert intake.ingest_webhook("amz", "wh-2", channel_order("113-1", ("A", 2, "12.34"))).status == "duplicate"
    assert world.count(ot.orders) == 1
    # ship: the confirmation names the channel's order id and line ids
    by_loc: dict[str, dict[str, int]] = {}
    for a in d["allocations"]:
        by_loc.setdefault(a["location"], {})[a["line_id"]] = a["qty_reserved"]
    loc, lines = sorted(by_loc.items())[0]
    world.orders.ship("amz:113-1", loc, "UPS", "1Z999AA10123456784", lines, "SHP-1")
    (p,) = world.orders.shipments.due(world.clock.now_ms())
    assert p.confirmation.channel_order_id == "113-1"
    sku_of = {"li-0": "A", "li-1": "B"}
    assert set(p.confirmation.lines) == {ShipmentLine(sku_of[lid], q, lid) for lid, q in lines.items()}
    assert world.app.engine.verify() == []


def test_polled_order_short_of_stock_is_cancelled_and_the_cancellation_queued(world: World) -> None:
    intake = channel_intake(world.app.engine)
    (res,) = intake.ingest_page("shop", [channel_order("S-9", ("B", 50, "1.00"))], "cursor-1")
    assert res.status == "cancelled"
    d = world.orders.show("shop:S-9")
    assert (d["status"], d["cancel_reason"], d["source"]) == ("cancelled", "seller", "poll")
    assert d["allocations"] == []
    (row,) = intake.pending_cancellations()
    assert (row.channel_order_id, row.cancel_state) == ("S-9", "pending")
    assert intake.cursor("shop") == "cursor-1"
    assert world.balance("B", "WH-W")[:2] == (5, 0)
    (h,) = world.orders.health("shop")
    assert h.metrics["cancellation_rate"].numerator == 1


def test_unknown_sku_is_held_visible_and_released_once_fixed(world: World) -> None:
    intake = channel_intake(world.app.engine)
    res = intake.ingest_one("shop", channel_order("S-1", ("A", 1, "2.00"), ("NEW", 2, "3.00")), "webhook")
    assert res.status == "held"
    d = world.orders.show("shop:S-1")
    assert d["status"] == "held" and "unknown SKU 'NEW'" in d["hold_reason"]
    assert d["allocations"] == [] and world.balance("A", "WH-E")[1] == 0
    held = world.orders.list_orders(status="held")
    assert [(r["id"], r["hold_reason"] is not None) for r in held] == [("shop:S-1", True)]
    assert "unknown SKU 'NEW'" in world.orders.explain("shop:S-1")
    # still unknown: a clear error, nothing written
    before = world.count(ot.order_routes)
    with pytest.raises(InvalidInput, match="still held: unknown SKU 'NEW'"):
        world.orders.release("shop:S-1")
    assert world.orders.show("shop:S-1")["status"] == "held" and world.count(ot.order_routes) == before
    # fix the cause, then release
    world.app.engine.add_skus([Sku("NEW", "New item")])
    world.app.engine.move(Movement(MovementKind.RECEIVE, "NEW", "WH-E", 4, "seed-new"))
    d = world.orders.release("shop:S-1")
    assert d["status"] == "routed" and d["hold_reason"] is None
    assert {(a["sku"], a["qty_reserved"]) for a in d["allocations"]} >= {("NEW", 2)}
    types = [e for e, _ in events(world, "shop:S-1")]
    assert types == ["OrderPlaced", "OrderHeld", "OrderReserved", "OrderRouted"]
    with world.app.db.engine.connect() as conn:
        status = conn.execute(
            sa.select(st.channel_orders.c.status).where(st.channel_orders.c.channel_order_id == "S-1")
        ).scalar_one()
        conn.rollback()
    assert status == "reserved"
    with pytest.raises(InvalidInput, match="not held"):
        world.orders.release("shop:S-1")
    assert world.app.engine.verify() == []


def test_order_from_an_unconfigured_channel_is_held_then_released(world: World) -> None:
    intake = channel_intake(world.app.engine)
    res = intake.ingest_one("ebay-uk", channel_order("E-1", ("A", 1, "9.99"), currency="GBP"), "poll")
    assert res.status == "held"
    d = world.orders.show("ebay-uk:E-1")
    assert d["status"] == "held" and "not configured" in d["hold_reason"] and d["currency"] == "GBP"
    world.app.engine.add_channel(Channel("ebay-uk", "ebay", "us", "GBP", ("WH-W",)))
    d = world.orders.release("ebay-uk:E-1")
    assert d["status"] == "routed"
    assert [(a["location"], a["qty_reserved"]) for a in d["allocations"]] == [("WH-W", 1)]
    assert d["destination"]["region"] == "us"
    assert d["lines"][0]["unit_price_minor"] == 999


def test_held_order_can_be_cancelled_and_release_of_unknown_order_is_404(world: World) -> None:
    intake = channel_intake(world.app.engine)
    intake.ingest_one("shop", channel_order("S-2", ("GONE", 1, "1.00")), "webhook")
    assert world.orders.cancel("shop:S-2")["status"] == "cancelled"
    with pytest.raises(NotFound):
        world.orders.release("nope")


def test_cli_and_api_show_explain_and_release_adopted_orders(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    intake = channel_intake(world.app.engine)
    intake.ingest_one("shop", channel_order("S-3", ("A", 1, "4.00")), "webhook")
    intake.ingest_one("shop", channel_order("S-4", ("LATER", 1, "4.00")), "webhook")
    url = world.app.db.url
    capsys.readouterr()
    assert main(["--database-url", url, "order", "explain", "shop:S-3"]) == 0
    assert "line li-0 (1 × A)" in capsys.readouterr().out
    assert main(["--database-url", url, "order", "show", "shop:S-4"]) == 0
    assert "held: unknown SKU 'LATER'" in capsys.readouterr().out
    assert main(["--database-url", url, "order", "release", "shop:S-4"]) == 2
    err = capsys.readouterr().err
    assert "still held" in err and len(err.strip().splitlines()) == 1
    api = create_app(world.app)
    tok = create_token(world.app.db, "adopt-tests")
    r = api_call(api, tok, "GET", "/v1/orders/shop:S-3")
    assert r.status_code == 200 and r.json()["source"] == "webhook" and r.json()["status"] == "routed"
    r = api_call(api, tok, "GET", "/v1/orders/shop:S-3/explain")
    assert r.status_code == 200 and "1 × A" in r.json()["explanation"]
    r = api_call(api, tok, "POST", "/v1/orders/shop:S-4/release")
    assert r.status_code == 422 and "still held" in r.json()["detail"]
    world.app.engine.add_skus([Sku("LATER", "Later")])
    world.app.engine.move(Movement(MovementKind.RECEIVE, "LATER", "WH-E", 1, "seed-later"))
    r = api_call(api, tok, "POST", "/v1/orders/shop:S-4/release")
    assert r.status_code == 200 and r.json()["status"] == "routed"


def test_held_orders_are_watched_by_the_sla(world: World) -> None:
    intake = channel_intake(world.app.engine)
    intake.ingest_one("shop", ChannelOrder("S-5", PLACED, "open", ()), "poll")  # no lines at all
    intake.ingest_one("shop", channel_order("S-6", ("A", 0, "1.00")), "poll")  # a zero quantity
    assert world.orders.show("shop:S-5")["hold_reason"] == "order has no lines"
    assert "quantity 0" in world.orders.show("shop:S-6")["hold_reason"]
    later = to_ms(PLACED + timedelta(hours=25))  # past the default 24 h handling time
    alerts = {a.order_id: a.state.value for a in world.orders.sla(later)}
    assert alerts == {"shop:S-5": "breached", "shop:S-6": "breached"}
