"""A reproducible brand for the simulator: catalogue, locations, 32 channels, stock, inbound POs and demand.

Everything is drawn from one ``random.Random(seed)``; nothing reads the wall clock. The same seed and parameters
give the same world, down to the last title. ``install_world`` writes it through the engine's public API.

The demand model is a rate per SKU × channel (the channel fixes the region) and virtual minute:

    rate = base(SKU) × share(channel) × hot(region, category) × weekly(region, weekday) × diurnal(local hour)
           + base(SKU) × (flash(channel, SKU, t) + viral(channel, SKU, t)) × weekly × diurnal

``base`` follows a Zipf law over a seeded popularity ranking (the classic shape of retail demand: the top few % of
SKUs carry most of the units) and has an intermittent long tail (rare orders, sometimes of several units). Fast
movers (the head) are stocked lean — a few days of cover, replenished by frequent purchase orders — as a brand that
turns its best sellers quickly does; the tail carries more days of cover. The surges add demand in multiples of
a SKU's all-channel base rate: the flash sale on a few head SKUs on one channel for three hours (a front-page deal
pulls buyers from everywhere; a small halo on the region's other channels), the viral surge on a few head SKUs in one
city's region for a day (every channel there, and its quick-commerce channel). Dark stores carry head SKUs only,
topped up every morning from the city's supply.

Stock is meant to be what a competent brand holds, so that demand goes unmet mostly because of how stale the channels
are, not because the stock is not there: every SKU has at least a case pack in each regional hub; other SKUs reorder
before their cover runs out (a few purchase orders land late); channels fall back to a neighbouring region's hub
(cross-border, longer transit); deal stock arrives before the lightning deal and an expedited replenishment during
the viral surge, neither covering every unit.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from accord.domain.availability import Channel, Location, LocationKind, StockPolicy
from accord.sync.world import CHANNELS as SYNC_CHANNELS
from accord.sync.world import REGIONS

DAY_MIN = 1440
WORLD_VERSION = 3

# category -> (return rate, price range in USD, size axis, colour count)
CATEGORIES: dict[str, tuple[float, tuple[float, float], tuple[str, ...], int]] = {
    "apparel": (0.24, (15.0, 80.0), ("XS", "S", "M", "L", "XL"), 4),
    "footwear": (0.18, (40.0, 160.0), ("38", "39", "40", "41", "42", "43"), 3),
    "home": (0.06, (10.0, 120.0), ("std",), 5),
    "electronics": (0.09, (25.0, 400.0), ("std",), 4),
    "beauty": (0.03, (8.0, 60.0), ("50ml", "100ml"), 4),
    "toys": (0.05, (10.0, 90.0), ("std",), 5),
}
ADJECTIVES = ("Organic", "Classic", "Urban", "Alpine", "Coastal", "Studio", "Everyday", "Nordic", "Solar", "Pro")
NOUNS: dict[str, tuple[str, ...]] = {
    "apparel": ("tee", "hoodie", "chino", "parka", "polo", "cardigan"),
    "footwear": ("runner", "sneaker", "boot", "sandal", "loafer"),
    "home": ("mug", "lamp", "throw", "vase", "cutting board", "planter"),
    "electronics": ("earbuds", "charger", "speaker", "power bank", "desk lamp"),
    "beauty": ("serum", "cleanser", "sunscreen", "hand cream", "shampoo"),
    "toys": ("puzzle", "building set", "plush", "kite", "board game"),
}
COLOURS = ("black", "white", "navy", "olive", "sand", "red", "grey")

# regional hot spots: (region, category) -> demand multiplier
HOT_SPOTS: dict[tuple[str, str], float] = {
    ("sea", "beauty"): 3.0,
    ("eu", "apparel"): 1.8,
    ("us", "electronics"): 2.0,
    ("latam", "footwear"): 2.2,
    ("anz", "home"): 1.6,
    ("uk", "toys"): 1.7,
}
# region -> UTC offset in hours (for the diurnal curve; a fixed offset is enough for a two-week run)
UTC_OFFSET_H: dict[str, int] = {"us": -5, "ca": -5, "eu": 1, "uk": 0, "pl": 1, "latam": -6, "sea": 8, "anz": 10}
# weekday (0 = Thursday 2026-01-01) -> multiplier; weekends busier on marketplaces
WEEKLY: tuple[float, ...] = (1.0, 1.1, 1.35, 1.3, 0.85, 0.9, 0.95)

# the 32 channels: sync.world's list with its last Allegro channel swapped for a second quick-commerce channel
SIM_CHANNELS: tuple[tuple[str, str, str], ...] = (
    *(c for c in SYNC_CHANNELS if c[0] != "allegro-sk"),
    ("quick-ldn", "shopify", "uk"),
)
# channel -> relative share of its region's demand
CHANNEL_SHARE: dict[str, float] = {"amazon": 1.6, "shopify": 0.8, "ebay": 0.6, "walmart": 0.7}
QUICK_CHANNELS: dict[str, str] = {"quick-nyc": "dark-nyc", "quick-ldn": "dark-ldn"}


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    title: str
    category: str
    brand: str
    description: str
    gtin: str  # some deliberately invalid (bad check digit) or empty
    content_issues: tuple[str, ...]  # known deliberate non-compliance, as plain data until PIM consumes it


@dataclass(frozen=True, slots=True)
class SkuSpec:
    id: str
    product: str
    title: str
    category: str
    price_usd: float
    base_per_day: float  # all-channel mean units per day before multipliers
    long_tail: bool


@dataclass(frozen=True, slots=True)
class PurchaseOrder:
    id: str
    sku: str
    location: str
    qty: int
    arrive_min: int  # virtual minute since the start of the run


@dataclass(frozen=True, slots=True)
class Surge:
    """A demand multiplier on some SKUs and channels during [start_min, end_min)."""

    name: str
    kind: str  # flash_sale | viral
    channels: dict[str, float]  # channel -> extra demand, in multiples of the SKU's all-channel base rate
    skus: tuple[str, ...]
    start_min: int
    end_min: int


@dataclass(frozen=True, slots=True)
class WorldParams:
    products: int = 200
    days: int = 14
    orders_per_day: float = 250.0  # all channels, before weekly/diurnal shape and surges
    stock_days: float = 9.0  # starting cover in days of expected demand (before noise), tail SKUs
    zipf_s: float = 1.0  # demand share of the SKU ranked r is proportional to 1 / r**zipf_s
    head_pct: float = 0.02  # the fast movers (best sellers): this share of SKUs, by rank
    tail_min_units: tuple[int, int] = (1, 4)  # every other SKU starts with at least this many units per hub
    start_out_share: float = 0.03  # share of (non-head SKU, hub) pairs that start out of stock (a PO is on its way)
    late_po_share: float = 0.06  # purchase orders that land later than planned (a stockout until they do)
    surge_stock_share: tuple[float, float] = (0.8, 1.1)  # deal / expedited stock, as a share of the surge's units
    head_cover_days: tuple[float, float] = (1.5, 3.5)  # their starting cover (uniform), lean
    head_po_every_days: float = 2.5  # their replenishment cadence (each PO about this many days of demand)
    # surges add demand in multiples of the SKU's all-channel base rate (the time shape of the channel applies)
    flash_multiplier: float = 40.0  # lightning deal on its channel, for three hours: the deal page pulls buyers in
    flash_halo: float = 2.0  # each of the deal region's other channels, where deal traffic spills over
    viral_multiplier: float = 8.0  # each channel of the viral city's region, for a day
    viral_quick_multiplier: float = 8.0  # the city's quick-commerce channel
    dark_store_restock: tuple[int, int] = (3, 8)  # units topped up per head SKU each morning (uniform)


@dataclass
class SimWorld:
    seed: int
    params: WorldParams
    products: list[Product]
    skus: list[SkuSpec]
    locations: list[Location]
    channels: list[Channel]
    stock: list[tuple[str, str, int]]  # (sku, location, qty) received before the run
    purchase_orders: list[PurchaseOrder]
    surges: list[Surge]
    return_rates: dict[str, float]
    channel_region: dict[str, str] = field(default_factory=dict)
    # derived, for sampling: region -> cumulative SKU weights
    _cum: dict[str, tuple[list[float], float]] = field(default_factory=dict, repr=False)
    _per_day: dict[str, float] = field(default_factory=dict, repr=False)  # channel -> base orders per day

    def sku_index(self) -> dict[str, SkuSpec]:
        return {s.id: s for s in self.skus}

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for loc in self.locations:
            kinds[loc.kind.value] = kinds.get(loc.kind.value, 0) + 1
        return {
            "seed": self.seed,
            "version": WORLD_VERSION,
            "products": len(self.products),
            "skus": len(self.skus),
            "non_compliant_products": sum(1 for p in self.products if p.content_issues),
            "locations": kinds,
            "regions": sorted({loc.region for loc in self.locations}),
            "channels": len(self.channels),
            "dialects": sorted({c.dialect for c in self.channels}),
            "starting_units": sum(q for _, _, q in self.stock),
            "purchase_orders": len(self.purchase_orders),
            "inbound_units": sum(p.qty for p in self.purchase_orders),
            "surges": [
                {"name": s.name, "kind": s.kind, "skus": len(s.skus), "start_min": s.start_min, "end_min": s.end_min}
                for s in self.surges
            ],
            "return_rates": dict(sorted(self.return_rates.items())),
        }

    # ------------------------------------------------------------------ demand

    def _weights(self, region: str) -> tuple[list[float], float]:
        got = self._cum.get(region)
        if got is None:
            cum: list[float] = []
            total = 0.0
            for s in self.skus:
                total += s.base_per_day * HOT_SPOTS.get((region, s.category), 1.0)
                cum.append(total)
            got = self._cum[region] = (cum, total)
        return got

    def channel_factor(self, channel: str) -> float:
        """Share of all demand one channel gets (before time shape)."""
        region = self.channel_region[channel]
        if channel in QUICK_CHANNELS:
            return 0.25 / len(SIM_CHANNELS)
        dialect = next(c.dialect for c in self.channels if c.id == channel)
        return CHANNEL_SHARE.get(dialect, 0.5) * REGION_SIZE.get(region, 1.0) / _SHARE_NORM

    def time_factor(self, channel: str, minute: int) -> float:
        region = self.channel_region[channel]
        local_h = ((minute // 60) + UTC_OFFSET_H.get(region, 0)) % 24
        day = ((minute + UTC_OFFSET_H.get(region, 0) * 60) // DAY_MIN) % 7
        diurnal = 0.35 + 1.3 * math.sin(math.pi * max(0.0, min(1.0, (local_h - 6) / 18))) ** 2
        return WEEKLY[day] * diurnal

    def base_rate_per_min(self, channel: str, minute: int) -> float:
        """Mean orders per minute on one channel from the base model (surges come on top)."""
        per_day = self._per_day.get(channel)
        if per_day is None:
            _cum, total = self._weights(self.channel_region[channel])
            per_day = self.params.orders_per_day * self.channel_factor(channel) * total / self._base_total
            self._per_day[channel] = per_day
        return per_day / DAY_MIN * self.time_factor(channel, minute)

    def pick_sku(self, channel: str, rng: random.Random) -> SkuSpec:
        cum, total = self._weights(self.channel_region[channel])
        i = bisect.bisect_left(cum, rng.random() * total)
        return self.skus[min(i, len(self.skus) - 1)]

    @property
    def _base_total(self) -> float:
        got = self._cum.get("__total__")
        if got is None:
            got = self._cum["__total__"] = ([], sum(s.base_per_day for s in self.skus) or 1.0)
        return got[1]


REGION_SIZE: dict[str, float] = {
    "us": 1.6,
    "ca": 0.5,
    "eu": 1.3,
    "uk": 0.9,
    "pl": 0.5,
    "latam": 0.8,
    "sea": 0.9,
    "anz": 0.6,
}
_SHARE_NORM = sum(
    CHANNEL_SHARE.get(d, 0.5) * REGION_SIZE.get(r, 1.0) for c, d, r in SIM_CHANNELS if c not in QUICK_CHANNELS
)


def _gtin13(rng: random.Random, valid: bool) -> str:
    body = [rng.randint(0, 9) for _ in range(12)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(body)) % 10) % 10
    if not valid:
        check = (check + 1 + rng.randint(0, 8)) % 10
    return "".join(map(str, body)) + str(check)


def sim_locations() -> list[Location]:
    L, K = Location, LocationKind
    return [
        L("dc-us", K.REGIONAL_DC, "us", "US", "America/Chicago"),
        L("dc-eu", K.REGIONAL_DC, "eu", "DE", "Europe/Berlin"),
        L("dc-latam", K.REGIONAL_DC, "latam", "MX", "America/Mexico_City"),
        L("dc-sea", K.REGIONAL_DC, "sea", "SG", "Asia/Singapore"),
        L("wh-us", K.WAREHOUSE, "us", "US", "America/New_York"),
        L("wh-uk", K.WAREHOUSE, "uk", "GB", "Europe/London"),
        L("wh-pl", K.WAREHOUSE, "pl", "PL", "Europe/Warsaw"),
        L("wh-anz", K.WAREHOUSE, "anz", "AU", "Australia/Sydney"),
        L("fba-us", K.PLATFORM_FC, "us", "US", "America/Los_Angeles", owner_channel="amazon-us"),
        L("fba-de", K.PLATFORM_FC, "eu", "DE", "Europe/Berlin", owner_channel="amazon-de"),
        L("fba-uk", K.PLATFORM_FC, "uk", "GB", "Europe/London", owner_channel="amazon-uk"),
        L("wfs-us", K.PLATFORM_FC, "us", "US", "America/Chicago", owner_channel="walmart-us"),
        L("dark-nyc", K.DARK_STORE, "us", "US", "America/New_York"),
        L("dark-ldn", K.DARK_STORE, "uk", "GB", "Europe/London"),
    ]


REGION_LOCATIONS: dict[str, tuple[str, ...]] = {
    "us": ("dc-us", "wh-us"),
    "ca": ("dc-us",),
    "eu": ("dc-eu",),
    "uk": ("wh-uk",),
    "pl": ("wh-pl",),
    "latam": ("dc-latam",),
    "sea": ("dc-sea",),
    "anz": ("wh-anz",),
}
# cross-border fallback: after its own locations, a channel may be fulfilled from the nearest other hub (longer
# transit), so a SKU out in one region can still sell from a neighbour's stock
REGION_FALLBACK: dict[str, tuple[str, ...]] = {
    "us": (),
    "ca": ("wh-us",),
    "eu": ("wh-pl",),
    "uk": ("dc-eu",),
    "pl": ("dc-eu",),
    "latam": ("dc-us",),
    "sea": ("wh-anz",),
    "anz": ("dc-sea",),
}
PLATFORM_OF: dict[str, str] = {
    "amazon-us": "fba-us",
    "amazon-de": "fba-de",
    "amazon-uk": "fba-uk",
    "walmart-us": "wfs-us",
}


def sim_channels() -> list[Channel]:
    out: list[Channel] = []
    for cid, dialect, region in SIM_CHANNELS:
        currency = REGIONS[region][1]
        if cid in QUICK_CHANNELS:  # quick commerce: only its dark store, a safety unit, small quantities
            out.append(Channel(cid, dialect, region, currency, (QUICK_CHANNELS[cid],), StockPolicy(1, 20, 100, 1)))
            continue
        where = (*REGION_LOCATIONS[region], *REGION_FALLBACK[region])
        if cid in PLATFORM_OF:
            where = (PLATFORM_OF[cid], *where)
        policy = StockPolicy(zero_at_or_below=1 if dialect == "amazon" else 0)
        out.append(Channel(cid, dialect, region, currency, where, policy))
    return out


def generate_world(seed: int, params: WorldParams | None = None) -> SimWorld:
    """The brand for ``seed``: same seed and parameters → the same world."""
    params = params or WorldParams()
    rng = random.Random(seed)
    cats = sorted(CATEGORIES)
    products: list[Product] = []
    skus: list[SkuSpec] = []
    for n in range(params.products):
        cat = cats[rng.randrange(len(cats))]
        _rr, (lo, hi), sizes, colours = CATEGORIES[cat]
        noun = rng.choice(NOUNS[cat])
        adj = rng.choice(ADJECTIVES)
        pid = f"P{n + 1:04d}"
        issues: list[str] = []
        roll = rng.random()
        gtin = _gtin13(rng, valid=roll >= 0.04)
        if roll < 0.04:
            issues.append("gtin_check_digit")
        elif roll < 0.07:
            gtin = ""
            issues.append("gtin_missing")
        description = f"{adj} {noun} from Accord Outfitters, designed for everyday use."
        if rng.random() < 0.05:
            description = ""
            issues.append("description_missing")
        if cat == "electronics" and rng.random() < 0.3:
            issues.append("eu_energy_label_missing")
        if cat in ("toys", "electronics") and rng.random() < 0.2:
            issues.append("gpsr_manufacturer_missing")
        title = f"Accord {adj} {noun}"
        if rng.random() < 0.03:
            title = title.upper() + " !!! BEST PRICE !!!"
            issues.append("title_promotional")
        products.append(Product(pid, title, cat, "Accord Outfitters", description, gtin, tuple(issues)))
        price = round(rng.uniform(lo, hi), 2)
        popularity = rng.paretovariate(1.3)  # heavy head
        palette = rng.sample(COLOURS, k=min(colours, len(COLOURS)))
        for colour in palette:
            for size in sizes:
                sid = f"{pid}-{colour[:3].upper()}-{size.upper()}"
                long_tail = rng.random() < 0.55
                base = popularity * rng.uniform(0.3, 1.7) * (0.08 if long_tail else 1.0)
                skus.append(SkuSpec(sid, pid, f"{title}, {colour}, {size}", cat, price, base, long_tail))
    # the draw ranks the SKUs; demand per rank follows Zipf's law
    ranked = sorted(skus, key=lambda s: (-s.base_per_day, s.id))
    head_n = max(1, int(len(ranked) * params.head_pct))
    head_ids = {s.id for s in ranked[:head_n]}
    skus = [replace(s, base_per_day=1.0 / (r + 1) ** params.zipf_s) for r, s in enumerate(ranked)]
    skus.sort(key=lambda s: s.id)
    total_base = sum(s.base_per_day for s in skus) or 1.0
    locations = sim_locations()
    channels = sim_channels()
    region_of = {c.id: c.region for c in channels}
    world = SimWorld(
        seed,
        params,
        products,
        skus,
        locations,
        channels,
        [],
        [],
        [],
        {c: v[0] for c, v in sorted(CATEGORIES.items())},
        region_of,
    )
    # expected units per day per location, from the channels it serves (its first non-platform location)
    region_demand: dict[str, float] = {}
    for c in channels:
        if c.id in QUICK_CHANNELS:
            continue
        region_demand[c.region] = region_demand.get(c.region, 0.0) + world.channel_factor(c.id)
    stock_at: dict[tuple[str, str], int] = {}
    pos: list[PurchaseOrder] = []
    end_min = max(DAY_MIN + 1, (params.days - 1) * DAY_MIN)
    for s in skus:
        per_day = params.orders_per_day * s.base_per_day / total_base * 1.15  # units, with multi-unit orders
        head = s.id in head_ids
        for region, share in sorted(region_demand.items()):
            hot = HOT_SPOTS.get((region, s.category), 1.0)
            expected = per_day * share * hot
            locs = REGION_LOCATIONS[region]
            main = locs[0]
            cover = rng.uniform(*params.head_cover_days) if head else params.stock_days * rng.uniform(0.5, 1.6)
            qty = int(expected * cover + rng.random() * 3)
            if not head:  # at least a case pack of every SKU in each hub; a few start out of stock
                qty = 0 if rng.random() < params.start_out_share else max(qty, rng.randint(*params.tail_min_units))
            if qty > 0:
                stock_at[s.id, main] = stock_at.get((s.id, main), 0) + qty
            if len(locs) > 1 and rng.random() < 0.3:
                extra = 1 + int(expected * rng.uniform(0.5, 3))
                stock_at[s.id, locs[1]] = stock_at.get((s.id, locs[1]), 0) + extra
            if head:  # lean and replenished often: a PO about every head_po_every_days, each as many days' demand
                every = params.head_po_every_days * DAY_MIN
                at = cover * DAY_MIN * rng.uniform(0.75, 1.05)
                if rng.random() < params.late_po_share:  # the supplier is late: a real stockout until it lands
                    at *= rng.uniform(1.15, 1.5)
                while at < end_min:
                    po_qty = max(1, int(expected * params.head_po_every_days * rng.uniform(0.7, 1.2)))
                    pos.append(PurchaseOrder(f"PO-{len(pos) + 1:05d}", s.id, main, po_qty, int(at)))
                    at += every * rng.uniform(0.8, 1.3)
            elif expected > 0 and qty < expected * params.days:  # reorder point: a PO before the cover runs out
                lasts = qty / expected * DAY_MIN
                arrive = max(DAY_MIN / 2, lasts * rng.uniform(0.6, 1.0))
                if rng.random() < params.late_po_share:
                    arrive *= rng.uniform(1.15, 1.5)
                if arrive < end_min:
                    po_qty = max(2, int(expected * params.stock_days * rng.uniform(0.8, 1.3)))
                    pos.append(PurchaseOrder(f"PO-{len(pos) + 1:05d}", s.id, main, po_qty, int(arrive)))
        for ch, fc in sorted(PLATFORM_OF.items()):
            if not s.long_tail and rng.random() < 0.4:
                stock_at[s.id, fc] = 1 + int(per_day * world.channel_factor(ch) * rng.uniform(2, 8))
        for _qc, dark in sorted(QUICK_CHANNELS.items()):
            if not head:
                continue
            stock_at[s.id, dark] = rng.randint(*params.dark_store_restock)
            region = next(loc.region for loc in locations if loc.id == dark)
            morning = (6 - UTC_OFFSET_H.get(region, 0)) % 24 * 60  # 06:00 local, in UTC minutes
            for day in range(1, params.days):
                qty = rng.randint(*params.dark_store_restock)
                pos.append(PurchaseOrder(f"PO-{len(pos) + 1:05d}", s.id, dark, qty, day * DAY_MIN + morning))
    stock = sorted((sku, loc, qty) for (sku, loc), qty in stock_at.items())
    world.stock = stock
    world.surges = _surges(rng, world)
    pos.extend(_surge_stock(rng, world, len(pos)))
    pos.sort(key=lambda p: (p.arrive_min, p.id))
    world.purchase_orders = pos
    return world


def _surge_stock(rng: random.Random, world: SimWorld, n_pos: int) -> list[PurchaseOrder]:
    """What a brand does about its surges: deal stock into the deal region's DC the day before a lightning deal (a
    share of the expected deal units: deals sell out, and that DC also feeds the region's other channels), and an
    expedited replenishment into the viral region's DC six hours after the surge starts. Neither covers every unit:
    the rest is a real stockout."""
    out: list[PurchaseOrder] = []
    sku_of = world.sku_index()
    p = world.params
    for surge in world.surges:
        hours = (surge.end_min - surge.start_min) / 60
        for sku in surge.skus:
            base = sku_of[sku].base_per_day * p.orders_per_day / world._base_total  # all-channel units per day
            if surge.kind == "flash_sale":
                owner = max(surge.channels.items(), key=lambda kv: (kv[1], kv[0]))[0]
                where, arrive = REGION_LOCATIONS[world.channel_region[owner]][0], -DAY_MIN
                extra = base * surge.channels[owner] * hours / 24
            else:
                region = world.channel_region[next(iter(sorted(surge.channels)))]
                where, arrive = REGION_LOCATIONS[region][0], 6 * 60
                extra = base * sum(surge.channels.values()) * hours / 24
            qty = int(extra * rng.uniform(*p.surge_stock_share))
            at = max(0, surge.start_min + arrive)
            if qty > 0:
                out.append(PurchaseOrder(f"PO-{n_pos + len(out) + 1:05d}", sku, where, qty, at))
    return out


def _surges(rng: random.Random, world: SimWorld) -> list[Surge]:
    days = world.params.days
    ranked = sorted(world.skus, key=lambda s: (-s.base_per_day, s.id))
    pool = ranked[: max(4, int(len(ranked) * world.params.head_pct))]  # deals and viral moments: best sellers
    flash_skus = tuple(sorted(s.id for s in rng.sample(pool, k=min(12, len(pool)))))
    flash_day = min(days - 1, max(0, days // 2 - 1)) if days > 1 else 0
    flash_start = flash_day * DAY_MIN + 14 * 60 + 5 * 60  # 14:00 US Eastern, in UTC minutes
    flash_start = min(flash_start, days * DAY_MIN - 240)
    deal = {c.id: world.params.flash_halo for c in world.channels if c.region == "us" and c.id not in QUICK_CHANNELS}
    deal["amazon-us"] = world.params.flash_multiplier
    flash = Surge("amazon-us lightning deal", "flash_sale", deal, flash_skus, flash_start, flash_start + 180)
    viral_skus = tuple(sorted(s.id for s in rng.sample(pool, k=min(3, len(pool)))))
    viral_day = min(days - 1, max(0, days // 3))
    viral_start = viral_day * DAY_MIN + 17 * 60
    us = {c.id: world.params.viral_multiplier for c in world.channels if c.region == "us" and c.id != "quick-nyc"}
    us["quick-nyc"] = world.params.viral_quick_multiplier
    viral = Surge(
        "viral video in New York", "viral", us, viral_skus, viral_start, min(days * DAY_MIN, viral_start + DAY_MIN)
    )
    return [flash, viral]


def install_world(engine: Any, world: SimWorld) -> None:
    """Write locations, channels, SKUs and starting stock through the engine (one movement batch per 5,000)."""
    from accord.domain.catalog import Sku
    from accord.domain.ledger import Movement, MovementKind

    for loc in world.locations:
        engine.add_location(loc)
    for ch in world.channels:
        engine.add_channel(ch)
    for i in range(0, len(world.skus), 1000):
        engine.add_skus([Sku(s.id, s.title) for s in world.skus[i : i + 1000]])
    moves = [Movement(MovementKind.RECEIVE, sku, loc, qty, f"sim:start:{sku}:{loc}") for sku, loc, qty in world.stock]
    for i in range(0, len(moves), 5000):
        engine.move_batch(moves[i : i + 5000])
