from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from accord.domain.errors import InvalidInput
from accord.domain.pim import (
    AssetKind,
    AssetRef,
    AttributeDef,
    AttributeType,
    Catalog,
    Measure,
    Money,
    SelectOption,
    ValueKey,
    value_from_json,
    value_to_json,
)
from accord.domain.pim.attributes import standard_units

T = AttributeType
UNITS = {u.code: u for u in standard_units()}
COLOR = AttributeDef(
    "color", T.SINGLE_SELECT, options=(SelectOption("red", {"en": "Red", "de": "Rot"}), SelectOption("blue"))
)
TAGS = AttributeDef("tags", T.MULTI_SELECT, options=(SelectOption("eco"), SelectOption("new")))
WEIGHT = AttributeDef("weight", T.NUMBER, dimension="mass")
PRICE = AttributeDef("price", T.PRICE)
IMAGE = AttributeDef("image", T.ASSET, asset_kind=AssetKind.IMAGE)


def test_text_list_and_select_values_are_canonical_tuples() -> None:
    assert AttributeDef("b", T.TEXT_LIST).validate(["a", "b"], UNITS) == ("a", "b")
    assert TAGS.validate(["eco", "new"], UNITS) == ("eco", "new")
    assert COLOR.validate("red", UNITS) == "red"


def test_plain_numbers_become_measures_without_unit() -> None:
    qty = AttributeDef("pack_size", T.NUMBER)
    assert qty.validate(6, UNITS) == Measure(Decimal(6))
    assert WEIGHT.validate(Measure(Decimal("1.5"), "kg"), UNITS) == Measure(Decimal("1.5"), "kg")


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        (AttributeDef("t", T.TEXT), 5, "t: expected a string, got int"),
        (AttributeDef("flag", T.BOOLEAN), "yes", "flag: expected true or false"),
        (AttributeDef("d", T.DATE), "2024-01-01", "d: expected a date"),
        (AttributeDef("d", T.DATE), datetime(2024, 1, 1, 12), "d: expected a date"),
        (COLOR, "green", "color: unknown option 'green' (known: blue, red)"),
        (TAGS, ["eco", "eco"], "tags: an option is chosen twice"),
        (TAGS, "eco", "tags: expected a list"),
        (WEIGHT, Measure(Decimal(1), "parsec"), "weight: unknown unit 'parsec'"),
        (WEIGHT, Measure(Decimal(1), "cm"), "weight: unit 'cm' measures length, expected mass"),
        (WEIGHT, Decimal(1), "weight: needs a unit of mass"),
        (WEIGHT, 1.5, "weight: expected a number"),
        (WEIGHT, True, "weight: expected a number, got bool"),
        (AttributeDef("n", T.NUMBER), Measure(Decimal(1), "kg"), "n: a plain number takes no unit"),
        (PRICE, (Money(Decimal(1), "EUR"), Money(Decimal(2), "EUR")), "price: two amounts in EUR"),
        (PRICE, (Money(Decimal(1), "eur"),), "currency must be an ISO 4217 code"),
        (PRICE, (Money(Decimal(-1), "EUR"),), "price: EUR amount must be a non-negative Decimal"),
        (AttributeDef("g", T.GTIN), "12345", "g: a GTIN has 8, 12, 13 or 14 digits"),
        (AttributeDef("g", T.GTIN), "40063813339A1", "g: a GTIN has 8, 12, 13 or 14 digits"),
        (IMAGE, AssetRef("https://x/a.pdf", "application/pdf"), "image: expected an image asset"),
        (IMAGE, AssetRef("https://x/a.jpg", "jpeg"), "image: bad mime type"),
        (IMAGE, AssetRef("https://x/a.jpg", "image/jpeg", 0, 10), "pixel sizes must be positive"),
        (AttributeDef("t", T.TEXT, max_chars=3), "abcd", "t: 4 characters, at most 3 allowed"),
    ],
)
def test_wrong_values_are_rejected_with_a_clear_message(attr: AttributeDef, value: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        attr.validate(value, UNITS)


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        (AttributeDef("t", T.LOCALIZED_TEXT), "localized_text must be localizable"),
        (AttributeDef("s", T.SINGLE_SELECT), "a select needs at least one option"),
        (AttributeDef("s", T.TEXT, options=(SelectOption("a"),)), "only select attributes have options"),
        (AttributeDef("s", T.TEXT, dimension="mass"), "only number attributes have a unit dimension"),
        (AttributeDef("bad code", T.TEXT), "attribute code must be"),
        (
            AttributeDef("s", T.SINGLE_SELECT, options=(SelectOption("a"), SelectOption("a"))),
            "duplicate option codes",
        ),
        (AttributeDef("s", T.SINGLE_SELECT, options=(SelectOption("a", {"english": "A"}),)), "locale must look"),
    ],
)
def test_bad_attribute_definitions_are_rejected(attr: AttributeDef, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        attr.check()


def test_option_labels_are_localized_with_language_fallback() -> None:
    red = COLOR.options[0]
    assert red.label("de_DE") == "Rot"
    assert red.label("fr_FR") == "red"


@pytest.mark.parametrize(
    ("attr", "value"),
    [
        (AttributeDef("t", T.TEXT), "hello"),
        (AttributeDef("l", T.TEXT_LIST), ("a", "b")),
        (AttributeDef("f", T.BOOLEAN), False),
        (AttributeDef("d", T.DATE), date(2024, 2, 29)),
        (WEIGHT, Measure(Decimal("0.25"), "kg")),
        (AttributeDef("n", T.NUMBER), Measure(Decimal(3))),
        (COLOR, "blue"),
        (TAGS, ("new",)),
        (PRICE, (Money(Decimal("9.99"), "EUR", True), Money(Decimal("10.49"), "USD"))),
        (AttributeDef("g", T.GTIN), "4006381333931"),
        (IMAGE, AssetRef("s3://bucket/a.png", "image/png", 1200, 800)),
        (AttributeDef("docs", T.ASSET_LIST), (AssetRef("/docs/sheet.pdf", "application/pdf"),)),
    ],
)
def test_json_round_trip(attr: AttributeDef, value: object) -> None:
    canonical = attr.validate(value, UNITS)
    assert value_from_json(attr, value_to_json(attr, canonical), UNITS) == canonical


def test_json_parse_errors_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="weight: cannot read"):
        value_from_json(WEIGHT, {"unit": "kg"}, UNITS)
    with pytest.raises(InvalidInput, match="d: cannot read"):
        value_from_json(AttributeDef("d", T.DATE), "31/12/2024", UNITS)


def test_asset_kind_and_longest_side() -> None:
    a = AssetRef("x.jpg", "image/jpeg", 800, 1200)
    assert a.kind is AssetKind.IMAGE
    assert a.longest_side_px == 1200
    assert AssetRef("x.pdf", "application/pdf").longest_side_px is None


def test_catalog_checks_the_value_key(catalog: Catalog) -> None:
    fam = catalog.family("general")
    assert catalog.validate_value(fam, ValueKey("title", "de_DE", "amazon-de"), "Hemd") == "Hemd"
    with pytest.raises(InvalidInput, match="title is localizable: give a locale"):
        catalog.validate_value(fam, ValueKey("title"), "x")
    with pytest.raises(InvalidInput, match="title: unknown locale 'it_IT'"):
        catalog.validate_value(fam, ValueKey("title", "it_IT"), "x")
    with pytest.raises(InvalidInput, match="locale must look like"):
        catalog.validate_value(fam, ValueKey("title", "German"), "x")
    with pytest.raises(InvalidInput, match="brand is not localizable"):
        catalog.validate_value(fam, ValueKey("brand", "en"), "x")
    with pytest.raises(InvalidInput, match="brand is not channel-specific"):
        catalog.validate_value(fam, ValueKey("brand", None, "amazon-de"), "x")
    with pytest.raises(InvalidInput, match="family general has no attribute 'colour'"):
        catalog.validate_value(fam, ValueKey("colour"), "red")
