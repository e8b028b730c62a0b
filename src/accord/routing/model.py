"""Plain inputs and outputs of the router, so the storage layer can feed it without knowing how it works."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from accord.domain.availability import LocationKind
from accord.domain.errors import InvalidInput, NotFound

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True, slots=True)
class RouteLocation:
    id: str
    kind: LocationKind
    region: str
    lat: float
    lon: float
    owner_channel: str | None = None  # platform_fc: the only channel its stock may serve
    handling_days: float = 1.0  # pick/pack before the carrier collects
    radius_km: float | None = None  # dark_store: delivery radius (falls back to the channel's)
    capacity_per_day: int | None = None  # parcels it can ship per (local) day; None = unlimited


@dataclass(frozen=True, slots=True)
class LocationLoad:
    """What a location with a daily capacity has on its plate when an order is routed."""

    open_parcels: int = 0  # parcels routed here and not yet shipped
    shipped_today: int = 0  # parcels that left today (the location's local day)
    day_elapsed: float = 0.0  # share of the location's local day gone, 0 ≤ x < 1


@dataclass(frozen=True, slots=True)
class Slip:
    """When one more parcel at a location would leave, given its capacity and load.

    ``days``: whole days it slips beyond the location's handling time (0 = today's capacity still has room);
    ``leaves_in_days``: for a slipped parcel, days from now until it leaves — the start of its local day plus its
    place in that day's queue, picks spread evenly over the day.
    """

    days: int = 0
    leaves_in_days: float = 0.0
    ahead: int = 0  # parcels waiting before it
    left_today: int = 0  # today's capacity still free


NO_SLIP = Slip()


def capacity_slip(capacity_per_day: int | None, load: LocationLoad | None, *, counted: bool = False) -> Slip:
    """One more parcel at a location (``counted``: the order's parcel there is already in ``open_parcels``).

    It ships today while fewer parcels wait than today's capacity left; beyond that it slips by whole days,
    ``capacity_per_day`` parcels a day. Unlimited locations (``None``) never slip.
    """
    cap = capacity_per_day
    if cap is None:
        return NO_SLIP
    load = load or LocationLoad()
    ahead = max(0, load.open_parcels - (1 if counted else 0))
    left_today = max(0, cap - load.shipped_today)
    if ahead < left_today:
        return Slip(0, 0.0, ahead, left_today)
    over = ahead - left_today
    days = 1 + over // cap
    leaves = days - min(max(load.day_elapsed, 0.0), 1.0) + (over % cap + 1) / cap
    return Slip(days, leaves, ahead, left_today)


@dataclass(frozen=True, slots=True)
class ChannelRules:
    """Which locations may fulfil a channel, in priority order, and how far an order may be split."""

    channel: str
    locations: tuple[str, ...]  # eligible, highest priority first
    max_splits: int = 2  # extra shipments allowed beyond the first (0 = must ship in one parcel)
    quick_commerce: bool = False  # may use dark stores
    dark_store_radius_km: float = 10.0

    @property
    def max_shipments(self) -> int:
        return self.max_splits + 1


@dataclass(frozen=True, slots=True)
class RouteLine:
    line_id: str
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class RouteOrder:
    """An order to route. ``promise_days`` is the lead time (handling + transit) that still meets its SLA."""

    id: str
    channel: str
    lines: tuple[RouteLine, ...]
    region: str  # destination region, for zone tables
    lat: float
    lon: float
    promise_days: float = 3.0
    ship_within_days: float | None = None  # days from now to the ship-by (checked when capacity slips a parcel)
    open_at: tuple[str, ...] = ()  # locations whose open load already counts this order's parcel (re-routing)


@dataclass(frozen=True, slots=True)
class ShippingModel:
    """Cost and transit time of one shipment from a location to an order's destination.

    A zone table entry (location region, destination region) wins; otherwise distance decides:
    ``base_cost + cost_per_km × km`` and ``ceil(km / km_per_day)`` transit days. Each unit adds
    ``unit_cost + unit_cost_per_km × km``.
    """

    zone_cost: Mapping[tuple[str, str], float] = field(default_factory=dict)
    zone_days: Mapping[tuple[str, str], float] = field(default_factory=dict)
    base_cost: float = 5.0
    cost_per_km: float = 0.004
    unit_cost: float = 0.3
    unit_cost_per_km: float = 0.0005
    km_per_day: float = 800.0

    def shipment_cost(self, loc: RouteLocation, order: RouteOrder, km: float) -> float:
        zone = self.zone_cost.get((loc.region, order.region))
        return zone if zone is not None else self.base_cost + self.cost_per_km * km

    def unit_cost_at(self, km: float) -> float:
        return self.unit_cost + self.unit_cost_per_km * km

    def lead_days(self, loc: RouteLocation, order: RouteOrder, km: float) -> float:
        if loc.kind is LocationKind.DARK_STORE:
            return loc.handling_days  # courier, same day
        zone = self.zone_days.get((loc.region, order.region))
        transit = zone if zone is not None else float(math.ceil(km / self.km_per_day)) if km > 0 else 0.0
        return loc.handling_days + transit


@dataclass(frozen=True, slots=True)
class RoutingWeights:
    """Objective = sla_miss × late shipments + shipment × shipments + cost × money + priority × rank
    + capacity_wait × days parcels wait for capacity."""

    sla_miss: float = 50.0
    shipment: float = 8.0
    cost: float = 1.0
    priority: float = 0.05  # per rank step: breaks ties toward the channel's preferred locations
    capacity_wait: float = 1.0  # per day a parcel waits for a full location: all else equal, ship sooner
    unfilled_unit: float = 1000.0  # a unit nobody can ship


@dataclass(frozen=True, slots=True)
class Network:
    """Everything the router knows that is not the order or the stock."""

    locations: Mapping[str, RouteLocation]
    channels: Mapping[str, ChannelRules]
    shipping: ShippingModel = field(default_factory=ShippingModel)
    weights: RoutingWeights = field(default_factory=RoutingWeights)
    skus: frozenset[str] | None = None  # when given, unknown SKUs are an error
    load: Mapping[str, LocationLoad] = field(default_factory=dict)  # locations with a capacity: their load now

    def check_order(self, order: RouteOrder) -> ChannelRules:
        rules = self.channels.get(order.channel)
        if rules is None:
            raise NotFound("channel", order.channel)
        if not order.lines:
            raise InvalidInput(f"order {order.id} has no lines")
        seen: set[str] = set()
        for ln in order.lines:
            if not isinstance(ln.qty, int) or isinstance(ln.qty, bool) or ln.qty <= 0:
                raise InvalidInput(f"order {order.id} line {ln.line_id}: quantity must be positive, got {ln.qty!r}")
            if self.skus is not None and ln.sku not in self.skus:
                raise NotFound("SKU", ln.sku)
            if ln.line_id in seen:
                raise InvalidInput(f"order {order.id} repeats line id {ln.line_id}")
            seen.add(ln.line_id)
        return rules


Stock = dict[tuple[str, str], int]  # (sku, location) → units available to route


@dataclass(frozen=True, slots=True)
class Allocation:
    line_id: str
    sku: str
    location: str
    qty: int


@dataclass(frozen=True, slots=True)
class LineExplanation:
    line_id: str
    sku: str
    qty: int
    chosen: tuple[tuple[str, int], ...]  # (location, units)
    why: str
    rejected: tuple[tuple[str, str], ...]  # (location, reason)
    capacity_passed: tuple[str, ...] = ()  # had the stock and would have won but for their capacity

    def text(self) -> str:
        where = ", ".join(f"{q} from {loc}" for loc, q in self.chosen) or "nowhere (unfilled)"
        out = [f"line {self.line_id} ({self.qty} × {self.sku}): {where} — {self.why}"]
        out += [f"    {loc}: {reason}" for loc, reason in self.rejected]
        return "\n".join(out)


@dataclass(frozen=True, slots=True)
class RoutePlan:
    order_id: str
    channel: str
    allocations: tuple[Allocation, ...]
    unfilled: tuple[tuple[str, int], ...]  # (line_id, units) nobody could ship
    shipments: int
    shipping_cost: float
    sla_misses: int
    objective: float
    method: str  # fast-path | mip | heuristic | batch-mip | reroute:…
    explanation: tuple[LineExplanation, ...] = ()

    @property
    def locations(self) -> tuple[str, ...]:
        return tuple(sorted({a.location for a in self.allocations}))

    def explain(self) -> str:
        head = (
            f"order {self.order_id} on {self.channel}: {self.shipments} shipment(s) from "
            f"{', '.join(self.locations) or 'nowhere'}, cost {self.shipping_cost:.2f}, "
            f"{self.sla_misses} SLA miss(es), method {self.method}"
        )
        return "\n".join([head, *(e.text() for e in self.explanation)])
