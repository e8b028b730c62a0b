"""Simulated warehouses: what happens to an order after Accord has routed it.

Every ingested channel order becomes a lifecycle order (placed → reserved → routed, by the order service). From
there the simulator plays the warehouses, through the production use cases of :class:`OrderService`:

- each location holding part of an order ships it after a handling time drawn for its kind (dark stores in minutes,
  marketplace warehouses in hours, DCs and warehouses in up to a day), on the virtual clock, with a carrier and a
  tracking number (``OrderService.ship``: SHIP from committed, the shipment row and the ship confirmation queued
  for the channel, one transaction); a small share of hand-keyed tracking numbers is not valid;
- a location ships at most its pick capacity per local day (sized from the demand it normally serves): a surge
  backs parcels up into the next day's first wave, and those ship late; Accord is told each location's capacity
  (``OrderService.set_location_capacity``) and routes away from a full one when a parcel there would miss its SLA;
- now and then a location fails to pick (not found, damaged in picking): the order is re-routed away from it
  (``OrderService.reroute``), or cancelled when no other eligible location has the units;
- a parcel is delivered after a transit time that grows with the distance from its location's region to the
  channel's; the order is delivered (``OrderService.deliver``) when its last parcel is.

Every draw comes from a ``random.Random`` keyed by the seed and the order, so the same run gives the same parcels.
At the end, :func:`fulfilment_state` reads back what Accord recorded (orders, shipments, channel health against
Amazon's bars) for the metrics.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from accord.domain.availability import LocationKind
from accord.domain.errors import AccordError, InsufficientStock
from accord.domain.orders import CancelReason, SlaPolicy, is_valid_tracking
from accord.orders.service import OrderService, health_dict
from accord.sim.world import DAY_MIN, QUICK_CHANNELS, REGION_FALLBACK, UTC_OFFSET_H, SimWorld
from accord.store import orders_tables as ot
from accord.store.db import Database

MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = DAY_MIN * MIN_MS

# location kind -> handling time in minutes (uniform) from routing to the parcel leaving
HANDLING_MIN: dict[LocationKind, tuple[int, int]] = {
    LocationKind.DARK_STORE: (8, 35),
    LocationKind.PLATFORM_FC: (120, 720),
    LocationKind.REGIONAL_DC: (180, 1_260),
    LocationKind.WAREHOUSE: (240, 1_380),
    LocationKind.STORE: (60, 600),
}
# location kind -> share of picks that fail (not found / damaged in picking)
PICK_FAILURE: dict[LocationKind, float] = {
    LocationKind.DARK_STORE: 0.02,
    LocationKind.PLATFORM_FC: 0.002,
    LocationKind.REGIONAL_DC: 0.006,
    LocationKind.WAREHOUSE: 0.012,
    LocationKind.STORE: 0.03,
}
# location kind -> share of shipments whose tracking number was keyed by hand, wrongly
BAD_TRACKING: dict[LocationKind, float] = {
    LocationKind.DARK_STORE: 0.03,
    LocationKind.PLATFORM_FC: 0.0,
    LocationKind.REGIONAL_DC: 0.004,
    LocationKind.WAREHOUSE: 0.02,
    LocationKind.STORE: 0.05,
}
BAD_TRACKING_VALUES = ("N/A", "pending", "TBD", "see email")
CARRIERS: dict[str, tuple[str, ...]] = {
    "us": ("UPS", "USPS", "FedEx"),
    "ca": ("Canada Post", "UPS"),
    "eu": ("DHL", "DPD", "GLS"),
    "uk": ("Royal Mail", "DPD", "Evri"),
    "pl": ("InPost", "DPD"),
    "latam": ("Estafeta", "DHL"),
    "sea": ("Ninja Van", "J&T Express"),
    "anz": ("Australia Post", "StarTrack"),
}
# SLA: the handling time each channel gives the seller (hours), as its ship-by when the order has none
SLA_HANDLING_H: dict[str, int] = {"amazon": 24, "walmart": 24, "quick": 2}
DEFAULT_SLA_HANDLING_H = 48
FIRST_WAVE_LOCAL_H = 7  # parcels held back by capacity leave with the next local day's first wave
PICK_CAPACITY_FACTOR = 2.5  # daily pick capacity (extra shifts included), in multiples of an average day's parcels
MIN_PICK_CAPACITY = 30

SHIP, DELIVER = "ship", "deliver"


@dataclass
class FulfilmentTally:
    admitted: int = 0  # routed lifecycle orders handed to the warehouses
    untracked: int = 0  # ingested orders with no lifecycle order (nothing to ship)
    shipments: int = 0
    capacity_deferrals: int = 0  # parcels held back to the next day's first wave
    pick_failures: int = 0
    reroutes: int = 0
    cancelled_after_pick_failure: int = 0
    delivered: int = 0
    delivery_hours: list[float] = field(default_factory=list)
    confirmations_sent: int = 0
    cancellations_sent: int = 0


@dataclass(order=True)
class _Task:
    at_ms: int
    seq: int
    kind: str = field(compare=False)
    order_id: str = field(compare=False)
    location: str = field(compare=False)


def sla_policy_for(channel: str, dialect: str) -> SlaPolicy:
    if channel in QUICK_CHANNELS:
        return SlaPolicy(handling_hours=SLA_HANDLING_H["quick"], at_risk_hours=1)
    return SlaPolicy(handling_hours=SLA_HANDLING_H.get(dialect, DEFAULT_SLA_HANDLING_H), at_risk_hours=6)


class Warehouses:
    """The simulated locations' pick, pack and ship, and the carriers' deliveries, on the virtual clock."""

    def __init__(self, world: SimWorld, service: OrderService, seed: int, start_ms: int) -> None:
        self.world = world
        self.service = service
        self.seed = seed
        self.start_ms = start_ms
        self.tally = FulfilmentTally()
        self.loc = {loc.id: loc for loc in world.locations}
        self.channel_region = dict(world.channel_region)
        self.capacity = pick_capacity(world)
        self.shipped_on: dict[tuple[str, int], int] = {}  # (location, local day) -> parcels shipped
        self.tasks: list[_Task] = []
        self.scheduled: dict[str, set[str]] = {}  # order id -> locations with a ship task pending
        self.failed: set[tuple[str, str]] = set()  # (order, location) picks that failed once already
        self._seq = 0
        o, a = ot.orders, ot.order_allocations
        compile_ = service.db.compile  # prepared once: run for every admitted order and re-route
        self._q_order = compile_(
            sa.select(o.c.id, o.c.status).where(
                o.c.channel_id == sa.bindparam("ch"), o.c.channel_order_id == sa.bindparam("oid")
            )
        )
        self._q_allocs = compile_(
            sa.select(a.c.location_id)
            .where(a.c.order_id == sa.bindparam("oid"), a.c.qty_reserved > sa.literal_column("0"))
            .group_by(a.c.location_id)
            .order_by(a.c.location_id)
        )

    def configure(self) -> None:
        """The channels' handling times (their ship-by) and each location's daily pick capacity (the figure these
        warehouses ship by, so routing knows what the floor manager knows), set as a user would, before the first
        order."""
        for ch in self.world.channels:
            self.service.set_sla_policy(ch.id, sla_policy_for(ch.id, ch.dialect))
        for location, parcels_per_day in sorted(self.capacity.items()):
            self.service.set_location_capacity(location, parcels_per_day)

    # ------------------------------------------------------------------ scheduling

    def _push(self, at_ms: int, kind: str, order_id: str, location: str = "") -> None:
        self._seq += 1
        heapq.heappush(self.tasks, _Task(at_ms, self._seq, kind, order_id, location))

    def next_due_ms(self) -> int | None:
        return self.tasks[0].at_ms if self.tasks else None

    def _rng(self, *parts: object) -> random.Random:
        return random.Random(":".join(str(p) for p in (self.seed, *parts)))

    def admit(self, channel: str, channel_order_id: str, now_ms: int) -> None:
        """A channel order Accord reserved: find its lifecycle order and schedule each location's parcel."""
        with self.service.db.read() as tx:
            row = tx.one(self._q_order, (channel, channel_order_id))
        if row is None:
            self.tally.untracked += 1
            return
        order_id = str(row[0])
        self.tally.admitted += 1
        self._schedule_ships(order_id, now_ms)

    def _schedule_ships(self, order_id: str, now_ms: int) -> None:
        with self.service.db.read() as tx:
            locations = [str(r[0]) for r in tx.all(self._q_allocs, (order_id,))]
        pending = self.scheduled.setdefault(order_id, set())
        for location in locations:
            if location in pending:
                continue
            lo, hi = HANDLING_MIN.get(self.loc[location].kind, (240, 1_440))
            handling_ms = self._rng("handling", order_id, location).randint(lo * MIN_MS, hi * MIN_MS)
            pending.add(location)
            self._push(now_ms + handling_ms, SHIP, order_id, location)

    # ------------------------------------------------------------------ running

    def run_due(self, now_ms: int) -> bool:
        """Run every task due at or before ``now_ms``; True when stock moved in a way channels may see (a re-route
        or a cancellation releases and reserves; a shipment moves committed and on-hand together)."""
        changed = False
        while self.tasks and self.tasks[0].at_ms <= now_ms:
            task = heapq.heappop(self.tasks)
            if task.kind == SHIP:
                changed |= self._ship(task.order_id, task.location, now_ms)
            else:
                self._deliver(task.order_id, now_ms)
        return changed

    def _local_day(self, location: str, at_ms: int) -> int:
        offset = UTC_OFFSET_H.get(self.loc[location].region, 0) * HOUR_MS
        return (at_ms - self.start_ms + offset) // DAY_MS

    def _next_wave_ms(self, location: str, at_ms: int) -> int:
        offset = UTC_OFFSET_H.get(self.loc[location].region, 0) * HOUR_MS
        day = self._local_day(location, at_ms) + 1
        return self.start_ms + day * DAY_MS - offset + FIRST_WAVE_LOCAL_H * HOUR_MS

    def _ship(self, order_id: str, location: str, now_ms: int) -> bool:
        day = self._local_day(location, now_ms)
        cap = self.capacity.get(location)
        if cap is not None and self.shipped_on.get((location, day), 0) >= cap:
            self.tally.capacity_deferrals += 1
            self._push(self._next_wave_ms(location, now_ms) + self._seq % 60 * 1_000, SHIP, order_id, location)
            return False
        self.scheduled.get(order_id, set()).discard(location)
        kind = self.loc[location].kind
        rng = self._rng("pick", order_id, location)
        if (order_id, location) not in self.failed and rng.random() < PICK_FAILURE.get(kind, 0.0):
            self.failed.add((order_id, location))
            self.tally.pick_failures += 1
            return self._pick_failed(order_id, location, now_ms)
        carrier, tracking = self._label(order_id, location, rng)
        try:
            shown = self.service.ship_summary(order_id, location, carrier, tracking)
        except AccordError:  # cancelled meanwhile, or nothing left to ship there: nothing to do
            return False
        self.shipped_on[location, day] = self.shipped_on.get((location, day), 0) + 1
        self.tally.shipments += 1
        if shown.status == "shipped":
            region = self.channel_region.get(shown.channel, "")
            arrive = max(
                shipped_at + self._transit_ms(order_id, ship_from, region) for ship_from, shipped_at in shown.shipments
            )
            self._push(arrive, DELIVER, order_id)
        return False

    def _pick_failed(self, order_id: str, location: str, now_ms: int) -> bool:
        try:
            self.service.reroute(order_id, location)
        except InsufficientStock:
            try:
                self.service.cancel(order_id, CancelReason.SELLER)
            except AccordError:
                return False
            self.tally.cancelled_after_pick_failure += 1
            self.scheduled.pop(order_id, None)
            return True
        except AccordError:
            return False
        self.tally.reroutes += 1
        self._schedule_ships(order_id, now_ms)
        return True

    def _label(self, order_id: str, location: str, rng: random.Random) -> tuple[str, str]:
        loc = self.loc[location]
        if loc.kind is LocationKind.DARK_STORE:
            carrier = "Quick courier"
        elif loc.kind is LocationKind.PLATFORM_FC:
            carrier = "Amazon Logistics" if loc.owner_channel and loc.owner_channel.startswith("amazon") else "FedEx"
        else:
            options = CARRIERS.get(loc.region, ("DHL",))
            carrier = options[rng.randrange(len(options))]
        if rng.random() < BAD_TRACKING.get(loc.kind, 0.0):
            return carrier, BAD_TRACKING_VALUES[rng.randrange(len(BAD_TRACKING_VALUES))]
        digits = "".join(str(rng.randrange(10)) for _ in range(12))
        prefix = "".join(c for c in carrier.upper() if c.isalnum())[:3]
        return carrier, f"{prefix}{digits}"

    def _transit_ms(self, order_id: str, location: str, region: str) -> int:
        loc = self.loc[location]
        rng = self._rng("transit", order_id, location)
        if loc.kind is LocationKind.DARK_STORE:
            return rng.randint(20, 90) * MIN_MS
        if loc.region == region:
            days = rng.uniform(1.0, 3.0)
        elif location in REGION_FALLBACK.get(region, ()):
            days = rng.uniform(3.0, 6.0)  # a neighbour's hub: cross-border
        else:
            days = rng.uniform(5.0, 9.0)
        return int(days * DAY_MS)

    def _deliver(self, order_id: str, now_ms: int) -> None:
        try:
            shown = self.service.deliver_summary(order_id)
        except AccordError:  # cancelled or returned meanwhile
            return
        self.tally.delivered += 1
        self.tally.delivery_hours.append((now_ms - shown.placed_at_ms) / HOUR_MS)

    # ------------------------------------------------------------------ confirmations and cancellations

    async def send_back(self, worker: Any) -> None:
        """Ship confirmations (when the worker sends them) and cancellations, through the channels' connectors."""
        send_shipments = getattr(worker, "send_shipments", None)
        if send_shipments is not None:
            self.tally.confirmations_sent += int(await send_shipments())
        self.tally.cancellations_sent += int(await worker.send_cancellations())


def pick_capacity(world: SimWorld) -> dict[str, int]:
    """Daily parcels per location (platform warehouses are the marketplace's: unlimited), from the orders the
    channels it serves first normally bring, times :data:`PICK_CAPACITY_FACTOR`."""
    kinds = {loc.id: loc.kind for loc in world.locations}
    per_loc: dict[str, float] = dict.fromkeys(sorted(kinds), 0.0)  # a location first for no channel: the floor
    for ch in world.channels:
        first = next((loc for loc in ch.locations if kinds[loc] is not LocationKind.PLATFORM_FC), None)
        if first is None:
            continue
        per_day = sum(world.base_rate_per_min(ch.id, m) for m in range(0, 7 * DAY_MIN, 60)) * 60 / 7
        per_loc[first] = per_loc.get(first, 0.0) + per_day
    return {
        loc: max(MIN_PICK_CAPACITY, math.ceil(q * PICK_CAPACITY_FACTOR))
        for loc, q in sorted(per_loc.items())
        if kinds[loc] is not LocationKind.PLATFORM_FC
    }


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 4) if whole else 0.0


def _quantile(values: Iterable[float], q: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))], 4)


def fulfilment_state(db: Database, service: OrderService, tally: FulfilmentTally, now_ms: int) -> dict[str, Any]:
    """What Accord recorded by the end of the run: per channel, orders, parcels, split shipments, SLA hits and
    misses (ship-by against the last parcel), and the channel-health rates against Amazon's bars."""
    o, s = ot.orders, ot.shipments
    with db.engine.connect() as conn:
        orders = conn.execute(
            sa.select(o.c.id, o.c.channel_id, o.c.status, o.c.ship_by).order_by(o.c.channel_id, o.c.id)
        ).all()
        parcels = conn.execute(
            sa.select(s.c.order_id, s.c.shipped_at, s.c.carrier, s.c.tracking).order_by(s.c.order_id, s.c.id)
        ).all()
        conn.rollback()
    by_order: dict[str, list[tuple[int, str, str]]] = {}
    for order_id, shipped_at, carrier, tracking in parcels:
        by_order.setdefault(str(order_id), []).append((int(shipped_at), str(carrier), str(tracking)))
    channels: dict[str, dict[str, Any]] = {}
    for order_id, channel, status, ship_by in orders:
        c = channels.setdefault(
            str(channel),
            {"orders": 0, "shipped_orders": 0, "split_orders": 0, "shipments": 0, "valid_tracking": 0, "sla_hits": 0,
             "sla_misses": 0, "late_orders": 0, "open_breached": 0, "cancelled": 0},
        )  # fmt: skip
        c["orders"] += 1
        mine = by_order.get(str(order_id), [])
        if status == "cancelled":
            c["cancelled"] += 1
        if mine:
            c["shipped_orders"] += 1
            c["shipments"] += len(mine)
            c["split_orders"] += len(mine) > 1
            c["valid_tracking"] += sum(is_valid_tracking(carrier, tracking) for _at, carrier, tracking in mine)
            c["late_orders"] += any(at > int(ship_by) for at, _c, _t in mine)
        if status in ("shipped", "delivered", "returned", "refunded") and mine:
            if max(at for at, _c, _t in mine) <= int(ship_by):
                c["sla_hits"] += 1
            else:
                c["sla_misses"] += 1
        elif status in ("placed", "reserved", "routed", "partially_shipped") and now_ms > int(ship_by):
            c["open_breached"] += 1
    health = {h.channel: health_dict(h) for h in service.health()}
    return {"channels": channels, "health": health, "tally": tally}


def fulfilment_summary(state: dict[str, Any]) -> dict[str, Any]:
    """The run's fulfilment section, from :func:`fulfilment_state`."""
    channels: dict[str, dict[str, Any]] = state.get("channels", {})
    tally: FulfilmentTally = state.get("tally") or FulfilmentTally()

    def total(key: str) -> int:
        return sum(int(c[key]) for c in channels.values())

    shipped, shipments = total("shipped_orders"), total("shipments")
    hits, misses = total("sla_hits"), total("sla_misses")
    return {
        "lifecycle_orders": total("orders"),
        "shipped_orders": shipped,
        "shipments": shipments,
        "split_shipment_orders": total("split_orders"),
        "split_shipment_rate_pct": _pct(total("split_orders"), shipped),
        "shipments_per_shipped_order": round(shipments / shipped, 4) if shipped else 0.0,
        "sla_hits": hits,
        "sla_misses": misses,
        "sla_open_breached": total("open_breached"),
        "sla_hit_rate_pct": _pct(hits, hits + misses),
        "late_shipment_rate_pct": _pct(total("late_orders"), shipped),
        "valid_tracking_rate_pct": _pct(total("valid_tracking"), shipments),
        "delivered_orders": tally.delivered,
        "delivery_hours_p50": _quantile(tally.delivery_hours, 0.5),
        "delivery_hours_p90": _quantile(tally.delivery_hours, 0.9),
        "capacity_deferrals": tally.capacity_deferrals,
        "pick_failures": tally.pick_failures,
        "reroutes": tally.reroutes,
        "cancelled_after_pick_failure": tally.cancelled_after_pick_failure,
        "orders_without_lifecycle": tally.untracked,
        "confirmations_sent": tally.confirmations_sent,
        "cancellations_sent": tally.cancellations_sent,
    }
