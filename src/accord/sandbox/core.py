"""Sandbox core: channel state, limits, faults, demand model and call recording — protocol-free.

Dialect modules (:mod:`accord.sandbox.dialects`) translate wire requests into these operations; the app
(:mod:`accord.sandbox.app`) wires HTTP, routing, faults and rate limits around them.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

from accord.app.ports import Clock
from accord.connectors.base import Limits, iso_from_ms, limits_for

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# Credentials the sandbox accepts for every channel unless a spec overrides them (also what connectors should use).
DEFAULT_CREDENTIALS: dict[str, str] = {
    "access_token": "sandbox-token",
    "app_secret": "sandbox-app-secret",
    "partner_id": "100001",
    "partner_key": "sandbox-partner-key",
    "shop_id": "200001",
    "app_key": "300001",
}


# ------------------------------------------------------------------------------------------------ configuration


@dataclass
class ListingSpec:
    sku: str
    qty: int = 0
    title: str = ""
    description: str = ""
    price: str = "10.00"
    demand_per_hour: float = 0.0  # mean buyer orders per virtual hour (Poisson)
    ref: str | None = None  # channel listing id; generated per dialect when None
    product_ref: str | None = None  # Shopify product gid; generated when None


@dataclass
class ChannelSpec:
    channel_id: str
    dialect: str
    listings: list[ListingSpec] = field(default_factory=list)
    currency: str = "USD"
    seller_id: str = "SANDBOXSELLER"
    marketplace_id: str = "ATVPDKIKX0DER"
    location_id: str = "gid://shopify/Location/1"
    credentials: dict[str, str] = field(default_factory=dict)
    limits: Limits | None = None  # default: the dialect's limits.json entry


@dataclass
class SandboxConfig:
    channels: list[ChannelSpec] = field(default_factory=list)
    seed: int = 0
    clock: Clock | None = None  # default ManualClock: virtual time moves only via tick
    enforce_limits: bool = True
    missing_retry_after_rate: float = 0.0  # share of 429s sent without Retry-After
    feed_processing_ms: int = 60_000  # virtual time a feed takes to be processed
    max_call_records: int = 100_000
    max_webhooks_per_channel: int = 10_000


@dataclass
class Faults:
    """Per-channel fault injection. Rates are drawn from the sandbox's seeded RNG; ``script`` entries are consumed
    one per call, in order (``"429"``, ``"500"``, ``"503"``, ``"timeout"``, ``"malformed"``)."""

    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    malformed_rate: float = 0.0
    latency_ms: int = 0
    hang_s: float = 30.0
    omit_retry_after: bool = False
    script: list[str] = field(default_factory=list)
    stock_lock_until_ms: int | None = None  # campaign lock: stock writes rejected until then
    locked_skus: list[str] = field(default_factory=list)  # empty with a lock time: every SKU


# ---------------------------------------------------------------------------------------------------- state


@dataclass
class Listing:
    sku: str
    ref: str
    product_ref: str
    qty: int
    title: str
    description: str
    price: Decimal
    demand_per_hour: float
    attributes: dict[str, Any] = field(default_factory=dict)
    revisions_by_day: dict[int, int] = field(default_factory=dict)
    updated_ms: int = 0


@dataclass
class Order:
    seq: int
    order_id: str
    channel_id: str
    created_ms: int
    sku: str
    ref: str
    qty: int
    unit_price: Decimal
    currency: str
    shown_qty: int  # what the listing showed when the buyer bought
    status: str = "new"  # new | partially_shipped | shipped | cancelled
    # seller-side fulfilment: ship confirmations received (key, carrier, tracking, qty, at) and cancelled units
    shipments: list[dict[str, Any]] = field(default_factory=list)
    cancelled_qty: int = 0
    cancel_reason: str | None = None
    cancelled_units: set[int] = field(default_factory=set)  # per-unit dialects (Lazada order items)

    @property
    def created_iso(self) -> str:
        return iso_from_ms(self.created_ms)

    @property
    def shipped_qty(self) -> int:
        return sum(int(s["qty"]) for s in self.shipments)

    @property
    def open_qty(self) -> int:
        """Units neither shipped nor cancelled."""
        return self.qty - self.shipped_qty - self.cancelled_qty

    @property
    def sold_qty(self) -> int:
        """Units that count as sold: a cancelled unit does not."""
        return self.qty - self.cancelled_qty

    def shipment(self, key: str) -> dict[str, Any] | None:
        return next((s for s in self.shipments if s["key"] == key), None)

    def ship(self, key: str, carrier: str, tracking: str, qty: int, at_ms: int) -> str | None:
        """Record a ship confirmation of ``qty`` units; idempotent by ``key`` (the dialect's natural key for one
        package). Returns an error text (nothing recorded) or None."""
        if self.shipment(key) is not None:
            return None
        if not carrier or not tracking:
            return "carrier and tracking number are required"
        if qty <= 0:
            return "quantity must be positive"
        if self.status == "cancelled":
            return f"order {self.order_id} is cancelled"
        if qty > self.open_qty:
            return f"order {self.order_id} has {self.open_qty} unit(s) left to ship, not {qty}"
        self.shipments.append({"key": key, "carrier": carrier, "tracking": tracking, "qty": qty, "at_ms": at_ms})
        self._settle()
        return None

    def add_parcel(self, key: str, carrier: str, tracking: str, at_ms: int) -> str | None:
        """Another parcel for units a parcel already confirmed (dialects whose parcels name line items, not
        quantities: a line packed in two boxes or sent from two locations). Idempotent by ``key``; no units move.
        Returns an error text (nothing recorded) or None."""
        if self.shipment(key) is not None:
            return None
        if not carrier or not tracking:
            return "carrier and tracking number are required"
        if self.status == "cancelled":
            return f"order {self.order_id} is cancelled"
        if not self.shipped_qty:
            return f"order {self.order_id} has no shipped units for another parcel"
        self.shipments.append({"key": key, "carrier": carrier, "tracking": tracking, "qty": 0, "at_ms": at_ms})
        return None

    def cancel(self, reason: str, qty: int | None = None) -> str | None:
        """Cancel ``qty`` open units (default: all). Repeating a full cancellation is a no-op; shipped units cannot
        be cancelled. Returns an error text or None."""
        if self.status == "cancelled":
            return None
        if self.shipped_qty and qty is None:
            return f"order {self.order_id} has shipped units and cannot be cancelled"
        take = self.open_qty if qty is None else qty
        if take <= 0 or take > self.open_qty:
            return f"order {self.order_id} has {self.open_qty} open unit(s), cannot cancel {take}"
        self.cancelled_qty += take
        self.cancel_reason = reason
        self._settle()
        return None

    def _settle(self) -> None:
        if self.cancelled_qty >= self.qty:
            self.status = "cancelled"
        elif self.open_qty == 0:
            self.status = "shipped"
        elif self.shipped_qty:
            self.status = "partially_shipped"


@dataclass(frozen=True, slots=True)
class CallRecord:
    seq: int
    time_ms: int
    channel: str
    dialect: str
    operation: str
    method: str
    path: str
    status: int
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time_ms": self.time_ms,
            "channel": self.channel,
            "dialect": self.dialect,
            "operation": self.operation,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "fault": self.fault,
        }


class WriteError(StrEnum):
    NOT_FOUND = "not_found"
    LOCKED = "locked"
    DAILY_CAP = "daily_cap"
    INVALID = "invalid"
    CAS_MISMATCH = "cas_mismatch"


class TokenBucket:
    def __init__(self, rate_per_s: float, burst: float, now_ms: int) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = burst
        self.tokens = float(burst)
        self.last_ms = now_ms

    def refill(self, now_ms: int) -> None:
        if now_ms > self.last_ms:
            self.tokens = min(self.capacity, self.tokens + (now_ms - self.last_ms) / 1000 * self.rate_per_s)
            self.last_ms = now_ms

    def take(self, now_ms: int, cost: float = 1.0) -> float | None:
        """Spend ``cost``; None on success, else seconds until it would be affordable."""
        self.refill(now_ms)
        if self.tokens >= cost:
            self.tokens -= cost
            return None
        return (cost - self.tokens) / self.rate_per_s if self.rate_per_s > 0 else math.inf


@dataclass
class AmazonFeed:
    feed_id: str
    document_id: str
    created_ms: int
    marketplace_ids: list[str]
    status: str = "IN_QUEUE"
    result_document_id: str | None = None
    done_ms: int | None = None
    feed_type: str = "JSON_LISTINGS_FEED"


@dataclass
class WalmartFeed:
    feed_id: str
    created_ms: int
    items: list[tuple[str, int]]
    status: str = "RECEIVED"
    succeeded: int = 0
    failed: int = 0


class ChannelState:
    def __init__(self, spec: ChannelSpec, clock: Clock) -> None:
        self.spec = spec
        self.channel_id = spec.channel_id
        self.dialect = spec.dialect
        self.limits = spec.limits or limits_for(spec.dialect)
        self.credentials = {**DEFAULT_CREDENTIALS, **spec.credentials}
        self.clock = clock
        self.listings: dict[str, Listing] = {}
        self.orders: list[Order] = []
        self.faults = Faults()
        self.buckets: dict[str, TokenBucket] = {}
        self.cost_bucket: TokenBucket | None = None
        if self.limits.cost_bucket_size:
            self.cost_bucket = TokenBucket(
                self.limits.cost_restore_per_s or 1.0, self.limits.cost_bucket_size, clock.now_ms()
            )
        self.documents: dict[str, bytes | None] = {}
        self.amazon_feeds: dict[str, AmazonFeed] = {}
        self.walmart_feeds: dict[str, WalmartFeed] = {}
        self.webhooks: deque[dict[str, Any]] = deque()
        self.idempotency: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        self.lost_demand = 0
        self._counter = 0

    def next_id(self) -> int:
        self._counter += 1
        return self._counter

    def bucket(self, operation: str) -> TokenBucket:
        b = self.buckets.get(operation)
        if b is None:
            op = self.limits.for_operation(operation)
            b = self.buckets[operation] = TokenBucket(op.rate_per_s, op.burst, self.clock.now_ms())
        return b

    def order(self, order_id: str) -> Order | None:
        return next((o for o in self.orders if o.order_id == order_id), None)

    def by_ref(self, ref: str) -> Listing | None:
        return next((li for li in self.listings.values() if li.ref == ref), None)

    def by_product_ref(self, ref: str) -> Listing | None:
        return next((li for li in self.listings.values() if li.product_ref == ref), None)

    def is_locked(self, sku: str) -> bool:
        until = self.faults.stock_lock_until_ms
        if until is None or self.clock.now_ms() >= until:
            return False
        return not self.faults.locked_skus or sku in self.faults.locked_skus

    def count_revision(self, listing: Listing) -> WriteError | None:
        cap = self.limits.daily_updates_per_listing
        day = self.clock.now_ms() // DAY_MS
        used = listing.revisions_by_day.get(day, 0)
        if cap is not None and used >= cap:
            return WriteError.DAILY_CAP
        listing.revisions_by_day = {day: used + 1}
        listing.updated_ms = self.clock.now_ms()
        return None

    def check_qty(self, listing: Listing | None, qty: Any, expected: int | None = None) -> WriteError | None:
        if listing is None:
            return WriteError.NOT_FOUND
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            return WriteError.INVALID
        if self.is_locked(listing.sku):
            return WriteError.LOCKED
        if expected is not None and expected != listing.qty:
            return WriteError.CAS_MISMATCH
        cap = self.limits.daily_updates_per_listing
        if cap is not None and listing.revisions_by_day.get(self.clock.now_ms() // DAY_MS, 0) >= cap:
            return WriteError.DAILY_CAP
        return None

    def set_qty(self, listing: Listing | None, qty: Any, expected: int | None = None) -> WriteError | None:
        err = self.check_qty(listing, qty, expected)
        if err is not None or listing is None:
            return err
        self.count_revision(listing)
        listing.qty = int(qty)
        return None

    def wrong_currency(self, currency: object) -> bool:
        """A price write names a currency other than the channel's (every listing shows the channel's currency;
        a marketplace account never converts). An absent currency means the channel's."""
        return currency is not None and currency != self.spec.currency

    def remember(self, key: str, fingerprint: str, response: Any, max_entries: int = 10_000) -> None:
        self.idempotency[key] = (fingerprint, response)
        while len(self.idempotency) > max_entries:
            self.idempotency.popitem(last=False)


# --------------------------------------------------------------------------------------------------- helpers


def ref_for(dialect: str, n: int) -> str:
    if dialect == "shopify":
        return f"gid://shopify/InventoryItem/{40_000 + n}"
    if dialect == "mercadolibre":
        return f"MLA{900_000_000 + n}"
    if dialect == "amazon":
        return f"B0SANDBOX{n:03d}"
    return str(1_000_000 + n)


def order_id_for(dialect: str, seq: int) -> str:
    if dialect == "amazon":
        return f"111-{seq:07d}-{(seq * 7919) % 10_000_000:07d}"
    if dialect == "shopify":
        return f"gid://shopify/Order/{5_000_000 + seq}"
    if dialect == "ebay":
        return f"27-{seq:05d}-{(seq * 31) % 100_000:05d}"
    if dialect == "shopee":
        return f"2601{seq:06d}SBX"
    if dialect == "allegro":
        return f"29b4ac1a-0000-11ee-8000-{seq:012d}"
    return str(7_000_000_000 + seq)


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def parse_form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


GRAPHQL_IDEMPOTENT = re.compile(r"@idempotent\(\s*key:\s*(?:\$(\w+)|\"([^\"]*)\")\s*\)")


@dataclass
class Hooks:
    """Callbacks dialect modules register (order placed → webhook, feeds processed on tick)."""

    on_order: list[Callable[[ChannelState, Order], None]] = field(default_factory=list)
    on_time: list[Callable[[ChannelState, int], None]] = field(default_factory=list)


def listing_from_spec(dialect: str, spec: ListingSpec, n: int) -> Listing:
    return Listing(
        sku=spec.sku,
        ref=spec.ref or ref_for(dialect, n),
        product_ref=spec.product_ref or (f"gid://shopify/Product/{80_000 + n}" if dialect == "shopify" else ""),
        qty=spec.qty,
        title=spec.title or spec.sku,
        description=spec.description,
        price=Decimal(spec.price),
        demand_per_hour=spec.demand_per_hour,
    )


def summarize(channel: ChannelState) -> Mapping[str, Any]:
    return {
        "channel_id": channel.channel_id,
        "dialect": channel.dialect,
        "listings": {
            sku: {
                "qty": li.qty,
                "ref": li.ref,
                "title": li.title,
                "description": li.description,
                "price": str(li.price),
                "currency": channel.spec.currency,
                "attributes": li.attributes,
            }
            for sku, li in sorted(channel.listings.items())
        },
        "orders": len(channel.orders),
        "lost_demand": channel.lost_demand,
        "sold_units": sum(o.sold_qty for o in channel.orders),
        "shipped_orders": sum(1 for o in channel.orders if o.status == "shipped"),
        "cancelled_orders": sum(1 for o in channel.orders if o.status == "cancelled"),
    }
