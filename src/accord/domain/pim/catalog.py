"""Catalogue model: locales, units, categories, families, and products with any number of variant levels.

A product is a tree of nodes. The root is the product itself; every node may have children; the leaves are the
variants (SKUs) — a product without children is its own single variant. A node that has children names the
``axes`` (attribute codes) whose values tell its children apart, so levels and axes are free per product
(e.g. colour at level 1, size at level 2; or a single size level).

Values are keyed by :class:`ValueKey` (attribute, locale, channel); ``locale`` is set only for localizable
attributes and ``channel`` only for channel-specific (scopable) ones. A value set on a node is inherited by
every node below it; a node may override it by setting the same key.

Resolution of (attribute, locale, channel) for a variant: candidate keys are tried from most to least specific —
for each locale in ``[locale, *fallback chain]``, first the channel-specific value, then the all-channel value —
and for each key the nearest level wins (variant before its parent before the root). So an override at the
variant beats the inherited value for the same key, and a value written for this exact channel or locale beats
a more generic one wherever it was set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple, TypeVar, cast

from accord.domain.availability import check_id
from accord.domain.errors import InvalidInput, NotFound
from accord.domain.pim.attributes import (
    AttributeDef,
    AttributeType,
    Unit,
    Value,
    check_code,
    check_locale,
    language_of,
    standard_units,
)

_I = TypeVar("_I")

AXIS_TYPES = frozenset({AttributeType.SINGLE_SELECT, AttributeType.BOOLEAN, AttributeType.TEXT, AttributeType.NUMBER})


@dataclass(frozen=True, slots=True)
class Locale:
    code: str
    fallback: str | None = None  # e.g. de_AT → de_DE → en

    def check(self) -> None:
        check_locale(self.code)
        if self.fallback is not None:
            check_locale(self.fallback)


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    parent: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()  # e.g. "energy_label"; inherited by sub-categories


@dataclass(frozen=True)
class Family:
    """Which attributes a kind of product has. Attribute definitions may be shared between families."""

    code: str
    attributes: tuple[AttributeDef, ...]
    labels: Mapping[str, str] = field(default_factory=dict)
    by_code: Mapping[str, AttributeDef] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_code", {a.code: a for a in self.attributes})

    def check(self) -> None:
        check_code(self.code, "family code")
        if len(self.by_code) != len(self.attributes):
            raise InvalidInput(f"family {self.code} lists an attribute twice")
        for a in self.attributes:
            a.check()

    def attr(self, code: str) -> AttributeDef:
        a = self.by_code.get(code)
        if a is None:
            raise InvalidInput(f"family {self.code} has no attribute {code!r}")
        return a


class ValueKey(NamedTuple):
    attribute: str
    locale: str | None = None
    channel: str | None = None


@dataclass(frozen=True)
class ProductNode:
    """One level of a product: the root (``parent`` None), an intermediate model, or a variant (a leaf)."""

    id: str
    parent: str | None = None
    values: Mapping[ValueKey, Value] = field(default_factory=dict)
    axes: tuple[str, ...] = ()  # attributes that tell this node's children apart
    categories: frozenset[str] = frozenset()  # inherited by the nodes below

    def with_value(self, key: ValueKey, value: Value | None) -> ProductNode:
        """A copy with ``key`` set (or removed when ``value`` is None)."""
        values = dict(self.values)
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
        return replace(self, values=values)


@dataclass(frozen=True)
class Product:
    id: str
    family: str
    nodes: tuple[ProductNode, ...]
    by_id: Mapping[str, ProductNode] = field(init=False, repr=False, compare=False)
    children_of: Mapping[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {n.id: n for n in self.nodes}
        children: dict[str, list[str]] = {}
        for n in self.nodes:
            if n.parent is not None:
                children.setdefault(n.parent, []).append(n.id)
        object.__setattr__(self, "by_id", by_id)
        object.__setattr__(self, "children_of", {k: tuple(v) for k, v in children.items()})

    @classmethod
    def simple(cls, id: str, family: str, values: Mapping[ValueKey, Value], categories: Iterable[str] = ()) -> Product:
        """A product without variants (it is its own only variant)."""
        return cls(id, family, (ProductNode(id, None, dict(values), (), frozenset(categories)),))

    def node(self, node_id: str) -> ProductNode:
        n = self.by_id.get(node_id)
        if n is None:
            raise NotFound("product node", node_id)
        return n

    @property
    def root(self) -> ProductNode:
        return self.node(self.id)

    def lineage(self, node_id: str) -> tuple[ProductNode, ...]:
        """Nodes from the root down to ``node_id``."""
        out: list[ProductNode] = []
        cur: str | None = node_id
        while cur is not None:
            n = self.node(cur)
            out.append(n)
            cur = n.parent
            if len(out) > len(self.nodes):
                raise InvalidInput(f"product {self.id}: parent links form a cycle")
        out.reverse()
        return tuple(out)

    def variants(self) -> tuple[str, ...]:
        """Leaf node ids, in declaration order."""
        return tuple(n.id for n in self.nodes if n.id not in self.children_of)

    def variants_under(self, node_id: str) -> tuple[str, ...]:
        out: list[str] = []
        stack = [node_id]
        while stack:
            cur = stack.pop()
            kids = self.children_of.get(cur)
            if kids:
                stack.extend(reversed(kids))
            else:
                out.append(cur)
        return tuple(out)

    def categories_of(self, node_id: str) -> frozenset[str]:
        out: set[str] = set()
        for n in self.lineage(node_id):
            out |= n.categories
        return frozenset(out)

    def with_node(self, node: ProductNode) -> Product:
        """A copy with ``node`` added or replaced."""
        nodes = [node if n.id == node.id else n for n in self.nodes]
        if node.id not in self.by_id:
            nodes.append(node)
        return Product(self.id, self.family, tuple(nodes))


_vk = tuple.__new__  # builds a ValueKey without its Python-level __new__ (hot in resolve)


class ResolvedValue(NamedTuple):
    value: Value
    locale: str | None  # the key that matched — differs from the asked locale when a fallback was used
    channel: str | None
    node_id: str


class FlatValues:
    """A variant's values with inheritance applied once (nearest level wins per key); resolves in O(keys tried)."""

    __slots__ = (
        "_catalog",
        "_values",
        "categories",
        "category_tags",
        "family",
        "product_id",
        "scoped",
        "variant_id",
    )

    def __init__(self, catalog: Catalog, product: Product, variant_id: str) -> None:
        merged: dict[ValueKey, tuple[Value, str]] = {}
        for n in product.lineage(variant_id):
            for k, v in n.values.items():
                merged[k] = (v, n.id)
        self._values = merged
        self.scoped = frozenset(k.attribute for k in merged if k.channel is not None)  # has channel-specific values
        self._catalog = catalog
        self.family = catalog.family(product.family)
        self.product_id = product.id
        self.variant_id = variant_id
        direct = product.categories_of(variant_id)
        self.categories = catalog.category_closure(direct)  # with ancestors
        self.category_tags = catalog.category_tags(direct)

    def resolve(self, attr: AttributeDef, locale: str | None, channel: str | None) -> ResolvedValue | None:
        values = self._values
        locales: tuple[str | None, ...] = self._catalog.locale_chain(locale) if attr.localizable and locale else (None,)
        for loc in locales:
            if attr.scopable and channel is not None:
                hit = values.get(_vk(ValueKey, (attr.code, loc, channel)))
                if hit is not None:
                    return ResolvedValue(hit[0], loc, channel, hit[1])
            hit = values.get(_vk(ValueKey, (attr.code, loc, None)))
            if hit is not None:
                return ResolvedValue(hit[0], loc, None, hit[1])
        return None

    def resolve_strict(
        self, attr: AttributeDef, locale: str | None, channel: str | None, *, same_language: bool
    ) -> ResolvedValue | None:
        """Like :meth:`resolve` but without the fallback chain: only ``locale`` itself, or (``same_language``)
        any catalogue locale of the same language — for content that must be in the channel's language."""
        if not attr.localizable or locale is None:
            return self.resolve(attr, None, channel)
        candidates = [locale]
        if same_language:
            lang = language_of(locale)
            candidates += [c for c in self._catalog.locales if c != locale and language_of(c) == lang]
        values = self._values
        for loc in candidates:
            for ch in (channel, None) if attr.scopable and channel is not None else (None,):
                hit = values.get(_vk(ValueKey, (attr.code, loc, ch)))
                if hit is not None:
                    return ResolvedValue(hit[0], loc, ch, hit[1])
        return None

    def keys(self) -> Iterator[ValueKey]:
        return iter(self._values)

    def items(self) -> Iterator[tuple[ValueKey, tuple[Value, str]]]:
        """Each effective key with its value and the id of the node it is inherited from."""
        return iter(self._values.items())


@dataclass(frozen=True)
class Catalog:
    """Reference data every product is checked against. Build with :meth:`build`; treat as immutable."""

    locales: Mapping[str, Locale]
    units: Mapping[str, Unit]
    categories: Mapping[str, Category]
    families: Mapping[str, Family]
    roles: Mapping[str, str] = field(default_factory=dict)  # rule role → attribute code (default: same name)
    _chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _cat_up: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    _cat_tags: Mapping[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        *,
        locales: Iterable[Locale],
        families: Iterable[Family],
        categories: Iterable[Category] = (),
        units: Iterable[Unit] | None = None,
        roles: Mapping[str, str] | None = None,
    ) -> Catalog:
        loc_map = _index(locales, lambda x: x.code, "locale")
        unit_map = _index(standard_units() if units is None else units, lambda x: x.code, "unit")
        cat_map = _index(categories, lambda x: x.code, "category")
        fam_map = _index(families, lambda x: x.code, "family")
        for loc in loc_map.values():
            loc.check()
        for u in unit_map.values():
            u.check()
        for f in fam_map.values():
            f.check()
            for a in f.attributes:
                if a.dimension is not None and not any(u.dimension == a.dimension for u in unit_map.values()):
                    raise InvalidInput(f"attribute {a.code}: no unit measures {a.dimension}")
        chains: dict[str, tuple[str, ...]] = {}
        for code in loc_map:
            chain = [code]
            nxt = loc_map[code].fallback
            while nxt is not None:
                if nxt not in loc_map:
                    raise InvalidInput(f"locale {chain[-1]} falls back to unknown locale {nxt}")
                if nxt in chain:
                    raise InvalidInput(f"locale fallbacks form a cycle: {' → '.join([*chain, nxt])}")
                chain.append(nxt)
                nxt = loc_map[nxt].fallback
            chains[code] = tuple(chain)
        up: dict[str, frozenset[str]] = {}
        tags: dict[str, frozenset[str]] = {}
        for c in cat_map.values():
            check_code(c.code, "category code")
            seen = [c.code]
            tag_set = set(c.tags)
            p = c.parent
            while p is not None:
                parent = cat_map.get(p)
                if parent is None:
                    raise InvalidInput(f"category {seen[-1]} has unknown parent {p}")
                if p in seen:
                    raise InvalidInput(f"categories form a cycle: {' → '.join([*seen, p])}")
                seen.append(p)
                tag_set |= parent.tags
                p = parent.parent
            up[c.code] = frozenset(seen)
            tags[c.code] = frozenset(tag_set)
        return cls(loc_map, unit_map, cat_map, fam_map, dict(roles or {}), chains, up, tags)

    # --- lookups ---------------------------------------------------------------------------------------------

    def family(self, code: str) -> Family:
        f = self.families.get(code)
        if f is None:
            raise NotFound("family", code)
        return f

    def locale_chain(self, locale: str) -> tuple[str, ...]:
        """``locale`` then its fallbacks; an unknown locale has no fallbacks."""
        return self._chains.get(locale) or (locale,)

    def attribute_for(self, role: str) -> str:
        return self.roles.get(role, role)

    def category_closure(self, codes: Iterable[str]) -> frozenset[str]:
        """The categories and all their ancestors."""
        out: set[str] = set()
        for c in codes:
            out |= self._cat_up.get(c, frozenset({c}))
        return frozenset(out)

    def category_tags(self, codes: Iterable[str]) -> frozenset[str]:
        out: set[str] = set()
        for c in codes:
            out |= self._cat_tags.get(c, frozenset())
        return frozenset(out)

    def categories_below(self, code: str) -> frozenset[str]:
        """``code`` and all its descendants."""
        return frozenset(c for c, up in self._cat_up.items() if code in up)

    # --- validation ------------------------------------------------------------------------------------------

    def validate_value(self, family: Family, key: ValueKey, value: object, *, checked: bool = False) -> Value:
        """Check one value and its key for ``family``; returns the canonical value. ``checked``: the value already
        passed ``AttributeDef.validate`` for this attribute (only the key is checked)."""
        attr = family.by_code.get(key.attribute)
        if attr is None:
            raise InvalidInput(f"family {family.code} has no attribute {key.attribute!r}")
        if attr.localizable:
            if key.locale is None:
                raise InvalidInput(f"{attr.code} is localizable: give a locale")
            if key.locale not in self.locales:
                check_locale(key.locale)
                raise InvalidInput(f"{attr.code}: unknown locale {key.locale!r}")
        elif key.locale is not None:
            raise InvalidInput(f"{attr.code} is not localizable: no locale allowed, got {key.locale!r}")
        if attr.scopable:
            if key.channel is not None:
                check_id(key.channel, "channel id")
        elif key.channel is not None:
            raise InvalidInput(f"{attr.code} is not channel-specific: no channel allowed, got {key.channel!r}")
        if checked:
            return cast(Value, value)
        return attr.validate(value, self.units)

    def validate_product(
        self, product: Product, *, checked: Callable[[str, ValueKey, Value], bool] | None = None
    ) -> Product:
        """Check the whole tree and every value; returns the product with canonical values. ``checked(node, key,
        value)`` True: that value already passed its attribute's validation (its key is still checked)."""
        check_id(product.id, "product id")
        family = self.family(product.family)
        if len(product.by_id) != len(product.nodes):
            raise InvalidInput(f"product {product.id}: two nodes share an id")
        roots = [n for n in product.nodes if n.parent is None]
        if len(roots) != 1 or roots[0].id != product.id:
            raise InvalidInput(f"product {product.id}: exactly one root node, with the product's id, is required")
        nodes: list[ProductNode] = []
        for n in product.nodes:
            check_id(n.id, "variant id")
            if n.parent is not None and n.parent not in product.by_id:
                raise InvalidInput(f"node {n.id}: unknown parent {n.parent}")
            product.lineage(n.id)  # raises on cycles
            for c in n.categories:
                if c not in self.categories:
                    raise InvalidInput(f"node {n.id}: unknown category {c!r}")
            if checked is None:
                values = {k: self.validate_value(family, k, v) for k, v in n.values.items()}
            else:
                values = {
                    k: self.validate_value(family, k, v, checked=checked(n.id, k, v)) for k, v in n.values.items()
                }
            nodes.append(replace(n, values=values))
        out = Product(product.id, product.family, tuple(nodes))
        for n in out.nodes:
            kids = out.children_of.get(n.id, ())
            if not kids:
                if n.axes:
                    raise InvalidInput(f"node {n.id} declares axes but has no children")
                continue
            if not n.axes:
                raise InvalidInput(f"node {n.id} has children but declares no axes to tell them apart")
            for axis in n.axes:
                a = family.attr(axis)
                if a.type not in AXIS_TYPES or a.localizable or a.scopable:
                    raise InvalidInput(f"axis {axis}: must be a non-localizable, non-channel select/bool/text/number")
            seen: dict[tuple[Value, ...], str] = {}
            for kid_id in kids:
                kid = out.node(kid_id)
                combo: list[Value] = []
                for axis in n.axes:
                    v = kid.values.get(ValueKey(axis))
                    if v is None:
                        raise InvalidInput(f"variant {kid_id} must set axis {axis} of {n.id}")
                    combo.append(v)
                key = tuple(combo)
                if key in seen:
                    raise InvalidInput(f"variants {seen[key]} and {kid_id} have the same axis values {key!r}")
                seen[key] = kid_id
        return out

    def flat(self, product: Product, variant_id: str) -> FlatValues:
        return FlatValues(self, product, variant_id)

    def resolve(
        self, product: Product, node_id: str, attribute: str, locale: str | None = None, channel: str | None = None
    ) -> ResolvedValue | None:
        """Resolve one value for a node (see the module doc for the order)."""
        attr = self.family(product.family).attr(attribute)
        return FlatValues(self, product, node_id).resolve(attr, locale, channel)


def _index(items: Iterable[_I], code: Callable[[_I], str], what: str) -> dict[str, _I]:
    out: dict[str, _I] = {}
    for x in items:
        c = code(x)
        if c in out:
            raise InvalidInput(f"{what} {c!r} is listed twice")
        out[c] = x
    return out


# --- change records ---------------------------------------------------------------------------------------------


class ValueChange(NamedTuple):
    attribute: str
    locale: str | None
    channel: str | None
    old: Value | None
    new: Value | None
    node_id: str = ""


def _sort_key(k: ValueKey) -> tuple[str, str, str]:
    return (k.attribute, k.locale or "", k.channel or "")


def diff_values(old: Mapping[ValueKey, Value], new: Mapping[ValueKey, Value], node_id: str = "") -> list[ValueChange]:
    """What changed between two versions of one node's values (added, changed and removed keys), sorted."""
    out: list[ValueChange] = []
    for k in sorted(set(old) | set(new), key=_sort_key):
        a, b = old.get(k), new.get(k)
        if a != b:
            out.append(ValueChange(k.attribute, k.locale, k.channel, a, b, node_id))
    return out


def diff_product(old: Product | None, new: Product | None) -> list[ValueChange]:
    """Value changes of every node between two versions of a product (a missing version counts as empty)."""
    old_nodes = old.by_id if old is not None else {}
    new_nodes = new.by_id if new is not None else {}
    out: list[ValueChange] = []
    for nid in sorted(set(old_nodes) | set(new_nodes)):
        a = old_nodes.get(nid)
        b = new_nodes.get(nid)
        out.extend(diff_values(a.values if a else {}, b.values if b else {}, nid))
    return out
