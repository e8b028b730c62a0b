"""The routing problem for one order and the three ways to solve it: fast path, bounded heuristic, exact MIP.

Per order the problem is: pick a set of locations S (|S| ≤ max shipments) and units x[sku, l] so that
demand is met, minimising Σ_{l∈S} f_l + Σ c_l · x + W · unfilled, where the fixed cost of a shipment is
``f_l = w.shipment + w.cost · shipment cost + w.sla_miss · late_l + w.priority · rank_l + w.capacity_wait · slip_l``
and ``c_l`` is the weighted per-unit cost. Stock is shared by the lines of one order (and, in a batch, by all orders).

A location with a daily capacity makes a parcel slip by whole days once its open load passes today's capacity left
(:func:`accord.routing.model.capacity_slip`): the slip adds to the lead time, a slipped parcel that would leave
after the order's ship-by is late too, and each day of slip costs ``capacity_wait`` (all else equal, the location
that ships sooner wins). Both are part of ``f_l``, so the fast path, the heuristic and the MIP see capacity the same
way; a full location is dearer, never forbidden (every location full still routes the order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp  # type: ignore[import-untyped,unused-ignore]
from scipy.sparse import coo_array  # type: ignore[import-untyped,unused-ignore]

from accord.domain.availability import LocationKind
from accord.domain.errors import InvalidConfiguration
from accord.routing.model import (
    NO_SLIP,
    ChannelRules,
    LocationLoad,
    Network,
    RouteOrder,
    Slip,
    Stock,
    capacity_slip,
    haversine_km,
)

Alloc = dict[tuple[str, str], int]  # (sku, location) → units


@dataclass(slots=True)
class Cand:
    """An eligible location for one order, with its costs to that order's destination."""

    loc: str
    rank: int
    km: float
    lead_days: float
    late: bool
    ship_cost: float  # money per shipment
    unit_cost: float  # money per unit
    fixed: float  # weighted objective of opening a shipment here
    per_unit: float  # weighted objective per unit
    slip: Slip = NO_SLIP  # capacity: whole days a parcel here waits beyond handling
    capacity_per_day: int | None = None
    capacity_cost: float = 0.0  # the part of ``fixed`` the capacity adds (its wait, and the SLA miss it causes)


@dataclass(slots=True)
class Problem:
    order: RouteOrder
    rules: ChannelRules
    cands: list[Cand]  # eligible, in priority order
    rejected: dict[str, str]  # location → why it is not eligible at all
    demand: dict[str, int]  # sku → units (lines of the same SKU merged)
    max_shipments: int
    unfilled_weight: float
    by_loc: dict[str, Cand] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_loc = {c.loc: c for c in self.cands}


def build_problem(
    network: Network,
    order: RouteOrder,
    *,
    exclude: Mapping[str, str] | None = None,
    free_locations: Iterable[str] = (),
    max_shipments: int | None = None,
    load: Mapping[str, LocationLoad] | None = None,
) -> Problem:
    """Eligibility and costs. ``exclude`` maps location → reason (e.g. failed to ship); ``free_locations``
    already ship for this order, so another parcel's fixed cost there is waived (re-routing). ``load``: the
    capacity-limited locations' load (default: the network's)."""
    rules = network.check_order(order)
    loads = network.load if load is None else load
    counted = set(order.open_at)
    w = network.weights
    ship = network.shipping
    excluded = exclude or {}
    free = set(free_locations)
    rejected: dict[str, str] = {}
    eligible = set(rules.locations)
    for loc_id in network.locations:
        if loc_id not in eligible:
            rejected[loc_id] = f"not a fulfilling location of channel {order.channel}"
    cands: list[Cand] = []
    for rank, loc_id in enumerate(rules.locations):
        loc = network.locations.get(loc_id)
        if loc is None:
            raise InvalidConfiguration(f"channel {order.channel} lists unknown location {loc_id}")
        if loc_id in excluded:
            rejected[loc_id] = excluded[loc_id]
            continue
        km = haversine_km(loc.lat, loc.lon, order.lat, order.lon)
        if loc.kind is LocationKind.PLATFORM_FC and loc.owner_channel != order.channel:
            rejected[loc_id] = f"platform-held stock of {loc.owner_channel}; sellable only on that channel"
            continue
        if loc.kind is LocationKind.DARK_STORE:
            if not rules.quick_commerce:
                rejected[loc_id] = f"dark store; {order.channel} is not a quick-commerce channel"
                continue
            radius = loc.radius_km if loc.radius_km is not None else rules.dark_store_radius_km
            if km > radius:
                rejected[loc_id] = f"dark store {km:.1f} km away, outside its {radius:g} km radius"
                continue
        lead = ship.lead_days(loc, order, km)
        late_anyway = lead > order.promise_days
        slip = NO_SLIP
        capacity_cost = 0.0
        if loc.capacity_per_day is not None:
            slip = capacity_slip(loc.capacity_per_day, loads.get(loc_id), counted=loc_id in counted)
        late = late_anyway
        if slip.days:
            lead += slip.days
            late = lead > order.promise_days or (
                order.ship_within_days is not None and slip.leaves_in_days > order.ship_within_days
            )
            capacity_cost = w.capacity_wait * slip.days + (w.sla_miss if late and not late_anyway else 0.0)
        ship_cost = ship.shipment_cost(loc, order, km)
        unit_cost = ship.unit_cost_at(km)
        fixed = w.shipment + w.cost * ship_cost + (w.sla_miss if late else 0.0) + w.priority * rank
        fixed += w.capacity_wait * slip.days
        if loc_id in free:
            fixed = 0.0
        cands.append(
            Cand(
                loc_id,
                rank,
                km,
                lead,
                late,
                ship_cost,
                unit_cost,
                fixed,
                w.cost * unit_cost,
                slip,
                loc.capacity_per_day,
                capacity_cost,
            )
        )
    demand: dict[str, int] = {}
    for ln in order.lines:
        demand[ln.sku] = demand.get(ln.sku, 0) + ln.qty
    limit = rules.max_shipments if max_shipments is None else max_shipments
    return Problem(order, rules, cands, rejected, demand, max(1, limit), w.unfilled_unit)


def objective(p: Problem, alloc: Alloc) -> float:
    used = {loc for (_, loc), q in alloc.items() if q > 0}
    total = sum(p.by_loc[loc].fixed for loc in used)
    total += sum(p.by_loc[loc].per_unit * q for (_, loc), q in alloc.items())
    filled: dict[str, int] = {}
    for (sku, _), q in alloc.items():
        filled[sku] = filled.get(sku, 0) + q
    total += p.unfilled_weight * sum(d - filled.get(s, 0) for s, d in p.demand.items())
    return total


# ── fast path ────────────────────────────────────────────────────────────────


def fast_path(p: Problem, stock: Stock) -> Alloc | None:
    """One SKU: the cheapest single location holding all of it, or None when the line must split."""
    ((sku, qty),) = p.demand.items()
    best: Cand | None = None
    best_score = 0.0
    for c in p.cands:
        if stock.get((sku, c.loc), 0) >= qty:
            score = c.fixed + c.per_unit * qty
            if best is None or score < best_score:
                best, best_score = c, score
    return None if best is None else {(sku, best.loc): qty}


# ── heuristic ────────────────────────────────────────────────────────────────


def _assign(p: Problem, subset: Sequence[Cand], stock: Stock) -> Alloc:
    """Best units for a fixed set of open locations: per SKU, cheapest per-unit first (exact for linear costs)."""
    alloc: Alloc = {}
    order = sorted(subset, key=lambda c: (c.per_unit, c.rank))
    for sku, need in p.demand.items():
        for c in order:
            if need == 0:
                break
            take = min(need, stock.get((sku, c.loc), 0))
            if take > 0:
                alloc[(sku, c.loc)] = take
                need -= take
    return alloc


def _covers(p: Problem, subset: Sequence[Cand], stock: Stock) -> bool:
    return all(sum(stock.get((sku, c.loc), 0) for c in subset) >= d for sku, d in p.demand.items())


def heuristic(p: Problem, stock: Stock, *, enum_max_size: int = 3, eval_budget: int = 400) -> Alloc:
    """The bounded heuristic's allocation (see :func:`search`)."""
    return search(p, stock, enum_max_size=enum_max_size, eval_budget=eval_budget)[0]


def search(p: Problem, stock: Stock, *, enum_max_size: int = 3, eval_budget: int = 400) -> tuple[Alloc, bool]:
    """Bounded branch-and-bound over small location sets, then greedy cover + local search.

    Sets of up to ``enum_max_size`` locations are explored cheapest-fixed-cost first and pruned by a valid
    lower bound (fixed costs so far + cheapest per-unit cost × demand); for a fixed set the best units are
    exact (per SKU, cheapest per-unit first). At most ``eval_budget`` sets are evaluated. Returns the
    allocation and whether it is proven optimal (every set of up to max-shipments locations explored or
    pruned). When not, a greedy cover with drop/swap local search (at most 20 rounds) may improve it.
    """
    useful = [c for c in p.cands if any(stock.get((s, c.loc), 0) > 0 for s in p.demand)]
    if not useful:
        return {}, True
    useful.sort(key=lambda c: (c.fixed, c.rank))
    best_alloc: Alloc = {}
    best = objective(p, best_alloc)
    evals = 0
    max_size = min(enum_max_size, p.max_shipments, len(useful))
    exhausted = False
    min_unit = min(c.per_unit for c in useful) * sum(p.demand.values())

    def dfs(start: int, chosen: list[Cand], fsum: float) -> None:
        nonlocal best, best_alloc, evals, exhausted
        for i in range(start, len(useful)):
            c = useful[i]
            if fsum + c.fixed + min_unit >= best:
                return  # sorted by fixed cost: every later set is dearer still
            if evals >= eval_budget:
                exhausted = True
                return
            chosen.append(c)
            evals += 1
            alloc = _assign(p, chosen, stock)
            val = objective(p, alloc)
            if val < best - 1e-9:
                best, best_alloc = val, alloc
            if len(chosen) < max_size:
                dfs(i + 1, chosen, fsum + c.fixed)
            chosen.pop()

    dfs(0, [], 0.0)
    # every set of up to max_shipments locations was explored or pruned by a valid bound: optimal
    proven = not exhausted and max_size == min(p.max_shipments, len(useful))
    if not proven:
        alloc = _greedy_local_search(p, stock, useful)
        val = objective(p, alloc)
        if val < best - 1e-9:
            best, best_alloc = val, alloc
    return best_alloc, proven


def _greedy_local_search(p: Problem, stock: Stock, useful: list[Cand], max_rounds: int = 20) -> Alloc:
    remaining = dict(p.demand)
    chosen: list[Cand] = []
    while any(remaining.values()) and len(chosen) < p.max_shipments:
        pick: Cand | None = None
        pick_ratio = 0.0
        for c in useful:
            if c in chosen:
                continue
            units = sum(min(n, stock.get((s, c.loc), 0)) for s, n in remaining.items())
            if units == 0:
                continue
            ratio = (c.fixed + c.per_unit * units) / units
            if pick is None or ratio < pick_ratio:
                pick, pick_ratio = c, ratio
        if pick is None:
            break
        chosen.append(pick)
        for s, n in remaining.items():
            remaining[s] = n - min(n, stock.get((s, pick.loc), 0))
    best_alloc = _assign(p, chosen, stock)
    best = objective(p, best_alloc)
    for _ in range(max_rounds):
        improved = False
        # drop one location
        for c in list(chosen):
            trial = [x for x in chosen if x is not c]
            alloc = _assign(p, trial, stock)
            val = objective(p, alloc)
            if val < best - 1e-9:
                chosen, best, best_alloc, improved = trial, val, alloc, True
                break
        if improved:
            continue
        # swap one in for one out
        for c in list(chosen):
            for d in useful:
                if d in chosen:
                    continue
                trial = [d if x is c else x for x in chosen]
                alloc = _assign(p, trial, stock)
                val = objective(p, alloc)
                if val < best - 1e-9:
                    chosen, best, best_alloc, improved = trial, val, alloc, True
                    break
            if improved:
                break
        if not improved:
            break
    return best_alloc


# ── exact MIP ────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class MipResult:
    allocs: list[Alloc]  # one per problem
    objective: float
    optimal: bool
    status: str


def solve_mip(
    problems: Sequence[Problem],
    stock: Stock,
    *,
    time_limit_s: float = 10.0,
    rel_gap: float = 1e-9,
) -> MipResult:
    """Exact MIP (scipy.optimize.milp / HiGHS) over one or more orders sharing ``stock``.

    Variables: y[o,l] ∈ {0,1} (a shipment from l for order o), x[o,s,l] ∈ ℤ≥0 (units), u[o,s] ≥ 0 (unfilled).
    Constraints: Σ_l x + u = demand; x ≤ min(stock, demand) · y; Σ_l y ≤ max shipments; Σ_o x[o,s,l] ≤ stock.
    """
    cost: list[float] = []
    integral: list[int] = []
    ub: list[float] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    shared: dict[tuple[str, str], list[int]] = {}
    x_index: list[list[tuple[str, str, int]]] = []
    row = 0

    def var(c: float, upper: float, integer: bool) -> int:
        cost.append(c)
        ub.append(upper)
        integral.append(1 if integer else 0)
        return len(cost) - 1

    def constraint(terms: list[tuple[int, float]], low: float, high: float) -> None:
        nonlocal row
        for j, v in terms:
            rows.append(row)
            cols.append(j)
            vals.append(v)
        lo.append(low)
        hi.append(high)
        row += 1

    for p in problems:
        xs: list[tuple[str, str, int]] = []
        y_vars: list[int] = []
        y_of: dict[str, int] = {}
        for c in p.cands:
            if any(stock.get((s, c.loc), 0) > 0 for s in p.demand):
                y_of[c.loc] = var(c.fixed, 1.0, True)
                y_vars.append(y_of[c.loc])
        for sku, d in p.demand.items():
            terms: list[tuple[int, float]] = []
            for c in p.cands:
                have = stock.get((sku, c.loc), 0)
                if have <= 0 or c.loc not in y_of:
                    continue
                cap = float(min(have, d))
                j = var(c.per_unit, cap, True)
                xs.append((sku, c.loc, j))
                terms.append((j, 1.0))
                constraint([(j, 1.0), (y_of[c.loc], -cap)], -np.inf, 0.0)
                shared.setdefault((sku, c.loc), []).append(j)
            u = var(p.unfilled_weight, float(d), False)
            constraint([*terms, (u, 1.0)], float(d), float(d))
        if y_vars:
            constraint([(j, 1.0) for j in y_vars], -np.inf, float(p.max_shipments))
        x_index.append(xs)
    if len(problems) > 1:
        for key, js in shared.items():
            if len(js) > 1:
                constraint([(j, 1.0) for j in js], -np.inf, float(stock.get(key, 0)))
    n = len(cost)
    if n == 0:
        return MipResult([{} for _ in problems], 0.0, True, "empty")
    constraints: list[Any] = []
    if row:
        a = coo_array((np.array(vals), (np.array(rows), np.array(cols))), shape=(row, n)).tocsr()
        constraints.append(LinearConstraint(a, np.array(lo), np.array(hi)))
    res: Any = milp(
        c=np.array(cost),
        integrality=np.array(integral),
        bounds=Bounds(np.zeros(n), np.array(ub)),
        constraints=constraints,
        options={"time_limit": time_limit_s, "mip_rel_gap": rel_gap, "disp": False},
    )
    if res.x is None:
        raise RuntimeError(f"routing MIP found no solution: {res.message}")
    x = np.rint(res.x).astype(np.int64)
    allocs: list[Alloc] = []
    for xs in x_index:
        alloc: Alloc = {}
        for sku, loc, j in xs:
            if x[j] > 0:
                alloc[(sku, loc)] = int(x[j])
        allocs.append(alloc)
    return MipResult(allocs, float(res.fun), bool(res.status == 0), str(res.message))
