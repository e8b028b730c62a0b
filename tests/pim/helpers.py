"""A small stored catalogue: locales, attributes, a family, categories and four channels with PIM context."""

from __future__ import annotations

from decimal import Decimal

from accord.bootstrap import App
from accord.domain.availability import Channel
from accord.domain.pim import (
    AssetKind,
    AssetRef,
    AttributeDef,
    AttributeType,
    Category,
    Locale,
    Measure,
    Money,
    Product,
    ProductNode,
    SelectOption,
    Value,
    ValueKey,
)
from accord.pim import Pim

T = AttributeType
ALL = frozenset({"*"})
IMG = AssetRef("https://cdn.example.com/p/main.jpg", "image/jpeg", 1600, 1200)

ATTRIBUTES = (
    AttributeDef("title", T.LOCALIZED_TEXT, localizable=True, scopable=True, required_channels=ALL),
    AttributeDef("description", T.RICH_TEXT, localizable=True, scopable=True),
    AttributeDef("bullet_points", T.TEXT_LIST, localizable=True),
    AttributeDef("brand", T.TEXT),
    AttributeDef("main_image", T.ASSET, asset_kind=AssetKind.IMAGE),
    AttributeDef("gtin", T.GTIN),
    AttributeDef("price", T.PRICE, scopable=True),
    AttributeDef("manufacturer_name", T.TEXT),
    AttributeDef("manufacturer_address", T.TEXT),
    AttributeDef("manufacturer_contact", T.TEXT),
    AttributeDef("manufacturer_country", T.TEXT),
    AttributeDef("safety_information", T.LOCALIZED_TEXT, localizable=True),
    AttributeDef("size", T.SINGLE_SELECT, options=(SelectOption("s"), SelectOption("m"), SelectOption("l"))),
    AttributeDef("weight", T.NUMBER, dimension="mass"),
    AttributeDef("launch", T.DATE),
    AttributeDef("organic", T.BOOLEAN),
)
LOCALES = (Locale("en_US"), Locale("en_GB", "en_US"), Locale("de_DE", "en_US"))
CHANNELS = (
    # id, dialect, region, country, currency, locales, vat_inclusive
    ("amazon-us", "amazon", "NA", "US", "USD", ("en_US",), False),
    ("amazon-de", "amazon", "EU", "DE", "EUR", ("de_DE", "en_GB"), True),
    ("google-de", "google_shopping", "EU", "DE", "EUR", ("de_DE",), True),
    ("shopify-dtc", "shopify", "NA", "US", "USD", ("en_US",), False),
)


def setup_catalog(app: App, pim: Pim) -> None:
    pim.set_locales(LOCALES)
    for a in ATTRIBUTES:
        pim.set_attribute(a)
    pim.set_family("general", [a.code for a in ATTRIBUTES])
    pim.set_category(Category("all"))
    pim.set_category(Category("toys", "all"))
    for cid, dialect, region, country, currency, locales, vat in CHANNELS:
        app.engine.add_channel(Channel(cid, dialect, region, currency, ()))
        pim.set_channel_context(cid, country=country, locales=locales, vat_inclusive=vat)


def complete_values() -> dict[ValueKey, Value]:
    k = ValueKey
    v: dict[ValueKey, Value] = {
        k("brand"): "Acme",
        k("main_image"): IMG,
        k("gtin"): "4006381333931",
        k("price"): (Money(Decimal("21.99"), "EUR"), Money(Decimal("19.99"), "USD")),
        k("manufacturer_name"): "Acme GmbH",
        k("manufacturer_address"): "Hauptstr. 1, 10115 Berlin, DE",
        k("manufacturer_contact"): "safety@acme.example",
        k("manufacturer_country"): "DE",
        k("weight"): Measure(Decimal("0.2"), "kg"),
    }
    for loc in ("en_US", "en_GB", "de_DE"):
        v[k("title", loc)] = f"Acme Shirt ({loc})"
        v[k("description", loc)] = f"A good shirt ({loc})"
        v[k("safety_information", loc)] = f"Keep away from fire ({loc})"
        v[k("bullet_points", loc)] = ("Soft", "Durable")
    return v


def shirt(product_id: str = "SHIRT", sizes: tuple[str, ...] = ("s", "m"), **root: Value | None) -> Product:
    values = complete_values()
    for code, val in root.items():
        if val is None:
            values.pop(ValueKey(code), None)
        else:
            values[ValueKey(code)] = val
    nodes = [ProductNode(product_id, None, values, axes=("size",), categories=frozenset({"toys"}))]
    nodes += [ProductNode(f"{product_id}-{s.upper()}", product_id, {ValueKey("size"): s}) for s in sizes]
    return Product(product_id, "general", tuple(nodes))
