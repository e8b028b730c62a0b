"""Which readiness keys a change invalidates — for the storage layer to call inside the write transaction.

``affected_keys(change, ...)`` returns an :class:`Impact`: the (variant, channel, locale) keys to evaluate again
and the keys whose stored readiness must be deleted (variant, channel or locale gone).

Product edits are narrowed as far as the rules allow: an edited value only touches the variants that inherit it,
only the channels it is scoped to, only the locales that can see it (the locale itself, locales falling back to
it, and locales of the same language), and only channels whose rules read that attribute at all. Family, rule,
pack, category and channel edits widen to every variant they can reach; the :class:`VariantIndex` (implemented
by storage with a query) says which variants those are.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from accord.domain.errors import InvalidInput
from accord.domain.pim.attributes import language_of
from accord.domain.pim.catalog import Catalog, Product, diff_product
from accord.domain.pim.channel import ChannelContext
from accord.domain.pim.readiness import ReadinessEngine, ReadinessKey
from accord.domain.pim.spec import RuleSet


class VariantIndex(Protocol):
    """Variant lookups the storage layer answers."""

    def variants_in_family(self, family: str) -> Iterable[str]: ...

    def variants_in_categories(self, categories: frozenset[str]) -> Iterable[str]:
        """Variants whose own or inherited categories include any of ``categories``."""
        ...

    def all_variants(self) -> Iterable[str]: ...


@dataclass(frozen=True, slots=True)
class ProductEdited:
    old: Product | None  # None: created
    new: Product | None  # None: deleted


@dataclass(frozen=True, slots=True)
class FamilyEdited:
    family: str


@dataclass(frozen=True, slots=True)
class CategoryEdited:
    """A category's parent or tags changed (or it was added/removed)."""

    category: str


@dataclass(frozen=True, slots=True)
class ChannelRulesEdited:
    """A dialect's rule file changed."""

    dialect: str


@dataclass(frozen=True, slots=True)
class PackEdited:
    name: str
    old: RuleSet | None  # None: added
    new: RuleSet | None  # None: removed


@dataclass(frozen=True, slots=True)
class ChannelEdited:
    """A channel's context changed (dialect, country, currency, locales, VAT display, packs)."""

    old: ChannelContext | None
    new: ChannelContext | None


Change = ProductEdited | FamilyEdited | CategoryEdited | ChannelRulesEdited | PackEdited | ChannelEdited


@dataclass(frozen=True, slots=True)
class Impact:
    reevaluate: frozenset[ReadinessKey]
    drop: frozenset[ReadinessKey]


def _keys(variants: Iterable[str], channels: Iterable[ChannelContext]) -> set[ReadinessKey]:
    chans = tuple(channels)
    mk = tuple.__new__  # a NamedTuple's own __new__ is a Python function: this builds the same key ~3x faster
    return {mk(ReadinessKey, (v, c.id, loc)) for v in variants for c in chans for loc in c.locales}


def affected_keys(
    change: Change,
    *,
    channels: Sequence[ChannelContext],
    engine: ReadinessEngine,
    index: VariantIndex | None = None,
) -> Impact:
    """The readiness keys ``change`` invalidates. ``channels`` are the channels as they are after the change;
    ``engine`` is built on the catalogue and rule library after the change; ``index`` is needed for every change
    except :class:`ProductEdited`."""
    if isinstance(change, ProductEdited):
        return _product_impact(change, channels, engine)
    if index is None:
        raise InvalidInput("a VariantIndex is needed for this change")
    if isinstance(change, FamilyEdited):
        return Impact(frozenset(_keys(index.variants_in_family(change.family), channels)), frozenset())
    if isinstance(change, CategoryEdited):
        below = engine.catalog.categories_below(change.category) | {change.category}
        return Impact(frozenset(_keys(index.variants_in_categories(below), channels)), frozenset())
    if isinstance(change, ChannelRulesEdited):
        hit = [c for c in channels if c.dialect == change.dialect]
        return Impact(frozenset(_keys(index.all_variants(), hit) if hit else ()), frozenset())
    if isinstance(change, PackEdited):
        hit = [c for c in channels if _pack_may_apply(change, c)]
        return Impact(frozenset(_keys(index.all_variants(), hit) if hit else ()), frozenset())
    return _channel_impact(change, index)


def _pack_may_apply(change: PackEdited, channel: ChannelContext) -> bool:
    if channel.packs is not None:
        return change.name in channel.packs
    return any(rs is not None and rs.scope.matches(channel) for rs in (change.old, change.new))


def _channel_impact(change: ChannelEdited, index: VariantIndex) -> Impact:
    old, new = change.old, change.new
    if old is None and new is None:
        return Impact(frozenset(), frozenset())
    variants = tuple(index.all_variants())
    if new is None:
        assert old is not None
        return Impact(frozenset(), frozenset(_keys(variants, [old])))
    if old is None:
        return Impact(frozenset(_keys(variants, [new])), frozenset())
    gone = [loc for loc in old.locales if loc not in new.locales]
    drop = {ReadinessKey(v, old.id, loc) for v in variants for loc in gone}
    if old.id != new.id:
        drop = _keys(variants, [old])
    same_rules = (old.id, old.dialect, old.region, old.country, old.currency, old.vat_inclusive, old.packs) == (
        new.id,
        new.dialect,
        new.region,
        new.country,
        new.currency,
        new.vat_inclusive,
        new.packs,
    )
    locales = [loc for loc in new.locales if loc not in old.locales] if same_rules else list(new.locales)
    re = {ReadinessKey(v, new.id, loc) for v in variants for loc in locales}
    return Impact(frozenset(re), frozenset(drop))


def _visible_from(catalog: Catalog, written: str, channel: ChannelContext) -> list[str]:
    """Channel locales where a value written in ``written`` can be seen (fallback chain or same language)."""
    lang = language_of(written)
    return [loc for loc in channel.locales if written in catalog.locale_chain(loc) or language_of(loc) == lang]


def _product_impact(change: ProductEdited, channels: Sequence[ChannelContext], engine: ReadinessEngine) -> Impact:
    old, new = change.old, change.new
    old_variants = set(old.variants()) if old is not None else set()
    new_variants = set(new.variants()) if new is not None else set()
    drop = _keys(old_variants - new_variants, channels)
    if new is None:
        return Impact(frozenset(), frozenset(drop))
    if old is None or old.family != new.family:
        every = _keys(new_variants, channels)
        return Impact(frozenset(every), frozenset(drop - every))

    catalog = engine.catalog
    re: set[ReadinessKey] = set()
    # Structure: new variants, moved nodes and changed categories invalidate everything below them.
    full: set[str] = new_variants - old_variants
    for n in new.nodes:
        before = old.by_id.get(n.id)
        if before is not None and (before.parent != n.parent or before.categories != n.categories):
            full.update(new.variants_under(n.id))
    for v in old_variants & new_variants:
        if [x.id for x in old.lineage(v)] != [x.id for x in new.lineage(v)]:
            full.add(v)
    re |= _keys(full, channels)

    # Values: only the variants inheriting the node, the channels/locales that can see the key, and only
    # channels whose rules read the attribute.
    for ch in diff_product(old, new):
        if ch.node_id not in new.by_id:
            continue  # node removed: its variants are either dropped or moved (handled above)
        variants = [v for v in new.variants_under(ch.node_id) if v not in full]
        if not variants:
            continue
        for c in channels:
            if ch.channel is not None and ch.channel != c.id:
                continue
            if ch.attribute not in engine.reads(c, new.family):
                continue
            locales = c.locales if ch.locale is None else _visible_from(catalog, ch.locale, c)
            re.update(ReadinessKey(v, c.id, loc) for v in variants for loc in locales)
    return Impact(frozenset(re), frozenset(drop))
