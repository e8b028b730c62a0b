from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from accord.domain.errors import NotFound
from accord.domain.pim import (
    AssetRef,
    Catalog,
    ChannelContext,
    Money,
    Product,
    Readiness,
    ReadinessEngine,
    ReadinessKey,
    RuleLibrary,
    Severity,
    Value,
    ValueKey,
    load_ruleset_dir,
    load_ruleset_file,
    load_ruleset_text,
)

K = ValueKey
Channels = dict[str, ChannelContext]
Factory = Callable[..., Product]


def one(engine: ReadinessEngine, product: Product, ch: ChannelContext, locale: str | None = None) -> Readiness:
    loc = locale or ch.locales[0]
    res = engine.evaluate_variant(product, product.variants()[0], [ch], {ch.id: [loc]})
    return res[ReadinessKey(product.variants()[0], ch.id, loc)]


def rules_hit(r: Readiness) -> set[str]:
    return {i.rule for i in r.issues}


def with_values(product: Product, **values: object) -> Product:
    node = product.root
    for code, v in values.items():
        node = node.with_value(K(code), v)  # type: ignore[arg-type]
    return product.with_node(node)


def test_complete_product_is_ready_everywhere(engine: ReadinessEngine, channels: Channels, shirt: Product) -> None:
    results = engine.evaluate(shirt, channels.values())
    assert len(results) == 4 * sum(len(c.locales) for c in channels.values())
    for r in results.values():
        assert r.issues == () and r.score == 100 and r.ready


def test_amazon_title_is_limited_in_utf8_bytes_google_in_characters(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    title = "Ü" * 150  # 150 characters, 300 bytes
    p = product_factory()
    p = p.with_node(p.root.with_value(K("title", "en"), title).with_value(K("title", "en_US"), title))
    amazon = one(engine, p, channels["amazon-us"])
    assert not amazon.ready
    (issue,) = amazon.errors
    assert (issue.code, issue.attribute, issue.rule) == ("max_len_bytes", "title", "amazon:title-bytes")
    assert "300 bytes" in issue.message
    assert one(engine, p, channels["google-us"]).ready  # exactly 150 characters is allowed
    longer = p.with_node(p.root.with_value(K("title", "en_US"), title + "x"))
    assert rules_hit(one(engine, longer, channels["google-us"])) == {"google_shopping:title-length"}


def test_amazon_allows_at_most_five_bullet_points(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    p = product_factory()
    p = p.with_node(p.root.with_value(K("bullet_points", "en"), tuple(f"b{i}" for i in range(6))))
    r = one(engine, p, channels["amazon-us"])
    assert rules_hit(r) == {"amazon:bullets-max"} and not r.ready


def test_main_image_size_warns_below_1000_and_blocks_below_500(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    medium = one(engine, product_factory(main_image=AssetRef("m.jpg", "image/jpeg", 800, 600)), channels["amazon-us"])
    assert medium.ready and rules_hit(medium) == {"amazon:main-image-zoom"}
    assert medium.issues[0].severity is Severity.WARNING
    assert 0 < medium.score < 100
    small = one(engine, product_factory(main_image=AssetRef("s.jpg", "image/jpeg", 400, 300)), channels["amazon-us"])
    assert not small.ready
    assert rules_hit(small) == {"amazon:main-image-min", "amazon:main-image-zoom"}
    assert small.score < medium.score
    missing = one(engine, product_factory(main_image=None), channels["amazon-us"])
    assert rules_hit(missing) == {"amazon:main-image-required"}


def test_unknown_image_size_is_a_warning(engine: ReadinessEngine, channels: Channels, product_factory: Factory) -> None:
    r = one(engine, product_factory(main_image=AssetRef("u.jpg", "image/jpeg")), channels["amazon-us"])
    assert r.ready and {i.severity for i in r.issues} == {Severity.WARNING}


def test_gtin_or_exemption_flag(engine: ReadinessEngine, channels: Channels, product_factory: Factory) -> None:
    no_gtin = one(engine, product_factory(gtin=None), channels["amazon-us"])
    assert rules_hit(no_gtin) == {"amazon:gtin-or-exemption"} and not no_gtin.ready
    not_exempt = one(engine, product_factory(gtin=None, gtin_exemption=False), channels["amazon-us"])
    assert not not_exempt.ready
    exempt = one(engine, product_factory(gtin=None, gtin_exemption=True), channels["amazon-us"])
    assert exempt.ready and exempt.issues == ()
    assert not one(engine, product_factory(gtin=None, gtin_exemption=True), channels["walmart-us"]).ready


def test_bad_gtin_check_digit_blocks_every_channel(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    results = engine.evaluate(product_factory(gtin="4006381333932"), channels.values())
    for r in results.values():
        assert not r.ready
        assert rules_hit(r) == {"gtin:check-digit"}
        assert "expected 1" in r.errors[0].message


def test_prop65_warning_required_on_us_channels_only(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    flagged = product_factory(prop65=True)
    us = one(engine, flagged, channels["amazon-us"])
    assert not us.ready and rules_hit(us) == {"prop65:warning-required"}
    assert us.errors[0].attribute == "prop65_warning"
    assert one(engine, flagged, channels["amazon-de"]).ready
    warned = product_factory(prop65=True, prop65_warning="WARNING: This product can expose you to lead.")
    assert one(engine, warned, channels["amazon-us"]).ready
    assert one(engine, product_factory(prop65=False), channels["amazon-us"]).ready


def test_non_eu_manufacturer_needs_an_eu_responsible_person_on_eu_channels(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    p = product_factory(manufacturer_country="CN", manufacturer_address="1 Road, Shenzhen, CN")
    de = one(engine, p, channels["amazon-de"])
    assert not de.ready
    assert rules_hit(de) == {
        "eu_gpsr:responsible-person-name",
        "eu_gpsr:responsible-person-address",
        "eu_gpsr:responsible-person-contact",
    }
    assert one(engine, p, channels["amazon-us"]).ready
    assert one(engine, p, channels["amazon-uk"]).ready  # GPSR is an EU pack
    with_rp = with_values(
        p,
        eu_responsible_person_name="Acme EU B.V.",
        eu_responsible_person_address="Keizersgracht 1, Amsterdam, NL",
        eu_responsible_person_contact="https://acme.example/eu-contact",
    )
    assert one(engine, with_rp, channels["amazon-de"]).ready
    assert one(engine, product_factory(manufacturer_country="FR"), channels["amazon-de"]).ready


def test_uk_channels_need_a_uk_responsible_person_for_manufacturers_outside_the_uk(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    no_uk_rp = {"uk_responsible_person_name": None, "uk_responsible_person_address": None}
    p = product_factory(manufacturer_country="CN", uk_responsible_person_contact=None, **no_uk_rp)
    uk = one(engine, p, channels["amazon-uk"])
    assert not uk.ready
    assert rules_hit(uk) == {
        "uk_product_safety:uk-responsible-person-name",
        "uk_product_safety:uk-responsible-person-address",
        "uk_product_safety:uk-responsible-person-contact",
    }
    assert [i.severity.value for i in uk.issues if i.attribute == "uk_responsible_person_contact"] == ["warning"]
    assert one(engine, p, channels["amazon-us"]).ready  # a UK pack: not on US channels
    # an EU manufacturer is outside the UK as well; a UK one needs no responsible person
    assert not one(engine, product_factory(**no_uk_rp), channels["amazon-uk"]).ready
    for country in ("GB", "UK"):
        assert one(engine, product_factory(manufacturer_country=country, **no_uk_rp), channels["amazon-uk"]).ready
    assert rules_hit(one(engine, product_factory(manufacturer_country=None), channels["amazon-uk"])) >= {
        "uk_product_safety:manufacturer-country"
    }
    # the UK importer fields are no EU requirement
    assert one(engine, product_factory(**no_uk_rp), channels["amazon-de"]).ready


def test_gpsr_manufacturer_contact_fields(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    r = one(engine, product_factory(manufacturer_name=None, manufacturer_contact="call us"), channels["amazon-de"])
    assert rules_hit(r) == {"eu_gpsr:manufacturer-name", "eu_gpsr:manufacturer-electronic-address-format"}
    unknown_country = one(engine, product_factory(manufacturer_country=None), channels["amazon-de"])
    assert "eu_gpsr:manufacturer-country" in rules_hit(unknown_country)
    assert "eu_gpsr:responsible-person-name" in rules_hit(unknown_country)  # unknown counts as outside the EU


def test_gpsr_safety_information_must_be_in_the_channels_language(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    p = product_factory()
    root = p.root
    for loc in ("de_DE", "de_AT"):
        root = root.with_value(K("safety_information", loc), None)
    only_english = p.with_node(root)
    de = one(engine, only_english, channels["amazon-de"], "de_DE")
    assert rules_hit(de) == {"eu_gpsr:safety-information"}  # the English fallback does not count
    assert one(engine, only_english, channels["amazon-de"], "en_GB").ready
    german_only_de = p.with_node(root.with_value(K("safety_information", "de_DE"), "Nicht ins Feuer werfen"))
    assert one(engine, german_only_de, channels["amazon-at"], "de_AT").ready  # same language is enough


def test_energy_label_and_sheet_for_energy_labelled_categories_in_the_eu(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    p = product_factory()
    fridge = p.with_node(p.root.__class__(p.root.id, None, p.root.values, (), frozenset({"fridges"})))
    de = one(engine, fridge, channels["amazon-de"])
    assert {(i.rule, i.attribute) for i in de.issues} == {
        ("eu_energy_label:label-and-sheet", "energy_label"),
        ("eu_energy_label:label-and-sheet", "product_information_sheet"),
        ("eu_energy_label:label-and-sheet", "energy_class"),
    }
    assert one(engine, fridge, channels["amazon-us"]).ready
    labelled = with_values(
        fridge,
        energy_label=AssetRef("label.png", "image/png", 800, 1600),
        product_information_sheet=AssetRef("sheet.pdf", "application/pdf"),
        energy_class="C",
    )
    assert one(engine, labelled, channels["amazon-de"]).ready


def test_eu_and_uk_channels_must_show_vat_inclusive_prices(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory, make_channel: Callable[..., ChannelContext]
) -> None:
    net_de = make_channel("shop-de", "shopify", "DE", "EUR", ("de_DE",), vat_inclusive=False)
    r = one(engine, product_factory(), net_de)
    assert rules_hit(r) == {"vat_inclusive:vat-inclusive-price"} and not r.ready
    net_us = make_channel("shop-us", "shopify", "US", "USD", ("en_US",), vat_inclusive=False)
    assert one(engine, product_factory(), net_us).ready
    marked_net = product_factory(price=(Money(Decimal("18.48"), "GBP", vat_included=False),))
    assert rules_hit(one(engine, marked_net, channels["amazon-uk"])) == {"vat_inclusive:vat-inclusive-price"}


def test_omnibus_prior_price_whenever_a_discount_is_shown_in_the_eu(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    eur_compare = (Money(Decimal("29.99"), "EUR"), Money(Decimal("29.99"), "USD"))
    discounted = product_factory(compare_at_price=eur_compare)
    de = one(engine, discounted, channels["amazon-de"])
    assert rules_hit(de) == {"eu_omnibus:prior-30-day-price"} and not de.ready
    assert de.errors[0].attribute == "prior_lowest_price"
    assert one(engine, discounted, channels["amazon-us"]).ready
    with_prior = with_values(discounted, prior_lowest_price=(Money(Decimal("21.99"), "EUR"),))
    assert one(engine, with_prior, channels["amazon-de"]).ready
    not_a_discount = product_factory(compare_at_price=(Money(Decimal("21.99"), "EUR"),))
    assert one(engine, not_a_discount, channels["amazon-de"]).ready
    on_sale = product_factory(sale_price=(Money(Decimal("15.00"), "EUR"),))
    assert rules_hit(one(engine, on_sale, channels["google-de"])) == {"eu_omnibus:prior-30-day-price"}


def test_a_price_in_the_channels_currency(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    usd_only = product_factory(price=(Money(Decimal("19.99"), "USD"),))
    de = one(engine, usd_only, channels["amazon-de"])
    assert rules_hit(de) == {"pricing:price-in-channel-currency"}
    assert "no amount in EUR" in de.errors[0].message
    assert one(engine, usd_only, channels["amazon-us"]).ready


def test_channel_specific_price_is_used_on_that_channel(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    p = product_factory(price=(Money(Decimal("19.99"), "USD"),))
    p = p.with_node(p.root.with_value(K("price", None, "amazon-de"), (Money(Decimal("22.99"), "EUR"),)))
    assert one(engine, p, channels["amazon-de"]).ready
    assert not one(engine, p, channels["google-de"]).ready


def test_translations_present_for_every_channel_locale(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    p = product_factory()
    p = p.with_node(p.root.with_value(K("title", "de_DE"), None))
    de = one(engine, p, channels["amazon-de"], "de_DE")
    assert rules_hit(de) == {"translations:translations-complete"}
    assert de.errors[0].message == "title has no de_DE translation"
    assert one(engine, p, channels["amazon-de"], "en_GB").ready
    at = one(engine, p, channels["amazon-at"], "de_AT")
    assert at.ready  # de_AT has its own title


def test_family_required_per_channel(engine: ReadinessEngine, channels: Channels, product_factory: Factory) -> None:
    p = product_factory()
    root = p.root
    for k in [k for k in root.values if k.attribute == "title"]:
        root = root.with_value(k, None)
    r = one(engine, p.with_node(root), channels["shopify-dtc"])
    assert "family:channel-required" in rules_hit(r)
    assert any(i.message == "title is required on this channel (en_US)" for i in r.errors)


def test_ebay_and_walmart_require_aspects_per_category(
    engine: ReadinessEngine, channels: Channels, shirt: Product
) -> None:
    root = shirt.root.with_value(K("department"), None).with_value(K("gender"), None)
    p = shirt.with_node(root)
    ebay = one(engine, p, channels["ebay-us"])
    assert {(i.rule, i.attribute) for i in ebay.issues} == {("ebay:aspects-apparel", "department")}
    walmart = one(engine, p, channels["walmart-us"])
    assert {(i.rule, i.attribute) for i in walmart.issues} == {("walmart:aspects-apparel", "gender")}
    assert one(engine, p, channels["amazon-us"]).ready


def test_role_mapping_lets_a_catalogue_use_its_own_attribute_codes(
    library: RuleLibrary, channels: Channels, product_factory: Factory, catalog_factory: Callable[..., Catalog]
) -> None:
    catalog = catalog_factory(roles={"brand": "model"})
    engine = ReadinessEngine(catalog, library)
    p = product_factory(brand=None)
    assert rules_hit(one(engine, p, channels["amazon-us"])) == {"amazon:brand-required"}
    assert one(engine, with_values(p, model="Acme X1"), channels["amazon-us"]).ready


KAUFLAND = """
name = "kaufland"
kind = "dialect"
description = "A marketplace added as data only."

[[rules]]
id = "title-length"
check = "max_len_chars"
attribute = "title"
max = 15

[[rules]]
id = "weight-needed"
check = "required"
attribute = "weight"
severity = "warning"

[[rules]]
id = "mpn-format"
check = "regex"
attribute = "mpn"
pattern = "[A-Z]{2}-[0-9]{4}"
"""


def test_a_new_dialect_declared_as_data_works_without_code(
    tmp_path: Path,
    catalog: Catalog,
    library: RuleLibrary,
    product_factory: Factory,
    make_channel: Callable[..., ChannelContext],
) -> None:
    (tmp_path / "kaufland.toml").write_text(KAUFLAND, encoding="utf-8")
    lib = library.with_rulesets(*load_ruleset_dir(tmp_path))
    engine = ReadinessEngine(catalog, lib)
    kaufland_de = make_channel("kaufland-de", "kaufland", "DE", "EUR", ("de_DE",))
    p = product_factory(weight=None, mpn="ab-12")
    r = one(engine, p, kaufland_de)
    assert rules_hit(r) == {"kaufland:title-length", "kaufland:weight-needed", "kaufland:mpn-format"}
    assert not r.ready
    fixed = with_values(p, mpn="AB-1234")
    fixed = fixed.with_node(fixed.root.with_value(K("title", "de_DE"), "Acme Hemd"))
    assert rules_hit(one(engine, fixed, kaufland_de)) == {"kaufland:weight-needed"}
    assert one(engine, fixed, kaufland_de).ready  # packs of the channel's region still apply and pass


def test_a_user_pack_and_explicit_pack_lists(
    catalog: Catalog, library: RuleLibrary, product_factory: Factory, make_channel: Callable[..., ChannelContext]
) -> None:
    pack = load_ruleset_text(
        '{"name": "toy_safety", "kind": "pack", "scope": {"countries": ["@EU"]},'
        ' "rules": [{"id": "ce", "check": "required", "attribute": "internal_note", "message": "CE marking note"}]}',
        fmt="json",
    )
    engine = ReadinessEngine(catalog, library.with_rulesets(pack))
    de = make_channel("amazon-de", "amazon", "DE", "EUR", ("de_DE",))
    assert rules_hit(one(engine, product_factory(), de)) == {"toy_safety:ce"}
    # an explicit list is used as given: only GTIN checks, no GPSR, no toy safety
    de_min = make_channel("amazon-de", "amazon", "DE", "EUR", ("de_DE",), packs=("gtin",))
    assert one(engine, product_factory(manufacturer_name=None), de_min).ready
    prop65_everywhere = make_channel("amazon-de", "amazon", "DE", "EUR", ("de_DE",), packs=("prop65",))
    assert not one(engine, product_factory(prop65=True), prop65_everywhere).ready
    with pytest.raises(NotFound, match="compliance pack 'nope'"):
        engine.plan(make_channel("x", "amazon", "DE", "EUR", ("de_DE",), packs=("nope",)), "general")
    with pytest.raises(NotFound, match="dialect 'etsy'"):
        engine.plan(make_channel("x", "etsy", "DE", "EUR", ("de_DE",)), "general")


def test_a_dialect_file_on_disk_can_replace_a_builtin(
    tmp_path: Path, catalog: Catalog, library: RuleLibrary, channels: Channels, product_factory: Factory
) -> None:
    path = tmp_path / "shopify.toml"
    path.write_text(
        'name = "shopify"\nkind = "dialect"\n[[rules]]\nid = "brand"\ncheck = "required"\nattribute = "brand"\n',
        encoding="utf-8",
    )
    engine = ReadinessEngine(catalog, library.with_rulesets(load_ruleset_file(path)))
    assert rules_hit(one(engine, product_factory(brand=None), channels["shopify-dtc"])) == {"shopify:brand"}


def test_condition_operators(
    catalog: Catalog, library: RuleLibrary, product_factory: Factory, make_channel: Callable[..., ChannelContext]
) -> None:
    text = """
name = "conds"
kind = "dialect"
[[rules]]
id = "heavy"
check = "required"
attribute = "internal_note"
when = { attribute = "weight", equals = 0.2 }
[[rules]]
id = "coloured"
check = "required"
attribute = "mpn"
when = { attribute = "color", in = ["red", "blue"] }
[[rules]]
id = "has-model"
check = "required"
attribute = "model"
when = { attribute = "brand", present = true }
[[rules]]
id = "not-acme"
check = "required"
attribute = "department"
when = { attribute = "brand", not_equals = "Acme" }
"""
    engine = ReadinessEngine(catalog, library.with_rulesets(load_ruleset_text(text)))
    ch = make_channel("c", "conds", "US", "USD", ("en_US",), packs=())
    r = one(engine, product_factory(color="red"), ch)
    assert rules_hit(r) == {"conds:heavy", "conds:coloured", "conds:has-model"}
    r = one(engine, product_factory(color="green", brand="Other", weight=None), ch)
    assert rules_hit(r) == {"conds:has-model", "conds:not-acme"}


def test_score_weights_errors_above_warnings(
    engine: ReadinessEngine, channels: Channels, product_factory: Factory
) -> None:
    ok = one(engine, product_factory(), channels["amazon-us"])
    warn = one(engine, product_factory(main_image=AssetRef("m.jpg", "image/jpeg", 800, 600)), channels["amazon-us"])
    err = one(engine, product_factory(brand=None), channels["amazon-us"])
    assert ok.score == 100 > warn.score > err.score >= 0
    assert warn.ready and not err.ready


def _many_channels(make_channel: Callable[..., ChannelContext]) -> list[ChannelContext]:
    out = []
    for dialect in ("amazon", "google_shopping", "ebay", "walmart", "shopify"):
        for country, currency in (("US", "USD"), ("DE", "EUR"), ("FR", "EUR"), ("GB", "GBP"), ("AT", "EUR")):
            out.append(make_channel(f"{dialect}-{country}", dialect, country, currency, ("en_US", "de_DE", "de_AT")))
    out.append(make_channel("net-de", "shopify", "DE", "EUR", ("de_DE",), vat_inclusive=False))
    return out


@pytest.mark.parametrize(
    "variant",
    ["clean", "issues", "channel-specific values"],
)
def test_evaluating_many_channels_at_once_matches_one_at_a_time(
    catalog: Catalog,
    library: RuleLibrary,
    product_factory: Factory,
    make_channel: Callable[..., ChannelContext],
    variant: str,
) -> None:
    chans = _many_channels(make_channel)
    p = product_factory()
    if variant == "issues":
        p = product_factory(prop65=True, manufacturer_country="CN", gtin="4006381333932")
        p = p.with_node(p.root.with_value(K("title", "de_DE"), None))
    elif variant == "channel-specific values":
        root = p.root.with_value(K("title", "de_DE", "amazon-DE"), "Ü" * 150)
        root = root.with_value(K("title", "de_DE", "ebay-AT"), "Hemd")
        root = root.with_value(K("price", None, "walmart-US"), (Money(Decimal(1), "EUR"),))
        root = root.with_value(K("compare_at_price", None, "google_shopping-FR"), (Money(Decimal(99), "EUR"),))
        p = p.with_node(root)
    together = ReadinessEngine(catalog, library).evaluate(p, chans)
    assert len(together) == sum(len(c.locales) for c in chans)
    for ch in chans:
        for loc in ch.locales:
            key = ReadinessKey("P1", ch.id, loc)
            fresh = ReadinessEngine(catalog, library)
            assert fresh.evaluate_variant(p, "P1", [ch], {ch.id: [loc]})[key] == together[key], key
    if variant == "channel-specific values":
        assert rules_hit(together[ReadinessKey("P1", "amazon-DE", "de_DE")]) == {"amazon:title-bytes"}
        assert together[ReadinessKey("P1", "amazon-AT", "de_DE")].ready
        assert rules_hit(together[ReadinessKey("P1", "walmart-US", "en_US")]) == {"pricing:price-in-channel-currency"}
        assert rules_hit(together[ReadinessKey("P1", "google_shopping-FR", "de_AT")]) == {
            "eu_omnibus:prior-30-day-price"
        }
        assert together[ReadinessKey("P1", "google_shopping-DE", "de_AT")].ready
    assert not together[ReadinessKey("P1", "net-de", "de_DE")].ready


def test_evaluate_keys_only_evaluates_what_is_asked(
    engine: ReadinessEngine, channels: Channels, shirt: Product
) -> None:
    keys = [ReadinessKey("SHIRT-RED-S", "amazon-de", "en_GB"), ReadinessKey("SHIRT-BLUE-M", "ebay-us", "en_US")]
    assert set(engine.evaluate_keys(shirt, keys, channels)) == set(keys)
    with pytest.raises(NotFound):
        engine.evaluate_keys(shirt, [ReadinessKey("SHIRT-RED-S", "nope", "en_US")], channels)


def test_readiness_is_per_variant(engine: ReadinessEngine, channels: Channels, shirt: Product) -> None:
    from accord.domain.errors import InvalidInput

    with pytest.raises(InvalidInput, match="has variants below it"):
        engine.evaluate_variant(shirt, "SHIRT-RED", channels.values())


def test_precompile_builds_every_plan(engine: ReadinessEngine, channels: Channels) -> None:
    engine.precompile(channels.values())
    plan = engine.plan(channels["amazon-de"], "general")
    assert {c.rule.split(":")[0] for c in plan} >= {"family", "amazon", "eu_gpsr", "eu_omnibus", "vat_inclusive"}
    assert "prop65" not in {c.rule.split(":")[0] for c in plan}
    assert "title" in engine.reads(channels["amazon-de"], "general")


def test_siblings_share_results_only_when_what_the_plan_reads_is_inherited_alike(
    catalog: Catalog, library: RuleLibrary, make_channel: Callable[..., ChannelContext], shirt: Product
) -> None:
    """``evaluate`` reuses a channel's result between sibling variants; a variant that overrides a read value
    (own title, a channel-specific price, other categories) must still get its own, correct result."""
    from accord.domain.pim import ProductNode

    chans = _many_channels(make_channel)
    base = shirt
    nodes = {n.id: n for n in base.nodes}
    nodes["SHIRT-RED-M"] = nodes["SHIRT-RED-M"].with_value(K("title", "de_DE"), "Ü" * 150)
    nodes["SHIRT-BLUE-S"] = nodes["SHIRT-BLUE-S"].with_value(
        K("price", None, "walmart-US"), (Money(Decimal(1), "EUR"),)
    )
    blue_m = nodes["SHIRT-BLUE-M"]
    nodes["SHIRT-BLUE-M"] = ProductNode(blue_m.id, blue_m.parent, blue_m.values, blue_m.axes, frozenset({"fridges"}))
    p = Product(base.id, base.family, tuple(nodes[n.id] for n in base.nodes))
    together = ReadinessEngine(catalog, library).evaluate(p, chans)
    assert len(together) == len(p.variants()) * sum(len(c.locales) for c in chans)
    for vid in p.variants():
        alone = ReadinessEngine(catalog, library).evaluate_variant(p, vid, chans)
        for key, r in alone.items():
            assert together[key] == r, key
    assert rules_hit(together[ReadinessKey("SHIRT-RED-M", "amazon-DE", "de_DE")]) == {"amazon:title-bytes"}
    assert together[ReadinessKey("SHIRT-RED-S", "amazon-DE", "de_DE")].ready
    fridge, shirt_s = (together[ReadinessKey(v, "amazon-DE", "de_DE")] for v in ("SHIRT-BLUE-M", "SHIRT-BLUE-S"))
    assert fridge.issues != shirt_s.issues  # energy-label rules apply to the fridge-category variant only
    walmart_s = together[ReadinessKey("SHIRT-BLUE-S", "walmart-US", "en_US")]
    assert "pricing:price-in-channel-currency" in rules_hit(walmart_s)
    assert "pricing:price-in-channel-currency" not in rules_hit(
        together[ReadinessKey("SHIRT-RED-S", "walmart-US", "en_US")]
    )


def test_packed_rows_share_a_vector_between_siblings_only_when_no_applicable_rule_reads_their_difference(
    engine: ReadinessEngine, channels: Channels, values_factory: Callable[[], dict[ValueKey, Value]]
) -> None:
    """``evaluate_rows`` gives siblings one vector when what tells them apart (here: size, and a missing size) is read
    by no rule that applies to their category; in an apparel category eBay's required aspects read size."""
    from accord.domain.pim import ProductNode

    def product(category: str) -> Product:
        root = {**values_factory(), K("color"): "red", K("department"): "unisex", K("gender"): "unisex"}
        nodes = (
            ProductNode("P", None, root, axes=("size",), categories=frozenset({category})),
            ProductNode("P-S", "P", {K("size"): "s"}),
            ProductNode("P-M", "P", {K("size"): "m"}),
            ProductNode("P-X", "P", {}),  # no size
        )
        return Product("P", "general", nodes)

    chans = tuple(channels.values())
    slots = engine.slots(chans)
    toys = engine.evaluate_rows(product("toys"), chans)
    assert toys["P-S"] is toys["P-M"] is toys["P-X"]
    apparel = engine.evaluate_rows(product("tshirts"), chans)
    assert apparel["P-S"] is apparel["P-M"] and apparel["P-X"] is not apparel["P-S"]
    ebay = slots.index(("ebay-us", "en_US"))
    assert [i.attribute for i in apparel["P-X"][ebay][0]] == ["size"] and apparel["P-S"][ebay] == ((), 100)
    # the packed rows are exactly the per-key results
    for vid, vec in apparel.items():
        for (cid, loc), (issues, score) in zip(slots, vec, strict=True):
            alone = engine.evaluate_variant(product("tshirts"), vid, [channels[cid]], {cid: [loc]})
            assert alone[ReadinessKey(vid, cid, loc)] == Readiness(ReadinessKey(vid, cid, loc), issues, score)
