from __future__ import annotations

import pytest

from accord.domain.errors import InvalidInput
from accord.domain.pim import ChannelContext, RuleLibrary, load_ruleset_text
from accord.domain.pim.channel import EU_COUNTRIES
from accord.domain.pim.readiness import COMPILERS
from accord.domain.pim.spec import VOCABULARY, RuleSetKind


def test_builtin_dialects_and_packs_load(library: RuleLibrary) -> None:
    assert set(library.dialects) == {"amazon", "google_shopping", "ebay", "walmart", "shopify"}
    assert set(library.packs) >= {
        "eu_gpsr",
        "prop65",
        "eu_energy_label",
        "gtin",
        "vat_inclusive",
        "eu_omnibus",
        "pricing",
        "translations",
        "uk_product_safety",
    }
    assert library.packs["eu_gpsr"].scope.countries == EU_COUNTRIES
    assert library.packs["uk_product_safety"].scope.countries == {"GB"}
    assert library.packs["vat_inclusive"].scope.countries == EU_COUNTRIES | {"GB"}
    assert library.packs["prop65"].kind is RuleSetKind.PACK


def test_every_vocabulary_word_has_one_implementation() -> None:
    assert set(VOCABULARY) == set(COMPILERS)


def test_default_packs_follow_the_channel_country(library: RuleLibrary) -> None:
    def packs(country: str) -> set[str]:
        ch = ChannelContext("c", "amazon", "X", country, "EUR", ("en",), True)
        return {p.name for p in library.packs_for(ch)}

    assert packs("DE") == {
        "eu_gpsr",
        "eu_energy_label",
        "eu_omnibus",
        "vat_inclusive",
        "gtin",
        "pricing",
        "translations",
    }
    assert packs("GB") == {"uk_product_safety", "vat_inclusive", "gtin", "pricing", "translations"}
    assert packs("US") == {"prop65", "gtin", "pricing", "translations"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('kind = "dialect"', "'name' must be"),
        ('name = "x"\nkind = "shop"', "'kind' must be 'dialect' or 'pack'"),
        ('name = "x"\nkind = "pack"\nfoo = 1', "unknown keys"),
        ('name = "x"\nkind = "pack"\n[scope]\ncountries = ["Germany"]', "ISO alpha-2"),
        ('name = "x"\nkind = "pack"\n[[rules]]\ncheck = "sparkle"', "unknown check 'sparkle'"),
        ('name = "x"\nkind = "pack"\n[[rules]]\ncheck = "max_len_chars"\nattribute = "t"', "needs max"),
        ('name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required"\nattribute = "t"\nmax = 3', "does not take max"),
        ('name = "x"\nkind = "pack"\n[[rules]]\ncheck = "max_items"\nattribute = "t"\nmax = -1', "non-negative"),
        ('name = "x"\nkind = "pack"\n[[rules]]\ncheck = "regex"\nattribute = "t"\npattern = "("', "bad pattern"),
        ('name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required"\nattribute = "t"\nseverity = "fatal"', "severity"),
        (
            'name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required"\nattribute = "t"\n'
            '[[rules]]\ncheck = "required"\nattribute = "t"',
            "two rules have id 'required.t'",
        ),
        (
            'name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required_if_category"\nattributes = ["a"]',
            "needs categories or category_tags",
        ),
        (
            'name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required"\nattribute = "t"\n'
            'when = { attribute = "a", equals = 1, in = [1] }',
            "exactly one of",
        ),
        (
            'name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required"\nattribute = "t"\nlocale_match = "any"',
            "locale_match",
        ),
        ('name = "x"\nkind = "pack"\n[[rules]\n', "cannot parse toml"),
    ],
)
def test_rule_files_are_validated_when_loaded(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_ruleset_text(text, "test.toml")


def test_condition_lists_expand_country_groups() -> None:
    rs = load_ruleset_text(
        'name = "x"\nkind = "pack"\n[[rules]]\ncheck = "required"\nattribute = "t"\n'
        'when = { attribute = "c", not_in = ["@EU", "CH"] }\ncountries = ["@UK"]'
    )
    cond = rs.rules[0].when
    assert cond is not None and isinstance(cond.operand, tuple)
    assert set(cond.operand) == EU_COUNTRIES | {"CH"}
    assert rs.rules[0].countries == frozenset({"GB"})
