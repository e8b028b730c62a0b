"""`accord bench routing`: route a synthetic world's orders and compare with the naive rule and the exact MIP.

World: 12 locations in 5 regions (warehouses, regional DCs, two dark stores, one Amazon-held FC), 6 channels
(one quick-commerce), 300 SKUs with skewed popularity, and orders of 1–6 lines. Deterministic given ``seed``.
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

from accord.domain.availability import LocationKind
from accord.routing.model import (
    ChannelRules,
    LocationLoad,
    Network,
    RouteLine,
    RouteLocation,
    RouteOrder,
    RoutePlan,
    ShippingModel,
    Stock,
)
from accord.routing.router import Router, RouterConfig, baseline_route
from accord.routing.solver import build_problem, heuristic, objective, solve_mip

K = LocationKind

LOCATIONS: tuple[RouteLocation, ...] = (
    RouteLocation("WH-NJ", K.WAREHOUSE, "US-E", 40.73, -74.17),
    RouteLocation("DC-ATL", K.REGIONAL_DC, "US-E", 33.75, -84.39),
    RouteLocation("DS-NYC", K.DARK_STORE, "US-E", 40.75, -73.99, handling_days=0.1, radius_km=15.0),
    RouteLocation("FBA-US", K.PLATFORM_FC, "US-E", 39.95, -75.17, owner_channel="amazon-us", handling_days=0.5),
    RouteLocation("WH-LA", K.WAREHOUSE, "US-W", 34.05, -118.24),
    RouteLocation("DC-SEA", K.REGIONAL_DC, "US-W", 47.61, -122.33),
    RouteLocation("WH-DE", K.WAREHOUSE, "EU", 50.11, 8.68),
    RouteLocation("DC-PL", K.REGIONAL_DC, "EU", 52.23, 21.01),
    RouteLocation("DS-BER", K.DARK_STORE, "EU", 52.52, 13.40, handling_days=0.1, radius_km=12.0),
    RouteLocation("WH-SG", K.WAREHOUSE, "APAC", 1.35, 103.82),
    RouteLocation("DC-SYD", K.REGIONAL_DC, "APAC", -33.87, 151.21),
    RouteLocation("WH-MX", K.WAREHOUSE, "LATAM", 19.43, -99.13),
)

CHANNELS: tuple[ChannelRules, ...] = (
    ChannelRules("amazon-us", ("FBA-US", "WH-NJ", "WH-LA", "DC-ATL", "DC-SEA"), max_splits=2),
    ChannelRules(
        "shopify-dtc",
        ("WH-NJ", "WH-LA", "WH-DE", "WH-SG", "WH-MX", "DC-ATL", "DC-SEA", "DC-PL", "DC-SYD", "DS-NYC", "FBA-US"),
        max_splits=2,
    ),
    ChannelRules("quick-nyc", ("DS-NYC", "WH-NJ", "DC-ATL"), max_splits=1, quick_commerce=True),
    ChannelRules("amazon-de", ("WH-DE", "DC-PL", "DS-BER"), max_splits=2),
    ChannelRules("shopee-sg", ("WH-SG", "DC-SYD"), max_splits=1),
    ChannelRules("mercadolibre-mx", ("WH-MX", "WH-LA", "DC-ATL"), max_splits=2),
)

# channel → (weight, promise days, destination centres (region, lat, lon, jitter degrees))
DEMAND: dict[str, tuple[float, float, tuple[tuple[str, float, float, float], ...]]] = {
    "amazon-us": (0.30, 3.0, (("US-E", 40.0, -78.0, 4.0), ("US-W", 37.0, -120.0, 4.0))),
    "shopify-dtc": (
        0.20,
        5.0,
        (("US-E", 40.0, -78.0, 4.0), ("US-W", 37.0, -120.0, 4.0), ("EU", 50.0, 10.0, 4.0), ("APAC", 1.3, 103.8, 1.0)),
    ),
    "quick-nyc": (0.10, 0.5, (("US-E", 40.74, -73.98, 0.12),)),
    "amazon-de": (0.20, 3.0, (("EU", 51.0, 11.0, 3.0), ("EU", 52.52, 13.40, 0.1))),
    "shopee-sg": (0.10, 4.0, (("APAC", 1.35, 103.82, 0.3),)),
    "mercadolibre-mx": (0.10, 5.0, (("LATAM", 19.4, -99.1, 3.0),)),
}

REGIONS = ("US-E", "US-W", "EU", "APAC", "LATAM")


def _zones() -> tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]]:
    """Cross-region zone tables; within a region distance decides."""
    near = {frozenset({"US-E", "US-W"}), frozenset({"US-E", "LATAM"}), frozenset({"US-W", "LATAM"})}
    cost: dict[tuple[str, str], float] = {}
    days: dict[tuple[str, str], float] = {}
    for a in REGIONS:
        for b in REGIONS:
            if a == b:
                continue
            if frozenset({a, b}) in near:
                cost[(a, b)], days[(a, b)] = 12.0, 3.0
            else:
                cost[(a, b)], days[(a, b)] = 35.0, 6.0
    return cost, days


def build_world(orders: int = 10_000, seed: int = 7, n_skus: int = 300) -> tuple[Network, Stock, list[RouteOrder]]:
    rng = random.Random(seed)
    zone_cost, zone_days = _zones()
    network = Network(
        locations={loc.id: loc for loc in LOCATIONS},
        channels={c.channel: c for c in CHANNELS},
        shipping=ShippingModel(zone_cost=zone_cost, zone_days=zone_days),
    )
    skus = [f"SKU-{i:04d}" for i in range(n_skus)]
    popularity = [1.0 / (i + 1) ** 0.8 for i in range(n_skus)]
    total_pop = sum(popularity)
    weights = [w / total_pop for w in popularity]
    channels = list(DEMAND)
    ch_weights = [DEMAND[c][0] for c in channels]
    out: list[RouteOrder] = []
    demand_units = 0
    for n in range(orders):
        ch = rng.choices(channels, ch_weights)[0]
        _, promise, centres = DEMAND[ch]
        region, lat, lon, jitter = rng.choice(centres)
        n_lines = rng.randint(1, 6)
        picked: list[str] = []
        while len(picked) < n_lines:
            s = rng.choices(skus, weights)[0]
            if s not in picked:
                picked.append(s)
        lines = tuple(RouteLine(f"{i + 1}", s, rng.choice((1, 1, 1, 2, 2, 3))) for i, s in enumerate(picked))
        demand_units += sum(ln.qty for ln in lines)
        dlat, dlon = rng.uniform(-jitter, jitter), rng.uniform(-jitter, jitter)
        out.append(RouteOrder(f"O{n:06d}", ch, lines, region, lat + dlat, lon + dlon, promise))
    stock: Stock = {}
    for s, w in zip(skus, weights, strict=True):
        expected = demand_units * w
        for loc in LOCATIONS:
            share = {K.DARK_STORE: 0.1, K.PLATFORM_FC: 0.3}.get(loc.kind, 0.4)
            if rng.random() < 0.75:
                stock[(s, loc.id)] = int(expected * share * rng.uniform(0.3, 2.2))
    return network, stock, out


# daily shipping capacity (parcels) of the own warehouses and DCs, for the capacity-aware MIP check
CAPACITY: dict[str, int] = {
    "WH-NJ": 400,
    "DC-ATL": 250,
    "WH-LA": 300,
    "DC-SEA": 200,
    "WH-DE": 400,
    "DC-PL": 200,
    "WH-SG": 200,
    "DC-SYD": 150,
    "WH-MX": 150,
}


def capacity_case(network: Network, seed: int) -> Network:
    """The network with daily capacities and a busy moment's load: some locations have room today, some are
    backed up by a day or more."""
    rng = random.Random(seed)
    locations = {k: replace(loc, capacity_per_day=CAPACITY.get(k)) for k, loc in network.locations.items()}
    load = {k: LocationLoad(rng.randint(0, 2 * cap), rng.randint(0, cap), rng.random()) for k, cap in CAPACITY.items()}
    return replace(network, locations=locations, load=load)


def _summary(plans: list[RoutePlan], n: int) -> tuple[float, float, float, int]:
    shipments = sum(p.shipments for p in plans)
    cost = sum(p.shipping_cost for p in plans)
    misses = sum(p.sla_misses for p in plans)
    unfilled = sum(q for p in plans for _, q in p.unfilled)
    return shipments / n, cost / n, misses / n, unfilled


def run_routing_bench(orders: int = 10_000, seed: int = 7, mip_sample: int = 500) -> dict[str, Any]:
    network, stock0, world = build_world(orders, seed)
    router = Router(network, RouterConfig(explain=False))

    stock = dict(stock0)
    t0 = time.perf_counter()
    plans = router.route_many(world, stock)
    route_s = time.perf_counter() - t0
    spo, cpo, mpo, unfilled = _summary(plans, len(world))
    methods: dict[str, int] = {}
    for p in plans:
        methods[p.method] = methods.get(p.method, 0) + 1

    stock = dict(stock0)
    base = [baseline_route(network, o, stock) for o in world]
    b_spo, b_cpo, b_mpo, b_unfilled = _summary(base, len(world))

    # heuristic vs exact MIP, order by order against the same starting stock
    rng = random.Random(seed + 1)
    multi = [o for o in world if len({ln.sku for ln in o.lines}) > 1]
    sample = rng.sample(multi, min(mip_sample, len(multi)))
    heur_total = mip_total = 0.0
    worse = 0
    max_gap = 0.0
    t1 = time.perf_counter()
    for o in sample:
        prob = build_problem(network, o)
        h = objective(prob, heuristic(prob, stock0))
        m = objective(prob, solve_mip([prob], stock0).allocs[0])
        heur_total += h
        mip_total += m
        if h > m + 1e-6:
            worse += 1
            max_gap = max(max_gap, 100.0 * (h - m) / m)
    mip_s = time.perf_counter() - t1
    gap = 100.0 * (heur_total - mip_total) / mip_total if mip_total else 0.0

    # the same check with daily capacities and a busy load: a day to ship on Amazon, two elsewhere
    cap_net = capacity_case(network, seed + 2)
    cap_heur = cap_mip = 0.0
    cap_worse = cap_slipped = 0
    for o in sample[: max(1, len(sample) // 2)]:
        prob = build_problem(cap_net, replace(o, ship_within_days=1.0 if o.channel.startswith("amazon") else 2.0))
        cap_slipped += any(c.slip.days for c in prob.cands)
        h = objective(prob, heuristic(prob, stock0))
        m = objective(prob, solve_mip([prob], stock0).allocs[0])
        cap_heur += h
        cap_mip += m
        cap_worse += h > m + 1e-6
    cap_gap = 100.0 * (cap_heur - cap_mip) / cap_mip if cap_mip else 0.0

    return {
        "orders": len(world),
        "lines": sum(len(o.lines) for o in world),
        "locations": len(network.locations),
        "regions": len({loc.region for loc in network.locations.values()}),
        "route_s": round(route_s, 3),
        "orders_per_s": round(len(world) / route_s, 1) if route_s else None,
        "methods": methods,
        "shipments_per_order": round(spo, 4),
        "cost_per_order": round(cpo, 4),
        "sla_misses_per_order": round(mpo, 4),
        "unfilled_units": unfilled,
        "baseline_shipments_per_order": round(b_spo, 4),
        "baseline_cost_per_order": round(b_cpo, 4),
        "baseline_sla_misses_per_order": round(b_mpo, 4),
        "baseline_unfilled_units": b_unfilled,
        "mip_sample_orders": len(sample),
        "mip_sample_gap_pct": round(gap, 4),
        "mip_sample_worse_orders": worse,
        "mip_sample_max_order_gap_pct": round(max_gap, 4),
        "mip_sample_s": round(mip_s, 3),
        "capacity_mip_sample_orders": max(1, len(sample) // 2) if sample else 0,
        "capacity_mip_sample_slipped_orders": cap_slipped,
        "capacity_mip_sample_gap_pct": round(cap_gap, 4),
        "capacity_mip_sample_worse_orders": cap_worse,
        "seed": seed,
    }
