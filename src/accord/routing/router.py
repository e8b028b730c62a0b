"""The router: fast path, heuristic or MIP per order; batch re-optimisation; re-routing; explanations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from accord.domain.errors import InvalidInput
from accord.routing.model import (
    Allocation,
    LineExplanation,
    LocationLoad,
    Network,
    RouteLine,
    RouteOrder,
    RoutePlan,
    Stock,
)
from accord.routing.solver import (
    Alloc,
    Cand,
    Problem,
    build_problem,
    fast_path,
    heuristic,
    objective,
    search,
    solve_mip,
)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """How multi-line orders are solved (single-line orders take the fast path when one location has it all).

    The bounded branch-and-bound runs first; when it proves its answer optimal (it explored every set of up
    to max-shipments locations within ``eval_budget``) that answer stands — on small orders this is the same
    optimum the MIP finds, at a fraction of the cost. Otherwise orders with lines × eligible locations ≤
    ``mip_max_cells`` go to the exact MIP (HiGHS) and larger ones keep the greedy/local-search answer.
    """

    mip_max_cells: int = 60
    enum_max_size: int = 3
    eval_budget: int = 400
    mip_time_limit_s: float = 10.0
    batch_mip_max_vars: int = 20_000
    explain: bool = True


@dataclass(frozen=True, slots=True)
class BatchResult:
    plans: dict[str, RoutePlan]
    changed: tuple[str, ...]  # orders whose locations differ from the plan they had
    objective_before: float | None
    objective_after: float
    method: str


def _apply(stock: Stock, alloc: Alloc, sign: int) -> None:
    for key, q in alloc.items():
        stock[key] = stock.get(key, 0) + sign * q


def _plan_alloc(plan: RoutePlan) -> Alloc:
    alloc: Alloc = {}
    for a in plan.allocations:
        alloc[(a.sku, a.location)] = alloc.get((a.sku, a.location), 0) + a.qty
    return alloc


class Router:
    def __init__(self, network: Network, config: RouterConfig | None = None) -> None:
        self.network = network
        self.config = config or RouterConfig()
        # capacity-limited locations' load; ``route`` with ``commit`` adds the parcels it opens (route_many)
        self.load: dict[str, LocationLoad] = dict(network.load)
        self._capped = frozenset(k for k, loc in network.locations.items() if loc.capacity_per_day is not None)

    # ── single orders ──────────────────────────────────────────────────────
    def route(self, order: RouteOrder, stock: Stock, *, commit: bool = True, method: str = "auto") -> RoutePlan:
        """Route one order against ``stock`` (sku, location) → units; with ``commit`` the units are taken (and the
        parcels count in the load of capacity-limited locations)."""
        p = build_problem(self.network, order, load=self.load)
        alloc, used_method = self._solve(p, stock, method)
        if commit:
            _apply(stock, alloc, -1)
            self._take_capacity(order, alloc)
            return self._plan(p, alloc, used_method, stock_after=stock)
        return self._plan(p, alloc, used_method, stock_before=stock)

    def _take_capacity(self, order: RouteOrder, alloc: Alloc) -> None:
        if not self._capped:
            return
        used = {loc for (_, loc), q in alloc.items() if q > 0}
        for loc in (used ^ set(order.open_at)) & self._capped:  # a parcel opened here, or moved away
            cur = self.load.get(loc, LocationLoad())
            self.load[loc] = replace(cur, open_parcels=max(0, cur.open_parcels + (1 if loc in used else -1)))

    def _solve(self, p: Problem, stock: Stock, method: str) -> tuple[Alloc, str]:
        if method not in ("auto", "fast-path", "heuristic", "mip"):
            raise InvalidInput(f"unknown routing method {method!r}")
        cfg = self.config
        if method in ("auto", "fast-path") and len(p.demand) == 1:
            alloc = fast_path(p, stock)
            if alloc is not None:
                return alloc, "fast-path"
        if method == "mip":
            return solve_mip([p], stock, time_limit_s=cfg.mip_time_limit_s).allocs[0], "mip"
        alloc, proven = search(p, stock, enum_max_size=cfg.enum_max_size, eval_budget=cfg.eval_budget)
        if method == "heuristic" or proven:
            return alloc, "heuristic" if not proven else "branch-and-bound"
        if len(p.demand) * len(p.cands) <= cfg.mip_max_cells:
            return solve_mip([p], stock, time_limit_s=cfg.mip_time_limit_s).allocs[0], "mip"
        return alloc, "heuristic"

    def route_many(self, orders: Iterable[RouteOrder], stock: Stock) -> list[RoutePlan]:
        """Route orders one after another, each taking its units from ``stock``."""
        return [self.route(o, stock) for o in orders]

    # ── batch re-optimisation ──────────────────────────────────────────────
    def reoptimise(
        self,
        orders: Sequence[RouteOrder],
        stock: Stock,
        current: Mapping[str, RoutePlan] | None = None,
    ) -> BatchResult:
        """Re-plan a set of routed but unreleased orders together against shared stock.

        ``stock`` is what is free *besides* the units the current plans hold; those are given back first. The
        new plans' units are taken from ``stock``. Small batches are solved exactly as one MIP; larger ones
        by routing the most constrained orders first, then a rip-up-and-reroute pass per order.
        """
        ids = [o.id for o in orders]
        if len(set(ids)) != len(ids):
            raise InvalidInput("an order appears twice in the batch")
        current = {k: v for k, v in (current or {}).items() if k in set(ids)}
        for plan in current.values():
            _apply(stock, _plan_alloc(plan), +1)
        problems = [build_problem(self.network, o, load=self.load) for o in orders]  # the load as it is now
        before: float | None = None
        if current and all(o.id in current for o in orders):
            before = sum(objective(p, _plan_alloc(current[p.order.id])) for p in problems)
        n_vars = sum(len(p.cands) * (len(p.demand) + 1) for p in problems)
        allocs: list[Alloc]
        if n_vars <= self.config.batch_mip_max_vars:
            allocs = solve_mip(problems, stock, time_limit_s=self.config.mip_time_limit_s).allocs
            method = "batch-mip"
        else:
            allocs = self._batch_heuristic(problems, stock)
            method = "batch-heuristic"
        plans: dict[str, RoutePlan] = {}
        for alloc in allocs:
            _apply(stock, alloc, -1)
        for p, alloc in zip(problems, allocs, strict=True):
            plans[p.order.id] = self._plan(p, alloc, method, stock_after=stock)
        after = sum(objective(p, a) for p, a in zip(problems, allocs, strict=True))
        if before is not None and after > before + 1e-6:
            # never make a batch worse than what it had: keep the current plans
            for p, alloc in zip(problems, allocs, strict=True):
                _apply(stock, alloc, +1)
                _apply(stock, _plan_alloc(current[p.order.id]), -1)
            return BatchResult(dict(current), (), before, before, method + "-kept")
        changed = tuple(o.id for o in orders if o.id not in current or current[o.id].locations != plans[o.id].locations)
        return BatchResult(plans, changed, before, after, method)

    def _batch_heuristic(self, problems: list[Problem], stock: Stock) -> list[Alloc]:
        work = dict(stock)
        order = sorted(range(len(problems)), key=lambda i: (problems[i].order.promise_days, problems[i].order.id))
        allocs: list[Alloc] = [{} for _ in problems]
        for i in order:
            allocs[i] = heuristic(problems[i], work, enum_max_size=self.config.enum_max_size)
            _apply(work, allocs[i], -1)
        for i in order:  # rip up each order and route it again against what the others left
            _apply(work, allocs[i], +1)
            alt = heuristic(problems[i], work, enum_max_size=self.config.enum_max_size)
            if objective(problems[i], alt) < objective(problems[i], allocs[i]) - 1e-9:
                allocs[i] = alt
            _apply(work, allocs[i], -1)
        return allocs

    # ── re-routing ─────────────────────────────────────────────────────────
    def reroute(self, order: RouteOrder, plan: RoutePlan, failed_location: str, stock: Stock) -> RoutePlan:
        """``failed_location`` cannot ship its part of ``plan``: route those units elsewhere.

        The failed units are not given back to ``stock`` (the location could not ship them). Parts already
        allocated elsewhere stay; locations already shipping for the order take extra units at no extra
        shipment cost. The new units are taken from ``stock``.
        """
        if plan.order_id != order.id:
            raise InvalidInput(f"plan is for order {plan.order_id}, not {order.id}")
        moved = [a for a in plan.allocations if a.location == failed_location]
        if not moved:
            raise InvalidInput(f"order {order.id} has nothing allocated at {failed_location}")
        kept = [a for a in plan.allocations if a.location != failed_location]
        kept_locs = {a.location for a in kept}
        lines: dict[str, int] = {}
        for a in moved:
            lines[a.line_id] = lines.get(a.line_id, 0) + a.qty
        by_id = {ln.line_id: ln for ln in order.lines}
        sub = replace(order, lines=tuple(RouteLine(lid, by_id[lid].sku, q) for lid, q in lines.items()))
        rules = self.network.check_order(order)
        room = max(0, rules.max_shipments - len(kept_locs))
        p = build_problem(
            self.network,
            sub,
            exclude={failed_location: "failed to ship; excluded from re-routing"},
            free_locations=kept_locs,
            max_shipments=len(kept_locs) + room if kept_locs else max(1, room),
            load=self.load,
        )
        alloc, _ = self._solve(p, stock, "auto")
        _apply(stock, alloc, -1)
        new = self._plan(p, alloc, f"reroute:{failed_location}", stock_after=stock)
        full = build_problem(self.network, order, exclude={failed_location: "failed to ship"}, load=self.load)
        merged: Alloc = _plan_alloc(RoutePlan(order.id, order.channel, tuple(kept), (), 0, 0.0, 0, 0.0, ""))
        for key, q in alloc.items():
            merged[key] = merged.get(key, 0) + q
        allocations = tuple(kept) + new.allocations
        return self._summarise(full, allocations, merged, f"reroute:{failed_location}", new.explanation)

    # ── plans and explanations ─────────────────────────────────────────────
    def _plan(
        self,
        p: Problem,
        alloc: Alloc,
        method: str,
        *,
        stock_after: Stock | None = None,
        stock_before: Stock | None = None,
    ) -> RoutePlan:
        allocations = _split_to_lines(p.order.lines, alloc)
        explanation: tuple[LineExplanation, ...] = ()
        if self.config.explain:
            explanation = _explain(p, alloc, allocations, stock_after=stock_after, stock_before=stock_before)
        return self._summarise(p, allocations, alloc, method, explanation)

    def _summarise(
        self,
        p: Problem,
        allocations: tuple[Allocation, ...],
        alloc: Alloc,
        method: str,
        explanation: tuple[LineExplanation, ...],
    ) -> RoutePlan:
        loc_units: dict[str, int] = {}
        for (_, loc), q in alloc.items():
            if q > 0:
                loc_units[loc] = loc_units.get(loc, 0) + q
        w = self.network.weights
        cost = 0.0
        misses = 0
        score = 0.0
        for loc, units in loc_units.items():
            c = p.by_loc.get(loc)
            if c is None:  # a kept allocation at a location the sub-problem did not consider
                continue
            cost += c.ship_cost + c.unit_cost * units
            misses += c.late
            score += (
                w.shipment + w.cost * (c.ship_cost + c.unit_cost * units) + w.sla_miss * c.late + w.priority * c.rank
            )
            score += w.capacity_wait * c.slip.days
        filled: dict[str, int] = {}
        for a in allocations:
            filled[a.line_id] = filled.get(a.line_id, 0) + a.qty
        unfilled = tuple(
            (ln.line_id, ln.qty - filled.get(ln.line_id, 0))
            for ln in p.order.lines
            if ln.qty > filled.get(ln.line_id, 0)
        )
        score += w.unfilled_unit * sum(q for _, q in unfilled)
        return RoutePlan(
            p.order.id,
            p.order.channel,
            allocations,
            unfilled,
            len(loc_units),
            round(cost, 4),
            misses,
            round(score, 4),
            method,
            explanation,
        )


def _split_to_lines(lines: Sequence[RouteLine], alloc: Alloc) -> tuple[Allocation, ...]:
    """Hand each SKU's units to its lines in order, preferring the location with the most units."""
    pools: dict[str, list[str]] = {}
    left: dict[tuple[str, str], int] = {}
    for (sku, loc), q in sorted(alloc.items(), key=lambda kv: (-kv[1], kv[0][1])):
        if q > 0:
            pools.setdefault(sku, []).append(loc)
            left[(sku, loc)] = q
    out: list[Allocation] = []
    for ln in lines:
        need = ln.qty
        for loc in pools.get(ln.sku, []):
            if need == 0:
                break
            take = min(need, left[(ln.sku, loc)])
            if take > 0:
                out.append(Allocation(ln.line_id, ln.sku, loc, take))
                left[(ln.sku, loc)] -= take
                need -= take
    return tuple(out)


def _explain(
    p: Problem,
    alloc: Alloc,
    allocations: tuple[Allocation, ...],
    *,
    stock_after: Stock | None,
    stock_before: Stock | None,
) -> tuple[LineExplanation, ...]:
    used = {loc for (_, loc), q in alloc.items() if q > 0}
    out: list[LineExplanation] = []
    for ln in p.order.lines:
        mine = [(a.location, a.qty) for a in allocations if a.line_id == ln.line_id]
        chosen_locs = {loc for loc, _ in mine}
        if mine:
            parts = []
            for loc, _ in mine:
                c = p.by_loc[loc]
                sharing = sorted({a.line_id for a in allocations if a.location == loc and a.line_id != ln.line_id})
                together = f", ships with line(s) {', '.join(sharing)}" if sharing else ""
                sla = "on time" if not c.late else "LATE"
                slipped = f", {_capacity_note(c)}" if c.slip.days else ""
                parts.append(
                    f"{loc}: priority {c.rank + 1}, lead {c.lead_days:g} d vs promise {p.order.promise_days:g} d "
                    f"({sla}), parcel cost {c.ship_cost:.2f}{together}{slipped}"
                )
            why = "lowest total of SLA misses, shipments and cost — " + "; ".join(parts)
        else:
            why = "no eligible location has stock"
        passed_over: list[str] = []
        chosen_score = min((p.by_loc[loc].fixed + p.by_loc[loc].per_unit * q for loc, q in mine), default=None)
        rejected: list[tuple[str, str]] = []
        for loc, reason in p.rejected.items():
            rejected.append((loc, reason))
        for c in p.cands:
            if c.loc in chosen_locs:
                continue
            if stock_before is not None:
                have = stock_before.get((ln.sku, c.loc), 0)
            else:
                have = (stock_after or {}).get((ln.sku, c.loc), 0) + alloc.get((ln.sku, c.loc), 0)
            if have <= 0:
                rejected.append((c.loc, f"no stock of {ln.sku}"))
                continue
            notes: list[str] = []
            if c.slip.days:
                notes.append(_capacity_note(c))
                free_score = c.fixed - c.capacity_cost + c.per_unit * ln.qty  # as if it had room
                if have >= ln.qty and (chosen_score is None or free_score <= chosen_score + 1e-9):
                    passed_over.append(c.loc)  # it would have won but for its capacity
            if have < ln.qty:
                notes.append(f"only {have} of {ln.qty} in stock")
            if c.late:
                notes.append(f"would miss SLA ({_late_reason(p, c)})")
            if c.loc in used:
                notes.append("already ships part of this order, but dearer per unit or short of stock")
            else:
                if len(used) >= p.max_shipments:
                    notes.append(f"another parcel would exceed the {p.max_shipments - 1} split(s) allowed")
                notes.append(
                    f"a parcel here scores {c.fixed + c.per_unit * ln.qty:.2f} (rank {c.rank + 1}, "
                    f"cost {c.ship_cost:.2f}) — more than the chosen plan"
                )
            rejected.append((c.loc, "; ".join(notes)))
        if passed_over:
            why += f"; passed over for capacity: {', '.join(passed_over)}"
        out.append(LineExplanation(ln.line_id, ln.sku, ln.qty, tuple(mine), why, tuple(rejected), tuple(passed_over)))
    return tuple(out)


def _capacity_note(c: Cand) -> str:
    s = c.slip
    return (
        f"at capacity ({c.capacity_per_day}/day: {s.ahead} parcel(s) waiting, {s.left_today} left today) — "
        f"a parcel here slips {s.days} d and leaves in ~{s.leaves_in_days:.1f} d"
    )


def _late_reason(p: Problem, c: Cand) -> str:
    o = p.order
    if c.lead_days > o.promise_days:
        return f"lead {c.lead_days:g} d > promise {o.promise_days:g} d"
    return f"leaves in ~{c.slip.leaves_in_days:.1f} d, after the ship-by in {o.ship_within_days or 0.0:.1f} d"


# ── baseline ─────────────────────────────────────────────────────────────────


def baseline_route(network: Network, order: RouteOrder, stock: Stock) -> RoutePlan:
    """The naive rule: each line from the first eligible location in priority order that has stock."""
    p = build_problem(network, order)
    alloc: Alloc = {}
    for ln in order.lines:
        need = ln.qty
        for c in p.cands:
            have = stock.get((ln.sku, c.loc), 0)
            take = min(need, have)
            if take > 0:
                alloc[(ln.sku, c.loc)] = alloc.get((ln.sku, c.loc), 0) + take
                stock[(ln.sku, c.loc)] = have - take
                need -= take
            if need == 0:
                break
    router = Router(network, RouterConfig(explain=False))
    return router._plan(p, alloc, "baseline")
