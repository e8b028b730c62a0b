"""Location capacity in the order service (both backends): configured like other routing settings, validated, and
the open load routing reads — it rises as orders are routed and falls as parcels ship and orders are cancelled."""

from __future__ import annotations

import json

import pytest

from accord.api.app import create_app
from accord.app.tokens import create_token
from accord.domain.errors import InvalidInput, NotFound
from accord.domain.orders import CancelReason, SlaPolicy
from accord.orders import Destination, PlaceLine, PlaceOrder
from accord.store import orders_tables as ot

from .conftest import DAY_MS, World
from .test_cli_api import api_call, run

LA = Destination("us", 34.0, -118.0)


def place(w: World, oid: str, sku: str = "A") -> list[str]:
    d = w.orders.place(PlaceOrder("shop", (PlaceLine(sku, 1, unit_price_minor=1000),), oid, destination=LA))
    return sorted({a["location"] for a in d["allocations"] if a["qty_reserved"] > 0})


def load(w: World, location: str) -> dict[str, object]:
    (row,) = w.orders.capacity(location)
    return row


def ship_days(w: World) -> None:
    # 24 h to ship (Amazon-like); a week to deliver, so the far warehouse is on time unless it must wait
    w.orders.set_sla_policy("shop", SlaPolicy(24, 4))
    w.orders.set_channel_routing("shop", promise_days=7.0)


def test_unlimited_locations_route_as_before(world: World) -> None:
    ship_days(world)
    assert [place(world, f"U{i}") for i in range(3)] == [["WH-W"]] * 3  # nearest to LA every time
    assert load(world, "WH-W") == {
        "location": "WH-W",
        "parcels_per_day": None,
        "open_parcels": 3,
        "shipped_today": 0,
        "left_today": None,
        "next_parcel_slip_days": 0,
    }
    assert "capacity" not in world.orders.explain("U2")


def test_a_full_location_loses_a_24h_order_and_the_load_falls_on_ship_and_cancel(world: World) -> None:
    ship_days(world)
    assert world.orders.set_location_capacity("WH-W", 1)["parcels_per_day"] == 1
    assert place(world, "C1") == ["WH-W"]  # today's one parcel
    assert load(world, "WH-W")["open_parcels"] == 1 and load(world, "WH-W")["next_parcel_slip_days"] == 1
    assert place(world, "C2") == ["WH-E"]  # WH-W could only ship it tomorrow, after its ship-by
    text = world.orders.explain("C2")
    assert "passed over for capacity: WH-W" in text
    assert "WH-W: at capacity (1/day: 1 parcel(s) waiting, 1 left today)" in text
    assert load(world, "WH-E")["open_parcels"] == 1

    world.orders.ship("C1", "WH-W", "UPS", "1Z999AA10123456784")
    assert load(world, "WH-W") == {
        "location": "WH-W",
        "parcels_per_day": 1,
        "open_parcels": 0,
        "shipped_today": 1,
        "left_today": 0,
        "next_parcel_slip_days": 1,  # nothing waits, but today's capacity is spent
    }
    world.orders.cancel("C2", CancelReason.SELLER)
    assert load(world, "WH-E")["open_parcels"] == 0

    world.clock.advance(DAY_MS)  # a new local day: WH-W can ship again
    assert load(world, "WH-W")["shipped_today"] == 0 and load(world, "WH-W")["next_parcel_slip_days"] == 0
    assert place(world, "C3") == ["WH-W"]

    world.orders.set_location_capacity("WH-W", None)  # unlimited again
    assert load(world, "WH-W")["parcels_per_day"] is None
    assert place(world, "C4") == ["WH-W"]


def test_the_load_is_read_in_the_routing_transaction(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted from the rows themselves: a routing that rolls back never counted, a committed one always does."""
    ship_days(world)
    world.orders.set_location_capacity("WH-W", 1)

    def fail(*_args: object, **_kw: object) -> None:
        raise RuntimeError("disk full")  # after the allocations were written, before commit

    with monkeypatch.context() as m:
        m.setattr(world.orders, "_record_route", fail)
        with pytest.raises(RuntimeError):
            place(world, "R0")
    assert load(world, "WH-W")["open_parcels"] == 0 and load(world, "WH-E")["open_parcels"] == 0
    assert place(world, "R1") == ["WH-W"]  # the rolled-back order took nothing of today's capacity
    assert load(world, "WH-W")["open_parcels"] == 1


@pytest.mark.parametrize("bad", [0, -3, True, 1.5, "10", 2_000_000])
def test_bad_capacity_is_rejected_and_nothing_written(world: World, bad: object) -> None:
    with pytest.raises(InvalidInput, match="capacity must be a positive whole number of parcels per day"):
        world.orders.set_location_capacity("WH-W", bad)  # type: ignore[arg-type]
    assert load(world, "WH-W")["parcels_per_day"] is None
    with pytest.raises(NotFound, match="unknown location 'NOPE'"):
        world.orders.set_location_capacity("NOPE", 10)
    assert world.count(ot.routing_capacities) == 0


def test_cli_capacity(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, world, "order", "capacity", "WH-W", "--per-day", "40", "--json")
    assert code == 0 and json.loads(out)["locations"][0]["parcels_per_day"] == 40
    code, out, _ = run(capsys, world, "order", "capacity")
    assert code == 0 and "WH-W" in out and "unlimited" in out
    for argv, text in [
        (("--per-day", "0"), "capacity must be a positive whole number of parcels per day"),
        (("--per-day", "-5"), "capacity must be a positive whole number of parcels per day"),
        (("--per-day", "many"), "Invalid value for '--per-day'"),
        (("--per-day", "5", "--unlimited"), "give either --per-day or --unlimited"),
    ]:
        code, _, err = run(capsys, world, "order", "capacity", "WH-W", *argv)
        assert code == 2 and len(err.strip().splitlines()) == 1 and text in err, err
    code, _, err = run(capsys, world, "order", "capacity", "NOPE", "--per-day", "5")
    assert code == 2 and "unknown location 'NOPE'" in err
    assert run(capsys, world, "order", "capacity", "WH-W", "--unlimited")[0] == 0
    assert world.count(ot.routing_capacities) == 0


def test_api_capacity(world: World) -> None:
    api = create_app(world.app)
    token = create_token(world.app.db, "capacity-tests")
    r = api_call(api, token, "PUT", "/v1/routing/capacity/WH-W", {"parcels_per_day": 25})
    assert r.status_code == 200, r.text
    assert r.json()["parcels_per_day"] == 25 and r.json()["open_parcels"] == 0
    rows = api_call(api, token, "GET", "/v1/routing/capacity").json()["locations"]
    assert {x["location"]: x["parcels_per_day"] for x in rows} == {"FBA": None, "WH-E": None, "WH-W": 25}
    for body in ({"parcels_per_day": 0}, {"parcels_per_day": -1}, {"parcels_per_day": "25"}, {}, {"per_day": 5}):
        bad = api_call(api, token, "PUT", "/v1/routing/capacity/WH-W", body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.headers["content-type"].startswith("application/problem+json") and bad.json()["detail"]
    r = api_call(api, token, "PUT", "/v1/routing/capacity/WH-W", {"parcels_per_day": 0})
    assert "capacity must be a positive whole number" in r.json()["detail"]
    assert api_call(api, token, "PUT", "/v1/routing/capacity/NOPE", {"parcels_per_day": 5}).status_code == 404
    assert api_call(api, token, "PUT", "/v1/routing/capacity/WH-W", {"parcels_per_day": None}).status_code == 200
    assert world.count(ot.routing_capacities) == 0
