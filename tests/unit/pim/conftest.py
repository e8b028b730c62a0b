"""A small but realistic catalogue, channel set and a product that is ready everywhere."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from accord.domain.pim import (
    AssetKind,
    AssetRef,
    AttributeDef,
    AttributeType,
    Catalog,
    Category,
    ChannelContext,
    Family,
    Locale,
    Measure,
    Money,
    Product,
    ProductNode,
    ReadinessEngine,
    RuleLibrary,
    SelectOption,
    Value,
    ValueKey,
)

T = AttributeType
ALL = frozenset({"*"})

LOCALES = (
    Locale("en"),
    Locale("en_US", "en"),
    Locale("en_GB", "en"),
    Locale("de_DE", "en"),
    Locale("de_AT", "de_DE"),
    Locale("fr_FR", "en"),
)


def _select(code: str, *options: str, **kw: object) -> AttributeDef:
    return AttributeDef(code, T.SINGLE_SELECT, options=tuple(SelectOption(o, {"en": o.title()}) for o in options), **kw)  # type: ignore[arg-type]


ATTRIBUTES = (
    AttributeDef("title", T.LOCALIZED_TEXT, {"en": "Title"}, localizable=True, scopable=True, required_channels=ALL),
    AttributeDef("description", T.RICH_TEXT, localizable=True),
    AttributeDef("bullet_points", T.TEXT_LIST, localizable=True),
    AttributeDef("brand", T.TEXT),
    AttributeDef("main_image", T.ASSET, asset_kind=AssetKind.IMAGE),
    AttributeDef("gallery", T.ASSET_LIST, asset_kind=AssetKind.IMAGE),
    AttributeDef("gtin", T.GTIN),
    AttributeDef("gtin_exemption", T.BOOLEAN),
    AttributeDef("price", T.PRICE, scopable=True),
    AttributeDef("compare_at_price", T.PRICE, scopable=True),
    AttributeDef("sale_price", T.PRICE, scopable=True),
    AttributeDef("prior_lowest_price", T.PRICE, scopable=True),
    AttributeDef("manufacturer_name", T.TEXT),
    AttributeDef("manufacturer_address", T.TEXT),
    AttributeDef("manufacturer_contact", T.TEXT),
    AttributeDef("manufacturer_country", T.TEXT),
    AttributeDef("eu_responsible_person_name", T.TEXT),
    AttributeDef("eu_responsible_person_address", T.TEXT),
    AttributeDef("eu_responsible_person_contact", T.TEXT),
    AttributeDef("uk_responsible_person_name", T.TEXT),
    AttributeDef("uk_responsible_person_address", T.TEXT),
    AttributeDef("uk_responsible_person_contact", T.TEXT),
    AttributeDef("safety_information", T.LOCALIZED_TEXT, localizable=True),
    AttributeDef("prop65", T.BOOLEAN),
    AttributeDef("prop65_warning", T.TEXT),
    AttributeDef("energy_label", T.ASSET, asset_kind=AssetKind.IMAGE),
    AttributeDef("product_information_sheet", T.ASSET, asset_kind=AssetKind.DOCUMENT),
    _select("energy_class", "A", "B", "C", "D", "E", "F", "G"),
    _select("color", "red", "blue", "green"),
    _select("size", "s", "m", "l"),
    _select("department", "men", "women", "unisex"),
    _select("gender", "male", "female", "unisex"),
    AttributeDef("weight", T.NUMBER, dimension="mass"),
    AttributeDef("internal_note", T.TEXT),
    AttributeDef("model", T.TEXT),
    AttributeDef("mpn", T.TEXT),
)

CATEGORIES = (
    Category("all"),
    Category("apparel", "all", tags=frozenset({"apparel"})),
    Category("tshirts", "apparel"),
    Category("appliances", "all", tags=frozenset({"energy_label", "electronics"})),
    Category("fridges", "appliances"),
    Category("toys", "all"),
)


def build_catalog(**kw: object) -> Catalog:
    return Catalog.build(
        locales=LOCALES,
        families=[Family("general", ATTRIBUTES)],
        categories=CATEGORIES,
        **kw,  # type: ignore[arg-type]
    )


def channel(
    id: str,
    dialect: str,
    country: str,
    currency: str,
    locales: tuple[str, ...],
    *,
    region: str | None = None,
    vat_inclusive: bool | None = None,
    packs: tuple[str, ...] | None = None,
) -> ChannelContext:
    eu = country in {"DE", "FR", "AT", "IT", "ES", "NL"}
    return ChannelContext(
        id=id,
        dialect=dialect,
        region=region or ("EU" if eu else "UK" if country == "GB" else "NA"),
        country=country,
        currency=currency,
        locales=locales,
        vat_inclusive=(eu or country == "GB") if vat_inclusive is None else vat_inclusive,
        packs=packs,
    )


CHANNELS = {
    c.id: c
    for c in (
        channel("amazon-us", "amazon", "US", "USD", ("en_US",)),
        channel("amazon-de", "amazon", "DE", "EUR", ("de_DE", "en_GB")),
        channel("amazon-uk", "amazon", "GB", "GBP", ("en_GB",)),
        channel("amazon-at", "amazon", "AT", "EUR", ("de_AT",)),
        channel("google-de", "google_shopping", "DE", "EUR", ("de_DE",)),
        channel("google-us", "google_shopping", "US", "USD", ("en_US",)),
        channel("ebay-us", "ebay", "US", "USD", ("en_US",)),
        channel("walmart-us", "walmart", "US", "USD", ("en_US",)),
        channel("shopify-dtc", "shopify", "US", "USD", ("en_US",)),
    )
}

IMG = AssetRef("https://cdn.example.com/p/main.jpg", "image/jpeg", 1600, 1200)
LONG_TEXT_LOCALES = ("en", "en_US", "en_GB", "de_DE", "de_AT", "fr_FR")


def complete_values() -> dict[ValueKey, Value]:
    """Everything every built-in dialect and pack asks for, in every locale and currency."""
    k = ValueKey
    v: dict[ValueKey, Value] = {
        k("brand"): "Acme",
        k("main_image"): IMG,
        k("gtin"): "4006381333931",
        k("price"): (
            Money(Decimal("19.99"), "USD"),
            Money(Decimal("21.99"), "EUR"),
            Money(Decimal("18.99"), "GBP"),
        ),
        k("manufacturer_name"): "Acme GmbH",
        k("manufacturer_address"): "Hauptstr. 1, 10115 Berlin, DE",
        k("manufacturer_contact"): "safety@acme.example",
        k("manufacturer_country"): "DE",
        k("uk_responsible_person_name"): "Acme UK Ltd",
        k("uk_responsible_person_address"): "1 High St, London SW1A 1AA, GB",
        k("uk_responsible_person_contact"): "uk-safety@acme.example",
        k("bullet_points", "en"): ("Soft", "Durable", "Washable"),
        k("bullet_points", "de_DE"): ("Weich", "Robust", "Waschbar"),
        k("weight"): Measure(Decimal("0.2"), "kg"),
    }
    for loc in LONG_TEXT_LOCALES:
        v[k("title", loc)] = f"Acme Shirt ({loc})"
        v[k("description", loc)] = f"A good shirt ({loc})"
        v[k("safety_information", loc)] = f"Keep away from fire ({loc})"
    return v


def complete_product(product_id: str = "P1", **overrides: Value | None) -> Product:
    """A product without variants that is ready on every channel; ``overrides`` set (or, with None, remove)
    non-localized, non-channel values."""
    values = complete_values()
    for code, val in overrides.items():
        if val is None:
            values.pop(ValueKey(code), None)
        else:
            values[ValueKey(code)] = val
    return Product(product_id, "general", (ProductNode(product_id, None, values, (), frozenset({"toys"})),))


def shirt_tree() -> Product:
    """Three levels: product → colour models → size variants."""
    root_values = complete_values()
    root_values[ValueKey("department")] = "unisex"
    root_values[ValueKey("gender")] = "unisex"
    nodes = [
        ProductNode("SHIRT", None, root_values, axes=("color",), categories=frozenset({"tshirts"})),
        ProductNode("SHIRT-RED", "SHIRT", {ValueKey("color"): "red"}, axes=("size",)),
        ProductNode("SHIRT-BLUE", "SHIRT", {ValueKey("color"): "blue"}, axes=("size",)),
    ]
    for parent in ("SHIRT-RED", "SHIRT-BLUE"):
        for size in ("s", "m"):
            nodes.append(ProductNode(f"{parent}-{size.upper()}", parent, {ValueKey("size"): size}))
    return Product("SHIRT", "general", tuple(nodes))


@pytest.fixture
def catalog() -> Catalog:
    return build_catalog()


@pytest.fixture(scope="session")
def library() -> RuleLibrary:
    return RuleLibrary.builtin()


@pytest.fixture
def engine(catalog: Catalog, library: RuleLibrary) -> ReadinessEngine:
    return ReadinessEngine(catalog, library)


@pytest.fixture
def channels() -> dict[str, ChannelContext]:
    return dict(CHANNELS)


@pytest.fixture
def product_factory() -> Callable[..., Product]:
    return complete_product


@pytest.fixture
def shirt() -> Product:
    return shirt_tree()


@pytest.fixture
def values_factory() -> Callable[[], dict[ValueKey, Value]]:
    return complete_values


@pytest.fixture
def catalog_factory() -> Callable[..., Catalog]:
    return build_catalog


@pytest.fixture
def make_channel() -> Callable[..., ChannelContext]:
    return channel
