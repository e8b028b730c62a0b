"""The rule vocabulary's generic words, compiled once per (rule set, family) into small closures.

A compiled check reads values through an :class:`EvalContext` (one variant × channel × locale) and returns
``None`` when it does not apply, ``()`` when it passes, or the issues it found. Each check declares whether
its outcome can depend on the locale and on the channel, so the engine can reuse one outcome across every
context where it cannot differ.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from accord.domain.pim.attributes import AssetRef, AttributeDef, Measure, Value, is_empty
from accord.domain.pim.catalog import Catalog, Family, FlatValues
from accord.domain.pim.channel import ChannelContext
from accord.domain.pim.spec import Condition, RuleSpec, Severity


class Issue(NamedTuple):
    code: str  # the vocabulary word, e.g. "max_len_bytes" — stable, for grouping and translation
    attribute: str | None
    message: str
    severity: Severity
    rule: str  # "<rule set>:<rule id>", where it came from


Outcome = Sequence[Issue] | None
_MISSING = object()


class EvalContext:
    """Values of one variant as seen by one channel in one locale. ``cache`` is shared by all contexts of a
    variant: a resolved value is keyed only by the dimensions the attribute actually varies by."""

    __slots__ = ("_cache", "channel", "flat", "locale")

    def __init__(self, flat: FlatValues, channel: ChannelContext, locale: str, cache: dict[object, object]) -> None:
        self.flat = flat
        self.channel = channel
        self.locale = locale
        self._cache = cache

    def value(self, attr: AttributeDef | None) -> Value | None:
        if attr is None:
            return None
        code = attr.code
        key = (code, self.locale if attr.localizable else None, self.channel.id if code in self.flat.scoped else None)
        hit = self._cache.get(key, _MISSING)
        if hit is _MISSING:
            r = self.flat.resolve(attr, self.locale, self.channel.id)
            hit = None if r is None else r.value
            self._cache[key] = hit
        return hit  # type: ignore[return-value]

    def strict_value(self, attr: AttributeDef | None, *, same_language: bool) -> Value | None:
        if attr is None:
            return None
        r = self.flat.resolve_strict(attr, self.locale, self.channel.id, same_language=same_language)
        return None if r is None else r.value


Run = Callable[[EvalContext], Outcome]


@dataclass(frozen=True, slots=True, eq=False)
class BoundCheck:
    """One compiled rule for one family. Identity (not equality) is its memo key."""

    rule: str
    code: str
    severity: Severity
    by_locale: bool
    by_channel: bool
    run: Run
    reads: frozenset[str] = frozenset()  # attribute codes the outcome can depend on
    scoped_reads: frozenset[str] = frozenset()  # the channel-specific (scopable) ones among them
    channel_fields: bool = False  # reads the channel itself (currency, VAT display, id, dialect...)
    # When set, the outcome depends on the channel only through this key (e.g. its currency), so channels
    # with equal keys share one outcome. None: the outcome may depend on anything about the channel.
    channel_key: Callable[[ChannelContext], Hashable] | None = None
    weight: int = 1  # share of the score: 3 for an error-level rule, 1 for a warning
    # When set, (category codes, category tags): the check applies only to variants in one of those categories
    # or carrying one of those tags (elsewhere its outcome is None whatever the values are).
    gate: tuple[frozenset[str], frozenset[str]] | None = None
    # Equal for checks of one family that compute the same thing (same word, attribute, parameters and
    # condition) and differ only in where they come from, message or severity: when one passes (or does not
    # apply) for a context, so do the others.
    sem: Hashable | None = None

    def applies_to(self, categories: frozenset[str], tags: frozenset[str]) -> bool:
        g = self.gate
        return g is None or bool(g[0] & categories or g[1] & tags)


@dataclass(frozen=True, slots=True)
class Binding:
    """What a compiler needs: the catalogue (role → attribute), the family and where the rule came from."""

    catalog: Catalog
    family: Family
    ruleset: str

    def attr(self, role: str) -> AttributeDef | None:
        return self.family.by_code.get(self.catalog.attribute_for(role))

    def code_of(self, role: str) -> str:
        return self.catalog.attribute_for(role)

    def issue(self, spec: RuleSpec, attribute: str | None, message: str) -> Issue:
        return Issue(spec.check, attribute, spec.message or message, spec.severity, f"{self.ruleset}:{spec.id}")

    def make(
        self,
        spec: RuleSpec,
        run: Run,
        reads: Sequence[AttributeDef | None],
        *,
        by_locale: bool = False,
        by_channel: bool = False,
        channel_key: Callable[[ChannelContext], Hashable] | None = None,
        gate: tuple[frozenset[str], frozenset[str]] | None = None,
    ) -> BoundCheck:
        """Wrap ``run`` with the rule's ``when`` condition and work out what the outcome can depend on."""
        all_reads = list(reads)
        if spec.when is not None:
            cond_attr = self.attr(spec.when.attribute)
            all_reads.append(cond_attr)
            test = _condition(spec.when, cond_attr)
            inner = run

            def run(ctx: EvalContext) -> Outcome:
                return inner(ctx) if test(ctx) else None

        present = [a for a in all_reads if a is not None]
        return BoundCheck(
            rule=f"{self.ruleset}:{spec.id}",
            code=spec.check,
            severity=spec.severity,
            by_locale=by_locale or any(a.localizable for a in present),
            by_channel=by_channel or any(a.scopable for a in present),
            run=run,
            reads=frozenset(a.code for a in present),
            scoped_reads=frozenset(a.code for a in present if a.scopable),
            channel_fields=by_channel or channel_key is not None,
            channel_key=channel_key,
            weight=3 if spec.severity is Severity.ERROR else 1,
            gate=gate,
            sem=(
                spec.check,
                spec.attribute,
                repr(sorted(spec.params.items())),
                None if spec.when is None else repr(spec.when),
            ),
        )


Compiler = Callable[[RuleSpec, Binding], BoundCheck]


def _scalar(v: object) -> object:
    return v.amount if isinstance(v, Measure) else v


def _same(a: object, b: object) -> bool:
    a = _scalar(a)
    if isinstance(a, Decimal) and isinstance(b, (int, float, str)) and not isinstance(b, bool):
        try:
            return a == Decimal(str(b))
        except InvalidOperation:
            return False
    return a == b


def _member(x: object, options: tuple[object, ...]) -> bool:
    """``any(_same(x, o) for o in options)``; values other than numbers compare with plain ``==`` there, which
    ``in`` does in C."""
    if isinstance(x, (Decimal, Measure)):
        return any(_same(x, o) for o in options)
    return x in options


def _condition(cond: Condition, attr: AttributeDef | None) -> Callable[[EvalContext], bool]:
    op, operand = cond.op, cond.operand

    def test(ctx: EvalContext) -> bool:
        v = ctx.value(attr)
        if op == "present":
            return (not is_empty(v)) == operand
        if v is None:
            return op in ("not_equals", "not_in")  # absent: unequal to anything, in no list
        items = v if isinstance(v, tuple) else (v,)
        if op == "equals":
            return not isinstance(v, tuple) and _same(v, operand)
        if op == "not_equals":
            return not isinstance(v, tuple) and not _same(v, operand)
        assert isinstance(operand, tuple)
        hit = any(_member(x, operand) for x in items)
        return hit if op == "in" else not hit

    return test


def _label(b: Binding, role: str, attr: AttributeDef | None) -> str:
    return attr.code if attr is not None else b.code_of(role)


def _where(attr: AttributeDef | None, ctx: EvalContext) -> str:
    return f" ({ctx.locale})" if attr is not None and attr.localizable else ""


# --- compilers --------------------------------------------------------------------------------------------------


def compile_required(spec: RuleSpec, b: Binding) -> BoundCheck:
    role = spec.attribute or ""
    attr = b.attr(role)
    name = _label(b, role, attr)
    match = spec.params.get("locale_match", "fallback")
    if attr is None:
        missing = (b.issue(spec, name, f"{name} is required but family {b.family.code} has no such attribute"),)
        return b.make(spec, lambda ctx: missing, [])
    if match == "fallback" or not attr.localizable:

        def get(ctx: EvalContext) -> Value | None:
            return ctx.value(attr)

    else:
        same_language = match == "language"

        def get(ctx: EvalContext) -> Value | None:
            return ctx.strict_value(attr, same_language=same_language)

    lang_note = " in the channel's language" if match == "language" else ""

    def run(ctx: EvalContext) -> Outcome:
        if is_empty(get(ctx)):
            return (b.issue(spec, name, f"{name} is required{lang_note}{_where(attr, ctx)}"),)
        return ()

    return b.make(spec, run, [attr])


def compile_required_any(spec: RuleSpec, b: Binding) -> BoundCheck:
    roles: list[str] = list(spec.params["attributes"])
    attrs = [b.attr(r) for r in roles]
    names = [_label(b, r, a) for r, a in zip(roles, attrs, strict=True)]
    msg = f"one of {', '.join(names)} is required"

    def run(ctx: EvalContext) -> Outcome:
        if all(is_empty(ctx.value(a)) for a in attrs):
            return (b.issue(spec, names[0], msg),)
        return ()

    return b.make(spec, run, attrs)


def compile_required_if_category(spec: RuleSpec, b: Binding) -> BoundCheck:
    roles: list[str] = list(spec.params["attributes"])
    attrs = [b.attr(r) for r in roles]
    names = [_label(b, r, a) for r, a in zip(roles, attrs, strict=True)]
    cats = frozenset(spec.params.get("categories", ()))
    tags = frozenset(spec.params.get("category_tags", ()))

    def run(ctx: EvalContext) -> Outcome:
        flat = ctx.flat
        if not (cats & flat.categories or tags & flat.category_tags):
            return None
        return tuple(
            b.issue(spec, n, f"{n} is required for products in this category{_where(a, ctx)}")
            for a, n in zip(attrs, names, strict=True)
            if is_empty(ctx.value(a))
        )

    return b.make(spec, run, attrs, gate=(cats, tags))


def _texts(v: Value | None) -> list[tuple[int | None, str]]:
    if isinstance(v, str):
        return [(None, v)]
    if isinstance(v, tuple):
        return [(i + 1, x) for i, x in enumerate(v) if isinstance(x, str)]
    return []


def _length_check(spec: RuleSpec, b: Binding, measure: Callable[[str], int], unit: str, upper: bool) -> BoundCheck:
    role = spec.attribute or ""
    attr = b.attr(role)
    name = _label(b, role, attr)
    limit: int = spec.params["max" if upper else "min"]
    bound_word = "at most" if upper else "at least"

    def run(ctx: EvalContext) -> Outcome:
        texts = _texts(ctx.value(attr))
        if not texts:
            return None
        out = []
        for idx, text in texts:
            n = measure(text)
            if (n > limit) if upper else (n < limit):
                item = f"{name} item {idx}" if idx is not None else name
                out.append(b.issue(spec, name, f"{item} is {n} {unit}{_where(attr, ctx)}; {bound_word} {limit}"))
        return out

    return b.make(spec, run, [attr])


def compile_max_len_chars(spec: RuleSpec, b: Binding) -> BoundCheck:
    return _length_check(spec, b, len, "characters", upper=True)


def compile_min_len_chars(spec: RuleSpec, b: Binding) -> BoundCheck:
    return _length_check(spec, b, len, "characters", upper=False)


def compile_max_len_bytes(spec: RuleSpec, b: Binding) -> BoundCheck:
    return _length_check(spec, b, lambda s: len(s.encode("utf-8")), "bytes (UTF-8)", upper=True)


def _items_check(spec: RuleSpec, b: Binding, upper: bool) -> BoundCheck:
    role = spec.attribute or ""
    attr = b.attr(role)
    name = _label(b, role, attr)
    limit: int = spec.params["max" if upper else "min"]

    def run(ctx: EvalContext) -> Outcome:
        v = ctx.value(attr)
        if v is None:
            return None
        n = len(v) if isinstance(v, tuple) else 1
        if (n > limit) if upper else (n < limit):
            word = "at most" if upper else "at least"
            return (b.issue(spec, name, f"{name} has {n} items{_where(attr, ctx)}; {word} {limit} allowed"),)
        return ()

    return b.make(spec, run, [attr])


def compile_max_items(spec: RuleSpec, b: Binding) -> BoundCheck:
    return _items_check(spec, b, upper=True)


def compile_min_items(spec: RuleSpec, b: Binding) -> BoundCheck:
    return _items_check(spec, b, upper=False)


def compile_min_pixels(spec: RuleSpec, b: Binding) -> BoundCheck:
    role = spec.attribute or ""
    attr = b.attr(role)
    name = _label(b, role, attr)
    limit: int = spec.params["min"]

    def run(ctx: EvalContext) -> Outcome:
        v = ctx.value(attr)
        if isinstance(v, AssetRef):
            assets = [v]
        elif isinstance(v, tuple):
            assets = [a for a in v if isinstance(a, AssetRef)]
        else:
            return None
        if not assets:
            return None
        out = []
        for a in assets:
            side = a.longest_side_px
            if side is None:
                msg = f"{name}: pixel size of {a.uri} unknown; at least {limit}px on the longest side needed"
                out.append(b.issue(spec, name, msg)._replace(severity=Severity.WARNING))
            elif side < limit:
                msg = f"{name}: {a.uri} is {side}px on its longest side; at least {limit}px needed"
                out.append(b.issue(spec, name, msg))
        return out

    return b.make(spec, run, [attr])


def compile_one_of(spec: RuleSpec, b: Binding) -> BoundCheck:
    role = spec.attribute or ""
    attr = b.attr(role)
    name = _label(b, role, attr)
    allowed = tuple(spec.params["values"])
    shown = ", ".join(str(x) for x in allowed)

    def run(ctx: EvalContext) -> Outcome:
        v = ctx.value(attr)
        if v is None:
            return None
        items = v if isinstance(v, tuple) else (v,)
        bad = [x for x in items if not _member(x, allowed)]
        return [b.issue(spec, name, f"{name}: {_scalar(x)!s} is not allowed here (allowed: {shown})") for x in bad]

    return b.make(spec, run, [attr])


def compile_regex(spec: RuleSpec, b: Binding) -> BoundCheck:
    role = spec.attribute or ""
    attr = b.attr(role)
    name = _label(b, role, attr)
    pattern = re.compile(spec.params["pattern"])

    def run(ctx: EvalContext) -> Outcome:
        v = ctx.value(attr)
        if v is None:
            return None
        items = v if isinstance(v, tuple) else (v,)
        texts = [str(_scalar(x)) for x in items if isinstance(x, (str, Measure))]
        return [b.issue(spec, name, f"{name}: {t!r} has the wrong format") for t in texts if not pattern.fullmatch(t)]

    return b.make(spec, run, [attr])


GENERIC_COMPILERS: dict[str, Compiler] = {
    "required": compile_required,
    "required_any": compile_required_any,
    "required_if_category": compile_required_if_category,
    "max_len_chars": compile_max_len_chars,
    "min_len_chars": compile_min_len_chars,
    "max_len_bytes": compile_max_len_bytes,
    "max_items": compile_max_items,
    "min_items": compile_min_items,
    "min_pixels": compile_min_pixels,
    "one_of": compile_one_of,
    "regex": compile_regex,
}
