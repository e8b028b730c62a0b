from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from decimal import Decimal

import pytest

from accord.domain.errors import InvalidInput
from accord.domain.pim import (
    AssetRef,
    Catalog,
    CategoryEdited,
    ChannelContext,
    ChannelEdited,
    ChannelRulesEdited,
    FamilyEdited,
    Money,
    PackEdited,
    Product,
    ProductEdited,
    ProductNode,
    ReadinessEngine,
    ReadinessKey,
    ValueKey,
    affected_keys,
)

K = ValueKey
Channels = dict[str, ChannelContext]


class Index:
    """What the storage layer would answer with queries."""

    def __init__(self, catalog: Catalog, products: Iterable[Product]) -> None:
        self.catalog = catalog
        self.products = list(products)

    def variants_in_family(self, family: str) -> list[str]:
        return [v for p in self.products if p.family == family for v in p.variants()]

    def variants_in_categories(self, categories: frozenset[str]) -> list[str]:
        return [
            v
            for p in self.products
            for v in p.variants()
            if self.catalog.category_closure(p.categories_of(v)) & categories
        ]

    def all_variants(self) -> list[str]:
        return [v for p in self.products for v in p.variants()]


def all_keys(product: Product, channels: Iterable[ChannelContext]) -> set[ReadinessKey]:
    return {ReadinessKey(v, c.id, loc) for v in product.variants() for c in channels for loc in c.locales}


def edit(product: Product, node_id: str, key: ValueKey, value: object) -> Product:
    return product.with_node(product.node(node_id).with_value(key, value))  # type: ignore[arg-type]


def test_variant_edit_touches_only_that_variant(engine: ReadinessEngine, channels: Channels, shirt: Product) -> None:
    new = edit(shirt, "SHIRT-RED-S", K("brand"), "Other")
    impact = affected_keys(ProductEdited(shirt, new), channels=list(channels.values()), engine=engine)
    expected = {k for k in all_keys(shirt, channels.values()) if k.variant_id == "SHIRT-RED-S"}
    # shopify's minimal rules never read the brand
    assert impact.reevaluate == {k for k in expected if k.channel_id != "shopify-dtc"}
    assert impact.drop == frozenset()


def test_model_edit_touches_the_variants_below_it(engine: ReadinessEngine, channels: Channels, shirt: Product) -> None:
    new = edit(shirt, "SHIRT-BLUE", K("brand"), "Other")
    impact = affected_keys(ProductEdited(shirt, new), channels=list(channels.values()), engine=engine)
    assert {k.variant_id for k in impact.reevaluate} == {"SHIRT-BLUE-S", "SHIRT-BLUE-M"}


def test_channel_scoped_edit_touches_only_that_channel(
    engine: ReadinessEngine, channels: Channels, shirt: Product
) -> None:
    new = edit(shirt, "SHIRT", K("price", None, "ebay-us"), (Money(Decimal(5), "USD"),))
    impact = affected_keys(ProductEdited(shirt, new), channels=list(channels.values()), engine=engine)
    assert {k.channel_id for k in impact.reevaluate} == {"ebay-us"}
    assert len(impact.reevaluate) == 4


def test_locale_edit_touches_locales_that_can_see_it(
    engine: ReadinessEngine, channels: Channels, shirt: Product
) -> None:
    new = edit(shirt, "SHIRT", K("title", "de_DE"), "Neues Hemd")
    impact = affected_keys(ProductEdited(shirt, new), channels=list(channels.values()), engine=engine)
    assert {(k.channel_id, k.locale) for k in impact.reevaluate} == {
        ("amazon-de", "de_DE"),
        ("google-de", "de_DE"),
        ("amazon-at", "de_AT"),  # de_AT falls back to de_DE
    }


def test_edit_of_an_attribute_no_rule_reads_touches_nothing(
    engine: ReadinessEngine, channels: Channels, shirt: Product
) -> None:
    new = edit(shirt, "SHIRT", K("internal_note"), "re-shoot photos")
    impact = affected_keys(ProductEdited(shirt, new), channels=list(channels.values()), engine=engine)
    assert impact.reevaluate == frozenset() and impact.drop == frozenset()


def test_attribute_read_only_by_some_channels(engine: ReadinessEngine, channels: Channels, shirt: Product) -> None:
    new = edit(shirt, "SHIRT", K("prop65"), True)
    impact = affected_keys(ProductEdited(shirt, new), channels=list(channels.values()), engine=engine)
    assert {k.channel_id for k in impact.reevaluate} == {c.id for c in channels.values() if c.country == "US"}


def test_created_deleted_and_restructured_products(engine: ReadinessEngine, channels: Channels, shirt: Product) -> None:
    chans = list(channels.values())
    everything = all_keys(shirt, chans)
    assert affected_keys(ProductEdited(None, shirt), channels=chans, engine=engine).reevaluate == everything
    gone = affected_keys(ProductEdited(shirt, None), channels=chans, engine=engine)
    assert gone.drop == everything and gone.reevaluate == frozenset()

    without_red_m = Product(shirt.id, shirt.family, tuple(n for n in shirt.nodes if n.id != "SHIRT-RED-M"))
    impact = affected_keys(ProductEdited(shirt, without_red_m), channels=chans, engine=engine)
    assert {k.variant_id for k in impact.drop} == {"SHIRT-RED-M"} and impact.reevaluate == frozenset()

    with_l = shirt.with_node(ProductNode("SHIRT-RED-L", "SHIRT-RED", {K("size"): "l"}))
    impact = affected_keys(ProductEdited(shirt, with_l), channels=chans, engine=engine)
    assert {k.variant_id for k in impact.reevaluate} == {"SHIRT-RED-L"}

    recategorized = shirt.with_node(replace(shirt.node("SHIRT-RED"), categories=frozenset({"fridges"})))
    impact = affected_keys(ProductEdited(shirt, recategorized), channels=chans, engine=engine)
    assert {k.variant_id for k in impact.reevaluate} == {"SHIRT-RED-S", "SHIRT-RED-M"}
    assert len(impact.reevaluate) == 2 * sum(len(c.locales) for c in chans)


def _changed_keys(
    engine: ReadinessEngine, old: Product, new: Product, chans: list[ChannelContext]
) -> set[ReadinessKey]:
    before = engine.evaluate(old, chans)
    after = engine.evaluate(new, chans)
    return {k for k in before.keys() & after.keys() if before[k] != after[k]}


EDITS: list[tuple[str, Callable[[Product], Product]]] = [
    ("title de", lambda p: edit(p, "SHIRT", K("title", "de_DE"), None)),
    ("title variant", lambda p: edit(p, "SHIRT-RED-S", K("title", "en_US"), "x" * 300)),
    ("scoped price", lambda p: edit(p, "SHIRT", K("price", None, "amazon-de"), (Money(Decimal(1), "USD"),))),
    ("gtin", lambda p: edit(p, "SHIRT-BLUE", K("gtin"), "4006381333932")),
    ("prop65", lambda p: edit(p, "SHIRT", K("prop65"), True)),
    ("manufacturer", lambda p: edit(p, "SHIRT", K("manufacturer_country"), "CN")),
    (
        "safety de",
        lambda p: edit(
            edit(p, "SHIRT", K("safety_information", "de_DE"), None), "SHIRT", K("safety_information", "de_AT"), None
        ),
    ),
    ("compare-at", lambda p: edit(p, "SHIRT-RED", K("compare_at_price"), (Money(Decimal(99), "EUR"),))),
    ("category", lambda p: p.with_node(replace(p.node("SHIRT-BLUE"), categories=frozenset({"fridges"})))),
    ("image", lambda p: edit(p, "SHIRT-RED-M", K("main_image"), AssetRef("s.jpg", "image/jpeg", 300, 300))),
    ("bullets", lambda p: edit(p, "SHIRT", K("bullet_points", "en"), tuple("abcdef"))),
]


@pytest.mark.parametrize(("name", "change"), EDITS, ids=[e[0] for e in EDITS])
def test_every_readiness_change_is_within_the_impact(
    engine: ReadinessEngine, channels: Channels, shirt: Product, name: str, change: Callable[[Product], Product]
) -> None:
    chans = list(channels.values())
    new = change(shirt)
    changed = _changed_keys(engine, shirt, new, chans)
    assert changed, f"edit {name!r} should change some readiness"
    impact = affected_keys(ProductEdited(shirt, new), channels=chans, engine=engine)
    assert changed <= impact.reevaluate


def test_family_category_rule_and_pack_edits_widen_via_the_index(
    engine: ReadinessEngine,
    catalog: Catalog,
    channels: Channels,
    shirt: Product,
    product_factory: Callable[..., Product],
) -> None:
    toy = product_factory("TOY")
    index = Index(catalog, [shirt, toy])
    chans = list(channels.values())
    fam = affected_keys(FamilyEdited("general"), channels=chans, engine=engine, index=index)
    assert fam.reevaluate == all_keys(shirt, chans) | all_keys(toy, chans)

    cat = affected_keys(CategoryEdited("apparel"), channels=chans, engine=engine, index=index)
    assert {k.variant_id for k in cat.reevaluate} == set(shirt.variants())

    rules = affected_keys(ChannelRulesEdited("amazon"), channels=chans, engine=engine, index=index)
    assert {k.channel_id for k in rules.reevaluate} == {"amazon-us", "amazon-de", "amazon-uk", "amazon-at"}

    gpsr = engine.library.packs["eu_gpsr"]
    pack = affected_keys(PackEdited("eu_gpsr", gpsr, gpsr), channels=chans, engine=engine, index=index)
    assert {k.channel_id for k in pack.reevaluate} == {"amazon-de", "amazon-at", "google-de"}
    explicit = [replace(c, packs=("eu_gpsr",)) if c.id == "amazon-us" else c for c in chans]
    pack = affected_keys(PackEdited("eu_gpsr", gpsr, gpsr), channels=explicit, engine=engine, index=index)
    assert "amazon-us" in {k.channel_id for k in pack.reevaluate}

    with pytest.raises(InvalidInput, match="VariantIndex"):
        affected_keys(FamilyEdited("general"), channels=chans, engine=engine)


def test_channel_edits(engine: ReadinessEngine, catalog: Catalog, channels: Channels, shirt: Product) -> None:
    index = Index(catalog, [shirt])
    de = channels["amazon-de"]
    chans = list(channels.values())

    added = replace(de, locales=(*de.locales, "fr_FR"))
    impact = affected_keys(ChannelEdited(de, added), channels=chans, engine=engine, index=index)
    assert {(k.channel_id, k.locale) for k in impact.reevaluate} == {("amazon-de", "fr_FR")}
    assert impact.drop == frozenset()

    removed = replace(de, locales=("de_DE",))
    impact = affected_keys(ChannelEdited(de, removed), channels=chans, engine=engine, index=index)
    assert impact.reevaluate == frozenset()
    assert {(k.channel_id, k.locale) for k in impact.drop} == {("amazon-de", "en_GB")}

    net = replace(de, vat_inclusive=False)
    impact = affected_keys(ChannelEdited(de, net), channels=chans, engine=engine, index=index)
    assert len(impact.reevaluate) == 4 * len(de.locales)

    impact = affected_keys(ChannelEdited(de, None), channels=chans, engine=engine, index=index)
    assert len(impact.drop) == 4 * len(de.locales) and impact.reevaluate == frozenset()
    impact = affected_keys(ChannelEdited(None, de), channels=chans, engine=engine, index=index)
    assert len(impact.reevaluate) == 4 * len(de.locales)
