"""Order rules: the lifecycle state machine, per-channel SLA and per-channel health.

Pure and stdlib only. An :class:`Order` here is the rule-bearing value the app layer loads, changes through
these methods and stores; every accepted transition returns an :class:`OrderTransition` carrying the
past-tense event name the handler writes to the outbox. Nothing here does I/O or reads a clock: times come in.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from accord.domain.errors import InvalidInput, NotFound


class OrderStatus(StrEnum):
    PLACED = "placed"
    HELD = "held"  # a channel order Accord cannot take yet (unknown SKU, unconfigured channel): kept, releasable
    RESERVED = "reserved"  # stock committed at once so every other channel drops
    ROUTED = "routed"  # fulfilling locations chosen
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


S = OrderStatus

# from → the states it may move to
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PLACED: frozenset({S.RESERVED, S.HELD, S.CANCELLED}),
    # released once the cause is fixed: reserved (then routed), or cancelled when stock is short
    S.HELD: frozenset({S.RESERVED, S.CANCELLED}),
    S.RESERVED: frozenset({S.ROUTED, S.CANCELLED}),
    # routed → routed is a re-route (a location failed to ship, or batch re-optimisation moved it)
    S.ROUTED: frozenset({S.ROUTED, S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED}),
    # cancelling a partially shipped order cancels the unshipped remainder
    S.PARTIALLY_SHIPPED: frozenset({S.PARTIALLY_SHIPPED, S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset({S.REFUNDED}),  # a paid order that was cancelled is then refunded
    S.REFUNDED: frozenset(),
}

TERMINAL: frozenset[OrderStatus] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)

ORDER_EVENTS: dict[OrderStatus, str] = {
    S.PLACED: "OrderPlaced",
    S.HELD: "OrderHeld",
    S.RESERVED: "OrderReserved",
    S.ROUTED: "OrderRouted",
    S.PARTIALLY_SHIPPED: "OrderPartiallyShipped",
    S.SHIPPED: "OrderShipped",
    S.DELIVERED: "OrderDelivered",
    S.CANCELLED: "OrderCancelled",
    S.REFUNDED: "OrderRefunded",
}


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    """Raise InvalidInput naming both states when ``current → target`` is not allowed."""
    allowed = TRANSITIONS[current]
    if target not in allowed:
        options = ", ".join(sorted(s.value for s in allowed)) or "nothing (terminal state)"
        raise InvalidInput(
            f"order cannot go from {current.value} to {target.value}; from {current.value} it may go to {options}"
        )


class CancelReason(StrEnum):
    SELLER = "seller"  # out of stock, cannot ship — counts against the channel's cancellation rate
    BUYER = "buyer"  # buyer asked — does not count
    CHANNEL = "channel"  # marketplace cancelled (fraud, payment) — does not count


@dataclass(frozen=True, slots=True)
class OrderLine:
    line_id: str
    sku: str
    qty: int

    def check(self) -> None:
        if not self.line_id:
            raise InvalidInput("order line needs an id")
        if not self.sku:
            raise InvalidInput(f"order line {self.line_id} needs a SKU")
        if not isinstance(self.qty, int) or isinstance(self.qty, bool) or self.qty <= 0:
            raise InvalidInput(f"order line {self.line_id}: quantity must be a positive whole number, got {self.qty!r}")


@dataclass(frozen=True, slots=True)
class Shipment:
    """One parcel: which units of which lines left which location, with carrier and tracking."""

    shipment_id: str
    location: str
    lines: Mapping[str, int]  # line_id → units
    carrier: str
    tracking: str
    shipped_at: datetime


@dataclass(frozen=True, slots=True)
class OrderTransition:
    """An accepted transition: the outbox event a handler writes."""

    order_id: str
    from_status: OrderStatus
    to_status: OrderStatus
    at: datetime
    event: str
    detail: str = ""


_TRACKING = re.compile(r"^[A-Z0-9][A-Z0-9-]{6,38}[A-Z0-9]$")


def is_valid_tracking(carrier: str, tracking: str) -> bool:
    """Shape check in the spirit of Amazon's valid-tracking rate: a named carrier and a plausible number."""
    return bool(carrier.strip()) and bool(_TRACKING.match(tracking.strip().upper()))


@dataclass(slots=True)
class Order:
    id: str
    channel: str
    placed_at: datetime
    lines: tuple[OrderLine, ...]
    ship_by: datetime
    status: OrderStatus = OrderStatus.PLACED
    shipments: list[Shipment] = field(default_factory=list)
    cancel_reason: CancelReason | None = None
    cancelled_at: datetime | None = None
    delivered_at: datetime | None = None
    history: list[OrderTransition] = field(default_factory=list)

    # ── queries ────────────────────────────────────────────────────────────
    def line(self, line_id: str) -> OrderLine:
        for ln in self.lines:
            if ln.line_id == line_id:
                return ln
        raise NotFound("order line", f"{self.id}/{line_id}")

    def qty_shipped(self, line_id: str) -> int:
        return sum(s.lines.get(line_id, 0) for s in self.shipments)

    def qty_open(self, line_id: str) -> int:
        return self.line(line_id).qty - self.qty_shipped(line_id)

    @property
    def fully_shipped(self) -> bool:
        return all(self.qty_open(ln.line_id) == 0 for ln in self.lines)

    @property
    def last_shipped_at(self) -> datetime | None:
        return max((s.shipped_at for s in self.shipments), default=None)

    # ── transitions ────────────────────────────────────────────────────────
    def _move(self, target: OrderStatus, at: datetime, detail: str = "") -> OrderTransition:
        check_transition(self.status, target)
        t = OrderTransition(self.id, self.status, target, at, ORDER_EVENTS[target], detail)
        self.status = target
        self.history.append(t)
        return t

    def hold(self, at: datetime, reason: str) -> OrderTransition:
        return self._move(S.HELD, at, reason)

    def reserve(self, at: datetime) -> OrderTransition:
        return self._move(S.RESERVED, at)

    def route(self, at: datetime, detail: str = "") -> OrderTransition:
        """Record that locations were chosen (again, for a re-route)."""
        return self._move(S.ROUTED, at, detail)

    def ship(self, shipment: Shipment) -> OrderTransition:
        """Record a parcel; the order becomes partially_shipped or shipped. Over-shipping a line is an error."""
        if not shipment.lines:
            raise InvalidInput(f"shipment {shipment.shipment_id} of order {self.id} has no lines")
        if any(s.shipment_id == shipment.shipment_id for s in self.shipments):
            raise InvalidInput(f"shipment {shipment.shipment_id} already recorded on order {self.id}")
        for line_id, qty in shipment.lines.items():
            if qty <= 0:
                raise InvalidInput(f"shipment {shipment.shipment_id}: quantity for line {line_id} must be positive")
            open_qty = self.qty_open(line_id)
            if qty > open_qty:
                raise InvalidInput(
                    f"shipment {shipment.shipment_id}: {qty} of line {line_id} but only {open_qty} still to ship"
                )
        target = S.SHIPPED
        # decide the target before recording so a rejected transition leaves the order untouched
        remaining = {ln.line_id: self.qty_open(ln.line_id) - shipment.lines.get(ln.line_id, 0) for ln in self.lines}
        if any(v > 0 for v in remaining.values()):
            target = S.PARTIALLY_SHIPPED
        check_transition(self.status, target)
        self.shipments.append(shipment)
        return self._move(target, shipment.shipped_at, f"{shipment.carrier} {shipment.tracking}")

    def deliver(self, at: datetime) -> OrderTransition:
        t = self._move(S.DELIVERED, at)
        self.delivered_at = at
        return t

    def cancel(self, at: datetime, reason: CancelReason) -> OrderTransition:
        t = self._move(S.CANCELLED, at, reason.value)
        self.cancel_reason = reason
        self.cancelled_at = at
        return t

    def refund(self, at: datetime) -> OrderTransition:
        return self._move(S.REFUNDED, at)


def new_order(
    order_id: str,
    channel: str,
    placed_at: datetime,
    lines: Iterable[OrderLine],
    ship_by: datetime,
    *,
    known_channels: Collection[str] | None = None,
    known_skus: Collection[str] | None = None,
) -> tuple[Order, OrderTransition]:
    """Validate and create a placed order. Unknown channel/SKU → NotFound; bad quantities → InvalidInput."""
    if not order_id:
        raise InvalidInput("order needs an id")
    if known_channels is not None and channel not in known_channels:
        raise NotFound("channel", channel)
    line_tuple = tuple(lines)
    if not line_tuple:
        raise InvalidInput(f"order {order_id} has no lines")
    seen: set[str] = set()
    for ln in line_tuple:
        ln.check()
        if ln.line_id in seen:
            raise InvalidInput(f"order {order_id} repeats line id {ln.line_id}")
        seen.add(ln.line_id)
        if known_skus is not None and ln.sku not in known_skus:
            raise NotFound("SKU", ln.sku)
    if ship_by < placed_at:
        raise InvalidInput(f"order {order_id}: ship-by {ship_by.isoformat()} is before it was placed")
    order = Order(order_id, channel, placed_at, line_tuple, ship_by)
    t = OrderTransition(order_id, S.PLACED, S.PLACED, placed_at, ORDER_EVENTS[S.PLACED])
    order.history.append(t)
    return order, t


# ── money ────────────────────────────────────────────────────────────────────

# ISO 4217 minor-unit exponents that differ from 2
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND"), 0),
    **dict.fromkeys(("VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}


def currency_exponent(currency: str | None) -> int:
    return _EXPONENTS.get((currency or "").upper(), 2)


def to_minor(amount: Decimal, currency: str | None) -> int:
    """A price in major units (``Decimal('12.34')``) as minor units of ``currency`` (1234), half-up."""
    if not amount.is_finite():
        raise InvalidInput(f"not a price: {amount}")
    return int(amount.scaleb(currency_exponent(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(minor: int, currency: str | None) -> Decimal:
    return Decimal(minor).scaleb(-currency_exponent(currency))


# ── SLA ──────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """A channel's handling time when the channel does not send its own ship-by, and the at-risk warning."""

    handling_hours: int = 24
    at_risk_hours: int = 4

    def check(self) -> None:
        if self.handling_hours <= 0:
            raise InvalidInput(f"handling time must be positive, got {self.handling_hours} h")
        if self.at_risk_hours < 0:
            raise InvalidInput(f"at-risk warning must be zero or more, got {self.at_risk_hours} h")


def ship_by_for(placed_at: datetime, channel_ship_by: datetime | None, policy: SlaPolicy) -> datetime:
    """The channel's ship-by when it sends one, otherwise placed + the policy's handling time."""
    if channel_ship_by is not None:
        return channel_ship_by
    return placed_at + timedelta(hours=policy.handling_hours)


class SlaState(StrEnum):
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"  # not shipped and ship-by is within the warning window
    BREACHED = "breached"  # not shipped and ship-by has passed
    MET = "met"  # shipped in full by ship-by
    MISSED = "missed"  # shipped in full, late
    CLOSED = "closed"  # cancelled or refunded before shipping in full


@dataclass(frozen=True, slots=True)
class SlaAssessment:
    order_id: str
    state: SlaState
    ship_by: datetime
    remaining: timedelta  # negative once breached

    @property
    def alert(self) -> bool:
        return self.state in (SlaState.AT_RISK, SlaState.BREACHED)


def evaluate_sla(order: Order, now: datetime, policy: SlaPolicy) -> SlaAssessment:
    remaining = order.ship_by - now
    if order.shipments and order.fully_shipped:
        last = order.last_shipped_at
        assert last is not None
        state = SlaState.MET if last <= order.ship_by else SlaState.MISSED
        return SlaAssessment(order.id, state, order.ship_by, order.ship_by - last)
    if order.status in (S.CANCELLED, S.REFUNDED):
        return SlaAssessment(order.id, SlaState.CLOSED, order.ship_by, remaining)
    if now > order.ship_by:
        state = SlaState.BREACHED
    elif remaining <= timedelta(hours=policy.at_risk_hours):
        state = SlaState.AT_RISK
    else:
        state = SlaState.ON_TRACK
    return SlaAssessment(order.id, state, order.ship_by, remaining)


# ── channel health ───────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class HealthBar:
    metric: str
    threshold_pct: float
    higher_is_better: bool

    def passes(self, value_pct: float) -> bool:
        return value_pct >= self.threshold_pct if self.higher_is_better else value_pct < self.threshold_pct

    def describe(self) -> str:
        return f"{'≥' if self.higher_is_better else '<'} {self.threshold_pct:g} %"


# Amazon's seller-performance targets
AMAZON_BARS: dict[str, HealthBar] = {
    "cancellation_rate": HealthBar("cancellation_rate", 2.5, higher_is_better=False),
    "late_shipment_rate": HealthBar("late_shipment_rate", 4.0, higher_is_better=False),
    "valid_tracking_rate": HealthBar("valid_tracking_rate", 95.0, higher_is_better=True),
}


@dataclass(frozen=True, slots=True)
class HealthMetric:
    metric: str
    value_pct: float | None  # None when there is nothing to measure yet
    numerator: int
    denominator: int
    bar: HealthBar

    @property
    def ok(self) -> bool:
        return self.value_pct is None or self.bar.passes(self.value_pct)


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    channel: str
    orders: int
    metrics: dict[str, HealthMetric]

    @property
    def ok(self) -> bool:
        return all(m.ok for m in self.metrics.values())

    def failing(self) -> list[str]:
        return [name for name, m in self.metrics.items() if not m.ok]


def _metric(name: str, num: int, den: int, bars: Mapping[str, HealthBar]) -> HealthMetric:
    value = None if den == 0 else round(100.0 * num / den, 4)
    return HealthMetric(name, value, num, den, bars[name])


def channel_health(
    channel: str,
    orders: Iterable[Order],
    since: datetime | None = None,
    bars: Mapping[str, HealthBar] = AMAZON_BARS,
) -> ChannelHealth:
    """Seller-cancellation, late-shipment and valid-tracking rates of one channel's orders placed since ``since``.

    * cancellation rate: seller-cancelled orders / orders;
    * late-shipment rate: orders with a shipment after ship-by / orders with a shipment;
    * valid-tracking rate: shipments with a carrier and plausible tracking number / shipments.
    """
    n_orders = n_cancelled = n_with_shipment = n_late = n_shipments = n_valid = 0
    for o in orders:
        if o.channel != channel or (since is not None and o.placed_at < since):
            continue
        n_orders += 1
        if o.status in (S.CANCELLED, S.REFUNDED) and o.cancel_reason is CancelReason.SELLER:
            n_cancelled += 1
        if o.shipments:
            n_with_shipment += 1
            if any(s.shipped_at > o.ship_by for s in o.shipments):
                n_late += 1
        for s in o.shipments:
            n_shipments += 1
            n_valid += is_valid_tracking(s.carrier, s.tracking)
    metrics = {
        "cancellation_rate": _metric("cancellation_rate", n_cancelled, n_orders, bars),
        "late_shipment_rate": _metric("late_shipment_rate", n_late, n_with_shipment, bars),
        "valid_tracking_rate": _metric("valid_tracking_rate", n_valid, n_shipments, bars),
    }
    return ChannelHealth(channel, n_orders, metrics)
