"""Desired listing content and price per (channel, variant), derived from the PIM.

For each channel that has both a PIM channel context and a sync endpoint, a variant's values are resolved as that
channel sees them (inheritance, the channel's first locale with the catalogue's fallback chain, channel-specific
values first) through the catalogue's roles: ``title``, ``description``, ``bullet_points`` and the other simple
attributes the channel's rules dialect refers to (brand, colour, size...). The price is the variant's ``price``
amount in the channel's currency, never a conversion: a variant without an amount in that currency gets no
desired price (readiness reports it). Values are JSON-ready: the sync store keeps them as desired state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from accord.app.engine import Engine
from accord.domain.errors import NotFound
from accord.domain.pim import AttributeDef, Catalog, ChannelContext, Product, value_to_json
from accord.domain.pim.attributes import AttributeType, Money, price_in
from accord.domain.pim.catalog import FlatValues
from accord.domain.pim.spec import RuleLibrary
from accord.pim.service import Pim
from accord.store import pim_tables as pt
from accord.store import sync_tables as st
from accord.store.db import Database, Tx

# roles with a field of their own in the desired content (the rest of a dialect's roles go to ``attributes``)
TITLE, DESCRIPTION, BULLETS, PRICE_ROLE = "title", "description", "bullet_points", "price"
_OWN_ROLES = frozenset({TITLE, DESCRIPTION, BULLETS, PRICE_ROLE})
# attribute types that read as plain marketplace attributes (assets, dates, prices and GTINs have their own paths)
_SIMPLE = frozenset(
    {
        AttributeType.TEXT,
        AttributeType.LOCALIZED_TEXT,
        AttributeType.SINGLE_SELECT,
        AttributeType.MULTI_SELECT,
        AttributeType.TEXT_LIST,
        AttributeType.NUMBER,
        AttributeType.BOOLEAN,
    }
)


@dataclass(frozen=True, slots=True)
class VariantContent:
    """What one channel should show for one variant: ``content`` (title, description, bullets, attributes,
    locale; None when the PIM has none of them) and ``price`` ({"amount", "currency"}; None without an amount in
    the channel's currency)."""

    channel: str
    content: dict[str, Any] | None
    price: dict[str, str] | None


def _text(value: object) -> str | None:
    if value is None:
        return None
    s = str(value)
    return s if s.strip() else None


class ContentDeriver:
    """Reads products through :class:`~accord.pim.service.Pim` in the caller's transaction."""

    def __init__(self, pim: Pim, library: RuleLibrary | None = None) -> None:
        self.pim = pim
        self.library = library or pim.library
        self._roles: dict[str, tuple[str, ...]] = {}
        self._q_endpoints = pim.db.compile(sa.select(st.sync_endpoints.c.channel_id))
        self._q_products = pim.db.compile(sa.select(pt.pim_products.c.id).order_by(pt.pim_products.c.id))

    def dialect_roles(self, dialect: str) -> tuple[str, ...]:
        """The roles a rules dialect refers to, besides title/description/bullets/price (sorted, cached)."""
        hit = self._roles.get(dialect)
        if hit is None:
            roles: set[str] = set()
            try:
                rules = self.library.dialect(dialect).rules
            except NotFound:
                rules = ()
            for r in rules:
                if r.attribute:
                    roles.add(r.attribute)
                for a in r.params.get("attributes") or ():
                    roles.add(str(a))
            hit = self._roles[dialect] = tuple(sorted(roles - _OWN_ROLES))
        return hit

    def product_ids(self, tx: Tx) -> list[str]:
        """Every PIM product id, in order (a backfill walks them in chunks)."""
        return [r[0] for r in tx.all(self._q_products)]

    def synced_channels(self, tx: Tx) -> set[str]:
        return {r[0] for r in tx.all(self._q_endpoints)}

    def for_products(
        self,
        tx: Tx,
        product_ids: Collection[str],
        variants: Collection[str] | None = None,
        channels: Collection[str] | None = None,
    ) -> dict[str, list[VariantContent]]:
        """variant id → desired content and price per synced channel (or only ``channels``), for every variant of
        ``product_ids`` (or only ``variants``). Products that no longer exist give nothing."""
        state = self.pim.state(tx)
        wanted = self.synced_channels(tx)
        if channels is not None:
            wanted &= set(channels)
        contexts = [c for c in state.channels if c.id in wanted]
        if not contexts or not product_ids:
            return {}
        products = self.pim.load_products(tx, sorted(product_ids))
        out: dict[str, list[VariantContent]] = {}
        for product in products.values():
            for vid in product.variants():
                if variants is not None and vid not in variants:
                    continue
                out[vid] = self.variant(state.catalog, product, vid, contexts)
        return out

    def variant(
        self, catalog: Catalog, product: Product, variant_id: str, channels: Collection[ChannelContext]
    ) -> list[VariantContent]:
        flat = catalog.flat(product, variant_id)
        fam = flat.family

        def attr(role: str) -> AttributeDef | None:
            return fam.by_code.get(catalog.attribute_for(role))

        out: list[VariantContent] = []
        for ch in channels:
            locale = ch.locales[0] if ch.locales else None
            content = self._content(flat, attr, ch, locale)
            price_attr = attr(PRICE_ROLE)
            price: dict[str, str] | None = None
            if price_attr is not None and price_attr.type is AttributeType.PRICE:
                r = flat.resolve(price_attr, locale, ch.id)
                m = price_in(r.value, ch.currency) if r is not None else None
                if isinstance(m, Money):
                    price = {"amount": f"{m.amount:.2f}", "currency": m.currency}
            out.append(VariantContent(ch.id, content, price))
        return out

    def _content(
        self,
        flat: FlatValues,
        attr: Callable[[str], AttributeDef | None],
        ch: ChannelContext,
        locale: str | None,
    ) -> dict[str, Any] | None:
        def resolved(a: AttributeDef | None) -> object:
            if a is None:
                return None
            r = flat.resolve(a, locale, ch.id)
            return None if r is None else value_to_json(a, r.value)

        title = _text(resolved(attr(TITLE)))
        description = _text(resolved(attr(DESCRIPTION)))
        raw_bullets = resolved(attr(BULLETS))
        bullets = [str(b) for b in raw_bullets if _text(b)] if isinstance(raw_bullets, list) else []
        if isinstance(raw_bullets, str) and raw_bullets.strip():
            bullets = [raw_bullets]
        attributes: dict[str, Any] = {}
        for role in self.dialect_roles(ch.dialect):
            a = attr(role)
            if a is None or a.type not in _SIMPLE:
                continue
            v = resolved(a)
            if v is None or v == [] or v == "":
                continue
            attributes[role] = v if isinstance(v, str | bool | int | float) else [str(x) for x in _as_list(v)]
        if title is None and description is None and not bullets and not attributes:
            return None
        return {
            "title": title,
            "description": description,
            "bullets": bullets,
            "attributes": attributes,
            "locale": locale,
        }


def _as_list(v: object) -> list[object]:
    if isinstance(v, list | tuple):
        return list(v)
    if isinstance(v, Mapping):
        return [f"{v.get('amount', '')} {v.get('unit', '')}".strip()]
    return [v]


def content_deriver(db: Database, engine: Engine) -> ContentDeriver:
    """The deriver ``accord serve`` and ``accord sync run`` give the sync subscriber (built-in rules)."""
    return ContentDeriver(Pim(db, engine))
