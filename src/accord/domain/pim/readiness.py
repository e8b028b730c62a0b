"""Readiness: for each variant × channel × locale, the issues against the channel's dialect rules and the
compliance packs that apply to it, and a score.

Score: every check that applies carries a weight (error 3, warning 1); the score is the share of that weight
whose checks passed, 0-100, rounded down (100 when nothing applies). ``ready`` is False while any error remains.

The engine compiles each rule set once per family and each channel's plan once, then evaluates a variant for
many channels and locales while computing each check outcome only once per distinct (locale, channel) it can
depend on. Build a new engine when the catalogue or the rule library changes; it compiles lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, cast

from accord.domain.errors import InvalidInput, NotFound
from accord.domain.pim.catalog import Catalog, FlatValues, Product
from accord.domain.pim.channel import ChannelContext
from accord.domain.pim.checks import GENERIC_COMPILERS, Binding, BoundCheck, Compiler, EvalContext, Issue, Outcome
from accord.domain.pim.compliance import COMPLIANCE_COMPILERS
from accord.domain.pim.spec import VOCABULARY, RuleLibrary, RuleSet, RuleSetKind, RuleSpec, Severity

COMPILERS: Mapping[str, Compiler] = {**GENERIC_COMPILERS, **COMPLIANCE_COMPILERS}

# Applied on every channel: the family's own "required on this channel" flags.
_CHANNEL_REQUIRED = RuleSet(
    "family",
    RuleSetKind.PACK,
    (RuleSpec("channel-required", "channel_required", Severity.ERROR),),
    description="attributes the family marks required on the channel",
    source="builtin",
)


_Keyed = tuple[tuple[BoundCheck, Callable[[ChannelContext], Hashable] | None], ...]


class _Split(NamedTuple):
    const: tuple[BoundCheck, ...]  # depends on neither locale nor channel
    chan: _Keyed  # channel only (with the channel key to share outcomes by, if any)
    loc: tuple[BoundCheck, ...]  # locale only
    both: _Keyed


class _Prepared(NamedTuple):
    split: _Split
    chan_keyed: list[tuple[BoundCheck, Hashable]]
    both_keyed: list[tuple[BoundCheck, Hashable]]
    signature: tuple[object, ...] | None  # None: this channel's results cannot be shared


_Agg = tuple[tuple[Issue, ...], int, int]  # issues, applicable weight, failed weight


def _run(checks: tuple[BoundCheck, ...], ctx: EvalContext, memo: dict[object, Outcome] | None, loc: str | None) -> _Agg:
    """Run ``checks`` (reusing outcomes from ``memo`` keyed by check, or by (check, locale))."""
    issues: list[Issue] = []
    total = failed = 0
    for chk in checks:
        if memo is None:
            outcome = chk.run(ctx)
        else:
            mkey: object = chk if loc is None else (chk, loc)
            outcome = memo.get(mkey, _UNSET)
            if outcome is _UNSET:
                outcome = memo[mkey] = chk.run(ctx)
        if outcome is None:
            continue
        w = chk.weight
        total += w
        if outcome:
            failed += w
            issues.extend(outcome)
    return tuple(issues), total, failed


_NO_KEY = object()


def _channel_keys(checks: _Keyed, ch: ChannelContext) -> list[tuple[BoundCheck, Hashable]]:
    return [(chk, _NO_KEY if fn is None else fn(ch)) for chk, fn in checks]


def _run_keyed(
    checks: list[tuple[BoundCheck, Hashable]], ctx: EvalContext, memo: dict[object, Outcome], loc: str | None
) -> _Agg:
    """Run channel-dependent checks, sharing outcomes between channels with the same channel key."""
    issues: list[Issue] = []
    total = failed = 0
    for chk, ckey in checks:
        if ckey is _NO_KEY:
            outcome = chk.run(ctx)
        else:
            mkey = (chk, ckey, loc)
            outcome = memo.get(mkey, _UNSET)
            if outcome is _UNSET:
                outcome = memo[mkey] = chk.run(ctx)
        if outcome is None:
            continue
        w = chk.weight
        total += w
        if outcome:
            failed += w
            issues.extend(outcome)
    return tuple(issues), total, failed


_mk = tuple.__new__  # builds a NamedTuple without its (Python-level) __new__: same value, much cheaper

_UNSET = cast(Outcome, object())  # "not computed yet" (None and () are real outcomes)


class SiblingMemo:
    """Results shared between the variants of one product (see :meth:`ReadinessEngine.evaluate_variant`)."""

    __slots__ = ("results", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[object, int] = {}  # fingerprint of the values a plan reads → small int
        self.results: dict[object, tuple[tuple[Issue, ...], int]] = {}


class ReadinessKey(NamedTuple):
    variant_id: str
    channel_id: str
    locale: str


@dataclass(frozen=True, slots=True)
class Readiness:
    key: ReadinessKey
    issues: tuple[Issue, ...]
    score: int

    @property
    def ready(self) -> bool:
        """Publishable: no error-level issue."""
        return not any(i.severity is Severity.ERROR for i in self.issues)

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(i for i in self.issues if i.severity is Severity.WARNING)


class ReadinessEngine:
    """Evaluates readiness for one catalogue and rule library (both treated as immutable)."""

    def __init__(self, catalog: Catalog, library: RuleLibrary) -> None:
        missing = set(VOCABULARY) - set(COMPILERS)
        if missing:  # pragma: no cover - guards the vocabulary and the compilers staying in step
            raise InvalidInput(f"no implementation for checks {sorted(missing)}")
        self.catalog = catalog
        self.library = library
        self._bound: dict[tuple[int, str], tuple[BoundCheck, ...]] = {}
        self._plans: dict[tuple[ChannelContext, str], tuple[BoundCheck, ...]] = {}
        self._reads: dict[tuple[ChannelContext, str], frozenset[str]] = {}
        self._splits: dict[tuple[int, frozenset[str]], _Split] = {}
        self._prepared: dict[tuple[ChannelContext, str, frozenset[str]], _Prepared] = {}
        self._interned: dict[tuple[int, ...], tuple[BoundCheck, ...]] = {}
        self._reads_sorted: dict[tuple[ChannelContext, str], tuple[str, ...]] = {}
        self._reads_interned: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._prep_by_id: dict[
            tuple[int, str, frozenset[str]], tuple[ChannelContext, _Prepared, tuple[str, ...], Hashable]
        ] = {}
        self._sig_tokens: dict[tuple[object, ...], int] = {}

    # --- compilation -----------------------------------------------------------------------------------------

    def _compile(self, ruleset: RuleSet, family_code: str) -> tuple[BoundCheck, ...]:
        key = (id(ruleset), family_code)
        hit = self._bound.get(key)
        if hit is None:
            b = Binding(self.catalog, self.catalog.family(family_code), ruleset.name)
            hit = tuple(COMPILERS[r.check](r, b) for r in ruleset.rules)
            self._bound[key] = hit
        return hit

    def plan(self, channel: ChannelContext, family_code: str) -> tuple[BoundCheck, ...]:
        """The compiled checks for one channel and family (cached)."""
        key = (channel, family_code)
        hit = self._plans.get(key)
        if hit is not None:
            return hit
        channel.check()
        rulesets = [_CHANNEL_REQUIRED, self.library.dialect(channel.dialect), *self.library.packs_for(channel)]
        checks: list[BoundCheck] = []
        for rs in rulesets:
            for spec, bound in zip(rs.rules, self._compile(rs, family_code), strict=True):
                if spec.countries is None or channel.country in spec.countries:
                    checks.append(bound)
        plan = tuple(checks)
        plan = self._interned.setdefault(tuple(id(c) for c in plan), plan)  # channels with the same rules share
        self._plans[key] = plan
        return plan

    def reads(self, channel: ChannelContext, family_code: str) -> frozenset[str]:
        """Attribute codes any check of this channel's plan reads for this family (cached)."""
        key = (channel, family_code)
        hit = self._reads.get(key)
        if hit is None:
            hit = frozenset().union(*(c.reads for c in self.plan(channel, family_code)))
            self._reads[key] = hit
        return hit

    def precompile(self, channels: Iterable[ChannelContext], families: Iterable[str] | None = None) -> None:
        """Compile every plan up front (optional; plans are otherwise compiled on first use)."""
        fams = tuple(self.catalog.families) if families is None else tuple(families)
        for ch in channels:
            for f in fams:
                self.plan(ch, f)

    # --- evaluation ------------------------------------------------------------------------------------------

    def evaluate_variant(
        self,
        product: Product,
        variant_id: str,
        channels: Iterable[ChannelContext],
        locales: Mapping[str, Iterable[str]] | None = None,
        shared: SiblingMemo | None = None,
    ) -> dict[ReadinessKey, Readiness]:
        """Readiness of one variant on each channel in each of its locales (or only ``locales[channel_id]``).

        Each check outcome is computed once per distinct thing it can depend on: checks that read neither the
        locale nor the channel run once per variant, locale-only checks once per locale, channel checks once per
        channel; channel-specific attributes count as channel-dependent only if this variant has such values.

        ``shared`` (one :class:`SiblingMemo` per product, passed to each of its variants) reuses a channel's
        result between sibling variants whose values for every attribute that channel's plan reads come from the
        same nodes (inherited from a common ancestor) and that have the same categories: their results cannot
        differ (this relies on ``BoundCheck.reads`` being complete, as :func:`affected_keys` already does).
        """
        if variant_id in product.children_of:
            raise InvalidInput(f"{variant_id} has variants below it; readiness is per variant")
        flat = FlatValues(self.catalog, product, variant_id)
        sources: dict[str, frozenset[tuple[object, str]]] = {}
        fps: dict[int, int] = {}
        if shared is not None:
            grouped: dict[str, list[tuple[object, str]]] = {}
            for vk, (_, src) in flat.items():
                grouped.setdefault(vk.attribute, []).append((vk, src))
            sources = {a: frozenset(x) for a, x in grouped.items()}
        cache: dict[object, object] = {}
        check_memo: dict[object, Outcome] = {}
        const_memo: dict[int, _Agg] = {}
        loc_memo: dict[tuple[int, str], _Agg] = {}
        # Channels with the same plan and the same channel keys (currency, VAT display, required set...) get
        # the same result per locale.
        result_memo: dict[tuple[Hashable, str], tuple[tuple[Issue, ...], int]] = {}
        out: dict[ReadinessKey, Readiness] = {}
        family, scoped = product.family, flat.scoped
        by_id = self._prep_by_id
        for ch in channels:
            # keyed by identity (hashing a channel context is costly); the entry keeps ``ch`` alive, so an equal id
            # with ``ent[0] is ch`` is the same object
            ent = by_id.get((id(ch), family, scoped))
            if ent is None or ent[0] is not ch:
                prep = self._prepared.get((ch, family, scoped))
                if prep is None:
                    prep = self._prepare(ch, family, scoped)
                # a small int per distinct signature (hashing the signature per lookup is costly); channels
                # whose results cannot be shared get a token of their own
                token = (
                    ("channel", id(ch))
                    if prep.signature is None
                    else self._sig_tokens.setdefault(prep.signature, len(self._sig_tokens))
                )
                ent = by_id[(id(ch), family, scoped)] = (ch, prep, self._sorted_reads(ch, family), token)
            _, prep, reads, sig = ent
            split, chan_keyed, both_keyed, signature = prep
            sid = id(split)
            chan_id = ch.id
            chan_agg: _Agg | None = None
            for loc in ch.locales if locales is None else locales.get(chan_id, ()):
                key = _mk(ReadinessKey, (variant_id, chan_id, loc))
                hit = None if signature is None else result_memo.get((sig, loc))
                if hit is not None:
                    out[key] = Readiness(key, *hit)
                    continue
                skey: object = None
                if shared is not None:
                    tok = fps.get(id(reads))
                    if tok is None:
                        fp = (flat.categories, flat.category_tags, reads, tuple(map(sources.get, reads)))
                        tok = fps[id(reads)] = shared.tokens.setdefault(fp, len(shared.tokens))
                    skey = (sig, sid, loc, tok)
                    hit = shared.results.get(skey)
                    if hit is not None:
                        if signature is not None:
                            result_memo[(sig, loc)] = hit
                        out[key] = Readiness(key, *hit)
                        continue
                ctx = EvalContext(flat, ch, loc, cache)
                base = const_memo.get(sid)
                if base is None:
                    base = const_memo[sid] = _run(split.const, ctx, check_memo, None)
                if chan_agg is None:
                    chan_agg = _run_keyed(chan_keyed, ctx, check_memo, None)
                loc_agg = loc_memo.get((sid, loc))
                if loc_agg is None:
                    loc_agg = loc_memo[(sid, loc)] = _run(split.loc, ctx, check_memo, loc)
                both = _run_keyed(both_keyed, ctx, check_memo, loc)
                total = base[1] + chan_agg[1] + loc_agg[1] + both[1]
                failed = base[2] + chan_agg[2] + loc_agg[2] + both[2]
                score = 100 if total == 0 else (100 * (total - failed)) // total
                result = (base[0] + chan_agg[0] + loc_agg[0] + both[0], score)
                if signature is not None:
                    result_memo[(sig, loc)] = result
                if skey is not None and shared is not None:
                    shared.results[skey] = result
                out[key] = Readiness(key, *result)
        return out

    def _sorted_reads(self, channel: ChannelContext, family_code: str) -> tuple[str, ...]:
        key = (channel, family_code)
        hit = self._reads_sorted.get(key)
        if hit is None:
            hit = tuple(sorted(self.reads(channel, family_code)))
            hit = self._reads_interned.setdefault(hit, hit)
            self._reads_sorted[key] = hit
        return hit

    def _prepare(self, ch: ChannelContext, family: str, scoped: frozenset[str]) -> _Prepared:
        """Per channel, family and set of channel-specific attributes: the plan's groups, each channel-dependent
        check's key for this channel, and a signature equal for channels that must get equal results."""
        split = self._split(self.plan(ch, family), scoped)
        chan_keyed = _channel_keys(split.chan, ch)
        both_keyed = _channel_keys(split.both, ch)
        keys = [k for _, k in chan_keyed] + [k for _, k in both_keyed]
        # a check without a channel key depends on this channel as a whole: nothing to share
        signature = None if any(k is _NO_KEY for k in keys) else (id(split), *keys)
        prep = _Prepared(split, chan_keyed, both_keyed, signature)
        self._prepared[(ch, family, scoped)] = prep
        return prep

    def _split(self, plan: tuple[BoundCheck, ...], scoped: frozenset[str]) -> _Split:
        """Group a plan's checks by what their outcome depends on for a variant with channel-specific values
        for the ``scoped`` attributes (cached; usually ``scoped`` is empty or one of a few sets)."""
        key = (id(plan), scoped)
        hit = self._splits.get(key)
        if hit is None:
            const: list[BoundCheck] = []
            loc: list[BoundCheck] = []
            chan: list[tuple[BoundCheck, Callable[[ChannelContext], Hashable] | None]] = []
            both: list[tuple[BoundCheck, Callable[[ChannelContext], Hashable] | None]] = []
            for c in plan:
                scoped_hit = bool(c.scoped_reads & scoped)
                if not c.channel_fields and not scoped_hit:
                    (loc if c.by_locale else const).append(c)
                else:
                    (both if c.by_locale else chan).append((c, None if scoped_hit else c.channel_key))
            hit = _Split(tuple(const), tuple(chan), tuple(loc), tuple(both))
            self._splits[key] = hit
        return hit

    def evaluate(self, product: Product, channels: Iterable[ChannelContext]) -> dict[ReadinessKey, Readiness]:
        """Every variant of ``product`` on every channel and locale."""
        chans = tuple(channels)
        out: dict[ReadinessKey, Readiness] = {}
        shared = SiblingMemo()
        for vid in product.variants():
            out.update(self.evaluate_variant(product, vid, chans, shared=shared))
        return out

    def evaluate_keys(
        self, product: Product, keys: Iterable[ReadinessKey], channels: Mapping[str, ChannelContext]
    ) -> dict[ReadinessKey, Readiness]:
        """Only the given keys of ``product`` (e.g. those :func:`affected_keys` returned)."""
        wanted: dict[str, dict[str, list[str]]] = {}
        for k in keys:
            if k.channel_id not in channels:
                raise NotFound("channel", k.channel_id)
            wanted.setdefault(k.variant_id, {}).setdefault(k.channel_id, []).append(k.locale)
        out: dict[ReadinessKey, Readiness] = {}
        shared = SiblingMemo()
        for vid, per_channel in wanted.items():
            product.node(vid)
            chans = [channels[c] for c in per_channel]
            out.update(self.evaluate_variant(product, vid, chans, per_channel, shared=shared))
        return out
