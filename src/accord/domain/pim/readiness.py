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


Result = tuple[tuple[Issue, ...], int]  # issues, score
Vector = tuple[Result, ...]  # one result per slot of :meth:`ReadinessEngine.slots` (channel × locale)
_INTERN_MAX = 200_000  # distinct results / vectors kept for sharing before the tables are reset
_CLEAN: Result = ((), 100)


class _Program(NamedTuple):
    """Every check instance a variant needs for a channel list (each distinct (check, locale, channel key) once)
    and, per slot, which instances make up its result (slots with equal instance lists share one group)."""

    checks: tuple[BoundCheck, ...]
    ctx_of: tuple[int, ...]  # per instance: index into ``contexts``
    same_as: tuple[int, ...]  # per instance: an earlier instance computing the same thing in the same context, or -1
    contexts: tuple[tuple[ChannelContext, str], ...]  # (channel, locale) to evaluate an instance in
    weights: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]  # instance indexes, in the order issues are reported
    slot_group: tuple[int, ...]
    reads: frozenset[str]  # attributes any instance reads


def _same_values(a: Mapping[object, object], b: Mapping[object, object]) -> bool:
    """Equal and equally written (``Decimal('1.0')`` equals ``Decimal('1.00')`` but reads differently)."""
    if len(a) != len(b):
        return False
    for k, x in a.items():
        y = b.get(k, _UNSET)
        if x is y:
            continue
        if y is _UNSET or type(x) is not type(y) or x != y or repr(x) != repr(y):
            return False
    return True


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
        self._programs: dict[tuple[object, ...], tuple[tuple[ChannelContext, ...], _Program]] = {}
        self._slots: dict[int, tuple[tuple[ChannelContext, ...], tuple[tuple[str, str], ...]]] = {}
        self._results: dict[Result, Result] = {}
        self._vectors: dict[Vector, Vector] = {}
        self._canon_by_id: dict[int, tuple[tuple[ChannelContext, ...], tuple[ChannelContext, ...]]] = {}
        self._canon_by_value: dict[tuple[ChannelContext, ...], tuple[ChannelContext, ...]] = {}

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
        """Every variant of ``product`` on every channel and locale (:meth:`evaluate_rows`, unpacked)."""
        chans = self._canon(tuple(channels))
        slots = self.slots(chans)
        out: dict[ReadinessKey, Readiness] = {}
        for vid, vec in self.evaluate_rows(product, chans).items():
            for (cid, loc), (issues, score) in zip(slots, vec, strict=True):
                key = _mk(ReadinessKey, (vid, cid, loc))
                out[key] = Readiness(key, issues, score)
        return out

    def _canon(self, channels: tuple[ChannelContext, ...]) -> tuple[ChannelContext, ...]:
        """One object per distinct channel list, so per-list caches can be keyed by identity."""
        ent = self._canon_by_id.get(id(channels))
        if ent is not None and ent[0] is channels:
            return ent[1]
        canon = self._canon_by_value.setdefault(channels, channels)
        if len(self._canon_by_id) > 64:
            self._canon_by_id.clear()
        self._canon_by_id[id(channels)] = (channels, canon)
        return canon

    # --- whole-product evaluation (full recompute, new products): one vector per variant ---------------------

    def slots(self, channels: tuple[ChannelContext, ...]) -> tuple[tuple[str, str], ...]:
        """(channel id, locale) of each position of a :data:`Vector` for ``channels``."""
        channels = self._canon(channels)
        ent = self._slots.get(id(channels))
        if ent is None or ent[0] is not channels:
            ent = self._slots[id(channels)] = (channels, tuple((c.id, loc) for c in channels for loc in c.locales))
        return ent[1]

    def evaluate_rows(self, product: Product, channels: tuple[ChannelContext, ...]) -> dict[str, Vector]:
        """Every variant of ``product`` on every slot of :meth:`slots` — the same results as :meth:`evaluate`, in
        packed form: each distinct check instance runs once per variant, slots with the same checks share one
        result, siblings whose own values differ only in attributes no applicable check reads share one vector,
        and equal vectors (of any product) are the same object, so callers can cache per ``id(vector)``."""
        channels = self._canon(channels)
        out: dict[str, Vector] = {}
        seen: dict[tuple[object, ...], tuple[frozenset[str], list[tuple[dict[object, object], Vector]]]] = {}
        for vid in product.variants():
            leaf = product.by_id[vid]
            lscoped = frozenset(k.attribute for k in leaf.values if k.channel is not None)
            gkey = (leaf.parent, leaf.categories, lscoped)
            ent = seen.get(gkey)
            if ent is not None and leaf.parent is not None:
                reads, done = ent
                own: dict[object, object] = {k: v for k, v in leaf.values.items() if k.attribute in reads}
                for other, vec in done:
                    if _same_values(own, other):
                        out[vid] = vec
                        break
                else:
                    out[vid] = vec = self._evaluate_vector(product, vid, channels)[1]
                    done.append((own, vec))
                continue
            prog, vec = self._evaluate_vector(product, vid, channels)
            out[vid] = vec
            own = {k: v for k, v in leaf.values.items() if k.attribute in prog.reads}
            seen[gkey] = (prog.reads, [(own, vec)])
        return out

    def _evaluate_vector(
        self, product: Product, variant_id: str, channels: tuple[ChannelContext, ...]
    ) -> tuple[_Program, Vector]:
        flat = FlatValues(self.catalog, product, variant_id)
        prog = self._program(channels, product.family, flat.scoped, flat.categories, flat.category_tags)
        cache: dict[object, object] = {}
        ctxs = [EvalContext(flat, ch, loc, cache) for ch, loc in prog.contexts]
        outcomes: list[Outcome] = []
        for chk, ci, same in zip(prog.checks, prog.ctx_of, prog.same_as, strict=True):
            if same >= 0:
                o = outcomes[same]
                if not o:  # passed or does not apply: so does every check computing the same thing
                    outcomes.append(o)
                    continue
            outcomes.append(chk.run(ctxs[ci]))
        weights = prog.weights
        interned = self._results
        if len(interned) > _INTERN_MAX:
            interned.clear()
        # a group none of whose instances found issues scores 100 with no issues, whatever applied
        failing = frozenset(i for i, o in enumerate(outcomes) if o)
        results: list[Result] = []
        for idx in prog.groups:
            if failing.isdisjoint(idx):
                results.append(_CLEAN)
                continue
            issues: list[Issue] = []
            total = failed = 0
            for i in idx:
                o = outcomes[i]
                if o is None:
                    continue
                w = weights[i]
                total += w
                if o:
                    failed += w
                    issues.extend(o)
            score = 100 if total == 0 else (100 * (total - failed)) // total
            r: Result = (tuple(issues), score)
            results.append(interned.setdefault(r, r))
        vec = tuple([results[g] for g in prog.slot_group])
        vectors = self._vectors
        if len(vectors) > _INTERN_MAX:
            vectors.clear()
        return prog, vectors.setdefault(vec, vec)

    def _program(
        self,
        channels: tuple[ChannelContext, ...],
        family: str,
        scoped: frozenset[str],
        categories: frozenset[str],
        tags: frozenset[str],
    ) -> _Program:
        key = (id(channels), family, scoped, categories, tags)
        ent = self._programs.get(key)
        if ent is not None and ent[0] is channels:
            return ent[1]
        index: dict[object, int] = {}
        by_sem: dict[object, int] = {}
        checks: list[BoundCheck] = []
        ctx_of: list[int] = []
        same_as: list[int] = []
        contexts: list[tuple[ChannelContext, str]] = []
        ctx_index: dict[tuple[str, str], int] = {}
        groups: dict[tuple[int, ...], int] = {}
        slot_group: list[int] = []

        def add(where: tuple[object, ...], chk: BoundCheck, ch: ChannelContext, loc: str) -> int:
            """The instance of ``chk`` for context ``where`` (what its outcome depends on), evaluated in (ch, loc)."""
            ikey = (chk, *where)
            i = index.get(ikey)
            if i is None:
                i = index[ikey] = len(checks)
                rep = i if chk.sem is None else by_sem.setdefault((chk.sem, *where), i)
                same_as.append(-1 if rep == i else rep)
                checks.append(chk)
                ci = ctx_index.get((ch.id, loc))
                if ci is None:
                    ci = ctx_index[(ch.id, loc)] = len(contexts)
                    contexts.append((ch, loc))
                ctx_of.append(ci)
            return i

        for ch in channels:
            if not ch.locales:
                continue
            split, chan_keyed, both_keyed, _ = self._prepared.get((ch, family, scoped)) or self._prepare(
                ch, family, scoped
            )
            first = ch.locales[0]
            base = [add(("c",), c, ch, first) for c in split.const if c.applies_to(categories, tags)]
            chan = [
                add(("x", ch.id) if k is _NO_KEY else ("k", k), c, ch, first)
                for c, k in chan_keyed
                if c.applies_to(categories, tags)
            ]
            for loc in ch.locales:
                locs = [add(("l", loc), c, ch, loc) for c in split.loc if c.applies_to(categories, tags)]
                both = [
                    add(("y", ch.id, loc) if k is _NO_KEY else ("b", k, loc), c, ch, loc)
                    for c, k in both_keyed
                    if c.applies_to(categories, tags)
                ]
                idx = (*base, *chan, *locs, *both)
                slot_group.append(groups.setdefault(idx, len(groups)))
        prog = _Program(
            tuple(checks),
            tuple(ctx_of),
            tuple(same_as),
            tuple(contexts),
            tuple(c.weight for c in checks),
            tuple(groups),
            tuple(slot_group),
            frozenset().union(*(c.reads for c in checks)),
        )
        self._programs[key] = (channels, prog)
        return prog

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
