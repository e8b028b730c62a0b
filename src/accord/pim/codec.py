"""JSON shapes of PIM definitions and products (storage, API and CLI share them)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accord.domain.errors import InvalidInput
from accord.domain.pim import (
    AssetKind,
    AttributeDef,
    AttributeType,
    Catalog,
    Money,
    Product,
    ProductNode,
    SelectOption,
    Unit,
    Value,
    ValueKey,
    value_from_json,
    value_to_json,
)

_FAST = frozenset(
    {
        AttributeType.TEXT,
        AttributeType.LOCALIZED_TEXT,
        AttributeType.RICH_TEXT,
        AttributeType.GTIN,
        AttributeType.SINGLE_SELECT,
    }
)


def attribute_to_json(a: AttributeDef) -> dict[str, Any]:
    return {
        "code": a.code,
        "type": a.type.value,
        "labels": dict(a.labels),
        "localizable": a.localizable,
        "scopable": a.scopable,
        "required_channels": sorted(a.required_channels),
        "options": [{"code": o.code, "labels": dict(o.labels)} for o in a.options],
        "dimension": a.dimension,
        "asset_kind": None if a.asset_kind is None else a.asset_kind.value,
        "max_chars": a.max_chars,
    }


def attribute_from_json(d: Mapping[str, Any]) -> AttributeDef:
    try:
        typ = AttributeType(str(d["type"]))
        kind = d.get("asset_kind")
        a = AttributeDef(
            code=str(d["code"]),
            type=typ,
            labels={str(k): str(v) for k, v in (d.get("labels") or {}).items()},
            localizable=bool(d.get("localizable", typ is AttributeType.LOCALIZED_TEXT)),
            scopable=bool(d.get("scopable", False)),
            required_channels=frozenset(str(c) for c in d.get("required_channels") or ()),
            options=tuple(
                SelectOption(str(o["code"]), {str(k): str(v) for k, v in (o.get("labels") or {}).items()})
                if isinstance(o, Mapping)
                else SelectOption(str(o))
                for o in d.get("options") or ()
            ),
            dimension=None if d.get("dimension") is None else str(d["dimension"]),
            asset_kind=None if kind is None else AssetKind(str(kind)),
            max_chars=None if d.get("max_chars") is None else int(d["max_chars"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"bad attribute definition: {exc}") from None
    a.check()
    return a


def decode_value(attr: AttributeDef, raw: object, units: Mapping[str, Unit]) -> Value:
    """Stored JSON → typed value. Strings of text-like types skip re-validation (they were validated on write)."""
    if attr.type in _FAST and isinstance(raw, str):
        return raw
    if attr.type is AttributeType.BOOLEAN and isinstance(raw, bool):
        return raw
    return value_from_json(attr, raw, units)


def canonical(value: Value) -> Value:
    """One order for order-free values (prices by currency) so equal content compares equal."""
    if isinstance(value, tuple) and value and isinstance(value[0], Money):
        prices = [m for m in value if isinstance(m, Money)]
        if len(prices) == len(value):
            return tuple(sorted(prices, key=lambda m: m.currency))
    return value


def canonical_product(p: Product) -> Product:
    nodes = tuple(
        ProductNode(n.id, n.parent, {k: canonical(v) for k, v in n.values.items()}, n.axes, n.categories)
        for n in p.nodes
    )
    return Product(p.id, p.family, nodes)


def same_product(a: Product | None, b: Product | None) -> bool:
    """Same content, whatever the order of nodes and values."""
    if a is None or b is None:
        return a is b
    if a.family != b.family or set(a.by_id) != set(b.by_id):
        return False
    for nid, n in a.by_id.items():
        m = b.by_id[nid]
        if (n.parent, n.axes, n.categories) != (m.parent, m.axes, m.categories) or dict(n.values) != dict(m.values):
            return False
    return True


def product_to_json(p: Product, catalog: Catalog, version: int | None = None) -> dict[str, Any]:
    fam = catalog.family(p.family)
    return {
        "id": p.id,
        "family": p.family,
        "version": version,
        "variants": list(p.variants()),
        "nodes": [
            {
                "id": n.id,
                "parent": n.parent,
                "axes": list(n.axes),
                "categories": sorted(n.categories),
                "values": [
                    {
                        "attribute": k.attribute,
                        "locale": k.locale,
                        "channel": k.channel,
                        "value": value_to_json(fam.attr(k.attribute), v),
                    }
                    for k, v in sorted(n.values.items(), key=lambda kv: (kv[0][0], kv[0][1] or "", kv[0][2] or ""))
                ],
            }
            for n in p.nodes
        ],
    }


def product_from_json(d: Mapping[str, Any], catalog: Catalog) -> Product:
    """API/CLI input: ``{"id", "family", "nodes": [{"id", "parent", "axes", "categories", "values": [...]}]}``;
    ``values`` may also be a mapping ``{"attr": v, "attr-locale": v, "attr-locale-channel": v}`` is not accepted:
    use the list form."""
    try:
        pid = str(d["id"])
        family = catalog.family(str(d["family"]))
        raw_nodes = d.get("nodes") or [{"id": pid, "values": d.get("values") or []}]
        nodes: list[ProductNode] = []
        for rn in raw_nodes:
            values: dict[ValueKey, Value] = {}
            for rv in rn.get("values") or ():
                attr = family.attr(str(rv["attribute"]))
                key = ValueKey(attr.code, rv.get("locale"), rv.get("channel"))
                if key in values:
                    raise InvalidInput(f"node {rn['id']}: {key} given twice")
                values[key] = canonical(value_from_json(attr, rv["value"], catalog.units))
            nodes.append(
                ProductNode(
                    str(rn["id"]),
                    None if rn.get("parent") is None else str(rn["parent"]),
                    values,
                    tuple(str(a) for a in rn.get("axes") or ()),
                    frozenset(str(c) for c in rn.get("categories") or ()),
                )
            )
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"bad product document: missing or wrong field {exc}") from None
    return Product(pid, family.code, tuple(nodes))


def money(amount: str, currency: str) -> Money:
    return Money(Decimal(amount), currency)
