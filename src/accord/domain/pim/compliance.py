"""Compliance words that data alone cannot express; the packs in ``rules/packs/`` wire them to attributes.

- ``gtin_check_digit``: a GTIN-8/12/13/14 must carry a correct GS1 check digit.
- ``price_in_currency``: the price has an amount in the channel's currency.
- ``vat_inclusive_price``: the channel shows VAT-inclusive prices and the amount is not marked VAT-exclusive
  (EU/UK consumer price indication).
- ``omnibus_prior_price``: when a discount is shown (compare-at above the price, or a sale price below it), the
  lowest price of the prior 30 days is given in the channel's currency (EU Omnibus directive, art. 6a PID).
- ``translations_complete``: every localizable attribute required on the channel has a value written in the
  context's locale itself (a fallback to another language does not count).
- ``channel_required``: attributes a family marks required on this channel have a value (always applied).
"""

from __future__ import annotations

from collections.abc import Hashable

from accord.domain.pim.attributes import AttributeDef, Money, is_empty, price_in
from accord.domain.pim.channel import ChannelContext
from accord.domain.pim.checks import Binding, BoundCheck, Compiler, EvalContext, Outcome
from accord.domain.pim.gtin import gtin_problem
from accord.domain.pim.spec import RuleSpec


def compile_gtin_check_digit(spec: RuleSpec, b: Binding) -> BoundCheck:
    attr = b.attr(spec.attribute or "")
    name = attr.code if attr else b.code_of(spec.attribute or "")

    def run(ctx: EvalContext) -> Outcome:
        v = ctx.value(attr)
        if not isinstance(v, str) or not v:
            return None
        problem = gtin_problem(v)
        return () if problem is None else (b.issue(spec, name, problem),)

    return b.make(spec, run, [attr])


def _money(ctx: EvalContext, attr: AttributeDef | None) -> Money | None:
    return price_in(ctx.value(attr), ctx.channel.currency) if attr is not None else None


def compile_price_in_currency(spec: RuleSpec, b: Binding) -> BoundCheck:
    attr = b.attr(spec.attribute or "")
    name = attr.code if attr else b.code_of(spec.attribute or "")

    def run(ctx: EvalContext) -> Outcome:
        if _money(ctx, attr) is None:
            return (b.issue(spec, name, f"{name} has no amount in {ctx.channel.currency}"),)
        return ()

    return b.make(spec, run, [attr], channel_key=_currency)


def _currency(ch: ChannelContext) -> str:
    return ch.currency


def compile_vat_inclusive_price(spec: RuleSpec, b: Binding) -> BoundCheck:
    attr = b.attr(spec.attribute or "")
    name = attr.code if attr else b.code_of(spec.attribute or "")

    def run(ctx: EvalContext) -> Outcome:
        ch = ctx.channel
        if not ch.vat_inclusive:
            msg = "the channel shows prices without VAT; consumer prices here must include VAT"
            return (b.issue(spec, name, msg),)
        m = _money(ctx, attr)
        if m is None:
            return None
        if m.vat_included is False:
            return (b.issue(spec, name, f"{name} {m.amount} {m.currency} is marked VAT-exclusive"),)
        return ()

    return b.make(spec, run, [attr], channel_key=lambda ch: (ch.vat_inclusive, ch.currency))


def compile_omnibus_prior_price(spec: RuleSpec, b: Binding) -> BoundCheck:
    price = b.attr(spec.attribute or "")
    prior = b.attr(spec.params["prior_price"])
    compare_at = b.attr(spec.params["compare_at"]) if "compare_at" in spec.params else None
    sale = b.attr(spec.params["sale_price"]) if "sale_price" in spec.params else None
    prior_name = prior.code if prior else b.code_of(spec.params["prior_price"])

    def run(ctx: EvalContext) -> Outcome:
        p = _money(ctx, price)
        if p is None:
            return None
        shown: str | None = None
        c = _money(ctx, compare_at)
        if c is not None and c.amount > p.amount:
            shown = f"compare-at {c.amount} above price {p.amount} {p.currency}"
        s = _money(ctx, sale)
        if s is not None and s.amount < p.amount:
            shown = f"sale price {s.amount} below price {p.amount} {p.currency}"
        if shown is None:
            return None
        if _money(ctx, prior) is None:
            msg = f"a discount is shown ({shown}); give the lowest price of the prior 30 days in {p.currency}"
            return (b.issue(spec, prior_name, msg),)
        return ()

    return b.make(spec, run, [price, prior, compare_at, sale], channel_key=_currency)


class _RequiredOn:
    """Which of ``attrs`` are required on a channel (cached per channel id and dialect)."""

    def __init__(self, attrs: list[AttributeDef]) -> None:
        self.attrs = attrs
        self._cache: dict[tuple[str, str], tuple[tuple[AttributeDef, ...], tuple[str, ...]]] = {}

    def _lookup(self, ch: ChannelContext) -> tuple[tuple[AttributeDef, ...], tuple[str, ...]]:
        key = (ch.id, ch.dialect)
        hit = self._cache.get(key)
        if hit is None:
            attrs = tuple(a for a in self.attrs if a.is_required_on(ch.id, ch.dialect))
            hit = self._cache[key] = (attrs, tuple(a.code for a in attrs))
        return hit

    def __call__(self, ch: ChannelContext) -> tuple[AttributeDef, ...]:
        return self._lookup(ch)[0]

    def key(self, ch: ChannelContext) -> Hashable:
        return self._lookup(ch)[1]


def compile_translations_complete(spec: RuleSpec, b: Binding) -> BoundCheck:
    localizable = [a for a in b.family.attributes if a.localizable and a.required_channels]
    required_on = _RequiredOn(localizable)

    def run(ctx: EvalContext) -> Outcome:
        wanted = required_on(ctx.channel)
        if not wanted:
            return None
        return [
            b.issue(spec, a.code, f"{a.code} has no {ctx.locale} translation")
            for a in wanted
            if ctx.value(a) is not None and ctx.strict_value(a, same_language=False) is None
        ]

    return b.make(spec, run, localizable, by_locale=True, channel_key=required_on.key)


def compile_channel_required(spec: RuleSpec, b: Binding) -> BoundCheck:
    flagged = [a for a in b.family.attributes if a.required_channels]
    required_on = _RequiredOn(flagged)

    def run(ctx: EvalContext) -> Outcome:
        wanted = required_on(ctx.channel)
        if not wanted:
            return None
        out = []
        for a in wanted:
            v = ctx.value(a)
            if is_empty(v):
                where = f" ({ctx.locale})" if a.localizable else ""
                out.append(b.issue(spec, a.code, f"{a.code} is required on this channel{where}"))
        return out

    return b.make(spec, run, flagged, channel_key=required_on.key)


COMPLIANCE_COMPILERS: dict[str, Compiler] = {
    "gtin_check_digit": compile_gtin_check_digit,
    "price_in_currency": compile_price_in_currency,
    "vat_inclusive_price": compile_vat_inclusive_price,
    "omnibus_prior_price": compile_omnibus_prior_price,
    "translations_complete": compile_translations_complete,
    "channel_required": compile_channel_required,
}
