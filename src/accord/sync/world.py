"""Default demo configuration: 32 channels over 8 dialects and 8 regions, with platform-held (FBA-like) stock and a
quick-commerce dark-store channel. ``build_world(engine)`` writes it through the engine's public API."""

from __future__ import annotations

from dataclasses import dataclass

from accord.app.engine import Engine
from accord.domain.availability import Channel, Location, LocationKind, StockPolicy


@dataclass(frozen=True, slots=True)
class World:
    locations: tuple[Location, ...]
    channels: tuple[Channel, ...]


# region -> (country, currency, regional DC)
REGIONS: dict[str, tuple[str, str, str]] = {
    "us": ("US", "USD", "dc-us"),
    "ca": ("CA", "CAD", "dc-us"),
    "eu": ("DE", "EUR", "dc-eu"),
    "uk": ("GB", "GBP", "dc-eu"),
    "pl": ("PL", "PLN", "dc-eu"),
    "latam": ("MX", "MXN", "dc-latam"),
    "sea": ("SG", "SGD", "dc-sea"),
    "anz": ("AU", "AUD", "dc-sea"),
}

# (channel id, dialect, region)
CHANNELS: tuple[tuple[str, str, str], ...] = (
    ("amazon-us", "amazon", "us"),
    ("amazon-ca", "amazon", "ca"),
    ("amazon-de", "amazon", "eu"),
    ("amazon-fr", "amazon", "eu"),
    ("amazon-uk", "amazon", "uk"),
    ("amazon-mx", "amazon", "latam"),
    ("amazon-au", "amazon", "anz"),
    ("shopify-us", "shopify", "us"),
    ("shopify-eu", "shopify", "eu"),
    ("shopify-uk", "shopify", "uk"),
    ("shopify-au", "shopify", "anz"),
    ("quick-nyc", "shopify", "us"),
    ("ebay-us", "ebay", "us"),
    ("ebay-de", "ebay", "eu"),
    ("ebay-uk", "ebay", "uk"),
    ("ebay-au", "ebay", "anz"),
    ("walmart-us", "walmart", "us"),
    ("walmart-ca", "walmart", "ca"),
    ("walmart-mx", "walmart", "latam"),
    ("mercadolibre-mx", "mercadolibre", "latam"),
    ("mercadolibre-br", "mercadolibre", "latam"),
    ("mercadolibre-ar", "mercadolibre", "latam"),
    ("shopee-sg", "shopee", "sea"),
    ("shopee-my", "shopee", "sea"),
    ("shopee-ph", "shopee", "sea"),
    ("lazada-sg", "lazada", "sea"),
    ("lazada-th", "lazada", "sea"),
    ("lazada-vn", "lazada", "sea"),
    ("allegro-pl", "allegro", "pl"),
    ("allegro-cz", "allegro", "pl"),
    ("allegro-sk", "allegro", "pl"),
    ("amazon-pl", "amazon", "pl"),
)


def demo_world() -> World:
    locs: list[Location] = [
        Location("dc-us", LocationKind.REGIONAL_DC, "us", "US", "America/Chicago"),
        Location("dc-eu", LocationKind.REGIONAL_DC, "eu", "DE", "Europe/Berlin"),
        Location("dc-latam", LocationKind.REGIONAL_DC, "latam", "MX", "America/Mexico_City"),
        Location("dc-sea", LocationKind.REGIONAL_DC, "sea", "SG", "Asia/Singapore"),
        Location("wh-us", LocationKind.WAREHOUSE, "us", "US", "America/New_York"),
        Location("dark-nyc", LocationKind.DARK_STORE, "us", "US", "America/New_York"),
        Location("fba-us", LocationKind.PLATFORM_FC, "us", "US", "America/Los_Angeles", owner_channel="amazon-us"),
    ]
    chans: list[Channel] = []
    for cid, dialect, region in CHANNELS:
        _country, currency, dc = REGIONS[region]
        if cid == "quick-nyc":  # quick commerce: only the dark store, a safety buffer, small quantities
            chans.append(Channel(cid, dialect, region, currency, ("dark-nyc",), StockPolicy(1, 20, 100, 1)))
            continue
        where: tuple[str, ...] = (dc, "wh-us") if region == "us" else (dc,)
        if cid == "amazon-us":
            where = ("fba-us", *where)  # platform-held stock counts only here
        policy = StockPolicy(
            buffer_units=0, max_qty=None, pool_pct=100, zero_at_or_below=1 if dialect == "amazon" else 0
        )
        chans.append(Channel(cid, dialect, region, currency, where, policy))
    return World(tuple(locs), tuple(chans))


def build_world(engine: Engine, world: World | None = None) -> World:
    world = world or demo_world()
    for loc in world.locations:
        engine.add_location(loc)
    for ch in world.channels:
        engine.add_channel(ch)
    return world
