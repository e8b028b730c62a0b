from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.pim import (
    AttributeDef,
    AttributeType,
    Catalog,
    Category,
    Family,
    Locale,
    Money,
    Product,
    ProductNode,
    Value,
    ValueChange,
    ValueKey,
    diff_product,
    diff_values,
)

K = ValueKey


def test_variants_are_the_leaves_of_any_depth(shirt: Product) -> None:
    assert shirt.variants() == ("SHIRT-RED-S", "SHIRT-RED-M", "SHIRT-BLUE-S", "SHIRT-BLUE-M")
    assert shirt.variants_under("SHIRT-RED") == ("SHIRT-RED-S", "SHIRT-RED-M")
    assert [n.id for n in shirt.lineage("SHIRT-BLUE-M")] == ["SHIRT", "SHIRT-BLUE", "SHIRT-BLUE-M"]


def test_values_are_inherited_down_every_level(catalog: Catalog, shirt: Product) -> None:
    assert catalog.resolve(shirt, "SHIRT-RED-S", "brand") is not None
    r = catalog.resolve(shirt, "SHIRT-RED-S", "color")
    assert r is not None and (r.value, r.node_id) == ("red", "SHIRT-RED")


def test_override_at_variant_level_wins_over_inherited_value(catalog: Catalog, shirt: Product) -> None:
    red_m = shirt.node("SHIRT-RED-M").with_value(K("title", "en"), "Acme Shirt red M special")
    red = shirt.node("SHIRT-RED").with_value(K("title", "en"), "Acme Shirt red")
    p = shirt.with_node(red).with_node(red_m)
    assert catalog.resolve(p, "SHIRT-RED-M", "title", "en").value == "Acme Shirt red M special"  # type: ignore[union-attr]
    assert catalog.resolve(p, "SHIRT-RED-S", "title", "en").value == "Acme Shirt red"  # type: ignore[union-attr]
    assert catalog.resolve(p, "SHIRT-BLUE-S", "title", "en").value == "Acme Shirt (en)"  # type: ignore[union-attr]


def test_locale_fallback_chain(catalog: Catalog) -> None:
    p = Product.simple("P", "general", {K("title", "en"): "Shirt", K("title", "de_DE"): "Hemd"})
    r = catalog.resolve(p, "P", "title", "de_AT")
    assert r is not None and (r.value, r.locale) == ("Hemd", "de_DE")  # de_AT → de_DE
    assert catalog.resolve(p, "P", "title", "fr_FR").value == "Shirt"  # type: ignore[union-attr]
    assert catalog.locale_chain("de_AT") == ("de_AT", "de_DE", "en")


def test_channel_specific_value_beats_the_all_channel_value(catalog: Catalog) -> None:
    p = Product.simple(
        "P",
        "general",
        {
            K("title", "en"): "Shirt",
            K("title", "en", "amazon-us"): "Shirt for Amazon",
            K("price"): (Money(Decimal(10), "USD"),),
            K("price", None, "ebay-us"): (Money(Decimal(12), "USD"),),
        },
    )
    assert catalog.resolve(p, "P", "title", "en_US", "amazon-us").value == "Shirt for Amazon"  # type: ignore[union-attr]
    assert catalog.resolve(p, "P", "title", "en_US", "ebay-us").value == "Shirt"  # type: ignore[union-attr]
    assert catalog.resolve(p, "P", "price", None, "ebay-us").value == (Money(Decimal(12), "USD"),)  # type: ignore[union-attr]


def test_a_more_specific_key_on_the_parent_beats_a_generic_override(catalog: Catalog, shirt: Product) -> None:
    root = shirt.root.with_value(K("title", "en", "amazon-us"), "Amazon title")
    leaf = shirt.node("SHIRT-RED-S").with_value(K("title", "en"), "Variant title")
    p = shirt.with_node(root).with_node(leaf)
    assert catalog.resolve(p, "SHIRT-RED-S", "title", "en", "amazon-us").value == "Amazon title"  # type: ignore[union-attr]
    assert catalog.resolve(p, "SHIRT-RED-S", "title", "en", "ebay-us").value == "Variant title"  # type: ignore[union-attr]


def test_unknown_attribute_or_node(catalog: Catalog, shirt: Product) -> None:
    with pytest.raises(InvalidInput, match="no attribute 'colour'"):
        catalog.resolve(shirt, "SHIRT-RED-S", "colour")
    with pytest.raises(NotFound):
        catalog.resolve(shirt, "NOPE", "brand")


def test_validate_product_canonicalizes_values(catalog: Catalog) -> None:
    p = Product.simple("P", "general", {K("bullet_points", "en"): ["a", "b"]})  # type: ignore[dict-item]
    assert catalog.validate_product(p).root.values[K("bullet_points", "en")] == ("a", "b")


def test_validate_product_accepts_the_tree(catalog: Catalog, shirt: Product) -> None:
    assert catalog.validate_product(shirt).variants() == shirt.variants()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.with_node(replace(p.node("SHIRT-RED-S"), values={})), "must set axis size of SHIRT-RED"),
        (
            lambda p: p.with_node(replace(p.node("SHIRT-RED-M"), values={K("size"): "s"})),
            "same axis values",
        ),
        (lambda p: p.with_node(replace(p.node("SHIRT-RED"), axes=())), "declares no axes"),
        (lambda p: p.with_node(replace(p.node("SHIRT-RED-S"), axes=("size",))), "declares axes but has no children"),
        (lambda p: p.with_node(replace(p.node("SHIRT"), axes=("title",))), "axis title: must be"),
        (lambda p: p.with_node(replace(p.node("SHIRT-RED"), parent="GHOST")), "unknown parent GHOST"),
        (lambda p: p.with_node(replace(p.node("SHIRT"), categories=frozenset({"nope"}))), "unknown category"),
        (lambda p: p.with_node(ProductNode("SHIRT-RED-S", "SHIRT-RED", {K("size"): "xl"})), "unknown option 'xl'"),
        (lambda p: Product(p.id, p.family, (*p.nodes, ProductNode("X"))), "exactly one root"),
        (lambda p: Product(p.id, "shoes", p.nodes), "unknown family"),
    ],
)
def test_validate_product_rejects_bad_trees(
    catalog: Catalog, shirt: Product, mutate: Callable[[Product], Product], message: str
) -> None:
    with pytest.raises((InvalidInput, NotFound), match=message):
        catalog.validate_product(mutate(shirt))


def test_parent_cycles_are_rejected(catalog: Catalog) -> None:
    p = Product("A", "general", (ProductNode("A"), ProductNode("B", "C"), ProductNode("C", "B")))
    with pytest.raises(InvalidInput, match="cycle"):
        catalog.validate_product(p)


def test_categories_are_a_tree_with_inherited_tags(catalog: Catalog) -> None:
    assert catalog.category_closure(["fridges"]) == {"fridges", "appliances", "all"}
    assert catalog.category_tags(["fridges"]) == {"energy_label", "electronics"}
    assert catalog.categories_below("appliances") == {"appliances", "fridges"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"categories": [Category("a", "b"), Category("b", "a")]}, "categories form a cycle"),
        ({"categories": [Category("a", "zzz")]}, "unknown parent zzz"),
        ({"locales": [Locale("en", "de"), Locale("de", "en")]}, "locale fallbacks form a cycle"),
        ({"locales": [Locale("en", "xx")]}, "unknown locale xx"),
        ({"locales": [Locale("en"), Locale("en")]}, "locale 'en' is listed twice"),
        ({"families": [Family("f", (AttributeDef("w", AttributeType.NUMBER, dimension="luminosity"),))]}, "no unit"),
        (
            {"families": [Family("f", (AttributeDef("a", AttributeType.TEXT), AttributeDef("a", AttributeType.TEXT)))]},
            "lists an attribute twice",
        ),
    ],
)
def test_catalog_build_rejects_bad_reference_data(kw: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"locales": [Locale("en")], "families": [], "categories": []}
    args.update(kw)
    with pytest.raises(InvalidInput, match=message):
        Catalog.build(**args)  # type: ignore[arg-type]


def test_diff_values_lists_added_changed_and_removed_keys() -> None:
    old: dict[ValueKey, Value] = {
        K("title", "en"): "Shirt",
        K("brand"): "Acme",
        K("price", None, "ebay-us"): (Money(Decimal(1), "USD"),),
    }
    new: dict[ValueKey, Value] = {
        K("title", "en"): "T-Shirt",
        K("title", "de_DE"): "Hemd",
        K("price", None, "ebay-us"): old[K("price", None, "ebay-us")],
    }
    assert diff_values(old, new, "P") == [
        ValueChange("brand", None, None, "Acme", None, "P"),
        ValueChange("title", "de_DE", None, None, "Hemd", "P"),
        ValueChange("title", "en", None, "Shirt", "T-Shirt", "P"),
    ]


def test_diff_product_covers_every_node_and_new_products(shirt: Product) -> None:
    edited = shirt.with_node(shirt.node("SHIRT-BLUE-M").with_value(K("title", "en"), "Blue M"))
    assert diff_product(shirt, edited) == [ValueChange("title", "en", None, None, "Blue M", "SHIRT-BLUE-M")]
    created = diff_product(None, shirt)
    assert len(created) == sum(len(n.values) for n in shirt.nodes)
    assert all(c.old is None for c in created)
    assert diff_product(shirt, shirt) == []
