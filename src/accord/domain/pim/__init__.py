"""Product information: catalogue model, per-channel readiness and regional compliance packs (stdlib only).

Entry points for the storage, CLI and API layers:

- :class:`~accord.domain.pim.catalog.Catalog` — ``Catalog.build(...)``, ``validate_value``, ``validate_product``,
  ``resolve``; :func:`~accord.domain.pim.catalog.diff_product` for history.
- :class:`~accord.domain.pim.spec.RuleLibrary` — ``RuleLibrary.builtin().with_rulesets(load_ruleset_file(p))``.
- :class:`~accord.domain.pim.readiness.ReadinessEngine` — ``evaluate``, ``evaluate_variant``, ``evaluate_keys``.
- :func:`~accord.domain.pim.incremental.affected_keys` — which keys a change invalidates.
"""

from accord.domain.pim.attributes import (
    AssetKind,
    AssetRef,
    AttributeDef,
    AttributeType,
    Measure,
    Money,
    SelectOption,
    Unit,
    Value,
    value_from_json,
    value_to_json,
)
from accord.domain.pim.catalog import (
    Catalog,
    Category,
    Family,
    Locale,
    Product,
    ProductNode,
    ResolvedValue,
    ValueChange,
    ValueKey,
    diff_product,
    diff_values,
)
from accord.domain.pim.channel import ChannelContext
from accord.domain.pim.checks import Issue
from accord.domain.pim.gtin import gtin_check_digit, gtin_problem, is_valid_gtin
from accord.domain.pim.incremental import (
    CategoryEdited,
    ChannelEdited,
    ChannelRulesEdited,
    FamilyEdited,
    Impact,
    PackEdited,
    ProductEdited,
    VariantIndex,
    affected_keys,
)
from accord.domain.pim.readiness import Readiness, ReadinessEngine, ReadinessKey
from accord.domain.pim.spec import (
    RuleLibrary,
    RuleSet,
    Severity,
    load_ruleset_dir,
    load_ruleset_file,
    load_ruleset_text,
)

__all__ = [
    "AssetKind",
    "AssetRef",
    "AttributeDef",
    "AttributeType",
    "Catalog",
    "Category",
    "CategoryEdited",
    "ChannelContext",
    "ChannelEdited",
    "ChannelRulesEdited",
    "Family",
    "FamilyEdited",
    "Impact",
    "Issue",
    "Locale",
    "Measure",
    "Money",
    "PackEdited",
    "Product",
    "ProductEdited",
    "ProductNode",
    "Readiness",
    "ReadinessEngine",
    "ReadinessKey",
    "ResolvedValue",
    "RuleLibrary",
    "RuleSet",
    "SelectOption",
    "Severity",
    "Unit",
    "Value",
    "ValueChange",
    "ValueKey",
    "VariantIndex",
    "affected_keys",
    "diff_product",
    "diff_values",
    "gtin_check_digit",
    "gtin_problem",
    "is_valid_gtin",
    "load_ruleset_dir",
    "load_ruleset_file",
    "load_ruleset_text",
    "value_from_json",
    "value_to_json",
]
