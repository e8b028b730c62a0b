"""Routing: constraints (eligibility, platform stock, dark-store radius, max splits), solvers, explain, re-route."""

from __future__ import annotations

import random

import pytest

from accord.domain.availability import LocationKind
from accord.domain.errors import InvalidInput, NotFound
from accord.routing import (
    ChannelRules,
    Network,
    RouteLine,
    RouteLocation,
    RouteOrder,
    Router,
    RouterConfig,
    ShippingModel,
    Stock,
    baseline_route,
    haversine_km,
)
from accord.routing.bench import run_routing_bench
from accord.routing.solver import build_problem, heuristic, objective, search, solve_mip

K = LocationKind
NYC = (40.75, -73.99)


def network(**channel_overrides: ChannelRules) -> Network:
    locations = [
        RouteLocation("WH-NJ", K.WAREHOUSE, "US-E", 40.73, -74.17),
        RouteLocation("DC-ATL", K.REGIONAL_DC, "US-E", 33.75, -84.39),
        RouteLocation("WH-LA", K.WAREHOUSE, "US-W", 34.05, -118.24),
        RouteLocation("FBA-US", K.PLATFORM_FC, "US-E", 39.95, -75.17, owner_channel="amazon-us"),
        RouteLocation("DS-NYC", K.DARK_STORE, "US-E", 40.75, -73.99, handling_days=0.1, radius_km=10.0),
    ]
    channels = {
        "shopify": ChannelRules("shopify", ("WH-NJ", "DC-ATL", "FBA-US", "DS-NYC"), max_splits=2),
        "amazon-us": ChannelRules("amazon-us", ("FBA-US", "WH-NJ", "DC-ATL"), max_splits=2),
        "quick": ChannelRules("quick", ("DS-NYC", "WH-NJ"), max_splits=1, quick_commerce=True),
    }
    channels.update(channel_overrides)
    return Network({loc.id: loc for loc in locations}, channels, ShippingModel())


def order(channel: str, *lines: tuple[str, int], at: tuple[float, float] = NYC, promise: float = 3.0) -> RouteOrder:
    return RouteOrder(
        "O1", channel, tuple(RouteLine(str(i + 1), s, q) for i, (s, q) in enumerate(lines)), "US-E", *at, promise
    )


def test_haversine() -> None:
    assert haversine_km(0, 0, 0, 0) == 0
    assert haversine_km(40.7128, -74.0060, 51.5074, -0.1278) == pytest.approx(5570, rel=0.01)


def test_single_line_fast_path_picks_the_cheapest_location_holding_it_all() -> None:
    stock: Stock = {("A", "DC-ATL"): 5, ("A", "WH-NJ"): 1, ("A", "WH-LA"): 9}
    plan = Router(network()).route(order("shopify", ("A", 2)), stock)
    assert plan.method == "fast-path"
    assert [(a.location, a.qty) for a in plan.allocations] == [("DC-ATL", 2)]
    assert stock[("A", "DC-ATL")] == 3  # committed from the pool
    # WH-LA is not a shopify location even though it has the most
    assert "WH-LA" not in plan.locations


def test_single_line_without_a_full_location_splits() -> None:
    stock: Stock = {("A", "DC-ATL"): 1, ("A", "WH-NJ"): 1}
    plan = Router(network()).route(order("shopify", ("A", 2)), stock)
    assert plan.method != "fast-path"
    assert sorted((a.location, a.qty) for a in plan.allocations) == [("DC-ATL", 1), ("WH-NJ", 1)]
    assert plan.shipments == 2 and not plan.unfilled


def test_ineligible_location_is_never_used_and_is_explained() -> None:
    stock: Stock = {("A", "WH-LA"): 10}
    plan = Router(network()).route(order("shopify", ("A", 1)), stock)
    assert plan.allocations == () and plan.unfilled == (("1", 1),)
    text = plan.explain()
    assert "WH-LA: not a fulfilling location of channel shopify" in text
    assert stock[("A", "WH-LA")] == 10


def test_platform_stock_only_for_its_own_channel() -> None:
    stock: Stock = {("A", "FBA-US"): 10}
    foreign = Router(network()).route(order("shopify", ("A", 1)), dict(stock))
    assert foreign.allocations == ()
    assert "platform-held stock of amazon-us" in foreign.explain()
    own = Router(network()).route(order("amazon-us", ("A", 1)), dict(stock))
    assert own.locations == ("FBA-US",)


def test_dark_store_only_for_quick_commerce_within_radius() -> None:
    stock: Stock = {("A", "DS-NYC"): 5, ("A", "WH-NJ"): 5}
    router = Router(network())
    near = router.route(order("quick", ("A", 1), promise=0.5), dict(stock))
    assert near.locations == ("DS-NYC",) and near.sla_misses == 0
    far = router.route(order("quick", ("A", 1), at=(40.95, -73.99), promise=0.5), dict(stock))  # ~22 km north
    assert far.locations == ("WH-NJ",)
    assert "outside its 10 km radius" in far.explain()
    not_quick = router.route(order("shopify", ("A", 1)), dict(stock))
    assert not_quick.locations == ("WH-NJ",)
    assert "not a quick-commerce channel" in not_quick.explain()


@pytest.mark.parametrize("method", ["auto", "heuristic", "mip"])
def test_max_splits_is_respected(method: str) -> None:
    # three SKUs, each only at one location
    stock: Stock = {("A", "WH-NJ"): 1, ("B", "DC-ATL"): 1, ("C", "FBA-US"): 1}
    o = order("amazon-us", ("A", 1), ("B", 1), ("C", 1))
    three = Router(network()).route(o, dict(stock), method=method)
    assert three.shipments == 3 and not three.unfilled
    tight = network(**{"amazon-us": ChannelRules("amazon-us", ("FBA-US", "WH-NJ", "DC-ATL"), max_splits=1)})
    two = Router(tight).route(o, dict(stock), method=method)
    assert two.shipments == 2
    assert sum(q for _, q in two.unfilled) == 1
    zero = network(**{"amazon-us": ChannelRules("amazon-us", ("FBA-US", "WH-NJ", "DC-ATL"), max_splits=0)})
    one = Router(zero).route(o, dict(stock), method=method)
    assert one.shipments == 1


def test_mip_finds_the_known_optimum() -> None:
    # WH-NJ holds both SKUs: one parcel beats two, even though DC-ATL ranks... lower and LA is ineligible
    stock: Stock = {("A", "WH-NJ"): 2, ("B", "WH-NJ"): 1, ("A", "DC-ATL"): 2, ("B", "FBA-US"): 5}
    o = order("amazon-us", ("A", 2), ("B", 1))
    plan = Router(network()).route(o, dict(stock), method="mip")
    assert plan.method == "mip"
    assert plan.locations == ("WH-NJ",) and plan.shipments == 1 and not plan.unfilled


def test_mip_trades_a_split_against_an_sla_miss() -> None:
    # both SKUs sit in Atlanta (3 days lead to NYC); a 2.5-day promise makes Atlanta late
    stock: Stock = {("A", "DC-ATL"): 1, ("B", "DC-ATL"): 1, ("A", "WH-NJ"): 1, ("B", "FBA-US"): 1}
    o = order("amazon-us", ("A", 1), ("B", 1), promise=2.5)
    p = build_problem(network(), o)
    assert p.by_loc["DC-ATL"].late and not p.by_loc["WH-NJ"].late
    res = solve_mip([p], stock)
    assert res.optimal
    assert res.allocs[0] == {("A", "WH-NJ"): 1, ("B", "FBA-US"): 1}  # two on-time parcels beat one late
    assert objective(p, res.allocs[0]) == pytest.approx(res.objective)


def random_case(rng: random.Random) -> tuple[Network, RouteOrder, Stock]:
    net = network()
    skus = ["A", "B", "C", "D", "E", "F"]
    lines = tuple(RouteLine(str(i), s, rng.randint(1, 3)) for i, s in enumerate(rng.sample(skus, rng.randint(2, 6))))
    o = RouteOrder("R", rng.choice(["shopify", "amazon-us"]), lines, "US-E", 40.0 + rng.random(), -75.0, 2.0)
    stock: Stock = {}
    for s in skus:
        for loc in net.locations:
            if rng.random() < 0.5:
                stock[(s, loc)] = rng.randint(0, 4)
    return net, o, stock


def test_heuristic_matches_the_mip_on_random_small_orders() -> None:
    rng = random.Random(3)
    for _ in range(60):
        net, o, stock = random_case(rng)
        p = build_problem(net, o)
        alloc, proven = search(p, stock)
        exact = solve_mip([p], stock)
        assert proven
        assert objective(p, alloc) == pytest.approx(exact.objective, rel=1e-6, abs=1e-6)


def test_greedy_local_search_stays_within_bound_when_the_budget_runs_out() -> None:
    rng = random.Random(11)
    total_h = total_m = 0.0
    for _ in range(40):
        net, o, stock = random_case(rng)
        p = build_problem(net, o)
        alloc, _ = search(p, stock, eval_budget=1)
        for (sku, loc), q in alloc.items():
            assert 0 < q <= stock[(sku, loc)]
        assert len({loc for _, loc in alloc}) <= p.max_shipments
        h, m = objective(p, alloc), solve_mip([p], stock).objective
        assert h >= m - 1e-6
        total_h += h
        total_m += m
    assert total_h <= total_m * 1.10  # bounded search with one evaluated set: within 10 % in aggregate


def test_heuristic_respects_shared_stock_between_lines_of_one_sku() -> None:
    stock: Stock = {("A", "WH-NJ"): 2, ("A", "DC-ATL"): 2}
    o = RouteOrder("O", "shopify", (RouteLine("1", "A", 2), RouteLine("2", "A", 2)), "US-E", *NYC)
    plan = Router(network()).route(o, stock, method="heuristic")
    assert not plan.unfilled
    assert sorted((a.line_id, a.location, a.qty) for a in plan.allocations) == [
        ("1", "DC-ATL", 2),
        ("2", "WH-NJ", 2),
    ] or sorted((a.line_id, a.location, a.qty) for a in plan.allocations) == [("1", "WH-NJ", 2), ("2", "DC-ATL", 2)]
    assert stock == {("A", "WH-NJ"): 0, ("A", "DC-ATL"): 0}


def test_explain_names_chosen_location_and_why_others_lost() -> None:
    stock: Stock = {("A", "WH-NJ"): 3, ("A", "DC-ATL"): 3, ("B", "WH-NJ"): 1, ("B", "DC-ATL"): 0}
    plan = Router(network()).route(order("shopify", ("A", 1), ("B", 1)), stock)
    assert plan.locations == ("WH-NJ",)
    line_a, line_b = plan.explanation
    assert line_a.chosen == (("WH-NJ", 1),)
    assert "ships with line(s) 2" in line_a.why
    reasons = dict(line_a.rejected)
    assert "more than the chosen plan" in reasons["DC-ATL"]
    assert "platform-held" in reasons["FBA-US"]
    assert reasons["DS-NYC"].startswith("dark store")
    assert dict(line_b.rejected)["DC-ATL"] == "no stock of B"
    text = plan.explain()
    assert text.startswith("order O1 on shopify: 1 shipment(s) from WH-NJ")
    assert "line 1 (1 × A): 1 from WH-NJ" in text


def test_reroute_after_a_location_fails_to_ship() -> None:
    stock: Stock = {("A", "WH-NJ"): 1, ("B", "WH-NJ"): 1, ("A", "DC-ATL"): 1, ("B", "DC-ATL"): 1}
    router = Router(network())
    o = order("shopify", ("A", 1), ("B", 1))
    plan = router.route(o, stock)
    assert plan.locations == ("WH-NJ",)
    again = router.reroute(o, plan, "WH-NJ", stock)
    assert again.locations == ("DC-ATL",)
    assert again.method == "reroute:WH-NJ"
    assert not again.unfilled
    assert stock[("A", "DC-ATL")] == 0 and stock[("B", "DC-ATL")] == 0
    assert stock[("A", "WH-NJ")] == 0  # the failed units are not handed back
    assert "failed to ship" in again.explain()
    with pytest.raises(InvalidInput, match="nothing allocated at WH-LA"):
        router.reroute(o, plan, "WH-LA", stock)


def test_reroute_keeps_the_parts_that_still_ship() -> None:
    stock: Stock = {("A", "WH-NJ"): 1, ("B", "DC-ATL"): 1, ("B", "FBA-US"): 0, ("B", "WH-NJ"): 0}
    router = Router(network())
    o = order("shopify", ("A", 1), ("B", 1))
    plan = router.route(o, stock)
    assert plan.locations == ("DC-ATL", "WH-NJ")
    stock[("B", "WH-NJ")] = 1  # B arrives at NJ, then Atlanta fails
    again = router.reroute(o, plan, "DC-ATL", stock)
    assert sorted((a.line_id, a.location) for a in again.allocations) == [("1", "WH-NJ"), ("2", "WH-NJ")]
    assert again.shipments == 1


def test_batch_reoptimisation_beats_first_come_first_served() -> None:
    # O1 (flexible) grabs NJ's only A; O2 can then only be served late or not at all
    net = network()
    stock: Stock = {("A", "WH-NJ"): 1, ("A", "DC-ATL"): 1, ("B", "WH-NJ"): 1}
    o1 = RouteOrder("O1", "shopify", (RouteLine("1", "A", 1),), "US-E", *NYC, 5.0)
    o2 = RouteOrder("O2", "shopify", (RouteLine("1", "A", 1), RouteLine("2", "B", 1)), "US-E", *NYC, 5.0)
    router = Router(net)
    seq_stock = dict(stock)
    p1, p2 = router.route(o1, seq_stock), router.route(o2, seq_stock)
    assert p1.locations == ("WH-NJ",) and p2.shipments == 2
    before = p1.objective + p2.objective
    result = router.reoptimise([o1, o2], seq_stock, {"O1": p1, "O2": p2})
    assert result.method == "batch-mip"
    assert result.plans["O1"].locations == ("DC-ATL",)
    assert result.plans["O2"].locations == ("WH-NJ",)
    assert set(result.changed) == {"O1", "O2"}
    assert result.objective_after < before
    assert result.objective_before == pytest.approx(before)
    assert all(v == 0 for v in seq_stock.values())  # new plans took exactly the stock there was


def test_batch_heuristic_path_and_never_worse() -> None:
    net = network()
    stock: Stock = {("A", "WH-NJ"): 1, ("A", "DC-ATL"): 1, ("B", "WH-NJ"): 1}
    o1 = RouteOrder("O1", "shopify", (RouteLine("1", "A", 1),), "US-E", *NYC, 5.0)
    o2 = RouteOrder("O2", "shopify", (RouteLine("1", "A", 1), RouteLine("2", "B", 1)), "US-E", *NYC, 4.0)
    router = Router(net, RouterConfig(batch_mip_max_vars=0))
    result = router.reoptimise([o1, o2], stock)
    assert result.method == "batch-heuristic"
    assert sum(p.shipments for p in result.plans.values()) == 2
    assert not any(p.unfilled for p in result.plans.values())
    with pytest.raises(InvalidInput, match="twice"):
        router.reoptimise([o1, o1], stock)


def test_baseline_takes_first_location_in_priority_order() -> None:
    stock: Stock = {("A", "DC-ATL"): 1, ("B", "WH-NJ"): 1, ("A", "WH-NJ"): 0}
    o = order("shopify", ("A", 1), ("B", 1))
    base = baseline_route(network(), o, stock)
    assert base.shipments == 2 and base.method == "baseline"
    assert stock == {("A", "DC-ATL"): 0, ("B", "WH-NJ"): 0, ("A", "WH-NJ"): 0}


def test_bad_input() -> None:
    router = Router(network())
    with pytest.raises(NotFound, match="channel 'nope'"):
        router.route(order("nope", ("A", 1)), {})
    with pytest.raises(InvalidInput, match="quantity must be positive"):
        router.route(order("shopify", ("A", 0)), {})
    with pytest.raises(InvalidInput, match="no lines"):
        router.route(RouteOrder("O", "shopify", (), "US-E", *NYC), {})
    with pytest.raises(InvalidInput, match="unknown routing method"):
        router.route(order("shopify", ("A", 1)), {}, method="magic")
    known = Network(network().locations, network().channels, skus=frozenset({"A"}))
    with pytest.raises(NotFound, match="SKU 'Z'"):
        Router(known).route(order("shopify", ("Z", 1)), {})


def test_heuristic_with_no_stock_leaves_everything_unfilled() -> None:
    p = build_problem(network(), order("shopify", ("A", 1), ("B", 2)))
    assert heuristic(p, {}) == {}
    plan = Router(network()).route(order("shopify", ("A", 1), ("B", 2)), {})
    assert plan.unfilled == (("1", 1), ("2", 2)) and plan.shipments == 0


def test_bench_reports_every_key() -> None:
    out = run_routing_bench(orders=200, seed=1, mip_sample=15)
    for key in (
        "route_s",
        "shipments_per_order",
        "cost_per_order",
        "mip_sample_gap_pct",
        "baseline_shipments_per_order",
        "baseline_cost_per_order",
    ):
        assert key in out
    assert out["orders"] == 200 and out["locations"] == 12 and out["regions"] == 5
    assert out["mip_sample_gap_pct"] >= 0
    assert out["shipments_per_order"] <= out["baseline_shipments_per_order"]
