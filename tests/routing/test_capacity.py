"""Capacity-aware routing: a location's daily capacity and open load make a parcel slip by whole days; a slipped
parcel that would miss the SLA moves the order elsewhere — the same way on the fast path, the heuristic and the MIP."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from accord.domain.availability import LocationKind
from accord.routing import (
    ChannelRules,
    LocationLoad,
    Network,
    RouteLine,
    RouteLocation,
    RouteOrder,
    Router,
    RouterConfig,
    ShippingModel,
    Stock,
    capacity_slip,
)
from accord.routing.solver import build_problem, fast_path, heuristic, objective, solve_mip

K = LocationKind
NYC = (40.75, -73.99)


def network(caps: dict[str, int | None] | None = None, load: dict[str, LocationLoad] | None = None) -> Network:
    caps = caps or {}
    locations = [
        RouteLocation("WH-NJ", K.WAREHOUSE, "US-E", 40.73, -74.17, capacity_per_day=caps.get("WH-NJ")),
        RouteLocation("DC-ATL", K.REGIONAL_DC, "US-E", 33.75, -84.39, capacity_per_day=caps.get("DC-ATL")),
        RouteLocation("WH-LA", K.WAREHOUSE, "US-W", 34.05, -118.24, capacity_per_day=caps.get("WH-LA")),
    ]
    channels = {"shop": ChannelRules("shop", ("WH-NJ", "DC-ATL", "WH-LA"), max_splits=2)}
    return Network({loc.id: loc for loc in locations}, channels, ShippingModel(), load=load or {})


def order(
    *lines: tuple[str, int], ship_within: float | None = 1.0, oid: str = "O1", promise: float = 3.0
) -> RouteOrder:
    return RouteOrder(
        oid,
        "shop",
        tuple(RouteLine(str(i + 1), s, q) for i, (s, q) in enumerate(lines)),
        "US-E",
        *NYC,
        promise,
        ship_within,
    )


FULL = LocationLoad(open_parcels=25, shipped_today=5, day_elapsed=0.25)  # 10/day: 5 left today, 20 over


def test_slip_is_whole_days_beyond_what_today_can_still_ship() -> None:
    assert capacity_slip(None, FULL).days == 0  # unlimited never slips
    assert capacity_slip(10, None).days == 0
    assert capacity_slip(10, LocationLoad(4, 5, 0.5)).days == 0  # 4 waiting, 5 left today: ships today
    s = capacity_slip(10, LocationLoad(5, 5, 0.5))  # the 6th: tomorrow, first of the day
    assert (s.days, s.ahead, s.left_today) == (1, 5, 5)
    assert s.leaves_in_days == pytest.approx(1 - 0.5 + 0.1)
    s = capacity_slip(10, FULL)  # 25 waiting, 5 left today: 20 over = two full days
    assert s.days == 3 and s.leaves_in_days == pytest.approx(3 - 0.25 + 0.1)
    assert capacity_slip(10, LocationLoad(12, 10, 0.9)).days == 2  # nothing left today
    # the order's own parcel already counted there is not ahead of itself
    assert capacity_slip(10, LocationLoad(5, 5, 0.5), counted=True).days == 0


def test_a_full_location_loses_a_24h_order_to_one_that_can_ship_today() -> None:
    stock: Stock = {("A", "WH-NJ"): 5, ("A", "DC-ATL"): 5}
    free = Router(network()).route(order(("A", 1)), dict(stock))
    assert free.locations == ("WH-NJ",)  # nearest and first: the choice without capacity
    plan = Router(network({"WH-NJ": 10}, {"WH-NJ": FULL})).route(order(("A", 1)), dict(stock))
    assert plan.locations == ("DC-ATL",) and plan.sla_misses == 0
    (line,) = plan.explanation
    assert line.capacity_passed == ("WH-NJ",)
    text = plan.explain()
    assert "passed over for capacity: WH-NJ" in text
    assert "WH-NJ: at capacity (10/day: 25 parcel(s) waiting, 5 left today)" in text
    assert "would miss SLA (lead 5 d > promise 3 d)" in text  # 1 d handling + 1 d transit + 3 d slip
    # one day over but the ship-by passes before tomorrow's turn comes: late on the ship-by alone
    tomorrow = {"WH-NJ": LocationLoad(open_parcels=9, shipped_today=5, day_elapsed=0.25)}
    late = Router(network({"WH-NJ": 10}, tomorrow)).route(order(("A", 1)), dict(stock))
    assert late.locations == ("DC-ATL",)
    assert "leaves in ~1.2 d, after the ship-by in 1.0 d" in late.explain()


def test_capacity_with_room_or_unlimited_behaves_as_before() -> None:
    stock: Stock = {("A", "WH-NJ"): 5, ("A", "DC-ATL"): 5, ("B", "DC-ATL"): 2}
    o = order(("A", 1), ("B", 1))
    before = Router(network()).route(o, dict(stock))
    unlimited = Router(network({}, {"WH-NJ": FULL})).route(o, dict(stock))  # a load but no capacity
    roomy = Router(network({"WH-NJ": 100}, {"WH-NJ": FULL})).route(o, dict(stock))
    for plan in (unlimited, roomy):
        assert plan.allocations == before.allocations and plan.objective == before.objective
        assert plan.explain() == before.explain()
    assert "capacity" not in before.explain()


def test_a_slip_that_still_meets_the_ship_by_keeps_the_cheaper_location() -> None:
    # 48 h to ship: one day of slip still makes it; the order stays at the near warehouse
    stock: Stock = {("A", "WH-NJ"): 5, ("A", "DC-ATL"): 5}
    load = {"WH-NJ": LocationLoad(open_parcels=6, shipped_today=5, day_elapsed=0.5)}
    plan = Router(network({"WH-NJ": 10}, load)).route(order(("A", 1), ship_within=2.0), dict(stock))
    assert plan.locations == ("WH-NJ",) and plan.sla_misses == 0
    assert "slips 1 d" in plan.explain()


def test_every_location_full_still_routes_the_order() -> None:
    stock: Stock = {("A", "WH-NJ"): 5, ("A", "DC-ATL"): 5}
    caps: dict[str, int | None] = {"WH-NJ": 10, "DC-ATL": 10, "WH-LA": 10}
    plan = Router(network(caps, {k: FULL for k in caps})).route(order(("A", 1)), dict(stock))
    assert plan.locations == ("WH-NJ",) and not plan.unfilled and plan.sla_misses == 1


def test_route_many_counts_the_parcels_it_opens() -> None:
    stock: Stock = {("A", "WH-NJ"): 10, ("A", "DC-ATL"): 10}
    router = Router(network({"WH-NJ": 2}))
    plans = router.route_many([order(("A", 1), oid=f"O{i}") for i in range(4)], stock)
    assert [p.locations for p in plans] == [("WH-NJ",), ("WH-NJ",), ("DC-ATL",), ("DC-ATL",)]
    assert router.load["WH-NJ"].open_parcels == 2


def test_an_order_already_counted_at_a_location_is_not_queued_behind_itself() -> None:
    stock: Stock = {("A", "WH-NJ"): 5, ("A", "DC-ATL"): 5}
    load = {"WH-NJ": LocationLoad(open_parcels=3, shipped_today=7, day_elapsed=0.5)}  # 3 left today, 3 waiting
    net = network({"WH-NJ": 10}, load)
    assert Router(net).route(order(("A", 1), ship_within=0.5), dict(stock)).locations == ("DC-ATL",)
    counted = replace(order(("A", 1), ship_within=0.5), open_at=("WH-NJ",))  # one of the 3 is this order
    assert Router(net).route(counted, dict(stock)).locations == ("WH-NJ",)


def test_reroute_and_batch_see_the_capacity() -> None:
    stock: Stock = {("A", "WH-NJ"): 5, ("A", "DC-ATL"): 5, ("A", "WH-LA"): 5}
    net = network({"DC-ATL": 10}, {"DC-ATL": FULL})
    router = Router(net)
    o = order(("A", 1), promise=10.0)  # a week to deliver, a day to ship
    plan = router.route(o, stock)
    assert plan.locations == ("WH-NJ",)
    moved = router.reroute(o, plan, "WH-NJ", stock)
    assert moved.locations == ("WH-LA",)  # DC-ATL is nearer but full: it would ship after the ship-by
    batch = Router(net).reoptimise([replace(o, id="B1"), replace(o, id="B2")], dict(stock))
    assert all(p.locations == ("WH-NJ",) for p in batch.plans.values())


def random_capacity_case(rng: random.Random) -> tuple[Network, RouteOrder, Stock]:
    skus = [f"S{i}" for i in range(rng.randint(1, 4))]
    ids = ("WH-NJ", "DC-ATL", "WH-LA")
    caps: dict[str, int | None] = {k: rng.choice((None, 5, 10)) for k in ids}
    load = {
        k: LocationLoad(rng.randint(0, 25), rng.randint(0, 10), rng.random())
        for k in ids
        if caps[k] is not None and rng.random() < 0.8
    }
    stock: Stock = {(s, k): rng.randint(0, 4) for s in skus for k in ids if rng.random() < 0.8}
    lines = [(s, rng.randint(1, 3)) for s in skus]
    o = order(*lines, ship_within=rng.choice((0.5, 1.0, 2.0, None)), promise=rng.choice((2.0, 3.0, 6.0)))
    return network(caps, load), o, stock


def test_mip_and_heuristic_agree_on_small_capacity_cases() -> None:
    rng = random.Random(11)
    slipped = 0
    for _ in range(150):
        net, o, stock = random_capacity_case(rng)
        p = build_problem(net, o)
        slipped += any(c.slip.days for c in p.cands)
        exact = objective(p, solve_mip([p], stock).allocs[0])
        assert objective(p, heuristic(p, stock)) == pytest.approx(exact, abs=1e-6)
        if len(p.demand) == 1 and (fast := fast_path(p, stock)) is not None:
            # one location holds it all: the fast path finds the exact single-parcel optimum
            one = build_problem(net, o, max_shipments=1)
            assert objective(p, fast) == pytest.approx(objective(one, solve_mip([one], stock).allocs[0]), abs=1e-6)
        for method in ("mip", "heuristic"):  # the Router's entry points agree as well
            plan = Router(net, RouterConfig(explain=False)).route(o, dict(stock), commit=False, method=method)
            assert plan.objective == pytest.approx(exact, abs=1e-3)
    assert slipped > 30  # the cases do exercise capacity


def test_all_else_equal_the_location_that_can_ship_sooner_wins() -> None:
    # two warehouses side by side: the first in priority is busy until tomorrow, which still meets a 48 h ship-by
    locs = [
        RouteLocation("A1", K.WAREHOUSE, "US-E", 40.73, -74.17, capacity_per_day=10),
        RouteLocation("A2", K.WAREHOUSE, "US-E", 40.73, -74.17, capacity_per_day=10),
    ]
    net = Network(
        {loc.id: loc for loc in locs},
        {"shop": ChannelRules("shop", ("A1", "A2"))},
        load={"A1": LocationLoad(open_parcels=12, shipped_today=0, day_elapsed=0.5)},
    )
    stock: Stock = {("A", "A1"): 5, ("A", "A2"): 5}
    plan = Router(net).route(order(("A", 1), ship_within=2.0), stock)
    assert plan.locations == ("A2",) and plan.sla_misses == 0
    assert "passed over for capacity: A1" in plan.explain()
    roomy = replace(net, load={"A1": LocationLoad(open_parcels=9, shipped_today=0, day_elapsed=0.5)})
    assert Router(roomy).route(order(("A", 1), ship_within=2.0), stock).locations == ("A1",)
