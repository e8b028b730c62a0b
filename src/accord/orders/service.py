"""Order use cases: place → reserve → route → ship → deliver, cancel, refund, re-route, re-optimise, SLA, health.

Every use case is one database transaction holding the order rows, the ledger movements (through
``Engine.move_batch_in``) and the outbox events, so a failure anywhere writes nothing.

Placement builds on channel sync's ingestion (``accord.sync.orders.OrderIngestor``): the order is recorded in
``channel_orders`` and its stock reserved exactly as a webhook or polled order would be, then this service adds the
lifecycle rows and routes it in the same transaction. Reservations moved by routing are a RELEASE + RESERVE batch.
Ship confirmations are queued in ``channel_shipments`` (``accord.orders.shipments.ShipmentOutbox``) in the ship
transaction; the sync worker sends them through the channel's connector and ``shipments.confirm_state`` follows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import sqlalchemy as sa

from accord.app.engine import Config, Engine
from accord.connectors.base import ChannelOrder, ShipmentConfirmation, ShipmentLine, ms_from_datetime
from accord.connectors.base import OrderLine as ChannelOrderLine
from accord.domain import events as ev
from accord.domain.availability import LocationKind
from accord.domain.errors import AlreadyExists, InsufficientStock, InvalidInput, NotFound
from accord.domain.ledger import Movement, MovementKind
from accord.domain.orders import (
    AMAZON_BARS,
    ORDER_EVENTS,
    CancelReason,
    ChannelHealth,
    Order,
    OrderLine,
    OrderStatus,
    OrderTransition,
    SlaAssessment,
    SlaPolicy,
    SlaState,
    channel_health,
    check_transition,
    evaluate_sla,
    from_minor,
    new_order,
    ship_by_for,
    to_minor,
)
from accord.domain.orders import Shipment as DomainShipment
from accord.orders.returns import order_refund_state
from accord.orders.shipments import ShipmentOutbox
from accord.orders.store import Sql, dumps, to_dt, to_ms
from accord.routing import (
    Allocation,
    ChannelRules,
    LocationLoad,
    Network,
    RouteLine,
    RouteLocation,
    RouteOrder,
    RoutePlan,
    Router,
    RouterConfig,
    Stock,
    capacity_slip,
)
from accord.store import orders_tables as ot
from accord.store import schema as t
from accord.store import sync_tables as st
from accord.store.db import Tx
from accord.sync.orders import CANCELLED as INGEST_CANCELLED
from accord.sync.orders import HELD as INGEST_HELD
from accord.sync.orders import RESERVED as INGEST_RESERVED
from accord.sync.orders import Ingested, OrderIngestor

S = OrderStatus
b = sa.bindparam
OPEN = (S.PLACED, S.HELD, S.RESERVED, S.ROUTED, S.PARTIALLY_SHIPPED)
API_SOURCE = "api"
MAX_LINES = 500
MAX_REOPTIMISE = 2_000
MAX_CAPACITY_PER_DAY = 1_000_000
DAY_MS = 86_400_000
SHIPMENT_RECORDED = "OrderShipmentRecorded"  # for the channel connector: carrier + tracking back to the channel
SLA_EVENTS = {SlaState.AT_RISK: "OrderSlaAtRisk", SlaState.BREACHED: "OrderSlaBreached"}

# rough country centres: routing coordinates for locations with no row in routing_locations
COUNTRY_CENTRES: dict[str, tuple[float, float]] = {
    "US": (39.8, -98.6),
    "CA": (56.1, -106.3),
    "MX": (23.6, -102.6),
    "BR": (-14.2, -51.9),
    "GB": (54.0, -2.0),
    "IE": (53.4, -8.2),
    "FR": (46.2, 2.2),
    "DE": (51.2, 10.4),
    "NL": (52.1, 5.3),
    "BE": (50.5, 4.5),
    "ES": (40.5, -3.7),
    "IT": (41.9, 12.6),
    "PL": (51.9, 19.1),
    "SE": (60.1, 18.6),
    "JP": (36.2, 138.3),
    "CN": (35.9, 104.2),
    "IN": (20.6, 79.0),
    "SG": (1.35, 103.82),
    "MY": (4.2, 101.9),
    "TH": (15.9, 100.9),
    "ID": (-0.8, 113.9),
    "PH": (12.9, 121.8),
    "VN": (14.1, 108.3),
    "AU": (-25.3, 133.8),
    "AE": (23.4, 53.8),
}


@dataclass(frozen=True, slots=True)
class PlaceLine:
    sku: str
    qty: int
    line_id: str | None = None
    unit_price_minor: int = 0


@dataclass(frozen=True, slots=True)
class Destination:
    region: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """PlaceOrder command. ``ship_by_ms``: the channel's own ship-by, else the channel's SLA policy decides."""

    channel: str
    lines: tuple[PlaceLine, ...]
    order_id: str | None = None
    placed_at_ms: int | None = None
    ship_by_ms: int | None = None
    destination: Destination | None = None
    currency: str | None = None  # of the unit prices; the channel's currency when absent


@dataclass(slots=True)
class _Loaded:
    row: dict[str, Any]
    order: Order
    lines: list[dict[str, Any]]
    allocs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Summary:
    """What a lifecycle step left: the order's status, placement time and shipments (location, shipped at ms)."""

    order_id: str
    channel: str
    status: str
    placed_at_ms: int
    shipments: tuple[tuple[str, int], ...]

    @staticmethod
    def of(lo: _Loaded) -> Summary:
        o = lo.order
        return Summary(
            o.id,
            o.channel,
            o.status.value,
            int(lo.row["placed_at"]),
            tuple((s.location, to_ms(s.shipped_at)) for s in o.shipments),
        )


def _sum_by(items: Iterable[tuple[Any, int]]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for k, q in items:
        out[k] = out.get(k, 0) + q
    return out


class OrderService:
    """Order lifecycle over one database; build one per process (or per request) around the wired ``Engine``."""

    def __init__(self, engine: Engine, router_config: RouterConfig | None = None) -> None:
        self.engine = engine
        self.db = engine.db
        self.sql = Sql(self.db)
        self.router_config = router_config or RouterConfig()
        self._ingestor: OrderIngestor | None = None
        self._shipments: ShipmentOutbox | None = None

    # ------------------------------------------------------------------ helpers

    @property
    def ingestor(self) -> OrderIngestor:
        if self._ingestor is None:
            self._ingestor = OrderIngestor(self.engine, self.db, adopter=self)
        return self._ingestor

    @property
    def shipments(self) -> ShipmentOutbox:
        """The queue of ship confirmations the sync worker sends back to channels."""
        if self._shipments is None:
            self._shipments = ShipmentOutbox(self.db)
        return self._shipments

    def _now(self) -> int:
        return self.engine.clock.now_ms()

    def _emit(self, tx: Tx, events: Sequence[ev.Event], now: int) -> None:
        self.sql.emit(tx, self.engine.sql.insert_outbox, events, now)

    def _transition_event(self, row: dict[str, Any], tr: OrderTransition, **extra: Any) -> ev.Event:
        data: dict[str, Any] = {
            "order_id": tr.order_id,
            "channel": row["channel_id"],
            "channel_order_id": row["channel_order_id"],
            "from": tr.from_status.value,
            "to": tr.to_status.value,
            "at": to_ms(tr.at),
        }
        if tr.detail:
            data["detail"] = tr.detail
        data.update(extra)
        return ev.Event(tr.event, tr.order_id, data)

    def _sla_policy(self, tx: Tx, channel: str) -> SlaPolicy:
        r = self.sql.fetch_one(tx, "sla_policy", _q_sla_policy, {"ch": channel})
        return SlaPolicy() if r is None else SlaPolicy(r["handling_hours"], r["at_risk_hours"])

    # ------------------------------------------------------------------ configuration

    def set_sla_policy(self, channel: str, policy: SlaPolicy) -> None:
        policy.check()
        if channel not in self.engine.config().channels:
            raise NotFound("channel", channel)
        with self.db.tx() as tx:
            self.sql.run(tx, sa.delete(ot.sla_policies).where(ot.sla_policies.c.channel_id == channel))
            self.sql.run(
                tx,
                sa.insert(ot.sla_policies).values(
                    channel_id=channel, handling_hours=policy.handling_hours, at_risk_hours=policy.at_risk_hours
                ),
            )

    def set_location_geo(
        self, location: str, lat: float, lon: float, handling_days: float = 1.0, radius_km: float | None = None
    ) -> None:
        if location not in self.engine.config().locations:
            raise NotFound("location", location)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise InvalidInput(f"coordinates out of range: {lat}, {lon}")
        if handling_days < 0 or (radius_km is not None and radius_km <= 0):
            raise InvalidInput("handling days must be zero or more and a radius positive")
        rl = ot.routing_locations
        with self.db.tx() as tx:
            self.sql.run(tx, sa.delete(rl).where(rl.c.location_id == location))
            self.sql.run(
                tx,
                sa.insert(rl).values(
                    location_id=location, lat=lat, lon=lon, handling_days=handling_days, radius_km=radius_km
                ),
            )

    def set_location_capacity(self, location: str, parcels_per_day: int | None) -> dict[str, Any]:
        """A location's daily shipping capacity for routing, in parcels per local day (``None``: unlimited). Beyond
        what it can still ship today a parcel there slips by whole days, which routing weighs as an SLA risk.
        Returns ``capacity(location)``."""
        if parcels_per_day is not None and (
            not isinstance(parcels_per_day, int)
            or isinstance(parcels_per_day, bool)
            or not 0 < parcels_per_day <= MAX_CAPACITY_PER_DAY
        ):
            raise InvalidInput(
                f"capacity must be a positive whole number of parcels per day (at most {MAX_CAPACITY_PER_DAY:,}), "
                f"got {parcels_per_day!r}"
            )
        if location not in self.engine.config().locations:
            raise NotFound("location", location)
        rc = ot.routing_capacities
        with self.db.tx() as tx:
            self.sql.run(tx, sa.delete(rc).where(rc.c.location_id == location))
            if parcels_per_day is not None:
                self.sql.run(
                    tx,
                    sa.insert(rc).values(location_id=location, parcels_per_day=parcels_per_day, updated_at=self._now()),
                )
        return self.capacity(location)[0]

    def capacity(self, location: str | None = None) -> list[dict[str, Any]]:
        """Each location's daily capacity (``None``: unlimited) and load now: parcels routed there and not yet
        shipped, parcels shipped since its local midnight, and how many days one more parcel would slip."""
        cfg = self.engine.config()
        if location is not None and location not in cfg.locations:
            raise NotFound("location", location)
        ids = [location] if location is not None else sorted(cfg.locations)
        now = self._now()
        with self.db.read() as tx:
            caps = self._capacities(tx)
            loads = self._location_loads(tx, cfg, ids, now)
        out: list[dict[str, Any]] = []
        for loc in ids:
            cap, ld = caps.get(loc), loads[loc]
            slip = capacity_slip(cap, ld)
            out.append(
                {
                    "location": loc,
                    "parcels_per_day": cap,
                    "open_parcels": ld.open_parcels,
                    "shipped_today": ld.shipped_today,
                    "left_today": None if cap is None else max(0, cap - ld.shipped_today),
                    "next_parcel_slip_days": slip.days,
                }
            )
        return out

    def _capacities(self, tx: Tx) -> dict[str, int]:
        rows = self.sql.fetch(tx, "routing_capacities", _q_routing_capacities, {})
        return {r["location_id"]: int(r["parcels_per_day"]) for r in rows}

    def _location_loads(self, tx: Tx, cfg: Config, locations: Sequence[str], now: int) -> dict[str, LocationLoad]:
        """Open load of ``locations`` read in ``tx`` (so it counts this transaction's own routing, and a rolled-back
        one never counted): parcels waiting (order × location still reserved) and parcels shipped since each
        location's local midnight (its time zone)."""
        out: dict[str, LocationLoad] = {}
        for i in range(0, len(locations), 100):
            chunk = list(locations[i : i + 100])
            n = len(chunk)
            ids = {f"l{k}": loc for k, loc in enumerate(chunk)}
            zones = {loc: cfg.locations[loc].timezone if loc in cfg.locations else "UTC" for loc in chunk}
            days = {loc: _local_day(zones[loc], now) for loc in chunk}
            waiting = {
                r["location_id"]: int(r["n"])
                for r in self.sql.fetch(tx, f"open_parcels:{n}", partial(_q_open_parcels, n), ids)
            }
            since = {f"t{k}": days[loc][0] for k, loc in enumerate(chunk)}
            shipped = {
                r["location_id"]: int(r["n"])
                for r in self.sql.fetch(tx, f"shipped_since:{n}", partial(_q_shipped_since, n), {**ids, **since})
            }
            for loc in chunk:
                out[loc] = LocationLoad(waiting.get(loc, 0), shipped.get(loc, 0), days[loc][1])
        return out

    def set_channel_routing(
        self,
        channel: str,
        *,
        max_splits: int = 2,
        quick_commerce: bool = False,
        dark_store_radius_km: float = 10.0,
        promise_days: float = 3.0,
    ) -> None:
        if channel not in self.engine.config().channels:
            raise NotFound("channel", channel)
        if max_splits < 0 or dark_store_radius_km <= 0 or promise_days <= 0:
            raise InvalidInput("max splits must be ≥ 0, radius and promise days positive")
        rc = ot.routing_channels
        with self.db.tx() as tx:
            self.sql.run(tx, sa.delete(rc).where(rc.c.channel_id == channel))
            self.sql.run(
                tx,
                sa.insert(rc).values(
                    channel_id=channel,
                    max_splits=max_splits,
                    quick_commerce=quick_commerce,
                    dark_store_radius_km=dark_store_radius_km,
                    promise_days=promise_days,
                ),
            )

    def network(self, tx: Tx, cfg: Config, now_ms: int | None = None) -> Network:
        """The routing network from the engine's locations and channels plus the routing config tables; with
        ``now_ms``, the current load of every location with a daily capacity (for routing decisions)."""
        geo = {r["location_id"]: r for r in self.sql.fetch(tx, "routing_locations", _q_routing_locations, {})}
        chans = {r["channel_id"]: r for r in self.sql.fetch(tx, "routing_channels", _q_routing_channels, {})}
        caps = self._capacities(tx)
        locs: dict[str, RouteLocation] = {}
        for loc in cfg.locations.values():
            g = geo.get(loc.id)
            if g is not None:
                lat, lon, handling, radius = g["lat"], g["lon"], g["handling_days"], g["radius_km"]
            else:
                lat, lon = COUNTRY_CENTRES.get(loc.country, (0.0, 0.0))
                handling = 0.1 if loc.kind is LocationKind.DARK_STORE else 1.0
                radius = None
            locs[loc.id] = RouteLocation(
                loc.id,
                loc.kind,
                loc.region,
                float(lat),
                float(lon),
                loc.owner_channel,
                float(handling),
                radius,
                caps.get(loc.id),
            )
        rules: dict[str, ChannelRules] = {}
        for ch_id in cfg.channels:
            c = chans.get(ch_id)
            eligible = cfg.eligible.get(ch_id, ())
            if c is None:
                rules[ch_id] = ChannelRules(ch_id, eligible)
            else:
                rules[ch_id] = ChannelRules(
                    ch_id, eligible, c["max_splits"], bool(c["quick_commerce"]), float(c["dark_store_radius_km"])
                )
        capped = sorted(loc for loc in caps if loc in locs)
        load = self._location_loads(tx, cfg, capped, now_ms) if now_ms is not None and capped else {}
        return Network(locs, rules, load=load)

    def _promise_days(self, tx: Tx, channel: str) -> float:
        r = self.sql.fetch_one(tx, "promise_days", _q_promise_days, {"ch": channel})
        return 3.0 if r is None else float(r["promise_days"])

    # ------------------------------------------------------------------ loading

    def _load(self, tx: Tx, order_id: str, *, lock: bool = False) -> _Loaded:
        if lock:
            row = self.sql.fetch_one(tx, "order.lock", lambda: self.sql.lock(_q_order()), {"id": order_id})
        else:
            row = self.sql.fetch_one(tx, "order", _q_order, {"id": order_id})
        if row is None:
            raise NotFound("order", order_id)
        return self._assemble([row], tx)[0]

    def _assemble(self, rows: list[dict[str, Any]], tx: Tx) -> list[_Loaded]:
        ids = [r["id"] for r in rows]
        lines: dict[str, list[dict[str, Any]]] = {}
        allocs: dict[str, list[dict[str, Any]]] = {}
        if len(ids) == 1:  # one order (every use case): prepared statements, the same rows in the same order
            one = {"oid": ids[0]}
            line_rows = self.sql.fetch(tx, "order_lines", _q_order_lines, one)
            alloc_rows = self.sql.fetch(tx, "order_allocations", _q_order_allocations, one)
            ship_rows = self.sql.fetch(tx, "order_shipments", _q_order_shipments, one)
        else:
            line_rows = self.sql.rows_in(tx, ot.order_lines, "order_id", ids, ot.order_lines.c.seq)
            alloc_rows = self.sql.rows_in(tx, ot.order_allocations, "order_id", ids)
            ship_rows = self.sql.rows_in(
                tx, ot.shipments, "order_id", ids, ot.shipments.c.shipped_at, ot.shipments.c.id
            )
        for r in line_rows:
            lines.setdefault(r["order_id"], []).append(r)
        for r in alloc_rows:
            allocs.setdefault(r["order_id"], []).append(r)
        ships: dict[str, list[DomainShipment]] = {}
        for r in ship_rows:
            ships.setdefault(r["order_id"], []).append(
                DomainShipment(
                    r["id"],
                    r["location_id"],
                    orjson.loads(r["lines"]),
                    r["carrier"],
                    r["tracking"],
                    to_dt(r["shipped_at"]),
                )
            )
        out: list[_Loaded] = []
        for r in rows:
            my_lines = lines.get(r["id"], [])
            order = Order(
                r["id"],
                r["channel_id"],
                to_dt(r["placed_at"]),
                tuple(OrderLine(ln["line_id"], ln["sku_id"], ln["qty"]) for ln in my_lines),
                to_dt(r["ship_by"]),
                S(r["status"]),
                ships.get(r["id"], []),
                CancelReason(r["cancel_reason"]) if r["cancel_reason"] else None,
                to_dt(r["cancelled_at"]) if r["cancelled_at"] is not None else None,
                to_dt(r["delivered_at"]) if r["delivered_at"] is not None else None,
            )
            out.append(_Loaded(r, order, my_lines, allocs.get(r["id"], [])))
        return out

    def _save_status(self, tx: Tx, lo: _Loaded, now: int, **extra: Any) -> None:
        o = lo.order
        vals: dict[str, Any] = {"status": o.status.value, "updated_at": now, **extra}
        if o.cancel_reason is not None:
            vals["cancel_reason"] = o.cancel_reason.value
        if o.cancelled_at is not None:
            vals["cancelled_at"] = to_ms(o.cancelled_at)
        if o.delivered_at is not None:
            vals["delivered_at"] = to_ms(o.delivered_at)
        cols = tuple(vals)
        self.sql.exec(tx, "order.status:" + ",".join(cols), lambda: _q_order_update(cols), {**vals, "_id": o.id})

    # ------------------------------------------------------------------ place

    def place(self, cmd: PlaceOrder) -> dict[str, Any]:
        """PlaceOrder: validate, then the same intake as a channel's order (``OrderIngestor`` with this service
        as its adopter): record, reserve at once (ledger, same transaction), route. Returns ``show``."""
        cfg = self.engine.config()
        if not cmd.lines:
            raise InvalidInput("order has no lines")
        if len(cmd.lines) > MAX_LINES:
            raise InvalidInput(f"an order holds at most {MAX_LINES} lines, got {len(cmd.lines)}")
        order_id = cmd.order_id or self.engine.ids.new("ORD")
        now = self._now()
        placed_ms = cmd.placed_at_ms if cmd.placed_at_ms is not None else now
        lines = tuple(OrderLine(pl.line_id or str(i + 1), pl.sku, pl.qty) for i, pl in enumerate(cmd.lines))
        for pl in cmd.lines:
            if pl.unit_price_minor < 0:
                raise InvalidInput(f"unit price of {pl.sku} must be zero or more, got {pl.unit_price_minor}")
        if cmd.destination is not None and not (
            -90 <= cmd.destination.lat <= 90 and -180 <= cmd.destination.lon <= 180
        ):
            raise InvalidInput("destination coordinates out of range")
        if cmd.currency is not None and not (len(cmd.currency) == 3 and cmd.currency.isalpha()):
            raise InvalidInput(f"currency must be a three-letter ISO 4217 code, got {cmd.currency!r}")
        with self.db.tx() as tx:
            skus = {ln.sku for ln in lines}
            known = {r["id"] for r in self.sql.rows(tx, sa.select(t.skus.c.id).where(t.skus.c.id.in_(sorted(skus))))}
            policy = self._sla_policy(tx, cmd.channel) if cmd.channel in cfg.channels else SlaPolicy()
            placed_at = to_dt(placed_ms)
            channel_ship_by = to_dt(cmd.ship_by_ms) if cmd.ship_by_ms is not None else None
            new_order(  # validation only: unknown channel or SKU, bad quantities, ship-by before placed
                order_id,
                cmd.channel,
                placed_at,
                lines,
                ship_by_for(placed_at, channel_ship_by, policy),
                known_channels=cfg.channels,
                known_skus=known,
            )
            o, co = ot.orders, st.channel_orders
            if self.sql.row(tx, sa.select(o.c.id).where(o.c.id == order_id)) is not None or (
                self.sql.row(
                    tx,
                    sa.select(co.c.status).where(co.c.channel_id == cmd.channel, co.c.channel_order_id == order_id),
                )
                is not None
            ):
                raise AlreadyExists(f"order {order_id!r} already exists on {cmd.channel}")
            currency = (cmd.currency or cfg.channels[cmd.channel].currency).upper()
            dest = cmd.destination
            ingested = self.ingestor.ingest(
                tx,
                cmd.channel,
                ChannelOrder(
                    order_id,
                    placed_at,
                    "placed",
                    tuple(
                        ChannelOrderLine(ln.sku, ln.qty, from_minor(pl.unit_price_minor, currency), ln.line_id)
                        for ln, pl in zip(lines, cmd.lines, strict=True)
                    ),
                    currency=currency,
                    ship_by=channel_ship_by,
                    ship_to_region=dest.region if dest else None,
                    ship_to_lat=dest.lat if dest else None,
                    ship_to_lon=dest.lon if dest else None,
                ),
                API_SOURCE,
            )
            if ingested.status not in (INGEST_RESERVED, INGEST_CANCELLED):  # pragma: no cover - validated above
                raise InvalidInput(f"order {order_id} could not be placed: {ingested.reason}")
        return self.show(order_id)

    # ------------------------------------------------------------------ intake (adopting channel orders)

    def adopting_ingestor(self) -> OrderIngestor:
        """The channel-order intake that makes every ingested order a lifecycle order (webhooks, polling)."""
        return self.ingestor

    def _lifecycle_id(self, tx: Tx, channel: str, channel_order_id: str, source: str) -> str:
        """API orders keep their id; a channel's order is ``channel:channel_order_id`` (a fresh id if taken)."""
        oid = channel_order_id if source == API_SOURCE else f"{channel}:{channel_order_id}"
        if len(oid) > 200 or self.sql.fetch_one(tx, "order.exists", _q_order_exists, {"id": oid}) is not None:
            oid = self.engine.ids.new("ORD")
        return oid

    def adopt(self, tx: Tx, channel: str, order: ChannelOrder, source: str, ingested: Ingested) -> None:
        """``OrderAdopter``: the lifecycle order for a channel order just recorded (and reserved) by the ingestor,
        in its transaction: placed → reserved → routed, placed → cancelled (stock short; the cancellation is queued
        for the channel by the ingestor) or placed → held with the reason (released by ``release``)."""
        if ingested.status not in (INGEST_RESERVED, INGEST_CANCELLED, INGEST_HELD):
            return  # a duplicate: adopted when it was first ingested
        cfg = self.engine.config_in(tx)
        ch = cfg.channels.get(channel)
        now = self._now()
        placed_ms = ms_from_datetime(order.created_at)
        placed_at = to_dt(placed_ms)
        policy = self._sla_policy(tx, channel) if ch is not None else SlaPolicy()
        ship_by = ship_by_for(placed_at, order.ship_by, policy)
        order_id = self._lifecycle_id(tx, channel, order.channel_order_id, source)
        currency = (order.currency or (ch.currency if ch is not None else "") or "").upper()[:3] or None
        dest = self._destination_of(tx, cfg, channel, order)
        self.sql.exec(
            tx,
            "order.insert",
            _q_order_insert,
            {
                "id": order_id,
                "channel_id": channel,
                "channel_order_id": order.channel_order_id,
                "status": S.PLACED.value,
                "placed_at": placed_ms,
                "ship_by": to_ms(ship_by),
                "dest_region": dest.region,
                "dest_lat": dest.lat,
                "dest_lon": dest.lon,
                "promise_days": self._promise_days(tx, channel),
                "route_seq": 0,
                "created_at": now,
                "updated_at": now,
                "source": source[:16],
                "currency": currency,
            },
        )
        dom_lines: list[OrderLine] = []
        line_rows: list[dict[str, Any]] = []
        for i, ln_json in enumerate(ingested.lines):
            src = order.lines[i] if i < len(order.lines) else None
            price = 0
            if src is not None and src.unit_price is not None:
                price = max(0, to_minor(src.unit_price, currency))
            qty = int(ln_json["qty"])
            dom_lines.append(OrderLine(str(ln_json["line_id"]), str(ln_json["sku"] or ""), qty))
            line_rows.append(
                {
                    "order_id": order_id,
                    "line_id": str(ln_json["line_id"]),
                    "seq": i,
                    "sku_id": str(ln_json["sku"] or "")[:128],
                    "qty": qty,
                    "unit_price_minor": price,
                    "channel_line_id": src.line_id if src is not None else None,
                }
            )
        self.sql.exec_many(tx, "order_lines.insert", _q_order_line_insert, line_rows)
        dom = Order(order_id, channel, placed_at, tuple(dom_lines), ship_by)
        row = self.sql.fetch_one(tx, "order", _q_order, {"id": order_id})
        assert row is not None
        lo = _Loaded(row, dom, self._lines_of(tx, order_id), [])
        placed_tr = OrderTransition(order_id, S.PLACED, S.PLACED, placed_at, ORDER_EVENTS[S.PLACED])
        placed_ev = self._transition_event(
            row,
            placed_tr,
            source=source,
            lines=[{"line_id": ln.line_id, "sku": ln.sku, "qty": ln.qty} for ln in dom_lines],
            ship_by=to_ms(ship_by),
        )
        if ingested.status == INGEST_HELD:
            reason = ingested.reason or "held"
            tr = dom.hold(to_dt(now), reason)
            self._save_status(tx, lo, now, hold_reason=reason)
            self._emit(tx, [placed_ev, self._transition_event(row, tr, reason=reason)], now)
            return
        self._admitted(tx, cfg, lo, ingested, now, [placed_ev])

    def _admitted(self, tx: Tx, cfg: Config, lo: _Loaded, ingested: Ingested, now: int, events: list[ev.Event]) -> None:
        """After the ingestor admitted the order: cancelled by the seller when stock was short, else reserved with
        the ingestor's allocations and routed."""
        row = lo.row
        if ingested.status == INGEST_CANCELLED:
            tr = lo.order.cancel(to_dt(now), CancelReason.SELLER)
            events.append(self._transition_event(row, tr, reason=ingested.reason))
            self._save_status(tx, lo, now, hold_reason=None)
            self._emit(tx, events, now)
            return
        self.sql.exec_many(
            tx,
            "order_allocations.insert",
            _q_alloc_insert,
            [
                {
                    "order_id": row["id"],
                    "line_id": ln_json["line_id"],
                    "location_id": loc,
                    "sku_id": ln_json["sku"],
                    "qty_reserved": int(q),
                    "qty_shipped": 0,
                }
                for ln_json in ingested.lines
                for loc, q in ln_json["allocations"].items()
            ],
        )
        lo.allocs = self.sql.fetch(tx, "order_allocations", _q_order_allocations, {"oid": row["id"]})
        tr = lo.order.reserve(to_dt(now))
        events.append(self._transition_event(row, tr, reservations=self._alloc_json(lo.allocs, reserved_only=True)))
        self._save_status(tx, lo, now, hold_reason=None)
        self._emit(tx, events, now)
        self._route_in(tx, cfg, lo, now, cause="placed")

    def release(self, order_id: str) -> dict[str, Any]:
        """A held order whose cause is fixed (SKU added to the catalogue, channel configured): reserve and route it,
        or cancel it when stock is short (queued back to the channel). Still held → a clear error, nothing written."""
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            if lo.order.status is not S.HELD:
                raise InvalidInput(f"order {order_id} is {lo.order.status.value}, not held: nothing to release")
            r = lo.row
            ingested = self.ingestor.readmit(tx, r["channel_id"], r["channel_order_id"])
            if ingested.status == INGEST_HELD:
                raise InvalidInput(f"order {order_id} is still held: {ingested.reason}")
            cfg = self.engine.config_in(tx)
            now = self._now()
            if not r["dest_region"]:  # held before its channel was configured: place the buyer now
                dest = self._default_destination(tx, cfg, r["channel_id"])
                self._save_status(
                    tx,
                    lo,
                    now,
                    dest_region=dest.region,
                    dest_lat=dest.lat,
                    dest_lon=dest.lon,
                    promise_days=self._promise_days(tx, r["channel_id"]),
                    currency=r["currency"] or cfg.channels[r["channel_id"]].currency,
                )
                lo.row = self.sql.row(tx, sa.select(ot.orders).where(ot.orders.c.id == order_id)) or lo.row
            self._admitted(tx, cfg, lo, ingested, now, [])
        return self.show(order_id)

    def _lines_of(self, tx: Tx, order_id: str) -> list[dict[str, Any]]:
        return self.sql.fetch(tx, "order_lines", _q_order_lines, {"oid": order_id})

    def _destination_of(self, tx: Tx, cfg: Config, channel: str, order: ChannelOrder) -> Destination:
        """The buyer's destination from the channel order; near the channel's first location when it has none."""
        lat, lon = order.ship_to_lat, order.ship_to_lon
        coords = (float(lat), float(lon)) if lat is not None and lon is not None else None
        if coords is not None and not (-90 <= coords[0] <= 90 and -180 <= coords[1] <= 180):
            coords = None
        if channel not in cfg.channels:  # held: placed properly once the channel is configured and it is released
            return Destination("", 0.0, 0.0)
        default = self._default_destination(tx, cfg, channel)
        region = (order.ship_to_region or default.region)[:32]
        return Destination(region, *coords) if coords is not None else Destination(region, default.lat, default.lon)

    def _default_destination(self, tx: Tx, cfg: Config, channel: str) -> Destination:
        """No address given: assume the buyer is near the channel's first fulfilling location."""
        ch = cfg.channels[channel]
        eligible = cfg.eligible.get(channel, ())
        if eligible:
            net_loc = self.network(tx, cfg).locations[eligible[0]]
            return Destination(ch.region, net_loc.lat, net_loc.lon)
        return Destination(ch.region, 0.0, 0.0)

    @staticmethod
    def _alloc_json(allocs: list[dict[str, Any]], reserved_only: bool = False) -> list[dict[str, Any]]:
        return [
            {
                "line_id": a["line_id"],
                "sku": a["sku_id"],
                "location": a["location_id"],
                "qty_reserved": a["qty_reserved"],
                "qty_shipped": a["qty_shipped"],
            }
            for a in allocs
            if not reserved_only or a["qty_reserved"] > 0
        ]

    # ------------------------------------------------------------------ routing

    def _route_order(self, lo: _Loaded, now: int) -> RouteOrder:
        """The order's still-reserved units as a routing problem, at ``now`` (time left to its ship-by; the
        locations whose open load already counts its parcels)."""
        open_by_line = _sum_by((a["line_id"], a["qty_reserved"]) for a in lo.allocs)
        lines = tuple(
            RouteLine(ln["line_id"], ln["sku_id"], open_by_line[ln["line_id"]])
            for ln in lo.lines
            if open_by_line.get(ln["line_id"], 0) > 0
        )
        r = lo.row
        return RouteOrder(
            r["id"],
            r["channel_id"],
            lines,
            r["dest_region"],
            float(r["dest_lat"]),
            float(r["dest_lon"]),
            float(r["promise_days"]),
            (int(r["ship_by"]) - now) / DAY_MS,
            tuple(sorted({a["location_id"] for a in lo.allocs if a["qty_reserved"] > 0})),
        )

    def _available(self, tx: Tx, skus: Iterable[str]) -> Stock:
        wanted = sorted(set(skus))
        stock: Stock = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            n = len(chunk)
            rows = self.sql.fetch(
                tx, f"available:{n}", partial(_q_available, n), {f"s{k}": sku for k, sku in enumerate(chunk)}
            )
            for r in rows:
                stock[(r["sku_id"], r["location_id"])] = int(r["on_hand"]) - int(r["committed"])
        return stock

    @staticmethod
    def _current_plan(lo: _Loaded) -> RoutePlan:
        allocations = tuple(
            Allocation(a["line_id"], a["sku_id"], a["location_id"], a["qty_reserved"])
            for a in lo.allocs
            if a["qty_reserved"] > 0
        )
        return RoutePlan(lo.row["id"], lo.row["channel_id"], allocations, (), 0, 0.0, 0, 0.0, "stored")

    def _moves_for(self, lo: _Loaded, plan: RoutePlan, seq: int) -> tuple[list[Movement], list[Movement]]:
        """RELEASE where the plan holds fewer units than now, RESERVE where it holds more."""
        have = {(a["line_id"], a["location_id"]): a["qty_reserved"] for a in lo.allocs}
        want = _sum_by(((a.line_id, a.location), a.qty) for a in plan.allocations)
        sku_of = {ln["line_id"]: ln["sku_id"] for ln in lo.lines}
        r = lo.row
        base = f"order:{r['channel_id']}:{r['channel_order_id']}"
        ref = f"{r['channel_id']}:{r['channel_order_id']}"
        releases: list[Movement] = []
        reserves: list[Movement] = []
        for key in sorted(set(have) | set(want)):
            line_id, loc = key
            d = want.get(key, 0) - have.get(key, 0)
            if d < 0:
                releases.append(
                    Movement(
                        MovementKind.RELEASE,
                        sku_of[line_id],
                        loc,
                        -d,
                        f"{base}:{line_id}:r{seq}:{loc}:release",
                        ref=ref,
                    )
                )
            elif d > 0:
                reserves.append(
                    Movement(
                        MovementKind.RESERVE, sku_of[line_id], loc, d, f"{base}:{line_id}:r{seq}:{loc}:reserve", ref=ref
                    )
                )
        return releases, reserves

    def _write_allocs(self, tx: Tx, lo: _Loaded, plan: RoutePlan) -> None:
        want = _sum_by(((a.line_id, a.location), a.qty) for a in plan.allocations)
        sku_of = {ln["line_id"]: ln["sku_id"] for ln in lo.lines}
        seen: set[tuple[str, str]] = set()
        oid = lo.row["id"]
        for a in lo.allocs:
            key = (a["line_id"], a["location_id"])
            seen.add(key)
            q = want.get(key, 0)
            where = {"oid": oid, "lid": key[0], "loc": key[1]}
            if q == 0 and a["qty_shipped"] == 0:
                self.sql.exec(tx, "order_allocation.delete", _q_alloc_delete, where)
            elif q != a["qty_reserved"]:
                self.sql.exec(tx, "order_allocation.reserved", _q_alloc_reserved, {**where, "qr": q})
        self.sql.exec_many(
            tx,
            "order_allocations.insert",
            _q_alloc_insert,
            [
                {
                    "order_id": oid,
                    "line_id": line_id,
                    "location_id": loc,
                    "sku_id": sku_of[line_id],
                    "qty_reserved": q,
                    "qty_shipped": 0,
                }
                for (line_id, loc), q in sorted(want.items())
                if (line_id, loc) not in seen and q > 0
            ],
        )
        lo.allocs = self.sql.fetch(tx, "order_allocations", _q_order_allocations, {"oid": oid})
        self._sync_channel_order_lines(tx, lo)

    def _sync_channel_order_lines(self, tx: Tx, lo: _Loaded) -> None:
        """Keep channel sync's view of the order (its lines' allocations) equal to the reservations held."""
        r = lo.row
        by_line: dict[str, dict[str, int]] = {}
        for a in lo.allocs:
            if a["qty_reserved"] > 0:
                by_line.setdefault(a["line_id"], {})[a["location_id"]] = a["qty_reserved"]
        lines = [
            {
                "sku": ln["sku_id"],
                "qty": ln["qty"],
                "line_id": ln["line_id"],
                "allocations": by_line.get(ln["line_id"], {}),
            }
            for ln in lo.lines
        ]
        self.sql.exec(
            tx,
            "channel_order.lines",
            _q_channel_order_lines,
            {"ch": r["channel_id"], "coid": r["channel_order_id"], "lines": dumps(lines), "at": self._now()},
        )

    def _record_route(
        self, tx: Tx, lo: _Loaded, plan: RoutePlan, seq: int, cause: str, now: int, note: str = ""
    ) -> None:
        text = plan.explain() + (f"\n{note}" if note else "")
        self.sql.exec(
            tx,
            "order_route.insert",
            _q_route_insert,
            {
                "order_id": lo.row["id"],
                "seq": seq,
                "method": plan.method[:48],
                "allocations": dumps(
                    [
                        {"line_id": a.line_id, "sku": a.sku, "location": a.location, "qty": a.qty}
                        for a in plan.allocations
                    ]
                ),
                "shipments": plan.shipments,
                "shipping_cost": plan.shipping_cost,
                "sla_misses": plan.sla_misses,
                "objective": plan.objective,
                "explanation": text,
                "cause": cause[:64],
                "created_at": now,
            },
        )

    def _apply_plan(
        self, tx: Tx, lo: _Loaded, plan: RoutePlan, now: int, cause: str, moves: bool = True, note: str = ""
    ) -> ev.Event:
        """Write a routing decision: allocations, route row, order status (routed) and its OrderRouted event.
        ``moves``: apply this order's release + reserve batch here (re-optimisation batches them across orders)."""
        seq = int(lo.row["route_seq"]) + 1
        if moves:
            releases, reserves = self._moves_for(lo, plan, seq)
            self.engine.move_batch_in(tx, releases + reserves)
        self._write_allocs(tx, lo, plan)
        self._record_route(tx, lo, plan, seq, cause, now, note)
        at = to_dt(now)
        detail = f"{plan.method}: {', '.join(plan.locations)}"
        if lo.order.status is S.PARTIALLY_SHIPPED:
            check_transition(S.PARTIALLY_SHIPPED, S.PARTIALLY_SHIPPED)
            tr = OrderTransition(
                lo.order.id, S.PARTIALLY_SHIPPED, S.PARTIALLY_SHIPPED, at, ORDER_EVENTS[S.ROUTED], detail
            )
        else:
            tr = lo.order.route(at, detail)
        lo.row["route_seq"] = seq
        self._save_status(tx, lo, now, route_seq=seq)
        return self._transition_event(
            lo.row,
            tr,
            cause=cause,
            method=plan.method,
            locations=list(plan.locations),
            shipments=plan.shipments,
            shipping_cost=plan.shipping_cost,
            allocations=[{"line_id": a.line_id, "location": a.location, "qty": a.qty} for a in plan.allocations],
        )

    def _route_in(self, tx: Tx, cfg: Config, lo: _Loaded, now: int, cause: str) -> RoutePlan:
        router = Router(self.network(tx, cfg, now), self.router_config)
        ro = self._route_order(lo, now)
        stock = self._available(tx, (ln.sku for ln in ro.lines))
        for a in lo.allocs:  # this order's own reservations may move
            if a["qty_reserved"] > 0:
                k = (a["sku_id"], a["location_id"])
                stock[k] = stock.get(k, 0) + a["qty_reserved"]
        plan = router.route(ro, stock)
        note = ""
        if plan.unfilled:
            # the router's rules (e.g. dark stores only for quick commerce) exclude part of what was reserved:
            # keep the reservation made at placement rather than lose units
            note = (
                "router could not place "
                + ", ".join(f"{q} of line {lid}" for lid, q in plan.unfilled)
                + " within the channel's routing rules; kept the reservation made at placement"
            )
            kept = self._current_plan(lo)
            plan = RoutePlan(
                kept.order_id,
                kept.channel,
                kept.allocations,
                (),
                len({a.location for a in kept.allocations}),
                plan.shipping_cost,
                plan.sla_misses,
                plan.objective,
                "kept-reservation",
                plan.explanation,
            )
        self._emit(tx, [self._apply_plan(tx, lo, plan, now, cause, note=note)], now)
        return plan

    def route(self, order_id: str) -> dict[str, Any]:
        """Route (or route again) an order that is reserved or routed and not yet shipping."""
        cfg = self.engine.config()
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            if lo.order.status not in (S.RESERVED, S.ROUTED):
                check_transition(lo.order.status, S.ROUTED)
            self._route_in(tx, cfg, lo, self._now(), cause="manual")
        return self.show(order_id)

    def reroute(self, order_id: str, failed_location: str) -> dict[str, Any]:
        """``failed_location`` cannot ship its part: release those units there and reserve them elsewhere."""
        cfg = self.engine.config()
        if failed_location not in cfg.locations:
            raise NotFound("location", failed_location)
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            if lo.order.status not in (S.ROUTED, S.PARTIALLY_SHIPPED):
                check_transition(lo.order.status, S.ROUTED)
            current = self._current_plan(lo)
            if not any(a.location == failed_location for a in current.allocations):
                raise InvalidInput(f"order {order_id} has nothing waiting to ship at {failed_location}")
            now = self._now()
            router = Router(self.network(tx, cfg, now), self.router_config)
            ro = self._route_order(lo, now)
            stock = self._available(tx, (ln.sku for ln in ro.lines))
            for k in list(stock):
                if k[1] == failed_location:
                    stock[k] = 0
            plan = router.reroute(ro, current, failed_location, stock)
            if plan.unfilled:
                short = ", ".join(f"{q} of line {lid}" for lid, q in plan.unfilled)
                raise InsufficientStock(
                    f"cannot re-route order {order_id} away from {failed_location}: no other eligible location has "
                    f"{short}; cancel the order or receive stock"
                )
            self._emit(tx, [self._apply_plan(tx, lo, plan, now, f"reroute:{failed_location}")], now)
        return self.show(order_id)

    def reoptimise(self, limit: int = MAX_REOPTIMISE) -> dict[str, Any]:
        """Batch re-optimisation of routed, unreleased (nothing shipped) orders against current stock; call it
        when stock changes. Orders whose locations change get one RELEASE + RESERVE batch and an OrderRouted."""
        if not 0 < limit <= MAX_REOPTIMISE:
            raise InvalidInput(f"limit must be 1-{MAX_REOPTIMISE}, got {limit}")
        with self.db.tx() as tx:
            return self.reoptimise_in(tx, limit=limit)

    def reoptimise_in(
        self,
        tx: Tx,
        *,
        limit: int = MAX_REOPTIMISE,
        sku: str | None = None,
        location: str | None = None,
        cause: str = "reoptimised",
    ) -> dict[str, Any]:
        """``reoptimise`` in an open transaction. With ``sku`` (the stock-change subscriber): only orders holding
        units of that SKU somewhere other than ``location`` (where stock went up) — the ones that could move
        there — soonest ship-by first, at most ``limit``."""
        cfg = self.engine.config_in(tx)
        o = ot.orders
        q = sa.select(o).where(o.c.status == S.ROUTED.value)
        if sku is not None:
            oa = ot.order_allocations
            held = sa.select(oa.c.order_id).where(oa.c.sku_id == sku, oa.c.qty_reserved > 0)
            if location is not None:
                held = held.where(oa.c.location_id != location)
            q = q.where(o.c.id.in_(held))
        q = self.sql.lock(q.order_by(o.c.ship_by, o.c.id).limit(limit))
        loaded = [lo for lo in self._assemble(self.sql.rows(tx, q), tx) if not lo.order.shipments]
        if not loaded:
            return {"orders": 0, "changed": [], "method": "none", "objective_before": None, "objective_after": None}
        now = self._now()
        router = Router(self.network(tx, cfg, now), self.router_config)
        ros = [self._route_order(lo, now) for lo in loaded]
        current = {lo.row["id"]: self._current_plan(lo) for lo in loaded}
        stock = self._available(tx, (ln.sku for ro in ros for ln in ro.lines))
        result = router.reoptimise(ros, stock, current)
        changed = [lo for lo in loaded if lo.row["id"] in result.changed and not result.plans[lo.row["id"]].unfilled]
        releases: list[Movement] = []
        reserves: list[Movement] = []
        for lo in changed:
            rel, res = self._moves_for(lo, result.plans[lo.row["id"]], int(lo.row["route_seq"]) + 1)
            releases += rel
            reserves += res
        self.engine.move_batch_in(tx, releases + reserves)
        events = [self._apply_plan(tx, lo, result.plans[lo.row["id"]], now, cause, moves=False) for lo in changed]
        self._emit(tx, events, now)
        return {
            "orders": len(loaded),
            "changed": [lo.row["id"] for lo in changed],
            "method": result.method,
            "objective_before": result.objective_before,
            "objective_after": result.objective_after,
        }

    # ------------------------------------------------------------------ ship, deliver, cancel, refund

    def ship(
        self,
        order_id: str,
        location: str,
        carrier: str,
        tracking: str,
        lines: Mapping[str, int] | None = None,
        shipment_id: str | None = None,
    ) -> dict[str, Any]:
        """A parcel left ``location``: SHIP from committed, the shipment with carrier and tracking, and the ship
        confirmation queued for the channel (``ShipmentOutbox``, plus an ``OrderShipmentRecorded`` event) — one
        transaction. Returns ``show``."""
        self.ship_summary(order_id, location, carrier, tracking, lines, shipment_id)
        return self.show(order_id)

    def ship_summary(
        self,
        order_id: str,
        location: str,
        carrier: str,
        tracking: str,
        lines: Mapping[str, int] | None = None,
        shipment_id: str | None = None,
    ) -> Summary:
        """``ship`` for callers that need only the order's status and shipments (no ``show`` read afterwards)."""
        if not carrier.strip() or not tracking.strip():
            raise InvalidInput("a shipment needs a carrier and a tracking number")
        if len(carrier) > 64 or len(tracking) > 64:
            raise InvalidInput("carrier and tracking number are at most 64 characters")
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            if lo.order.status not in (S.ROUTED, S.PARTIALLY_SHIPPED):
                check_transition(lo.order.status, S.SHIPPED)
            held = {a["line_id"]: a["qty_reserved"] for a in lo.allocs if a["location_id"] == location}
            wanted = dict(lines) if lines else {k: v for k, v in held.items() if v > 0}
            if not wanted:
                raise InvalidInput(f"order {order_id} has nothing waiting to ship at {location}")
            for line_id, q in wanted.items():
                lo.order.line(line_id)  # unknown line → NotFound
                if not isinstance(q, int) or isinstance(q, bool) or q <= 0:
                    raise InvalidInput(
                        f"shipped quantity for line {line_id} must be a positive whole number, got {q!r}"
                    )
                if q > held.get(line_id, 0):
                    raise InvalidInput(
                        f"order {order_id} line {line_id}: shipping {q} from {location} but only "
                        f"{held.get(line_id, 0)} reserved there"
                    )
            now = self._now()
            sid = shipment_id or f"{order_id}-S{len(lo.order.shipments) + 1}"
            if self.sql.fetch_one(tx, "shipment.exists", _q_shipment_exists, {"id": sid}) is not None:
                raise AlreadyExists(f"shipment {sid!r} already exists")
            shipment = DomainShipment(sid, location, wanted, carrier.strip(), tracking.strip(), to_dt(now))
            tr = lo.order.ship(shipment)
            r = lo.row
            sku_of = {ln["line_id"]: ln["sku_id"] for ln in lo.lines}
            base = f"order:{r['channel_id']}:{r['channel_order_id']}"
            ref = f"{r['channel_id']}:{r['channel_order_id']}"
            self.engine.move_batch_in(
                tx,
                [
                    Movement(MovementKind.SHIP, sku_of[lid], location, q, f"{base}:{lid}:ship:{sid}", ref=ref)
                    for lid, q in sorted(wanted.items())
                ],
            )
            for a in lo.allocs:
                q = wanted.get(a["line_id"], 0) if a["location_id"] == location else 0
                if q:
                    self.sql.exec(
                        tx,
                        "order_allocation.shipped",
                        _q_alloc_shipped,
                        {
                            "oid": order_id,
                            "lid": a["line_id"],
                            "loc": location,
                            "qr": a["qty_reserved"] - q,
                            "qs": a["qty_shipped"] + q,
                        },
                    )
            self.sql.exec(
                tx,
                "shipment.insert",
                _q_shipment_insert,
                {
                    "id": sid,
                    "order_id": order_id,
                    "location_id": location,
                    "carrier": shipment.carrier,
                    "tracking": shipment.tracking,
                    "lines": dumps(wanted),
                    "shipped_at": now,
                    "confirm_state": "pending",
                },
            )
            channel_line = {ln["line_id"]: ln.get("channel_line_id") for ln in lo.lines}
            self.shipments.enqueue(
                tx,
                r["channel_id"],
                order_id,
                ShipmentConfirmation(
                    channel_order_id=r["channel_order_id"],
                    shipment_id=sid,
                    carrier=shipment.carrier,
                    tracking=shipment.tracking,
                    shipped_at=to_dt(now),
                    lines=tuple(
                        ShipmentLine(sku_of[lid], q, channel_line.get(lid)) for lid, q in sorted(wanted.items())
                    ),
                    ship_from_location=location,
                ),
                now,
            )
            lo.allocs = self.sql.fetch(tx, "order_allocations", _q_order_allocations, {"oid": order_id})
            self._sync_channel_order_lines(tx, lo)
            self._save_status(tx, lo, now)
            ship_data = {
                "shipment_id": sid,
                "location": location,
                "carrier": shipment.carrier,
                "tracking": shipment.tracking,
                "lines": [{"line_id": lid, "sku": sku_of[lid], "qty": q} for lid, q in sorted(wanted.items())],
            }
            confirmation = ev.Event(
                SHIPMENT_RECORDED,
                r["channel_id"],
                {
                    "channel": r["channel_id"],
                    "channel_order_id": r["channel_order_id"],
                    "order_id": order_id,
                    **ship_data,
                },
            )
            self._emit(tx, [self._transition_event(r, tr, shipment=ship_data), confirmation], now)
        return Summary.of(lo)

    def deliver(self, order_id: str) -> dict[str, Any]:
        self.deliver_summary(order_id)
        return self.show(order_id)

    def deliver_summary(self, order_id: str) -> Summary:
        """``deliver`` for callers that need only the order's status and times (no ``show`` read afterwards)."""
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            now = self._now()
            tr = lo.order.deliver(to_dt(now))
            self._save_status(tx, lo, now)
            self._emit(tx, [self._transition_event(lo.row, tr)], now)
        return Summary.of(lo)

    def cancel(self, order_id: str, reason: CancelReason = CancelReason.SELLER) -> dict[str, Any]:
        """Cancel what has not shipped: every reservation still held is released in the same transaction.
        A seller cancellation is queued for the channel (``channel_orders.cancel_state = pending``)."""
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            now = self._now()
            tr = lo.order.cancel(to_dt(now), reason)
            r = lo.row
            base = f"order:{r['channel_id']}:{r['channel_order_id']}"
            ref = f"{r['channel_id']}:{r['channel_order_id']}"
            moves = [
                Movement(
                    MovementKind.RELEASE,
                    a["sku_id"],
                    a["location_id"],
                    a["qty_reserved"],
                    f"{base}:{a['line_id']}:cancel:{a['location_id']}",
                    reason=f"cancelled ({reason.value})",
                    ref=ref,
                )
                for a in sorted(lo.allocs, key=lambda a: (a["line_id"], a["location_id"]))
                if a["qty_reserved"] > 0
            ]
            self.engine.move_batch_in(tx, moves)
            self.sql.exec(tx, "order_allocations.release", _q_allocs_release, {"oid": order_id})
            self.sql.exec(
                tx,
                "channel_order.cancel",
                _q_channel_order_cancel,
                {
                    "ch": r["channel_id"],
                    "coid": r["channel_order_id"],
                    "status": INGEST_CANCELLED,
                    "reason": f"cancelled by {reason.value}",
                    "cancel": "pending" if reason is CancelReason.SELLER else None,
                    "at": now,
                },
            )
            self._save_status(tx, lo, now)
            released = [{"sku": m.sku, "location": m.location, "qty": m.qty} for m in moves]
            self._emit(tx, [self._transition_event(r, tr, reason=reason.value, released=released)], now)
        return self.show(order_id)

    def refund(self, order_id: str, amount_minor: int | None = None) -> dict[str, Any]:
        """Refund the order (it becomes refunded): ``amount_minor`` (default: all that is left) of what its lines were
        paid — unit price × quantity — less what was refunded already and what RMAs still have pending. More than
        that is rejected and nothing is written."""
        if amount_minor is not None and (
            not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor < 0
        ):
            raise InvalidInput(f"refund amount must be a whole number of minor units ≥ 0, got {amount_minor!r}")
        with self.db.tx() as tx:
            lo = self._load(tx, order_id, lock=True)
            now = self._now()
            r = lo.row
            paid = self._paid_minor(lo)
            refunded, pending = int(r["refunded_minor"]), int(r["refund_pending_minor"])
            left = max(0, paid - refunded - pending)
            amount = left if amount_minor is None else amount_minor
            if amount > left:
                raise InvalidInput(
                    f"refund of {amount} on order {order_id} is more than was paid: {paid} paid, {refunded} refunded "
                    f"already, {pending} pending on returns — at most {left} left"
                )
            tr = lo.order.refund(to_dt(now))
            total = refunded + amount
            self._save_status(
                tx,
                lo,
                now,
                refunded_at=now,
                refunded_minor=total,
                refund_state=order_refund_state(pending, total),
            )
            money = {
                "amount_minor": amount,
                "currency": r["currency"],
                "refunded_total_minor": total,
                "paid_minor": paid,
            }
            self._emit(tx, [self._transition_event(r, tr, **money)], now)
        return self.show(order_id)

    @staticmethod
    def _paid_minor(lo: _Loaded) -> int:
        return sum(int(ln["qty"]) * int(ln["unit_price_minor"]) for ln in lo.lines)

    # ------------------------------------------------------------------ reads

    def show(self, order_id: str) -> dict[str, Any]:
        with self.db.read() as tx:
            lo = self._load(tx, order_id)
            routes = self.sql.rows(
                tx,
                sa.select(
                    ot.order_routes.c.seq,
                    ot.order_routes.c.method,
                    ot.order_routes.c.cause,
                    ot.order_routes.c.shipments,
                    ot.order_routes.c.shipping_cost,
                    ot.order_routes.c.created_at,
                )
                .where(ot.order_routes.c.order_id == order_id)
                .order_by(ot.order_routes.c.seq),
            )
            ships = self.sql.rows(
                tx,
                sa.select(ot.shipments).where(ot.shipments.c.order_id == order_id).order_by(ot.shipments.c.shipped_at),
            )
        r = lo.row
        return {
            "id": r["id"],
            "channel": r["channel_id"],
            "channel_order_id": r["channel_order_id"],
            "status": r["status"],
            "placed_at": r["placed_at"],
            "ship_by": r["ship_by"],
            "destination": {"region": r["dest_region"], "lat": r["dest_lat"], "lon": r["dest_lon"]},
            "cancel_reason": r["cancel_reason"],
            "delivered_at": r["delivered_at"],
            "source": r["source"],
            "currency": r["currency"],
            "hold_reason": r["hold_reason"],
            "refund": {
                "state": r["refund_state"],
                "paid_minor": self._paid_minor(lo),
                "pending_minor": r["refund_pending_minor"],
                "refunded_minor": r["refunded_minor"],
                "currency": r["currency"],
            },
            "lines": [
                {
                    "line_id": ln["line_id"],
                    "sku": ln["sku_id"],
                    "qty": ln["qty"],
                    "unit_price_minor": ln["unit_price_minor"],
                }
                for ln in lo.lines
            ],
            "allocations": self._alloc_json(sorted(lo.allocs, key=lambda a: (a["line_id"], a["location_id"]))),
            "shipments": [
                {
                    "id": s["id"],
                    "location": s["location_id"],
                    "carrier": s["carrier"],
                    "tracking": s["tracking"],
                    "lines": orjson.loads(s["lines"]),
                    "shipped_at": s["shipped_at"],
                    "confirm_state": s["confirm_state"],
                }
                for s in ships
            ],
            "routes": routes,
        }

    def list_orders(
        self, channel: str | None = None, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        if status is not None and status not in {s.value for s in S}:
            raise InvalidInput(f"unknown order status {status!r}; one of {', '.join(s.value for s in S)}")
        if not 0 < limit <= 10_000:
            raise InvalidInput(f"limit must be 1-10000, got {limit}")
        o = ot.orders
        q = sa.select(o.c.id, o.c.channel_id, o.c.status, o.c.placed_at, o.c.ship_by, o.c.hold_reason).order_by(
            o.c.placed_at, o.c.id
        )
        if channel:
            q = q.where(o.c.channel_id == channel)
        if status:
            q = q.where(o.c.status == status)
        with self.db.read() as tx:
            return [
                {
                    "id": r["id"],
                    "channel": r["channel_id"],
                    "status": r["status"],
                    "placed_at": r["placed_at"],
                    "ship_by": r["ship_by"],
                    "hold_reason": r["hold_reason"],
                }
                for r in self.sql.rows(tx, q.limit(limit))
            ]

    def explain(self, order_id: str) -> str:
        """Why each line went where it went: the latest routing decision, after the list of earlier ones."""
        with self.db.read() as tx:
            lo = self._load(tx, order_id)
            routes = self.sql.rows(
                tx,
                sa.select(ot.order_routes)
                .where(ot.order_routes.c.order_id == order_id)
                .order_by(ot.order_routes.c.seq),
            )
        if not routes:
            if lo.row["hold_reason"] and lo.order.status is S.HELD:
                return (
                    f"order {order_id} (held) has not been routed: {lo.row['hold_reason']}; "
                    "fix that, then release it (`accord order release`)"
                )
            return f"order {order_id} ({lo.row['status']}) has not been routed"
        out = [f"order {order_id} ({lo.row['status']}): {len(routes)} routing decision(s)"]
        for r in routes[:-1]:
            out.append(
                f"  #{r['seq']} {r['cause']}: {r['method']}, {r['shipments']} shipment(s), "
                f"cost {r['shipping_cost']:.2f}"
            )
        last = routes[-1]
        out.append(f"latest #{last['seq']} ({last['cause']}):")
        out.append(last["explanation"])
        return "\n".join(out)

    # ------------------------------------------------------------------ SLA and health

    def sla(self, now_ms: int | None = None, *, alert: bool = True) -> list[SlaAssessment]:
        """Evaluate every open order's SLA; returns the at-risk and breached ones. With ``alert``, an order entering
        at_risk or breached gets one ``OrderSlaAtRisk`` / ``OrderSlaBreached`` event (not repeated)."""
        now = now_ms if now_ms is not None else self._now()
        out: list[SlaAssessment] = []
        with self.db.tx() as tx:
            o = ot.orders
            rows = self.sql.rows(tx, sa.select(o).where(o.c.status.in_([s.value for s in OPEN])).order_by(o.c.ship_by))
            policies = {
                r["channel_id"]: SlaPolicy(r["handling_hours"], r["at_risk_hours"])
                for r in self.sql.rows(tx, sa.select(ot.sla_policies))
            }
            events: list[ev.Event] = []
            for lo in self._assemble(rows, tx):
                a = evaluate_sla(lo.order, to_dt(now), policies.get(lo.order.channel, SlaPolicy()))
                if not a.alert:
                    continue
                out.append(a)
                if alert and lo.row["sla_alert"] != a.state.value:
                    self.sql.run(tx, sa.update(o).where(o.c.id == lo.order.id).values(sla_alert=a.state.value))
                    events.append(
                        ev.Event(
                            SLA_EVENTS[a.state],
                            lo.order.id,
                            {
                                "order_id": lo.order.id,
                                "channel": lo.order.channel,
                                "state": a.state.value,
                                "ship_by": to_ms(a.ship_by),
                                "remaining_s": int(a.remaining.total_seconds()),
                            },
                        )
                    )
            self._emit(tx, events, now)
        return out

    def health(self, channel: str | None = None, since_ms: int | None = None) -> list[ChannelHealth]:
        """Cancellation, late-shipment and valid-tracking rates per channel against Amazon's bars."""
        cfg = self.engine.config()
        if channel is not None and channel not in cfg.channels:
            raise NotFound("channel", channel)
        chans = [channel] if channel else sorted(cfg.channels)
        o = ot.orders
        q = sa.select(o).where(o.c.channel_id.in_(chans))
        if since_ms is not None:
            q = q.where(o.c.placed_at >= since_ms)
        with self.db.read() as tx:
            orders = [lo.order for lo in self._assemble(self.sql.rows(tx, q), tx)]
        since = to_dt(since_ms) if since_ms is not None else None
        return [channel_health(ch, orders, since, AMAZON_BARS) for ch in chans]


# ---------------------------------------------------------------------- prepared statements (``Sql.prepared``)


def _q_order() -> sa.Select[Any]:
    return sa.select(ot.orders).where(ot.orders.c.id == b("id"))


def _q_order_exists() -> sa.Select[Any]:
    return sa.select(ot.orders.c.id).where(ot.orders.c.id == b("id"))


def _q_order_lines() -> sa.Select[Any]:
    ol = ot.order_lines
    return sa.select(ol).where(ol.c.order_id == b("oid")).order_by(ol.c.seq)


def _q_order_allocations() -> sa.Select[Any]:
    oa = ot.order_allocations
    return sa.select(oa).where(oa.c.order_id == b("oid"))


def _q_order_shipments() -> sa.Select[Any]:
    sh = ot.shipments
    return sa.select(sh).where(sh.c.order_id == b("oid")).order_by(sh.c.shipped_at, sh.c.id)


def _q_order_update(cols: tuple[str, ...]) -> sa.Update:
    return sa.update(ot.orders).where(ot.orders.c.id == b("_id")).values({c: b(c) for c in cols})


def _binds(cols: Iterable[str]) -> dict[str, Any]:
    return {c: b(c) for c in cols}


def _q_order_insert() -> sa.Insert:
    cols = [
        "id",
        "channel_id",
        "channel_order_id",
        "status",
        "placed_at",
        "ship_by",
        "dest_region",
        "dest_lat",
        "dest_lon",
        "promise_days",
        "route_seq",
        "created_at",
        "updated_at",
        "source",
        "currency",
    ]
    return sa.insert(ot.orders).values(_binds(cols))


def _q_order_line_insert() -> sa.Insert:
    cols = ["order_id", "line_id", "seq", "sku_id", "qty", "unit_price_minor", "channel_line_id"]
    return sa.insert(ot.order_lines).values(_binds(cols))


def _q_alloc_insert() -> sa.Insert:
    cols = ["order_id", "line_id", "location_id", "sku_id", "qty_reserved", "qty_shipped"]
    return sa.insert(ot.order_allocations).values(_binds(cols))


def _alloc_key() -> sa.ColumnElement[bool]:
    oa = ot.order_allocations
    return sa.and_(oa.c.order_id == b("oid"), oa.c.line_id == b("lid"), oa.c.location_id == b("loc"))


def _q_alloc_delete() -> sa.Delete:
    return sa.delete(ot.order_allocations).where(_alloc_key())


def _q_alloc_reserved() -> sa.Update:
    return sa.update(ot.order_allocations).where(_alloc_key()).values(qty_reserved=b("qr"))


def _q_alloc_shipped() -> sa.Update:
    return sa.update(ot.order_allocations).where(_alloc_key()).values(qty_reserved=b("qr"), qty_shipped=b("qs"))


def _q_allocs_release() -> sa.Update:
    oa = ot.order_allocations
    return sa.update(oa).where(oa.c.order_id == b("oid")).values(qty_reserved=sa.literal_column("0"))


def _q_route_insert() -> sa.Insert:
    cols = [
        "order_id",
        "seq",
        "method",
        "allocations",
        "shipments",
        "shipping_cost",
        "sla_misses",
        "objective",
        "explanation",
        "cause",
        "created_at",
    ]
    return sa.insert(ot.order_routes).values(_binds(cols))


def _q_shipment_exists() -> sa.Select[Any]:
    return sa.select(ot.shipments.c.id).where(ot.shipments.c.id == b("id"))


def _q_shipment_insert() -> sa.Insert:
    cols = ["id", "order_id", "location_id", "carrier", "tracking", "lines", "shipped_at", "confirm_state"]
    return sa.insert(ot.shipments).values(_binds(cols))


def _channel_order_key() -> sa.ColumnElement[bool]:
    co = st.channel_orders
    return sa.and_(co.c.channel_id == b("ch"), co.c.channel_order_id == b("coid"))


def _q_channel_order_lines() -> sa.Update:
    return sa.update(st.channel_orders).where(_channel_order_key()).values(lines=b("lines"), updated_at=b("at"))


def _q_channel_order_cancel() -> sa.Update:
    return (
        sa.update(st.channel_orders)
        .where(_channel_order_key())
        .values(status=b("status"), reason=b("reason"), cancel_state=b("cancel"), updated_at=b("at"))
    )


def _q_sla_policy() -> sa.Select[Any]:
    sp = ot.sla_policies
    return sa.select(sp).where(sp.c.channel_id == b("ch"))


def _q_promise_days() -> sa.Select[Any]:
    rc = ot.routing_channels
    return sa.select(rc.c.promise_days).where(rc.c.channel_id == b("ch"))


def _q_routing_locations() -> sa.Select[Any]:
    return sa.select(ot.routing_locations)


def _q_routing_channels() -> sa.Select[Any]:
    return sa.select(ot.routing_channels)


def _q_routing_capacities() -> sa.Select[Any]:
    return sa.select(ot.routing_capacities)


def _q_open_parcels(n: int) -> sa.Select[Any]:
    """Parcels waiting at ``n`` locations (``l0`` …): orders still holding units there (the partial index)."""
    oa = ot.order_allocations
    return (
        sa.select(oa.c.location_id, sa.func.count(sa.distinct(oa.c.order_id)).label("n"))
        .where(oa.c.location_id.in_([b(f"l{k}") for k in range(n)]), oa.c.qty_reserved > sa.literal_column("0"))
        .group_by(oa.c.location_id)
    )


def _q_shipped_since(n: int) -> sa.Select[Any]:
    """Parcels shipped from location ``l{k}`` at or after ``t{k}`` (its local midnight), for ``n`` locations."""
    s = ot.shipments
    return (
        sa.select(s.c.location_id, sa.func.count().label("n"))
        .where(sa.or_(*(sa.and_(s.c.location_id == b(f"l{k}"), s.c.shipped_at >= b(f"t{k}")) for k in range(n))))
        .group_by(s.c.location_id)
    )


def _local_day(timezone: str, now_ms: int) -> tuple[int, float]:
    """A location's local midnight before ``now_ms`` (epoch ms) and the share of its local day gone."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = datetime.fromtimestamp(now_ms / 1000, tz=zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since = int(midnight.timestamp() * 1000)
    return since, min(max((now_ms - since) / DAY_MS, 0.0), 0.999)


def _q_available(n: int) -> sa.Select[Any]:
    """Free stock of ``n`` SKUs (``s0`` … ``s{n-1}``): one placeholder per SKU, like an expanded IN list."""
    bl = t.balances
    return sa.select(bl.c.sku_id, bl.c.location_id, bl.c.on_hand, bl.c.committed).where(
        bl.c.sku_id.in_([b(f"s{k}") for k in range(n)])
    )


def channel_intake(engine: Engine) -> OrderIngestor:
    """The production channel-order intake (webhooks, polling): every ingested order becomes a lifecycle order."""
    return OrderService(engine).ingestor


def health_dict(h: ChannelHealth) -> dict[str, Any]:
    return {
        "channel": h.channel,
        "orders": h.orders,
        "ok": h.ok,
        "metrics": {
            name: {
                "value_pct": m.value_pct,
                "numerator": m.numerator,
                "denominator": m.denominator,
                "bar": m.bar.describe(),
                "ok": m.ok,
            }
            for name, m in h.metrics.items()
        },
    }


def sla_dict(a: SlaAssessment) -> dict[str, Any]:
    return {
        "order_id": a.order_id,
        "state": a.state.value,
        "ship_by": to_ms(a.ship_by),
        "remaining_s": int(a.remaining.total_seconds()),
    }


def parse_time(value: str) -> int:
    """An ISO 8601 time (UTC when no offset) or epoch milliseconds."""
    if value.isdigit():
        return int(value)
    try:
        return to_ms(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput(f"not a time: {value!r} (use ISO 8601 or epoch milliseconds)") from None
