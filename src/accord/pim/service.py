"""PIM use cases over the store: definitions, products and variants, history and revert, channel context, and
readiness kept current in the same transaction as every change.

Every write follows one path: validate with the domain → write rows → :func:`affected_keys` says which readiness
keys the change touches → evaluate exactly those → write the readiness rows whose content changed → outbox
events (``ProductUpdated``, ``ReadinessChanged`` only where ``ready`` or the issues changed), all in ONE
transaction. Variants become ledger SKUs in the same transaction (``Engine.add_skus_in``).

Readiness is stored sparsely (a row per key with issues; none for a clean key) and whole products are evaluated
packed (:meth:`ReadinessEngine.evaluate_rows`: one shared vector per distinct result), so a full recompute or an
import costs per product, not per variant × channel × locale. Rule files users add live in ``pim_rulesets`` and
are part of the cached state (``pim_meta['rules']``).
"""

from __future__ import annotations

import gc
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from accord.app.engine import Engine
from accord.domain.catalog import Sku
from accord.domain.errors import InvalidInput, NotFound
from accord.domain.events import Event
from accord.domain.pim import (
    AssetRef,
    AttributeDef,
    Catalog,
    Category,
    CategoryEdited,
    ChannelContext,
    ChannelEdited,
    Family,
    FamilyEdited,
    Impact,
    Locale,
    Product,
    ProductEdited,
    ProductNode,
    Readiness,
    ReadinessEngine,
    ReadinessKey,
    RuleLibrary,
    RuleSet,
    Severity,
    Value,
    ValueKey,
    affected_keys,
    diff_product,
    value_to_json,
)
from accord.domain.pim.attributes import AttributeType
from accord.domain.pim.incremental import ChannelRulesEdited, PackEdited
from accord.domain.pim.readiness import Vector
from accord.domain.pim.spec import RuleSetKind, load_ruleset_text, ruleset_format
from accord.pim.codec import attribute_from_json, attribute_to_json, canonical_product, decode_value, same_product
from accord.store import pim_tables as pt
from accord.store import schema as t
from accord.store.db import Compiled, Database, Tx
from accord.store.sql import StatementRunner

PRODUCT_UPDATED = "ProductUpdated"
READINESS_CHANGED = "ReadinessChanged"
CATALOG_CHANGED = "CatalogDefinitionChanged"
CHANNEL_CONTEXT_CHANGED = "ChannelContentContextChanged"
NODE_HISTORY = "@node"  # pim_history.attribute of a tree change: old/new are {parent, position, axes, categories}

CHUNK = 500  # products per query / per full-recompute transaction
MAX_EVENT_CHANGES = 200  # value changes listed in one ProductUpdated event (the count is always exact)


@dataclass(frozen=True, slots=True)
class PimState:
    """Catalogue, channels and a readiness engine for one version of the definitions."""

    versions: tuple[int, int, int]  # catalog, channels, rules
    catalog: Catalog
    channels: tuple[ChannelContext, ...]
    engine: ReadinessEngine
    library: RuleLibrary  # the built-in rule sets with the stored ones (``pim_rulesets``) in place
    stored_rules: tuple[RuleSet, ...] = ()

    @property
    def by_channel(self) -> dict[str, ChannelContext]:
        return {c.id: c for c in self.channels}


@dataclass(slots=True)
class WriteResult:
    product: str
    version: int
    created: bool
    changed: bool
    value_changes: int = 0
    readiness_written: int = 0
    readiness_changed: int = 0


_Enc = tuple[bool, int, str]  # a stored readiness row: ready, score, issues JSON
# Readiness is stored sparsely: a row only for a key with issues. A key of an existing variant × channel locale
# without a row is ready with score 100 and no issues (a result without issues always scores 100).
_CLEAN: _Enc = (True, 100, "[]")
_Stored = dict[str, dict[tuple[str, str], _Enc]]  # variant → (channel, locale) → stored row
FLUSH_ROWS = 5000  # readiness rows per executemany


@dataclass(slots=True)
class _ReadinessStats:
    written: int = 0  # keys whose readiness was recorded or changed (a new key counts, with or without a row)
    changed: int = 0
    dropped: int = 0
    events: list[Event] = field(default_factory=list)
    # rows waiting for :meth:`Pim._flush_readiness` (written in large batches, before the transaction ends)
    ins: list[tuple[Any, ...]] = field(default_factory=list)
    upd: list[tuple[Any, ...]] = field(default_factory=list)
    dele: list[tuple[str, str, str]] = field(default_factory=list)


def _j(v: object) -> str:
    return orjson.dumps(v).decode()


def _issues_json(issues: Sequence[Any]) -> str:
    return _j(
        [
            {
                "code": i.code,
                "attribute": i.attribute,
                "message": i.message,
                "severity": i.severity.value,
                "rule": i.rule,
            }
            for i in issues
        ]
    )


class _Encoder:
    """Stored form of readiness results and vectors, computed once per distinct object (results and vectors
    from one engine are interned, so equal ones of different products hit the same entry)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._results: dict[tuple[int, int], tuple[object, _Enc, list[str]]] = {}
        self._vectors: dict[int, tuple[object, dict[tuple[str, str], tuple[_Enc, list[str]]], list[Any]]] = {}

    def result(self, issues: tuple[Any, ...], score: int, keep: object) -> tuple[_Enc, list[str]]:
        """``keep`` owns ``issues`` (the cache is keyed by ``id(issues)`` and the score, and keeps ``keep`` alive;
        one issues tuple can come with different scores)."""
        hit = self._results.get((id(issues), score))
        if hit is None:
            if len(self._results) > self.LIMIT:
                self._results.clear()
            errors = [i.code for i in issues if i.severity is Severity.ERROR]
            hit = self._results[(id(issues), score)] = (keep, (not errors, score, _issues_json(issues)), errors)
        return hit[1], hit[2]

    def vector(
        self, vec: Vector, slots: tuple[tuple[str, str], ...]
    ) -> tuple[dict[tuple[str, str], tuple[_Enc, list[str]]], list[Any]]:
        """The rows to store (slots with issues) and the event changes of a variant seen for the first time."""
        hit = self._vectors.get(id(vec))
        if hit is None:
            if len(self._vectors) > self.LIMIT:
                self._vectors.clear()
            rows: dict[tuple[str, str], tuple[_Enc, list[str]]] = {}
            changes: list[Any] = []
            for slot, r in zip(slots, vec, strict=True):
                e, errors = self.result(r[0], r[1], r)
                if r[0]:
                    rows[slot] = (e, errors)
                changes.append(
                    {
                        "channel": slot[0],
                        "locale": slot[1],
                        "ready": e[0],
                        "was_ready": None,
                        "score": e[1],
                        "errors": errors,
                    }
                )
            hit = self._vectors[id(vec)] = (vec, rows, changes)
        return hit[1], hit[2]


@contextmanager
def bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk job builds and drops many short-lived acyclic objects
    (rows, values, products): its generation scans otherwise cost a large share of the time. Reference counting
    still frees everything; the collector runs again, as before, when the block ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _in(col: sa.ColumnElement[Any], values: Sequence[str]) -> sa.ColumnElement[bool]:
    return col.in_(values)


class Pim:
    """PIM use cases. Thread-safe; one per process is enough (it caches the compiled catalogue)."""

    def __init__(self, db: Database, engine: Engine, library: RuleLibrary | None = None) -> None:
        self.db = db
        self._sql = StatementRunner(db)
        self.engine = engine
        self.clock = engine.clock
        self.base_library = library or RuleLibrary.builtin()  # stored rule files are applied on top
        self._state: PimState | None = None
        self._lock = threading.Lock()
        c = db.compile
        bp = sa.bindparam
        self._q_versions = c(sa.select(pt.pim_meta.c.key, pt.pim_meta.c.value))
        self._ins_outbox = c(
            sa.insert(t.outbox).values(type=bp("type"), key=bp("key"), data=bp("data"), created_at=bp("at"))
        )
        r = pt.pim_readiness
        self._ins_readiness = c(
            sa.insert(r).values(
                variant_id=bp("v"),
                channel_id=bp("c"),
                locale=bp("l"),
                product_id=bp("p"),
                ready=bp("ready"),
                score=bp("score"),
                issues=bp("issues"),
                updated_at=bp("at"),
            )
        )
        self._upd_readiness = c(
            sa.update(r)
            .where(r.c.variant_id == bp("v"), r.c.channel_id == bp("c"), r.c.locale == bp("l"))
            .values(ready=bp("ready"), score=bp("score"), issues=bp("issues"), updated_at=bp("at"))
        )
        self._del_readiness = c(
            sa.delete(r).where(r.c.variant_id == bp("v"), r.c.channel_id == bp("c"), r.c.locale == bp("l"))
        )
        v = pt.pim_values
        self._ins_value = c(
            sa.insert(v).values(
                node_id=bp("n"), attribute=bp("a"), locale=bp("l"), channel=bp("c"), product_id=bp("p"), value=bp("v")
            )
        )
        self._upd_value = c(
            sa.update(v)
            .where(v.c.node_id == bp("n"), v.c.attribute == bp("a"), v.c.locale == bp("l"), v.c.channel == bp("c"))
            .values(value=bp("v"))
        )
        self._del_value = c(
            sa.delete(v).where(
                v.c.node_id == bp("n"), v.c.attribute == bp("a"), v.c.locale == bp("l"), v.c.channel == bp("c")
            )
        )
        h = pt.pim_history
        self._ins_history = c(
            sa.insert(h).values(
                product_id=bp("p"),
                version=bp("ver"),
                node_id=bp("n"),
                attribute=bp("a"),
                locale=bp("l"),
                channel=bp("c"),
                old=bp("old"),
                new=bp("new"),
                actor=bp("actor"),
                at=bp("at"),
            )
        )
        n = pt.pim_nodes
        self._ins_node = c(
            sa.insert(n).values(
                id=bp("id"),
                product_id=bp("p"),
                parent=bp("parent"),
                position=bp("pos"),
                axes=bp("axes"),
                categories=bp("cats"),
                is_variant=bp("leaf"),
            )
        )
        self._upd_node = c(
            sa.update(n)
            .where(n.c.id == bp("id"))
            .values(
                parent=bp("parent"), position=bp("pos"), axes=bp("axes"), categories=bp("cats"), is_variant=bp("leaf")
            )
        )
        self._del_node = c(sa.delete(n).where(n.c.id == bp("id")))
        self._del_node_values = c(sa.delete(v).where(v.c.node_id == bp("id")))
        p = pt.pim_products
        self._ins_product = c(
            sa.insert(p).values(
                id=bp("id"),
                family=bp("family"),
                version=bp("ver"),
                created_at=bp("at"),
                updated_at=bp("at2"),
                updated_by=bp("actor"),
            )
        )
        self._upd_product = c(
            sa.update(p)
            .where(p.c.id == bp("id"))
            .values(family=bp("family"), version=bp("ver"), updated_at=bp("at"), updated_by=bp("actor"))
        )
        a = pt.pim_assets
        self._ins_asset = c(
            sa.insert(a).values(
                uri=bp("uri"), mime_type=bp("mime"), width_px=bp("w"), height_px=bp("h"), created_at=bp("at")
            ),
            " ON CONFLICT DO NOTHING",
        )

    # ------------------------------------------------------------------ plumbing

    def _bound(self, stmt: sa.ClauseElement) -> tuple[Compiled, tuple[Any, ...]]:
        return self._sql.bound(stmt)

    def _all(self, tx: Tx, stmt: sa.ClauseElement) -> list[Any]:
        return tx.all(*self._bound(stmt))

    def _exec(self, tx: Tx, stmt: sa.ClauseElement) -> Any:
        return tx.run(*self._bound(stmt))

    def _emit(self, tx: Tx, events: Sequence[Event], now: int) -> None:
        tx.many(self._ins_outbox, [(e.type, e.key, _j(e.data), now) for e in events])

    def _bump(self, tx: Tx, key: str) -> None:
        # a state cached from this tx's bumped version must not outlive a rollback: the number would be reused
        tx.on_rollback(self._forget_state)
        m = pt.pim_meta
        row = self._all(tx, sa.select(m.c.value).where(m.c.key == key))
        if row:
            self._exec(tx, sa.update(m).where(m.c.key == key).values(value=m.c.value + 1))
        else:
            self._exec(tx, sa.insert(m).values(key=key, value=1))

    def _forget_state(self) -> None:
        self._state = None

    def _lock_defs(self, tx: Tx) -> None:
        """PostgreSQL: definition changes are serialised (SQLite writers already are)."""
        if self.db.backend == "postgresql":
            tx.cur.execute("LOCK TABLE pim_meta IN EXCLUSIVE MODE")

    @property
    def library(self) -> RuleLibrary:
        """The rules in force: the base library with the rule files stored in the database."""
        return self.state().library

    def state(self, tx: Tx | None = None) -> PimState:
        """The current catalogue, channel contexts and readiness engine (cached per definitions version)."""
        if tx is None:
            with self.db.read() as rtx:
                return self.state(rtx)
        vers = dict(tx.all(self._q_versions))
        key = (int(vers.get("catalog", 0)), int(vers.get("channels", 0)), int(vers.get("rules", 0)))
        st = self._state
        if st is not None and st.versions == key:
            return st
        with self._lock:
            catalog = self._load_catalog(tx)
            channels = self._load_channels(tx)
            stored = self._load_rulesets(tx)
            library = self.base_library.with_rulesets(*stored)
            st = PimState(key, catalog, channels, ReadinessEngine(catalog, library), library, stored)
            self._state = st
        return st

    def _load_rulesets(self, tx: Tx) -> tuple[RuleSet, ...]:
        rs = pt.pim_rulesets
        rows = self._all(tx, sa.select(rs.c.source, rs.c.text, rs.c.format).order_by(rs.c.kind, rs.c.name))
        return tuple(load_ruleset_text(text, source, fmt) for source, text, fmt in rows)

    def _load_catalog(self, tx: Tx) -> Catalog:
        locales = [Locale(r[0], r[1]) for r in self._all(tx, sa.select(pt.pim_locales).order_by(pt.pim_locales.c.code))]
        cats = [
            Category(r[0], r[1], orjson.loads(r[2]), frozenset(orjson.loads(r[3])))
            for r in self._all(tx, sa.select(pt.pim_categories).order_by(pt.pim_categories.c.code))
        ]
        attrs = {
            r[0]: attribute_from_json(orjson.loads(r[1]))
            for r in self._all(tx, sa.select(pt.pim_attributes.c.code, pt.pim_attributes.c.definition))
        }
        fams = [
            Family(r[0], tuple(attrs[a] for a in orjson.loads(r[1])), orjson.loads(r[2]))
            for r in self._all(
                tx, sa.select(pt.pim_families.c.code, pt.pim_families.c.attributes, pt.pim_families.c.labels)
            )
        ]
        return Catalog.build(locales=locales, families=fams, categories=cats)

    def _load_channels(self, tx: Tx) -> tuple[ChannelContext, ...]:
        cc, ch = pt.pim_channel_context, t.channels
        q = (
            sa.select(
                cc.c.channel_id,
                cc.c.rules_dialect,
                ch.c.region,
                cc.c.country,
                ch.c.currency,
                cc.c.locales,
                cc.c.vat_inclusive,
                cc.c.packs,
            )
            .join(ch, ch.c.id == cc.c.channel_id)
            .order_by(cc.c.channel_id)
        )
        return tuple(
            ChannelContext(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                tuple(orjson.loads(r[5])),
                bool(r[6]),
                None if r[7] is None else tuple(orjson.loads(r[7])),
            )
            for r in self._all(tx, q)
        )

    # ------------------------------------------------------------------ definitions

    def set_locales(self, locales: Sequence[Locale]) -> None:
        """Add or change locales (existing ones not listed stay)."""
        with self.db.tx() as tx:
            self._lock_defs(tx)
            st = self.state(tx)
            known = dict(st.catalog.locales)
            changed = [loc for loc in locales if known.get(loc.code) != loc]
            if not changed:
                return
            for loc in changed:
                loc.check()
                known[loc.code] = loc
            Catalog.build(locales=known.values(), families=st.catalog.families.values(), categories=())
            lt = pt.pim_locales
            for loc in changed:
                self._exec(tx, sa.delete(lt).where(lt.c.code == loc.code))
                self._exec(tx, sa.insert(lt).values(code=loc.code, fallback=loc.fallback))
            self._bump(tx, "catalog")
            now = self.clock.now_ms()
            events = [Event(CATALOG_CHANGED, "locales", {"locales": [loc.code for loc in changed]})]
            # a changed fallback can change what any variant resolves: every family is affected
            refallback = [loc for loc in changed if loc.code in st.catalog.locales]
            st2 = self.state(tx)
            if refallback:
                for fam in st2.catalog.families:
                    self._apply_change(tx, st2, FamilyEdited(fam), now, events)
            self._emit(tx, events, now)

    def set_attribute(self, attr: AttributeDef) -> None:
        attr.check()
        with self.db.tx() as tx:
            self._lock_defs(tx)
            at = pt.pim_attributes
            now = self.clock.now_ms()
            doc = _j(attribute_to_json(attr))
            old = self._all(tx, sa.select(at.c.definition, at.c.type).where(at.c.code == attr.code))
            if old and old[0][0] == doc:
                return
            if old and old[0][1] != attr.type.value and self._count_values(tx, attr.code):
                raise InvalidInput(f"attribute {attr.code} has values: its type cannot change")
            self._exec(tx, sa.delete(at).where(at.c.code == attr.code))
            self._exec(tx, sa.insert(at).values(code=attr.code, type=attr.type.value, definition=doc, updated_at=now))
            self._bump(tx, "catalog")
            st = self.state(tx)
            events = [Event(CATALOG_CHANGED, f"attribute:{attr.code}", {"attribute": attr.code})]
            for fam in st.catalog.families.values():
                if attr.code in fam.by_code:
                    self._apply_change(tx, st, FamilyEdited(fam.code), now, events)
            self._emit(tx, events, now)

    def _count_values(self, tx: Tx, attribute: str) -> int:
        v = pt.pim_values
        return int(self._all(tx, sa.select(sa.func.count()).where(v.c.attribute == attribute))[0][0])

    def set_family(self, code: str, attributes: Sequence[str], labels: Mapping[str, str] | None = None) -> None:
        with self.db.tx() as tx:
            self._lock_defs(tx)
            st = self.state(tx)
            attrs = self._attributes(tx)
            missing = [a for a in attributes if a not in attrs]
            if missing:
                raise NotFound("attribute", missing[0])
            fam = Family(code, tuple(attrs[a] for a in attributes), dict(labels or {}))
            fam.check()
            old = st.catalog.families.get(code)
            if old is not None and old == fam:
                return
            if old is not None:
                gone = [a for a in old.by_code if a not in fam.by_code]
                if gone:
                    v, p = pt.pim_values, pt.pim_products
                    q = (
                        sa.select(v.c.attribute, v.c.node_id)
                        .join(p, p.c.id == v.c.product_id)
                        .where(p.c.family == code, _in(v.c.attribute, gone))
                        .limit(1)
                    )
                    hit = self._all(tx, q)
                    if hit:
                        raise InvalidInput(f"family {code}: {hit[0][1]} still has a value for {hit[0][0]}")
            ft = pt.pim_families
            now = self.clock.now_ms()
            self._exec(tx, sa.delete(ft).where(ft.c.code == code))
            self._exec(
                tx,
                sa.insert(ft).values(
                    code=code, attributes=_j(list(attributes)), labels=_j(dict(fam.labels)), updated_at=now
                ),
            )
            self._bump(tx, "catalog")
            st = self.state(tx)
            events = [Event(CATALOG_CHANGED, f"family:{code}", {"family": code, "attributes": list(attributes)})]
            self._apply_change(tx, st, FamilyEdited(code), now, events)
            self._emit(tx, events, now)

    def _attributes(self, tx: Tx) -> dict[str, AttributeDef]:
        at = pt.pim_attributes
        return {
            r[0]: attribute_from_json(orjson.loads(r[1])) for r in self._all(tx, sa.select(at.c.code, at.c.definition))
        }

    def attributes(self) -> list[AttributeDef]:
        with self.db.read() as tx:
            return sorted(self._attributes(tx).values(), key=lambda a: a.code)

    def set_category(self, cat: Category) -> None:
        with self.db.tx() as tx:
            self._lock_defs(tx)
            st = self.state(tx)
            if st.catalog.categories.get(cat.code) == cat:
                return
            cats = dict(st.catalog.categories)
            cats[cat.code] = cat
            Catalog.build(locales=st.catalog.locales.values(), families=(), categories=cats.values())
            ct = pt.pim_categories
            self._exec(tx, sa.delete(ct).where(ct.c.code == cat.code))
            self._exec(
                tx,
                sa.insert(ct).values(
                    code=cat.code, parent=cat.parent, labels=_j(dict(cat.labels)), tags=_j(sorted(cat.tags))
                ),
            )
            self._bump(tx, "catalog")
            now = self.clock.now_ms()
            st = self.state(tx)
            events = [Event(CATALOG_CHANGED, f"category:{cat.code}", {"category": cat.code})]
            self._apply_change(tx, st, CategoryEdited(cat.code), now, events)
            self._emit(tx, events, now)

    def set_channel_context(
        self,
        channel_id: str,
        *,
        country: str,
        locales: Sequence[str],
        vat_inclusive: bool,
        packs: Sequence[str] | None = None,
        rules_dialect: str | None = None,
    ) -> ChannelContext:
        """What readiness needs about a core channel; its readiness rows are updated in the same transaction."""
        with self.db.tx() as tx:
            self._lock_defs(tx)
            ch = t.channels
            row = self._all(tx, sa.select(ch.c.dialect, ch.c.region, ch.c.currency).where(ch.c.id == channel_id))
            if not row:
                raise NotFound("channel", channel_id)
            dialect, region, currency = row[0]
            st = self.state(tx)
            for loc in locales:
                if loc not in st.catalog.locales:
                    raise NotFound("locale", loc)
            ctx = ChannelContext(
                channel_id,
                rules_dialect or dialect,
                region,
                country,
                currency,
                tuple(locales),
                vat_inclusive,
                None if packs is None else tuple(packs),
            )
            ctx.check()
            st.library.dialect(ctx.dialect)
            st.library.packs_for(ctx)
            old = st.by_channel.get(channel_id)
            if old == ctx:
                return ctx
            cc = pt.pim_channel_context
            now = self.clock.now_ms()
            self._exec(tx, sa.delete(cc).where(cc.c.channel_id == channel_id))
            self._exec(
                tx,
                sa.insert(cc).values(
                    channel_id=channel_id,
                    rules_dialect=ctx.dialect,
                    country=ctx.country,
                    locales=_j(list(ctx.locales)),
                    vat_inclusive=ctx.vat_inclusive,
                    packs=None if ctx.packs is None else _j(list(ctx.packs)),
                    updated_at=now,
                ),
            )
            self._bump(tx, "channels")
            st = self.state(tx)
            events = [
                Event(
                    CHANNEL_CONTEXT_CHANGED,
                    channel_id,
                    {"channel": channel_id, "locales": list(ctx.locales), "country": ctx.country},
                )
            ]
            self._apply_change(tx, st, ChannelEdited(old, ctx), now, events)
            self._emit(tx, events, now)
            return ctx

    def channels(self) -> tuple[ChannelContext, ...]:
        return self.state().channels

    # ------------------------------------------------------------------ rule files

    def rulesets(self) -> list[dict[str, Any]]:
        """Every channel dialect and compliance pack in force, built-in or stored (a stored one replaces the
        built-in of the same kind and name)."""
        st = self.state()
        stored = {(r.kind, r.name) for r in st.stored_rules}
        out = []
        for kind, table in ((RuleSetKind.DIALECT, st.library.dialects), (RuleSetKind.PACK, st.library.packs)):
            base = self.base_library.dialects if kind is RuleSetKind.DIALECT else self.base_library.packs
            for name, rs in sorted(table.items()):
                out.append(
                    {
                        "kind": kind.value,
                        "name": name,
                        "origin": "stored" if (kind, name) in stored else "builtin",
                        "replaces_builtin": (kind, name) in stored and name in base,
                        "rules": len(rs.rules),
                        "countries": sorted(rs.scope.countries),
                        "regions": sorted(rs.scope.regions),
                        "source": rs.source,
                        "description": rs.description,
                    }
                )
        return out

    def add_ruleset_file(self, path: Path, actor: str = "system") -> dict[str, Any]:
        """Store the rule file at ``path`` (see :meth:`add_ruleset`)."""
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise InvalidInput(f"{path}: cannot read: {exc.strerror}") from None
        return self.add_ruleset(text, str(path), ruleset_format(path), actor)

    def add_ruleset(self, text: str, source: str, fmt: str = "toml", actor: str = "system") -> dict[str, Any]:
        """Store a dialect or pack rule file (adding it, or replacing a stored or built-in one of the same kind and
        name) so every process applies it; the readiness of the channels it can apply to is recomputed in the
        same transaction (only rows that change are written; ``ReadinessChanged`` for each). A file that does not
        validate raises :class:`InvalidInput` naming ``source`` and the line, and nothing is written."""
        rs = load_ruleset_text(text, source, fmt)
        with self.db.tx() as tx:
            self._lock_defs(tx)
            st = self.state(tx)
            rt = pt.pim_rulesets
            where = (rt.c.kind == rs.kind.value, rt.c.name == rs.name)
            row = self._all(tx, sa.select(rt.c.text, rt.c.format).where(*where))
            if row and (row[0][0], row[0][1]) == (text, fmt):
                return {"kind": rs.kind.value, "name": rs.name, "rules": len(rs.rules), "changed": False}
            table = st.library.dialects if rs.kind is RuleSetKind.DIALECT else st.library.packs
            old = table.get(rs.name)
            now = self.clock.now_ms()
            self._exec(tx, sa.delete(rt).where(*where))
            self._exec(
                tx,
                sa.insert(rt).values(
                    kind=rs.kind.value,
                    name=rs.name,
                    format=fmt,
                    source=source[:500],
                    text=text,
                    updated_at=now,
                    updated_by=actor,
                ),
            )
            return self._rules_changed(tx, rs.kind, rs.name, old, rs, now, actor)

    def remove_ruleset(self, kind: str, name: str, actor: str = "system") -> dict[str, Any]:
        """Remove a stored rule file (a built-in one of the same name applies again). Refused while a channel
        would be left without its dialect or one of its explicitly listed packs."""
        try:
            k = RuleSetKind(kind)
        except ValueError:
            raise InvalidInput(f"kind must be 'dialect' or 'pack', got {kind!r}") from None
        with self.db.tx() as tx:
            self._lock_defs(tx)
            st = self.state(tx)
            if not any(r.kind is k and r.name == name for r in st.stored_rules):
                raise NotFound(f"stored {k.value}", name)
            after = self.base_library.with_rulesets(
                *(r for r in st.stored_rules if not (r.kind is k and r.name == name))
            )
            for ch in st.channels:
                try:
                    after.dialect(ch.dialect)
                    after.packs_for(ch)
                except NotFound:
                    raise InvalidInput(
                        f"channel {ch.id} uses {k.value} {name}: change its rules dialect or packs first"
                    ) from None
            table = st.library.dialects if k is RuleSetKind.DIALECT else st.library.packs
            new_table = after.dialects if k is RuleSetKind.DIALECT else after.packs
            rt = pt.pim_rulesets
            self._exec(tx, sa.delete(rt).where(rt.c.kind == k.value, rt.c.name == name))
            return self._rules_changed(tx, k, name, table.get(name), new_table.get(name), self.clock.now_ms(), actor)

    def _rules_changed(
        self, tx: Tx, kind: RuleSetKind, name: str, old: RuleSet | None, new: RuleSet | None, now: int, actor: str
    ) -> dict[str, Any]:
        self._bump(tx, "rules")
        st = self.state(tx)
        events = [
            Event(
                CATALOG_CHANGED,
                f"rules:{kind.value}:{name}",
                {"rules": kind.value, "name": name, "removed": new is None, "actor": actor},
            )
        ]
        change = ChannelRulesEdited(name) if kind is RuleSetKind.DIALECT else PackEdited(name, old, new)
        stats = self._apply_change(tx, st, change, now, events)
        self._emit(tx, events, now)
        return {
            "kind": kind.value,
            "name": name,
            "rules": 0 if new is None else len(new.rules),
            "changed": True,
            "readiness_written": stats.written,
            "readiness_changed": stats.changed,
        }

    # ------------------------------------------------------------------ products

    def _load_products(
        self,
        tx: Tx,
        ids: Sequence[str],
        st: PimState,
        *,
        for_update: bool = False,
        attributes: frozenset[str] | None = None,
    ) -> dict[str, Product]:
        """``attributes``: load only values of these attributes (for readiness: what the rules read); such
        partial products are for reading only, never to be written back."""
        if not ids:
            return {}
        out: dict[str, Product] = {}
        p, n, v = pt.pim_products, pt.pim_nodes, pt.pim_values
        fams: dict[str, tuple[str, int]] = {}
        for i in range(0, len(ids), CHUNK):
            part = list(ids[i : i + CHUNK])
            q = sa.select(p.c.id, p.c.family, p.c.version).where(_in(p.c.id, part))
            if for_update and self.db.backend == "postgresql":
                q = q.with_for_update()
            for r in self._all(tx, q):
                fams[r[0]] = (r[1], r[2])
            nodes: dict[str, list[tuple[Any, ...]]] = {}
            q2 = sa.select(n.c.product_id, n.c.id, n.c.parent, n.c.axes, n.c.categories).where(
                _in(n.c.product_id, part)
            )
            for r in self._all(tx, q2.order_by(n.c.product_id, n.c.position)):
                nodes.setdefault(r[0], []).append(r)
            values: dict[str, dict[ValueKey, Any]] = {}
            mk = tuple.__new__  # a ValueKey without the NamedTuple's Python-level __new__
            q3 = sa.select(v.c.node_id, v.c.attribute, v.c.locale, v.c.channel, v.c.value).where(
                _in(v.c.product_id, part)
            )
            if attributes is not None:
                q3 = q3.where(_in(v.c.attribute, sorted(attributes)))
            for r in self._all(tx, q3):
                per_node = values.get(r[0])
                if per_node is None:
                    per_node = values[r[0]] = {}
                per_node[mk(ValueKey, (r[1], r[2] or None, r[3] or None))] = r[4]
            units = st.catalog.units
            # values are immutable: equal stored JSON of one attribute decodes to one shared object (prices, brand,
            # flags... repeat across products), decoded once per chunk; so do the axes and category lists
            decoded: dict[str, dict[str, dict[str, Value]]] = {}  # family → attribute → stored JSON → value
            lists: dict[str, Any] = {}
            for pid in part:
                if pid not in fams:
                    continue
                fam = st.catalog.family(fams[pid][0])
                fam_decoded = decoded.get(fam.code)
                if fam_decoded is None:
                    fam_decoded = decoded[fam.code] = {}
                built = []
                for r in nodes.get(pid, ()):
                    raw = values.get(r[1])
                    vals: dict[ValueKey, Value] = {}
                    if raw:
                        for k, x in raw.items():
                            cache = fam_decoded.get(k[0])
                            if cache is None:
                                cache = fam_decoded[k[0]] = {}
                            val = cache.get(x)
                            if val is None:
                                val = cache[x] = decode_value(fam.attr(k[0]), orjson.loads(x), units)
                            vals[k] = val
                    axes = lists.get(r[3])
                    if axes is None:
                        axes = lists[r[3]] = tuple(orjson.loads(r[3]))
                    cats = lists.get("c" + r[4])
                    if cats is None:
                        cats = lists["c" + r[4]] = frozenset(orjson.loads(r[4]))
                    built.append(ProductNode(r[1], r[2], vals, axes, cats))
                out[pid] = Product(pid, fam.code, tuple(built))
        return out

    def _product_versions(self, tx: Tx, ids: Sequence[str]) -> dict[str, int]:
        p = pt.pim_products
        out: dict[str, int] = {}
        for i in range(0, len(ids), CHUNK):
            out.update(
                {
                    r[0]: int(r[1])
                    for r in self._all(tx, sa.select(p.c.id, p.c.version).where(_in(p.c.id, ids[i : i + CHUNK])))
                }
            )
        return out

    def product_of(self, tx: Tx, node_ids: Sequence[str]) -> dict[str, str]:
        """Node (product, model or variant) id → product id, for the ids that exist."""
        n = pt.pim_nodes
        out: dict[str, str] = {}
        for i in range(0, len(node_ids), CHUNK):
            q = sa.select(n.c.id, n.c.product_id).where(_in(n.c.id, node_ids[i : i + CHUNK]))
            out.update({r[0]: r[1] for r in self._all(tx, q)})
        return out

    def get_product(self, node_id: str) -> tuple[Product, int]:
        """The product containing ``node_id`` (a product id or any of its variant/model ids) and its version."""
        with self.db.read() as tx:
            st = self.state(tx)
            pid = self.product_of(tx, [node_id]).get(node_id)
            if pid is None:
                raise NotFound("product or variant", node_id)
            prod = self._load_products(tx, [pid], st)[pid]
            return prod, self._product_versions(tx, [pid])[pid]

    def load_products(self, tx: Tx, ids: Sequence[str]) -> dict[str, Product]:
        return self._load_products(tx, ids, self.state(tx))

    def upsert_product(self, product: Product, actor: str = "system") -> WriteResult:
        return self.upsert_products([product], actor)[0]

    def upsert_products(self, products: Sequence[Product], actor: str = "system") -> list[WriteResult]:
        """Create or replace whole products (all or nothing). Unchanged products write nothing."""
        with self.db.tx() as tx:
            return self.upsert_products_in(tx, products, actor)

    def upsert_products_in(
        self, tx: Tx, products: Sequence[Product], actor: str, *, validated: bool = False
    ) -> list[WriteResult]:
        """``validated``: the caller passes products it already ran through ``canonical_product(
        catalog.validate_product(...))`` against this transaction's catalogue (the importer does)."""
        st = self.state(tx)
        cat = st.catalog
        if len({p.id for p in products}) != len(products):
            raise InvalidInput("the same product appears twice in one request")
        new_list = list(products) if validated else [canonical_product(cat.validate_product(p)) for p in products]
        ids = [p.id for p in new_list]
        # a node id belongs to one product only (variant ids are SKUs: globally unique)
        all_nodes = [n.id for p in new_list for n in p.nodes]
        if len(set(all_nodes)) != len(all_nodes):
            raise InvalidInput("a variant id appears in two products of one request")
        owners = self.product_of(tx, all_nodes)
        for p in new_list:
            for node in p.nodes:
                owner = owners.get(node.id)
                if owner is not None and owner != p.id:
                    raise InvalidInput(f"{node.id} already belongs to product {owner}")
        olds = self._load_products(tx, ids, st, for_update=True)
        versions = self._product_versions(tx, list(olds))
        now = self.clock.now_ms()
        results: list[WriteResult] = []
        events: list[Event] = []
        stats = _ReadinessStats()
        new_skus: list[Sku] = []
        changed_ids = {p.id for p in new_list if not same_product(olds.get(p.id), p)}
        # the stored readiness of every variant these products now have, in one query per chunk (not per product)
        covered = frozenset(v for p in new_list if p.id in changed_ids for v in p.variants())
        prefetched = (covered, self._existing_readiness(tx, sorted(covered)))
        slots = st.engine.slots(st.channels)
        enc = _Encoder()
        for new in new_list:
            old = olds.get(new.id)
            if new.id not in changed_ids:
                results.append(WriteResult(new.id, versions.get(new.id, 0), False, False))
                continue
            version = versions.get(new.id, 0) + 1
            changes = self._write_product(tx, st, old, new, version, actor, now)
            old_variants = set(old.variants()) if old is not None else set()
            fresh = frozenset(v for v in new.variants() if v not in old_variants)
            new_skus.extend(Sku(vid, title) for vid, title in _sku_titles(st.catalog, new, fresh).items())
            before = stats.written, stats.changed
            if old is None:  # every key is new: evaluate the whole product, packed
                vectors = st.engine.evaluate_rows(new, st.channels)
                self._store_vectors(vectors, slots, new.id, prefetched[1], fresh, now, stats, enc)
            else:
                impact = affected_keys(ProductEdited(old, new), channels=st.channels, engine=st.engine)
                self._apply_impact(tx, st, impact, now, stats, {new.id: new}, prefetched, fresh_variants=fresh, enc=enc)
            events.append(
                Event(
                    PRODUCT_UPDATED,
                    new.id,
                    {
                        "product": new.id,
                        "version": version,
                        "created": old is None,
                        "actor": actor,
                        "family": new.family,
                        "variants": list(new.variants()),
                        "removed_variants": sorted(old_variants - set(new.variants())),
                        "value_changes": len(changes),
                        "changes": [
                            {"node": c.node_id, "attribute": c.attribute, "locale": c.locale, "channel": c.channel}
                            for c in changes[:MAX_EVENT_CHANGES]
                        ],
                    },
                )
            )
            results.append(
                WriteResult(
                    new.id,
                    version,
                    old is None,
                    True,
                    len(changes),
                    stats.written - before[0],
                    stats.changed - before[1],
                )
            )
        self._flush_readiness(tx, stats)
        if new_skus:
            self.engine.add_skus_in(tx, new_skus, now, any_title=True)
        self._emit(tx, events + stats.events, now)
        return results

    def _write_product(
        self, tx: Tx, st: PimState, old: Product | None, new: Product, version: int, actor: str, now: int
    ) -> list[Any]:
        fam = st.catalog.family(new.family)
        if old is None:
            tx.run(self._ins_product, (new.id, new.family, version, now, now, actor))
        else:
            tx.run(self._upd_product, (new.family, version, now, actor, new.id))
        leaves = set(new.variants())
        old_ids = old.by_id if old is not None else {}
        old_pos = {n.id: i for i, n in enumerate(old.nodes)} if old is not None else {}
        ins_nodes, upd_nodes = [], []
        node_hist: list[tuple[str, str | None, str | None]] = []
        for pos, node in enumerate(new.nodes):
            row = (node.parent, pos, _j(list(node.axes)), _j(sorted(node.categories)), node.id in leaves)
            prev = old_ids.get(node.id)
            if prev is None:
                ins_nodes.append((node.id, new.id, *row))
                node_hist.append((node.id, None, _node_json(node, pos)))
            else:
                old_leaf = old is not None and node.id not in old.children_of
                if (prev.parent, prev.axes, prev.categories, old_pos[node.id], old_leaf) != (
                    node.parent,
                    node.axes,
                    node.categories,
                    pos,
                    node.id in leaves,
                ):
                    upd_nodes.append((*row, node.id))
                    before, after = _node_json(prev, old_pos[node.id]), _node_json(node, pos)
                    if before != after:
                        node_hist.append((node.id, before, after))
        gone = [(nid,) for nid in old_ids if nid not in new.by_id]
        node_hist += [(nid, _node_json(old_ids[nid], old_pos[nid]), None) for (nid,) in gone]
        # the tree's shape is history too (so a revert can bring back removed variants): one row per node added,
        # moved or removed, under the pseudo-attribute NODE_HISTORY, written before the version's value rows
        tx.many(
            self._ins_history,
            [(new.id, version, nid, NODE_HISTORY, "", "", a, b, actor, now) for nid, a, b in node_hist],
        )
        tx.many(self._del_node_values, gone)
        tx.many(self._del_node, gone)
        tx.many(self._ins_node, ins_nodes)
        tx.many(self._upd_node, upd_nodes)
        changes = diff_product(old, new)
        ins, upd, dele, hist, assets = [], [], [], [], []
        old_fam = st.catalog.family(old.family) if old is not None else fam
        for c in changes:
            key = (c.node_id, c.attribute, c.locale or "", c.channel or "")
            new_json = None if c.new is None else _j(value_to_json(fam.attr(c.attribute), c.new))
            old_json = None
            if c.old is not None:
                a = old_fam.by_code.get(c.attribute) or fam.attr(c.attribute)
                old_json = _j(value_to_json(a, c.old))
            if c.new is None:
                if c.node_id in new.by_id:
                    dele.append(key)
            elif c.old is None or (old is not None and c.node_id not in old.by_id):
                ins.append((*key, new.id, new_json))
            else:
                upd.append((new_json, *key))
            hist.append((new.id, version, *key, old_json, new_json, actor, now))
            for ref in _assets(c.new):
                assets.append((ref.uri, ref.mime_type, ref.width_px, ref.height_px, now))
        tx.many(self._del_value, dele)
        tx.many(self._upd_value, upd)
        tx.many(self._ins_value, ins)
        tx.many(self._ins_history, hist)
        if assets:
            tx.many(self._ins_asset, sorted(set(assets)))
        return changes

    # ------------------------------------------------------------------ readiness

    def _apply_change(self, tx: Tx, st: PimState, change: Any, now: int, events: list[Event]) -> _ReadinessStats:
        stats = _ReadinessStats()
        impact = affected_keys(change, channels=st.channels, engine=st.engine, index=_Index(self, tx))
        fresh_slots: frozenset[tuple[str, str]] = frozenset()
        if isinstance(change, ChannelEdited) and change.new is not None:
            old, new = change.old, change.new
            before = set() if old is None or old.id != new.id else set(old.locales)
            fresh_slots = frozenset((new.id, loc) for loc in new.locales if loc not in before)
        self._apply_impact(tx, st, impact, now, stats, {}, fresh_slots=fresh_slots)
        self._flush_readiness(tx, stats)
        events.extend(stats.events)
        return stats

    def _apply_impact(
        self,
        tx: Tx,
        st: PimState,
        impact: Impact,
        now: int,
        stats: _ReadinessStats,
        known: Mapping[str, Product],
        prefetched: tuple[frozenset[str], _Stored] | None = None,
        *,
        fresh_variants: frozenset[str] = frozenset(),
        fresh_slots: frozenset[tuple[str, str]] = frozenset(),
        enc: _Encoder | None = None,
    ) -> None:
        """Evaluate ``impact.reevaluate`` and record what changed; delete ``impact.drop``. ``fresh_*``: keys that
        had no readiness before (new variants, new channel locales): they are reported with ``was_ready`` None."""
        if impact.drop:
            rows = [(k.variant_id, k.channel_id, k.locale) for k in impact.drop]
            stats.dele.extend(rows)
            stats.dropped += len(rows)
        if not impact.reevaluate:
            return
        by_variant: dict[str, list[ReadinessKey]] = {}
        for k in impact.reevaluate:
            by_variant.setdefault(k.variant_id, []).append(k)
        owners = {vid: pid for pid, p in known.items() for vid in p.variants()}
        unknown = [v for v in by_variant if v not in owners]
        if unknown:
            owners.update(self.product_of(tx, unknown))
        by_product: dict[str, list[ReadinessKey]] = {}
        for vid, keys in by_variant.items():
            by_product.setdefault(owners[vid], []).extend(keys)
        pids = sorted(by_product)
        chans = st.by_channel
        slots = st.engine.slots(st.channels)
        enc = enc or _Encoder()
        for i in range(0, len(pids), CHUNK):
            part = pids[i : i + CHUNK]
            missing = [p for p in part if p not in known]
            loaded = {**{p: known[p] for p in part if p in known}, **self._load_products(tx, missing, st)}
            variants = {k.variant_id for p in part for k in by_product[p]}
            if prefetched is not None and variants <= prefetched[0]:
                stored = prefetched[1]
            else:
                stored = self._existing_readiness(tx, sorted(variants))
            for pid in part:
                prod, keys = loaded[pid], by_product[pid]
                if not fresh_slots and len(keys) == len(prod.variants()) * len(slots):  # every key: packed
                    vectors = st.engine.evaluate_rows(prod, st.channels)
                    self._store_vectors(vectors, slots, pid, stored, fresh_variants, now, stats, enc)
                else:
                    results = st.engine.evaluate_keys(prod, keys, chans)
                    self._store_results(results, pid, stored, fresh_variants, fresh_slots, now, stats, enc)
            if len(stats.ins) + len(stats.upd) + len(stats.dele) >= FLUSH_ROWS:
                self._flush_readiness(tx, stats)

    @staticmethod
    def _record(
        stats: _ReadinessStats,
        key: tuple[str, str, str],
        pid: str,
        new: tuple[_Enc, list[str]] | None,
        prev: _Enc | None,
        fresh: bool,
        now: int,
        changes: list[dict[str, Any]],
    ) -> None:
        """One key: ``new`` is its result (None: no issues), ``prev`` its stored row (None: no row); ``fresh``: it
        had no readiness before. Queues the row change and appends the event change, if any."""
        was = prev if prev is not None else (None if fresh else _CLEAN)
        now_enc, errors = new if new is not None else (_CLEAN, [])
        if was == now_enc:
            return
        stats.written += 1
        if new is None:
            if prev is not None:
                stats.dele.append(key)
        elif prev is None:
            stats.ins.append((*key, pid, *now_enc, now))
        else:
            stats.upd.append((*now_enc, now, *key))
        if was is None or was[0] != now_enc[0] or was[2] != now_enc[2]:
            changes.append(
                {
                    "channel": key[1],
                    "locale": key[2],
                    "ready": now_enc[0],
                    "was_ready": None if was is None else was[0],
                    "score": now_enc[1],
                    "errors": errors,
                }
            )

    def _store_vectors(
        self,
        vectors: Mapping[str, Vector],
        slots: tuple[tuple[str, str], ...],
        pid: str,
        stored: _Stored,
        fresh_variants: frozenset[str],
        now: int,
        stats: _ReadinessStats,
        enc: _Encoder,
    ) -> None:
        """Record the packed results of every slot of the given variants (of product ``pid``)."""
        for vid, vec in vectors.items():
            rows, fresh_changes = enc.vector(vec, slots)
            old = stored.get(vid)
            fresh = vid in fresh_variants
            if fresh and not old:
                stats.written += len(slots)
                stats.changed += len(fresh_changes)
                stats.ins.extend([(vid, ch, loc, pid, *e, now) for (ch, loc), (e, _) in rows.items()])
                stats.events.append(
                    Event(READINESS_CHANGED, vid, {"sku": vid, "product": pid, "changes": fresh_changes})
                )
                continue
            old = old or {}
            if not fresh and len(old) == len(rows) and all(old.get(k) == e for k, (e, _) in rows.items()):
                continue  # what is stored is current
            changes: list[dict[str, Any]] = []
            for slot in slots:
                self._record(stats, (vid, *slot), pid, rows.get(slot), old.get(slot), fresh, now, changes)
            if changes:
                stats.changed += len(changes)
                stats.events.append(Event(READINESS_CHANGED, vid, {"sku": vid, "product": pid, "changes": changes}))

    def _store_results(
        self,
        results: Mapping[ReadinessKey, Readiness],
        pid: str,
        stored: _Stored,
        fresh_variants: frozenset[str],
        fresh_slots: frozenset[tuple[str, str]],
        now: int,
        stats: _ReadinessStats,
        enc: _Encoder,
    ) -> None:
        """Record some keys' results (of product ``pid``)."""
        per_variant: dict[str, list[dict[str, Any]]] = {}
        for key, r in results.items():
            vid, ch, loc = key
            new = enc.result(r.issues, r.score, r) if r.issues else None
            prev = stored.get(vid, {}).get((ch, loc))
            fresh = vid in fresh_variants or (ch, loc) in fresh_slots
            self._record(stats, key, pid, new, prev, fresh, now, per_variant.setdefault(vid, []))
        for vid, changes in per_variant.items():
            if changes:
                stats.changed += len(changes)
                stats.events.append(Event(READINESS_CHANGED, vid, {"sku": vid, "product": pid, "changes": changes}))

    def _flush_readiness(self, tx: Tx, stats: _ReadinessStats) -> None:
        """Write the queued readiness rows: deletes first (a key is deleted and inserted again when a variant
        id comes back), then inserts, then updates (an update never targets a row queued for insert)."""
        ins, upd, dele = stats.ins, stats.upd, stats.dele
        for rows, stmt in ((dele, self._del_readiness), (ins, self._ins_readiness), (upd, self._upd_readiness)):
            for i in range(0, len(rows), FLUSH_ROWS):
                tx.many(stmt, rows[i : i + FLUSH_ROWS])
            rows.clear()

    def _existing_readiness(self, tx: Tx, variants: Sequence[str]) -> _Stored:
        r = pt.pim_readiness
        out: _Stored = {}
        for i in range(0, len(variants), CHUNK):
            q = sa.select(r.c.variant_id, r.c.channel_id, r.c.locale, r.c.ready, r.c.score, r.c.issues).where(
                _in(r.c.variant_id, variants[i : i + CHUNK])
            )
            for row in self._all(tx, q):
                out.setdefault(row[0], {})[(row[1], row[2])] = (bool(row[3]), int(row[4]), row[5])
        return out

    def recompute(self) -> dict[str, int]:
        """Full recompute: every variant on every channel and locale; writes only rows that changed, drops rows
        no longer valid. One transaction per chunk of products (each chunk is consistent on its own)."""
        with bulk_allocation():
            return self._recompute()

    def _recompute(self) -> dict[str, int]:
        totals = Counter[str]()
        after = ""
        p, r = pt.pim_products, pt.pim_readiness
        enc = _Encoder()
        while True:
            with self.db.tx() as tx:
                st = self.state(tx)
                slots = st.engine.slots(st.channels)
                valid_slots = frozenset(slots)
                ids = [
                    r[0] for r in self._all(tx, sa.select(p.c.id).where(p.c.id > after).order_by(p.c.id).limit(CHUNK))
                ]
                if not ids:
                    break
                after = ids[-1]
                products = self._load_products(tx, ids, st, attributes=self._rule_reads(st))
                stored: _Stored = {}
                q = sa.select(r.c.variant_id, r.c.channel_id, r.c.locale, r.c.ready, r.c.score, r.c.issues).where(
                    _in(r.c.product_id, ids)
                )
                for row in self._all(tx, q):
                    stored.setdefault(row[0], {})[(row[1], row[2])] = (bool(row[3]), int(row[4]), row[5])
                stats = _ReadinessStats()
                now = self.clock.now_ms()
                variants = 0
                owner: dict[str, str] = {}
                for prod in products.values():
                    vectors = st.engine.evaluate_rows(prod, st.channels)
                    owner.update(dict.fromkeys(vectors, prod.id))
                    variants += len(vectors)
                    self._store_vectors(vectors, slots, prod.id, stored, frozenset(), now, stats, enc)
                # rows of variants, channels or locales that no longer exist
                stale = [
                    (vid, *slot)
                    for vid, rows in stored.items()
                    for slot in rows
                    if vid not in owner or slot not in valid_slots
                ]
                stats.dele.extend(stale)
                self._flush_readiness(tx, stats)
                self._emit(tx, stats.events, now)
                totals["products"] += len(ids)
                totals["evaluated"] += variants * len(slots)
                totals["written"] += stats.written
                totals["changed"] += stats.changed
                totals["dropped"] += len(stale)
        return dict(totals)

    @staticmethod
    def _rule_reads(st: PimState) -> frozenset[str]:
        """Every attribute a readiness rule of any channel reads, for any family."""
        return frozenset().union(*(st.engine.reads(c, f) for c in st.channels for f in st.catalog.families))

    def readiness(self, node_id: str, channel: str | None = None) -> list[dict[str, Any]]:
        """Readiness of a variant (or of every variant of a product/model) on every channel × locale, optionally
        one channel (keys without a stored row are ready, score 100, no issues)."""
        with self.db.read() as tx:
            pid = self.product_of(tx, [node_id]).get(node_id)
            if pid is None:
                raise NotFound("product or variant", node_id)
            st = self.state(tx)
            if channel is not None and channel not in st.by_channel:
                raise NotFound("channel", channel)
            prod = self._load_products(tx, [pid], st)[pid]
            variants = sorted(prod.variants_under(node_id))
            r = pt.pim_readiness
            q = sa.select(r.c.variant_id, r.c.channel_id, r.c.locale, r.c.ready, r.c.score, r.c.issues).where(
                _in(r.c.variant_id, variants)
            )
            if channel is not None:
                q = q.where(r.c.channel_id == channel)
            stored = {(x[0], x[1], x[2]): (bool(x[3]), int(x[4]), x[5]) for x in self._all(tx, q)}
        chans = sorted((c for c in st.channels if channel is None or c.id == channel), key=lambda c: c.id)
        out = []
        for vid in variants:
            for ch in chans:
                for loc in sorted(ch.locales):
                    ready, score, issues = stored.get((vid, ch.id, loc), _CLEAN)
                    out.append(
                        {
                            "sku": vid,
                            "channel": ch.id,
                            "locale": loc,
                            "ready": ready,
                            "score": score,
                            "issues": orjson.loads(issues),
                        }
                    )
        return out

    def summary(self, channel: str | None = None, top: int = 5) -> list[dict[str, Any]]:
        """Per channel: variants ready on every locale vs blocked on some, and the top error codes."""
        r, n = pt.pim_readiness, pt.pim_nodes
        with self.db.read() as tx:
            st = self.state(tx)
            chans = [c.id for c in st.channels]
            if channel is not None:
                if channel not in chans:
                    raise NotFound("channel", channel)
                chans = [channel]
            # every variant has readiness on every channel (stored or, without issues, implied)
            total = int(self._all(tx, sa.select(sa.func.count()).where(n.c.is_variant == sa.true()))[0][0])
            out = []
            for cid in chans:
                blocked_q = sa.select(sa.func.count(sa.distinct(r.c.variant_id))).where(
                    r.c.channel_id == cid, r.c.ready == sa.false()
                )
                blocked = int(self._all(tx, blocked_q)[0][0])
                codes: Counter[str] = Counter()
                for (issues,) in self._all(
                    tx, sa.select(r.c.issues).where(r.c.channel_id == cid, r.c.ready == sa.false())
                ):
                    for i in orjson.loads(issues):
                        if i["severity"] == "error":
                            codes[f"{i['code']}:{i['attribute']}"] += 1
                out.append(
                    {
                        "channel": cid,
                        "variants": total,
                        "ready": total - blocked,
                        "blocked": blocked,
                        "top_issues": [{"issue": k, "rows": v} for k, v in codes.most_common(top)],
                    }
                )
        return out

    # ------------------------------------------------------------------ history

    def history(self, node_id: str) -> list[dict[str, Any]]:
        """Every recorded change of the product containing ``node_id`` (for a variant: its own and inherited
        nodes' changes), oldest first."""
        with self.db.read() as tx:
            pid = self.product_of(tx, [node_id]).get(node_id)
            if pid is None:
                raise NotFound("product or variant", node_id)
            st = self.state(tx)
            prod = self._load_products(tx, [pid], st)[pid]
            h = pt.pim_history
            q = sa.select(
                h.c.version, h.c.node_id, h.c.attribute, h.c.locale, h.c.channel, h.c.old, h.c.new, h.c.actor, h.c.at
            ).where(h.c.product_id == pid)
            rows = self._all(tx, q.order_by(h.c.id))
        lineage = (
            {n.id for n in prod.lineage(node_id)} | set(prod.variants_under(node_id)) | set(_descendants(prod, node_id))
        )
        return [
            {
                "product": pid,
                "version": int(x[0]),
                "node": x[1],
                "attribute": x[2],
                "locale": x[3] or None,
                "channel": x[4] or None,
                "old": None if x[5] is None else orjson.loads(x[5]),
                "new": None if x[6] is None else orjson.loads(x[6]),
                "actor": x[7],
                "at_ms": int(x[8]),
            }
            for x in rows
            if x[1] in lineage or x[1] not in prod.by_id
        ]

    def revert(self, node_id: str, version: int, actor: str = "system") -> WriteResult:
        """Put the product back as it was at ``version`` (a new version recording the revert): its values, and its
        tree — nodes removed since then come back with their values, nodes added since then are removed, moved
        ones go back. (Tree changes are recorded since ``NODE_HISTORY`` rows exist; older versions restore values
        only.) A restored variant whose id another product took meanwhile fails the revert."""
        with self.db.tx() as tx:
            pid = self.product_of(tx, [node_id]).get(node_id)
            if pid is None:
                raise NotFound("product or variant", node_id)
            st = self.state(tx)
            prod = self._load_products(tx, [pid], st, for_update=True)[pid]
            current = self._product_versions(tx, [pid])[pid]
            if version < 1 or version > current:
                raise InvalidInput(f"product {pid} has versions 1..{current}, not {version}")
            h = pt.pim_history
            q = (
                sa.select(h.c.node_id, h.c.attribute, h.c.locale, h.c.channel, h.c.old)
                .where(h.c.product_id == pid, h.c.version > version)
                .order_by(h.c.id.desc())
            )
            fam = st.catalog.family(prod.family)
            # node id → (position, parent, axes, categories) or None (did not exist), as of ``version``
            shape: dict[str, tuple[int, str | None, tuple[str, ...], frozenset[str]] | None] = {
                n.id: (i, n.parent, n.axes, n.categories) for i, n in enumerate(prod.nodes)
            }
            values: dict[str, dict[ValueKey, Value]] = {n.id: dict(n.values) for n in prod.nodes}
            for nid, attr, loc, ch, old in self._all(tx, q):  # newest first: undo each change
                if attr == NODE_HISTORY:
                    doc = None if old is None else orjson.loads(old)
                    shape[nid] = (
                        None
                        if doc is None
                        else (int(doc["position"]), doc["parent"], tuple(doc["axes"]), frozenset(doc["categories"]))
                    )
                    values.setdefault(nid, {})
                    continue
                if attr not in fam.by_code:
                    continue
                key = ValueKey(attr, loc or None, ch or None)
                vals = values.setdefault(nid, {})
                if old is None:
                    vals.pop(key, None)
                else:
                    vals[key] = decode_value(fam.attr(attr), orjson.loads(old), st.catalog.units)
            order = {n.id: i for i, n in enumerate(prod.nodes)}
            kept = sorted(
                ((nid, sh) for nid, sh in shape.items() if sh is not None),
                key=lambda x: (x[1][0], order.get(x[0], len(order))),
            )
            nodes = tuple(ProductNode(nid, sh[1], values.get(nid, {}), sh[2], sh[3]) for nid, sh in kept)
            reverted = Product(pid, prod.family, nodes)
            return self.upsert_products_in(tx, [reverted], f"{actor} (revert to v{version})")[0]

    # ------------------------------------------------------------------ index for affected_keys

    def iter_variants(self, tx: Tx, *, family: str | None = None) -> Iterator[str]:
        n, p = pt.pim_nodes, pt.pim_products
        q = sa.select(n.c.id).where(n.c.is_variant == sa.true())
        if family is not None:
            q = q.join(p, p.c.id == n.c.product_id).where(p.c.family == family)
        for r in self._all(tx, q):
            yield r[0]


class _Index:
    """:class:`accord.domain.pim.VariantIndex` answered by queries inside the caller's transaction."""

    def __init__(self, pim: Pim, tx: Tx) -> None:
        self.pim = pim
        self.tx = tx

    def variants_in_family(self, family: str) -> Iterable[str]:
        return list(self.pim.iter_variants(self.tx, family=family))

    def all_variants(self) -> Iterable[str]:
        return list(self.pim.iter_variants(self.tx))

    def variants_in_categories(self, categories: frozenset[str]) -> Iterable[str]:
        n = pt.pim_nodes
        rows = self.pim._all(self.tx, sa.select(n.c.id, n.c.parent, n.c.categories, n.c.is_variant))
        parent = {r[0]: r[1] for r in rows}
        direct = {r[0]: frozenset(orjson.loads(r[2])) for r in rows}
        out: list[str] = []
        for r in rows:
            if not r[3]:
                continue
            cur: str | None = r[0]
            while cur is not None:
                if direct.get(cur, frozenset()) & categories:
                    out.append(r[0])
                    break
                cur = parent.get(cur)
        return out


def _node_json(node: ProductNode, position: int) -> str:
    return _j(
        {"parent": node.parent, "position": position, "axes": list(node.axes), "categories": sorted(node.categories)}
    )


def _descendants(prod: Product, node_id: str) -> list[str]:
    out, stack = [], [node_id]
    while stack:
        cur = stack.pop()
        for kid in prod.children_of.get(cur, ()):
            out.append(kid)
            stack.append(kid)
    return out


def _assets(value: Value | None) -> list[AssetRef]:
    if isinstance(value, AssetRef):
        return [value]
    if isinstance(value, tuple):
        return [a for a in value if isinstance(a, AssetRef)]
    return []


def _sku_titles(catalog: Catalog, product: Product, variants: Iterable[str]) -> dict[str, str]:
    """The ledger SKU title of each variant: its title in the first locale that has one, else its id. Siblings
    without a title of their own share their parent's answer (computed once)."""
    fam = catalog.family(product.family)
    title = fam.by_code.get(catalog.attribute_for("title"))
    out: dict[str, str] = {}
    if title is None or title.type not in (AttributeType.TEXT, AttributeType.LOCALIZED_TEXT):
        return {v: v for v in variants}
    inherited: dict[str | None, str | None] = {}
    for vid in variants:
        node = product.node(vid)
        own = any(k.attribute == title.code for k in node.values)
        if not own and node.parent in inherited:
            found = inherited[node.parent]
        else:
            found = None
            flat = catalog.flat(product, vid)
            for loc in [None, *sorted(catalog.locales)]:
                hit = flat.resolve(title, loc, None)
                if hit is not None and isinstance(hit.value, str) and hit.value.strip():
                    found = hit.value[:500]
                    break
            if not own:
                inherited[node.parent] = found
        out[vid] = found if found is not None else vid
    return out
