"""Dialect name → connector class, and one factory for the bootstrap to call."""

from __future__ import annotations

import httpx

from accord.app.ports import Clock
from accord.connectors.allegro import AllegroConnector
from accord.connectors.amazon import AmazonConnector
from accord.connectors.base import ChannelConfig, Connector, HttpConnector, Limits
from accord.connectors.ebay import EbayConnector
from accord.connectors.filefeed import FileFeedConnector
from accord.connectors.lazada import LazadaConnector
from accord.connectors.mercadolibre import MercadoLibreConnector
from accord.connectors.shopee import ShopeeConnector
from accord.connectors.shopify import ShopifyConnector
from accord.connectors.walmart import WalmartConnector

HTTP_DIALECTS: dict[str, type[HttpConnector]] = {
    "amazon": AmazonConnector,
    "shopify": ShopifyConnector,
    "ebay": EbayConnector,
    "walmart": WalmartConnector,
    "mercadolibre": MercadoLibreConnector,
    "shopee": ShopeeConnector,
    "lazada": LazadaConnector,
    "allegro": AllegroConnector,
}
DIALECTS: frozenset[str] = frozenset({*HTTP_DIALECTS, "filefeed"})


def create_connector(
    config: ChannelConfig,
    client: httpx.AsyncClient | None,
    *,
    limits: Limits | None = None,
    clock: Clock | None = None,
) -> Connector:
    """Build the connector for ``config.dialect``. HTTP dialects need ``client`` (shared, owned by the caller)."""
    if config.dialect == "filefeed":
        return FileFeedConnector(config, limits=limits, clock=clock)
    try:
        cls = HTTP_DIALECTS[config.dialect]
    except KeyError:
        raise ValueError(f"unknown dialect {config.dialect!r}; known: {sorted(DIALECTS)}") from None
    if client is None:
        raise ValueError(f"dialect {config.dialect!r} needs an httpx.AsyncClient")
    return cls(config, client, limits=limits, clock=clock)
