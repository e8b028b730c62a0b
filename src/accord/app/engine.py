"""The core use cases: configuration, stock movements, available-to-sell and verification.

Every state change writes balances, ledger rows and outbox events in one transaction.
A movement transaction reads each SKU's packed row once, plans its movements in order, and writes ledger legs,
balance deltas, packed rows and its events (one MovementsRecorded, one ChannelAvailabilityChanged per SKU whose
ATS changed). A single movement takes a lean variant of the batch path; tests hold both to the same rows.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from accord.app.ports import Clock, Ids, RandomIds, SystemClock
from accord.domain import events as ev
from accord.domain.availability import (
    AtsPlan,
    Channel,
    Location,
    LocationKind,
    StockPolicy,
    channel_ats,
    eligible_locations,
)
from accord.domain.catalog import Sku
from accord.domain.errors import (
    AccordError,
    AlreadyExists,
    IdempotencyConflict,
    InsufficientStock,
    InvalidConfiguration,
    InvalidInput,
    NotFound,
)
from accord.domain.ledger import (
    BUCKETS,
    KIND_VALUE,
    Balance,
    Movement,
    MovementKind,
    plan,
    validate,
    violations,
)
from accord.store import schema as t
from accord.store.db import INTEGRITY_ERRORS, Compiled, Database, Tx
from accord.store.statements import LOAD_KEY, LOAD_STATE, build

log = logging.getLogger(__name__)

MAX_BATCH = 10_000
# in a caller's transaction (``move_batch_in``), batches of at least this many movements find reused idempotency
# keys through the ledger's primary key (write under a savepoint; redo with a lookup only on conflict) instead of
# looking every key up first; a batch in its own transaction always does (the redo is a new transaction)
OPTIMISTIC_KEYS_FROM = 32
GC_PAUSE_FROM = 256  # batches at least this large run with the cyclic garbage collector paused (``_gc_paused``)
RECOMPUTE_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Config:
    version: int
    locations: dict[str, Location]
    channels: dict[str, Channel]
    eligible: dict[str, tuple[str, ...]]  # channel -> locations whose stock counts for it
    plan: AtsPlan  # evaluates ATS for the channels a change touches


class AtsChange(NamedTuple):
    sku: str
    channel: str
    old: int
    new: int


@dataclass(slots=True)
class MoveResult:
    key: str
    kind: str
    sku: str
    location: str
    qty: int
    replayed: bool
    balances: dict[str, Balance] = field(default_factory=dict)  # location -> balance after
    transfer_id: str | None = None
    changed_ats: list[tuple[str, int, int]] = field(default_factory=list)  # (channel, old, new), shared per SKU

    @property
    def ats_changes(self) -> list[AtsChange]:
        return [AtsChange(self.sku, ch, old, new) for ch, old, new in self.changed_ats]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "sku": self.sku,
            "location": self.location,
            "qty": self.qty,
            "replayed": self.replayed,
            "transfer_id": self.transfer_id,
            "balances": {loc: balance_dict(b) for loc, b in self.balances.items()},
            "ats_changes": [{"channel": ch, "old_ats": old, "new_ats": new} for ch, old, new in self.changed_ats],
        }


@dataclass(frozen=True, slots=True)
class Mismatch:
    what: str  # "balance", "invariant", "transfer", "ats", "packed" (a SKU's packed balances vs its rows)
    sku: str
    where: str  # location or channel
    expected: str
    actual: str


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large batch is planned. A batch allocates some forty
    acyclic objects per movement (ledger rows, event dicts, balances) that live until it is written; reference
    counting frees them all, so the collector finds nothing, yet its full passes over the process heap cost about
    a fifth of a batch's CPU (measured in the ledger bench). Re-enabled afterwards only if it was enabled."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _balance(packed: dict[str, list[int]], location: str) -> Balance:
    """A fresh Balance from a SKU's packed balances (zero when the location holds nothing yet)."""
    v = packed.get(location)
    return Balance(v[0], v[1], v[2], v[3], v[4]) if v is not None else Balance()


def balance_dict(b: Balance) -> dict[str, int]:
    return {
        "on_hand": b.on_hand,
        "committed": b.committed,
        "in_transit": b.in_transit,
        "damaged": b.damaged,
        "quarantine": b.quarantine,
        "available": b.on_hand - b.committed,
    }


class Engine:
    """Use cases over one database. Thread-safe; one per process is enough."""

    def __init__(self, db: Database, clock: Clock | None = None, ids: Ids | None = None) -> None:
        self.db = db
        self.sql = build(db)
        self.clock: Clock = clock or SystemClock()
        self.ids: Ids = ids or RandomIds()
        self._cfg: Config | None = None
        self._known_skus: set[str] = set()
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self._load_one_plain = self.sql.load_one.names == ("key", "sku")  # bind without a dict
        for stmt, order in (
            (self.sql.upsert_state, ("sku_id", "ats", "updated_at", "balances")),
            (
                self.sql.add_balance,
                ("d_on_hand", "d_committed", "d_in_transit", "d_damaged", "d_quarantine", "at", "sku", "loc"),
            ),
        ):
            if stmt.names != order:  # rows are built in this order
                raise RuntimeError(f"unexpected parameter order {stmt.names}")
        self._q_balances_of_sku: Compiled | None = None  # ``balances(sku=…)``, compiled on first use

    def _count(self, counts: dict[str, int]) -> None:
        stats = self.stats
        for name, k in counts.items():
            stats[name] += k

    # ------------------------------------------------------------------ helpers

    def _list(self, values: Iterable[str]) -> Any:
        vals = list(values)
        return orjson.dumps(vals).decode() if self.sql.json_list else vals

    def _config(self, tx: Tx) -> Config:
        row = tx.one(self.sql.config_version)
        version = int(row[0]) if row else 0
        cfg = self._cfg
        if cfg is None or cfg.version != version:
            cfg = self._load_config(tx, version)
            self._cfg = cfg
        return cfg

    def _load_config(self, tx: Tx, version: int) -> Config:
        c = self.db.compile
        locs: dict[str, Location] = {}
        for r in tx.all(c(sa.select(t.locations).order_by(t.locations.c.id))):
            locs[r[0]] = Location(r[0], LocationKind(r[1]), r[2], r[3], r[4], r[5])
        members: dict[str, list[str]] = {}
        q = sa.select(t.channel_locations.c.channel_id, t.channel_locations.c.location_id).order_by(
            t.channel_locations.c.channel_id, t.channel_locations.c.priority
        )
        for ch_id, loc_id in tx.all(c(q)):
            members.setdefault(ch_id, []).append(loc_id)
        chans: dict[str, Channel] = {}
        for r in tx.all(c(sa.select(t.channels).order_by(t.channels.c.id))):
            policy = StockPolicy(buffer_units=r[4], max_qty=r[5], pool_pct=r[6], zero_at_or_below=r[7])
            chans[r[0]] = Channel(r[0], r[1], r[2], r[3], tuple(members.get(r[0], ())), policy)
        eligible = {cid: eligible_locations(ch, locs) for cid, ch in chans.items()}
        return Config(version, locs, chans, eligible, AtsPlan(chans, locs))

    def _lock_config(self, tx: Tx) -> None:
        """PostgreSQL: a configuration change (or full recompute) waits for in-flight movements and holds off
        new ones until it commits. SQLite writers are serialised by BEGIN IMMEDIATE already."""
        if self.db.backend == "postgresql":
            tx.cur.execute("LOCK TABLE skus IN EXCLUSIVE MODE")

    def _config_changed(self, tx: Tx) -> Config:
        tx.run(self.sql.bump_config_version)
        self._cfg = None
        return self._config(tx)

    def _emit(self, tx: Tx, events: Sequence[ev.Event], now: int) -> None:
        tx.many(
            self.sql.insert_outbox,
            [(e.type, e.key, orjson.dumps(e.data).decode(), now) for e in events],
        )

    def config(self) -> Config:
        with self.db.read() as tx:
            return self._config(tx)

    def config_in(self, tx: Tx) -> Config:
        """The configuration as ``tx`` sees it (cached by version), for services that write in the same tx."""
        return self._config(tx)

    # ------------------------------------------------------------------ configuration

    def add_location(self, loc: Location) -> Location:
        loc.check()
        try:
            with self.db.tx() as tx:
                self._lock_config(tx)
                cfg = self._config(tx)
                if loc.id in cfg.locations:
                    raise AlreadyExists(f"location {loc.id!r} already exists")
                now = self.clock.now_ms()
                stmt = sa.insert(t.locations).values(
                    id=loc.id,
                    kind=loc.kind.value,
                    region=loc.region,
                    country=loc.country,
                    timezone=loc.timezone,
                    owner_channel=loc.owner_channel,
                    created_at=now,
                )
                tx.run(*self._bound(stmt))
                self._config_changed(tx)
                data = {"location": loc.id, "kind": loc.kind.value, "region": loc.region, "country": loc.country}
                self._emit(tx, [ev.Event(ev.LOCATION_ADDED, loc.id, data)], now)
        finally:
            self._cfg = None
        return loc

    def add_channel(self, ch: Channel) -> Channel:
        try:
            with self.db.tx() as tx:
                self._lock_config(tx)
                cfg = self._config(tx)
                if ch.id in cfg.channels:
                    raise AlreadyExists(f"channel {ch.id!r} already exists")
                ch.check(cfg.locations)
                now = self.clock.now_ms()
                p = ch.policy
                stmt = sa.insert(t.channels).values(
                    id=ch.id,
                    dialect=ch.dialect,
                    region=ch.region,
                    currency=ch.currency,
                    buffer_units=p.buffer_units,
                    max_qty=p.max_qty,
                    pool_pct=p.pool_pct,
                    zero_at_or_below=p.zero_at_or_below,
                    created_at=now,
                )
                tx.run(*self._bound(stmt))
                self._write_members(tx, ch)
                cfg = self._config_changed(tx)
                self._emit(tx, [ev.Event(ev.CHANNEL_ADDED, ch.id, channel_dict(ch))], now)
                self._recompute(tx, cfg, [ch.id], cause="channel-added")
        finally:
            self._cfg = None
        return ch

    def update_channel(
        self, channel_id: str, *, policy: StockPolicy | None = None, locations: Sequence[str] | None = None
    ) -> Channel:
        """Change a channel's policy and/or fulfilling locations; its ATS is recomputed in the same transaction."""
        try:
            with self.db.tx() as tx:
                self._lock_config(tx)
                cfg = self._config(tx)
                old = cfg.channels.get(channel_id)
                if old is None:
                    raise NotFound("channel", channel_id)
                new = Channel(
                    old.id,
                    old.dialect,
                    old.region,
                    old.currency,
                    tuple(locations) if locations is not None else old.locations,
                    policy or old.policy,
                )
                new.check(cfg.locations)
                if new == old:
                    return old
                now = self.clock.now_ms()
                p = new.policy
                stmt = (
                    sa.update(t.channels)
                    .where(t.channels.c.id == channel_id)
                    .values(
                        buffer_units=p.buffer_units,
                        max_qty=p.max_qty,
                        pool_pct=p.pool_pct,
                        zero_at_or_below=p.zero_at_or_below,
                    )
                )
                tx.run(*self._bound(stmt))
                if new.locations != old.locations:
                    tx.run(
                        *self._bound(
                            sa.delete(t.channel_locations).where(t.channel_locations.c.channel_id == channel_id)
                        )
                    )
                    self._write_members(tx, new)
                cfg = self._config_changed(tx)
                data = {"channel": channel_id, "old": channel_dict(old), "new": channel_dict(new)}
                self._emit(tx, [ev.Event(ev.CHANNEL_POLICY_CHANGED, channel_id, data)], now)
                self._recompute(tx, cfg, [channel_id], cause="channel-policy-changed")
        finally:
            self._cfg = None
        return new

    def _write_members(self, tx: Tx, ch: Channel) -> None:
        for prio, loc_id in enumerate(ch.locations):
            tx.run(
                *self._bound(sa.insert(t.channel_locations).values(channel_id=ch.id, location_id=loc_id, priority=prio))
            )

    def _bound(self, stmt: sa.ClauseElement) -> tuple[Any, tuple[Any, ...]]:
        """Compile a one-off statement with its literal parameters (configuration paths only)."""
        c = stmt.compile(dialect=self.db.dialect, compile_kwargs={"render_postcompile": True})
        comp = Compiled(c.string, tuple(getattr(c, "positiontup", None) or ()))
        return comp, tuple(c.params[n] for n in comp.names)

    def add_skus(self, items: Sequence[Sku]) -> int:
        """Add SKUs; existing ids are an error unless identical (then skipped). Returns how many were new."""
        with self.db.tx() as tx:
            return len(self.add_skus_in(tx, items, self.clock.now_ms()))

    def add_skus_in(self, tx: Tx, items: Sequence[Sku], now: int, *, any_title: bool = False) -> list[Sku]:
        """``add_skus`` inside the caller's transaction (SKU rows and SkuAdded events commit with it).
        ``any_title``: an existing id is skipped whatever its title (the PIM owns titles). Returns the new SKUs."""
        for s in items:
            s.check()
        if len({s.id for s in items}) != len(items):
            raise InvalidInput("the same SKU appears twice in one request")
        existing: dict[str, str] = {}
        ids = [s.id for s in items]
        for i in range(0, len(ids), 500):
            q = sa.select(t.skus.c.id, t.skus.c.title).where(t.skus.c.id.in_(ids[i : i + 500]))
            existing.update({r[0]: r[1] for r in tx.all(*self._bound(q))})
        new = []
        for s in items:
            if s.id in existing:
                if existing[s.id] != s.title and not any_title:
                    raise AlreadyExists(f"SKU {s.id!r} already exists with another title")
                continue
            new.append(s)
        ins = self.db.compile(
            sa.insert(t.skus).values(id=sa.bindparam("id"), title=sa.bindparam("title"), created_at=sa.bindparam("at"))
        )
        tx.many(ins, [(s.id, s.title, now) for s in new])
        self._emit(tx, [ev.Event(ev.SKU_ADDED, s.id, {"sku": s.id, "title": s.title}) for s in new], now)
        return new

    def add_sku(self, sku: Sku) -> bool:
        return self.add_skus([sku]) == 1

    # ------------------------------------------------------------------ movements

    def move(self, m: Movement) -> MoveResult:
        """One movement in its own transaction (``move_batch`` of one, without the batch's bookkeeping)."""
        _validate_all((m,))
        attempt = 0
        while True:
            counts: dict[str, int] = {}
            try:
                with self.db.tx() as tx:
                    result = self._apply_one(tx, m, counts)
                self._count(counts)
                return result
            except Exception as exc:
                # PostgreSQL: a concurrent writer used the same key first; the redo sees its row
                attempt += 1
                if attempt < 3 and _is_key_race(exc):
                    continue
                raise

    def move_batch(self, movements: Sequence[Movement], *, want_results: bool = True) -> list[MoveResult]:
        """Apply movements in order, all or nothing, in one transaction.

        ``want_results=False`` (bulk ingest) writes exactly the same rows — ledger, balances, transfers, ATS,
        outbox events — but builds no per-movement :class:`MoveResult` and returns an empty list.

        Idempotency keys are not looked up first: the ledger's primary key finds a reused one when the legs are
        written, and only then (rare) the transaction is rolled back and redone with the keys looked up, which
        replays (same payload) or rejects (different payload) them. The redo also covers a concurrent writer
        that used the same key first (PostgreSQL)."""
        if not movements:
            return []
        if len(movements) == 1:
            result = self.move(movements[0])
            return [result] if want_results else []
        _validate_all(movements)
        attempt = 0
        while True:
            # counted only once the transaction commits: a rolled-back batch (or a retried one) moved nothing
            counts: dict[str, int] = {}
            try:
                with self.db.tx() as tx:
                    results = self._apply(tx, movements, counts, want_results, attempt > 0)
                self._count(counts)
                return results
            except Exception as exc:
                attempt += 1
                if _redo(exc, attempt):
                    continue
                raise

    def move_batch_in(self, tx: Tx, movements: Sequence[Movement], *, want_results: bool = True) -> list[MoveResult]:
        """Like :meth:`move_batch`, inside the caller's open write transaction (e.g. an ingested order's rows
        and its reservations commit together). The caller owns commit and rollback; the movement metrics
        count once it commits."""
        if not movements:
            return []
        _validate_all(movements)
        counts: dict[str, int] = {}
        if len(movements) < OPTIMISTIC_KEYS_FROM:
            results = self._apply(tx, movements, counts, want_results, True)
        else:
            results = self._apply_in_savepoint(tx, movements, counts, want_results)
        if counts:
            # counted when the caller's transaction commits: a rolled-back order intake moved nothing
            tx.after_commit(lambda: self._count(counts))
        return results

    def _apply_in_savepoint(
        self, tx: Tx, ms: Sequence[Movement], counts: dict[str, int], want_results: bool
    ) -> list[MoveResult]:
        """A large batch in the caller's transaction: written under a savepoint without looking keys up first;
        a reused key (the ledger's primary key) undoes the savepoint and redoes the batch with the lookup."""
        tx.cur.execute("SAVEPOINT accord_batch")
        try:
            results = self._apply(tx, ms, counts, want_results, False)
        except Exception as exc:
            tx.cur.execute("ROLLBACK TO SAVEPOINT accord_batch")
            tx.cur.execute("RELEASE SAVEPOINT accord_batch")
            if not (_is_key_race(exc) or isinstance(exc, AccordError)):
                raise
            counts.clear()
            return self._apply(tx, ms, counts, want_results, True)
        except BaseException:
            tx.cur.execute("ROLLBACK TO SAVEPOINT accord_batch")
            tx.cur.execute("RELEASE SAVEPOINT accord_batch")
            raise
        tx.cur.execute("RELEASE SAVEPOINT accord_batch")
        return results

    def _apply(
        self, tx: Tx, ms: Sequence[Movement], counts: dict[str, int], want_results: bool, check_keys: bool
    ) -> list[MoveResult]:
        """The write path of every movement: load what the SKUs hold, plan every movement in order, compute the
        ATS of the channels fed by the locations that changed, then write ledger legs, balances, transfers, ATS
        rows and the outbox events. ``check_keys``: look the idempotency keys up first (else a reused key
        surfaces as the ledger's primary-key conflict, see ``move_batch``). One movement takes a lean variant
        of the same steps (``_apply_one``); a test holds both to the same rows and events."""
        n = len(ms)
        if n == 1:
            return [self._apply_one(tx, ms[0], counts)]
        if n >= GC_PAUSE_FROM:
            with _gc_paused():
                return self._apply_once(tx, ms, counts, check_keys, want_results)
        return self._apply_once(tx, ms, counts, check_keys, want_results)

    def _apply_one(self, tx: Tx, m: Movement, counts: dict[str, int]) -> MoveResult:
        """``_apply_once`` for a single movement, without the batch's bookkeeping. Its key is always looked up:
        it comes in the same statement as the SKU's packed row."""
        sql = self.sql
        sku = m.sku
        if sql.skus_lock is not None:  # PostgreSQL: see _apply_once
            if not tx.all(sql.skus_lock, (self._list((sku,)),)):
                raise NotFound("SKU", sku)
        elif sku not in self._known_skus:
            if not tx.all(sql.skus_existing, (self._list((sku,)),)):
                raise NotFound("SKU", sku)
            self._known_skus.add(sku)
        key = m.key
        params = (key, sku) if self._load_one_plain else sql.load_one.bind({"key": key, "sku": sku})
        packed_ats = packed_bal = prior = None
        version = -1
        for r in tx.all(sql.load_one, params):
            tag = r[0]
            if tag == LOAD_STATE:
                packed_ats, packed_bal = r[3], r[4]
            elif tag == LOAD_KEY:
                prior = r[3]
            else:
                version = int(r[1])
        cfg = self._cfg
        if cfg is None or cfg.version != version:
            cfg = self._config(tx)
        loc = m.location
        if loc not in cfg.locations:
            raise NotFound("location", loc)
        if m.to_location is not None and m.to_location not in cfg.locations:
            raise NotFound("location", m.to_location)
        fp = m.fingerprint()
        mk = m.kind
        kind = KIND_VALUE[mk]
        qty = m.qty
        if prior is not None:
            if prior != fp:
                raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different movement")
            return MoveResult(key, kind, sku, loc, qty, True)
        now = self.clock.now_ms()
        transfer_id = None
        transfer_rows: list[tuple[Any, ...]] = []
        new_transfers: list[tuple[Any, ...]] = []
        if mk is MovementKind.TRANSFER_IN:
            transfer_id = m.transfer_id
            assert transfer_id is not None
            found = tx.all(sql.transfers_by_ids, (self._list((transfer_id,)),))
            if not found:
                raise NotFound("transfer", transfer_id)
            tr = list(found[0][1:])
            _check_transfer_in(tr, m, 0, 1)
            transfer_rows.append((tr[3] + qty, now, transfer_id))
        stored: dict[str, list[int]] = orjson.loads(packed_bal) if packed_bal else {}
        b = _balance(stored, loc)
        legs = plan(m, b)
        bal = {loc: b}
        after: dict[str, Balance] = {}
        ledger_rows: list[tuple[Any, ...]] = []
        for leg_no, (leg_loc, d) in enumerate(legs):
            lb = bal.get(leg_loc)
            if lb is None:
                lb = bal[leg_loc] = _balance(stored, leg_loc)
            lb.on_hand += d[0]
            lb.committed += d[1]
            lb.in_transit += d[2]
            lb.damaged += d[3]
            lb.quarantine += d[4]
            after[leg_loc] = lb.copy()
            ledger_rows.append(
                (key, leg_no, kind, sku, leg_loc, d[0], d[1], d[2], d[3], d[4], qty, m.reason, m.ref, fp, now)
            )
        if mk is MovementKind.TRANSFER_OUT:
            transfer_id = m.transfer_id or key
            if tx.all(sql.transfers_by_ids, (self._list((transfer_id,)),)):
                raise AlreadyExists(f"transfer {transfer_id!r} already exists")
            new_transfers.append((transfer_id, sku, loc, m.to_location, qty, 0, now, now))
        balance_rows = _BalanceWrites([], [], [])
        _balance_rows(sku, bal, stored, now, balance_rows)
        events = [ev.movements_recorded(sku, [_record(m, kind, transfer_id)], balance_rows.moved)]
        changes: list[tuple[str, int, int]] = []
        groups = cfg.plan.affected(bal)
        if groups:
            old_map: dict[str, int] = orjson.loads(packed_ats) if packed_ats is not None else {}
            changes = cfg.plan.changes(groups, {loc: v[0] - v[1] for loc, v in stored.items()}, old_map)
            if changes:
                packed_ats = _record_ats(sku, changes, old_map, kind, events)
        state_rows = [(sku, packed_ats or "{}", now, orjson.dumps(stored).decode())]
        counts[_KIND_METRIC[kind]] = 1
        counts["ats.changes"] = len(changes)
        self._write(tx, ledger_rows, balance_rows, new_transfers, transfer_rows, state_rows, events, now)
        return MoveResult(key, kind, sku, loc, qty, False, after, transfer_id, changes)

    def _apply_once(
        self, tx: Tx, ms: Sequence[Movement], counts: dict[str, int], check_keys: bool, want_results: bool
    ) -> list[MoveResult]:
        sql = self.sql
        n = len(ms)
        sku_ids = list(dict.fromkeys([m.sku for m in ms]))
        sku_param = self._list(sku_ids)
        if sql.skus_lock is not None:
            # PostgreSQL: serialise writers per SKU (ATS reads every location of a SKU). The lock also waits
            # for a configuration change in flight (it locks the skus table EXCLUSIVE), and the config version
            # is read after it, so a movement never computes ATS with a policy that is being replaced.
            found = {r[0] for r in tx.all(sql.skus_lock, (sku_param,))}
            missing = [s for s in sku_ids if s not in found]
        else:
            known = self._known_skus
            missing = [s for s in sku_ids if s not in known]
            if missing:
                found = {r[0] for r in tx.all(sql.skus_existing, (self._list(missing),))}
                known.update(found)
                missing = [s for s in missing if s not in found]
        if missing:
            i = next(i for i, m in enumerate(ms) if m.sku == missing[0])
            raise _at(NotFound("SKU", missing[0]), i, n)

        # one round trip: config version, prior idempotency keys (when checked), the packed row of each SKU
        prior: dict[str, str] = {}
        stored: dict[str, dict[str, list[int]]] = {}  # sku -> packed balances (becomes the new packed state)
        old_ats: dict[str, str] = {}  # sku -> packed ATS as stored (JSON text; parsed only when compared)
        version = -1
        keys = self._list({m.key for m in ms} if check_keys else ())
        loads = orjson.loads
        for r in tx.all(sql.load, (keys, sku_param)):
            tag = r[0]
            if tag == LOAD_STATE:
                old_ats[r[2]] = r[3]
                stored[r[2]] = loads(r[4])
            elif tag == LOAD_KEY:
                if check_keys:
                    prior[r[2]] = r[3]
            else:
                version = int(r[1])
        cfg = self._cfg
        if cfg is None or cfg.version != version:
            cfg = self._config(tx)
        locs = cfg.locations
        for i, m in enumerate(ms):
            if m.location not in locs:
                raise _at(NotFound("location", m.location), i, n)
            if m.to_location is not None and m.to_location not in locs:
                raise _at(NotFound("location", m.to_location), i, n)
        now = self.clock.now_ms()
        transfers: dict[str, list[Any]] = {}
        tids = {m.transfer_id for m in ms if m.kind is MovementKind.TRANSFER_IN and m.transfer_id}
        if tids:
            transfers = {r[0]: list(r[1:]) for r in tx.all(sql.transfers_by_ids, (self._list(tids),))}

        ledger_rows: list[tuple[Any, ...]] = []
        records: list[dict[str, Any]] = []  # the MovementsRecorded event's movements
        results: list[MoveResult] = []
        bal: dict[str, dict[str, Balance]] = {}  # sku -> location -> Balance, only where this batch moves stock
        new_transfers: list[tuple[Any, ...]] = []
        touched_transfers: set[str] = set()
        fresh: dict[str, str] = {}
        kinds: dict[str, int] = {}
        receive, transfer_in, transfer_out = MovementKind.RECEIVE, MovementKind.TRANSFER_IN, MovementKind.TRANSFER_OUT
        append_row, append_record = ledger_rows.append, records.append
        for i, m in enumerate(ms):
            key = m.key
            fp = m.fingerprint()
            prev = fresh.get(key)
            if prev is None and prior:
                prev = prior.get(key)
            if prev is not None:
                if prev != fp:
                    raise _at(
                        IdempotencyConflict(f"idempotency key {key!r} was already used for a different movement"),
                        i,
                        n,
                    )
                if want_results:
                    results.append(MoveResult(key, KIND_VALUE[m.kind], m.sku, m.location, m.qty, True))
                continue
            fresh[key] = fp
            mk = m.kind
            kind = KIND_VALUE[mk]
            sku = m.sku
            loc = m.location
            qty = m.qty
            sku_bal = bal.get(sku)
            if sku_bal is None:
                sku_bal = bal[sku] = {}
                sku_packed = stored.get(sku)
                if sku_packed is None:
                    sku_packed = stored[sku] = {}
            else:
                sku_packed = stored[sku]
            b = sku_bal.get(loc)
            if b is None:
                b = sku_bal[loc] = _balance(sku_packed, loc)
            transfer_id = None
            if mk is receive:  # the common case of bulk ingest, without planning legs
                b.on_hand += qty
                append_row((key, 0, kind, sku, loc, qty, 0, 0, 0, 0, qty, m.reason, m.ref, fp, now))
                if want_results:
                    results.append(MoveResult(key, kind, sku, loc, qty, False, {loc: b.copy()}))
            else:
                if mk is transfer_in:
                    transfer_id = m.transfer_id
                    assert transfer_id is not None
                    tr = transfers.get(transfer_id)
                    if tr is None:
                        raise _at(NotFound("transfer", transfer_id), i, n)
                    _check_transfer_in(tr, m, i, n)
                    tr[3] += qty
                    touched_transfers.add(transfer_id)
                try:
                    legs = plan(m, b)
                except InsufficientStock as exc:
                    raise _at(exc, i, n) from None
                after: dict[str, Balance] = {}
                for leg_no, (leg_loc, d) in enumerate(legs):
                    lb = sku_bal.get(leg_loc)
                    if lb is None:
                        lb = sku_bal[leg_loc] = _balance(sku_packed, leg_loc)
                    lb.on_hand += d[0]
                    lb.committed += d[1]
                    lb.in_transit += d[2]
                    lb.damaged += d[3]
                    lb.quarantine += d[4]
                    if want_results:
                        after[leg_loc] = lb.copy()
                    append_row(
                        (key, leg_no, kind, sku, leg_loc, d[0], d[1], d[2], d[3], d[4], qty, m.reason, m.ref, fp, now)
                    )
                if mk is transfer_out:
                    transfer_id = m.transfer_id or key
                    if transfer_id in transfers:
                        raise _at(AlreadyExists(f"transfer {transfer_id!r} already exists"), i, n)
                    transfers[transfer_id] = [sku, m.to_location, qty, 0]
                    new_transfers.append((transfer_id, sku, loc, m.to_location, qty, 0, now, now))
                if want_results:
                    results.append(MoveResult(key, kind, sku, loc, qty, False, after, transfer_id))
            append_record(_record(m, kind, transfer_id))
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, k in kinds.items():
            counts[_KIND_METRIC[kind]] = k

        if new_transfers:
            existing = {r[0] for r in tx.all(sql.transfers_by_ids, (self._list(t_[0] for t_ in new_transfers),))}
            if existing:
                raise AlreadyExists(f"transfer {sorted(existing)[0]!r} already exists")

        # balances after the batch (checked), then available-to-sell: only the channels fed by the locations
        # that changed
        balance_rows = _BalanceWrites([], [], [])
        state_rows: list[tuple[Any, ...]] = []
        events: list[ev.Event] = []
        changes: dict[str, list[tuple[str, int, int]]] = {}
        ats_plan = cfg.plan
        dumps = orjson.dumps
        for sku, sku_bal in bal.items():
            sku_packed = stored[sku]
            _balance_rows(sku, sku_bal, sku_packed, now, balance_rows)
            packed_ats = old_ats.get(sku)
            groups = ats_plan.affected(sku_bal)
            if groups:
                old_map: dict[str, int] = loads(packed_ats) if packed_ats is not None else {}
                sku_changes = ats_plan.changes(groups, {loc: v[0] - v[1] for loc, v in sku_packed.items()}, old_map)
                if sku_changes:
                    changes[sku] = sku_changes
                    packed_ats = _record_ats(sku, sku_changes, old_map, "batch", events)
            state_rows.append((sku, packed_ats or "{}", now, dumps(sku_packed).decode()))
        if want_results:
            for r in results:
                if not r.replayed:
                    r.changed_ats = changes.get(r.sku, [])
        counts["ats.changes"] = sum(len(c) for c in changes.values())
        if records:
            event_key = next(iter(bal)) if len(bal) == 1 else ev.BATCH_KEY
            events.insert(0, ev.movements_recorded(event_key, records, balance_rows.moved))

        transfer_rows = [(transfers[tid][3], now, tid) for tid in touched_transfers]
        self._write(tx, ledger_rows, balance_rows, new_transfers, transfer_rows, state_rows, events, now)
        return results

    def _write(
        self,
        tx: Tx,
        ledger_rows: list[tuple[Any, ...]],
        balances: _BalanceWrites,
        new_transfers: list[tuple[Any, ...]],
        transfer_rows: list[tuple[Any, ...]],
        state_rows: list[tuple[Any, ...]],
        events: list[ev.Event],
        now: int,
    ) -> None:
        """Every row of a movement transaction (PostgreSQL: in one pipeline). A balance row the packed state
        says exists but ``balances`` lacks would take no delta: that is a bug, and it fails the transaction."""
        sql = self.sql
        deltas = balances.deltas
        if tx.backend == "postgresql":
            with tx.pipelined():
                tx.many(sql.insert_ledger, ledger_rows)
                tx.many(sql.insert_balance, balances.new)
                counted = tx.many_counted(sql.add_balance, deltas) if deltas else None
                tx.many(sql.insert_transfer, new_transfers)
                tx.many(sql.update_transfer, transfer_rows)
                tx.many(sql.upsert_state, state_rows)
                self._emit(tx, events, now)
            changed = counted.rowcount if counted is not None else 0
        else:
            tx.many(sql.insert_ledger, ledger_rows)
            tx.many(sql.insert_balance, balances.new)
            changed = 0
            if deltas:
                tx.many(sql.add_balance, deltas)
                changed = tx.cur.rowcount
            tx.many(sql.insert_transfer, new_transfers)
            tx.many(sql.update_transfer, transfer_rows)
            tx.many(sql.upsert_state, state_rows)
            self._emit(tx, events, now)
        if changed != len(deltas):
            raise RuntimeError(
                f"{len(deltas) - changed} balance row(s) the packed state holds are missing; run `accord verify`"
            )

    # ------------------------------------------------------------------ available to sell

    def ats(self, sku: str, channel: str | None = None) -> dict[str, int]:
        """ATS of one SKU on every channel (or one). Unknown SKU or channel is an error."""
        with self.db.lookup() as tx:
            row = tx.one(self.sql.ats_sku, (sku,))
            stored: dict[str, int] = orjson.loads(row[0]) if row is not None else {}
            if channel is not None:
                if channel in stored:
                    return {channel: stored[channel]}
                if channel not in self._config(tx).channels:
                    raise NotFound("channel", channel)
                if row is None:
                    self._require_sku(tx, sku)
                return {channel: 0}
            cfg = self._config(tx)
            if row is None:
                self._require_sku(tx, sku)
            return {ch: stored.get(ch, 0) for ch in sorted(cfg.channels)}

    def _require_sku(self, tx: Tx, sku: str) -> None:
        if sku in self._known_skus:
            return
        if not tx.all(self.sql.skus_existing, (self._list([sku]),)):
            raise NotFound("SKU", sku)
        self._known_skus.add(sku)

    def recompute_ats(self, channel: str | None = None) -> int:
        """Full recompute of ATS from balances (all channels or one). Returns how many values changed."""
        with self.db.tx() as tx:
            self._lock_config(tx)
            cfg = self._config(tx)
            if channel is not None and channel not in cfg.channels:
                raise NotFound("channel", channel)
            return self._recompute(tx, cfg, [channel] if channel else sorted(cfg.channels), cause="recompute")

    def _recompute(self, tx: Tx, cfg: Config, channel_ids: Sequence[str], cause: str) -> int:
        now = self.clock.now_ms()
        sku_ids = [r[0] for r in tx.all(*self._bound(sa.select(t.skus.c.id).order_by(t.skus.c.id)))]
        changed = 0
        wanted = set(channel_ids)
        groups = list(cfg.plan.all_groups())
        for i in range(0, len(sku_ids), RECOMPUTE_CHUNK):
            chunk = sku_ids[i : i + RECOMPUTE_CHUNK]
            param = self._list(chunk)
            avail: dict[str, dict[str, int]] = {}
            packed: dict[str, dict[str, list[int]]] = {}  # the SKU's packed balances, as its balance rows say
            for r in tx.all(self.sql.balances_for_skus, (param,)):
                avail.setdefault(r[0], {})[r[1]] = r[2] - r[3]
                packed.setdefault(r[0], {})[r[1]] = list(r[2:7])
            old: dict[str, tuple[str, dict[str, list[int]]]] = {
                r[0]: (r[1], orjson.loads(r[2])) for r in tx.all(self.sql.ats_for_skus, (param,))
            }
            rows: list[tuple[Any, ...]] = []
            events: list[ev.Event] = []
            for sku in chunk:
                values = [v for v in cfg.plan.evaluate(groups, avail.get(sku, {})) if v[0] in wanted]
                old_ats, old_packed = old.get(sku, ("{}", {}))
                ats_map: dict[str, int] = orjson.loads(old_ats)
                found = _ats_changes(sku, values, ats_map, cause, events)
                sku_packed = packed.get(sku, {})
                if sku_packed != old_packed:
                    # the packed copy is written with every balance change; a difference is a bug, repaired here
                    log.warning("packed balances of %s differed from its balance rows; rewritten", sku)
                if found or sku_packed != old_packed:
                    for ch_id, _, new in found:
                        ats_map[ch_id] = new
                    rows.append((sku, orjson.dumps(ats_map).decode(), now, orjson.dumps(sku_packed).decode()))
                changed += len(found)
            with tx.pipelined():
                tx.many(self.sql.upsert_state, rows)
                self._emit(tx, events, now)
        return changed

    # ------------------------------------------------------------------ reads

    def balances(
        self,
        sku: str | None = None,
        location: str | None = None,
        *,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[tuple[str, str, Balance]]:
        """Balances in (SKU, location) order; ``after`` and ``limit`` page through them (keyset pagination)."""
        b = t.balances
        q = sa.select(b.c.sku_id, b.c.location_id, *(b.c[n] for n in BUCKETS)).order_by(b.c.sku_id, b.c.location_id)
        if after is not None:
            q = q.where(sa.tuple_(b.c.sku_id, b.c.location_id) > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        if limit is not None:
            q = q.limit(limit)
        with self.db.read() as tx:
            if sku is not None:
                self._require_sku(tx, sku)
                if location is None and after is None and limit is None:  # one SKU's (invariant checks): prepared
                    if self._q_balances_of_sku is None:
                        self._q_balances_of_sku = self.db.compile(q.where(b.c.sku_id == sa.bindparam("sku")))
                    return [(r[0], r[1], Balance(*r[2:])) for r in tx.all(self._q_balances_of_sku, (sku,))]
                q = q.where(b.c.sku_id == sku)
            if location is not None:
                if location not in self._config(tx).locations:
                    raise NotFound("location", location)
                q = q.where(b.c.location_id == location)
            return [(r[0], r[1], Balance(*r[2:])) for r in tx.all(*self._bound(q))]

    def skus(self, *, after: str = "", limit: int = 100) -> list[Sku]:
        q = sa.select(t.skus.c.id, t.skus.c.title).where(t.skus.c.id > after).order_by(t.skus.c.id).limit(limit)
        with self.db.read() as tx:
            return [Sku(r[0], r[1]) for r in tx.all(*self._bound(q))]

    def transfers(self, *, open_only: bool = False) -> list[dict[str, Any]]:
        tr = t.transfers
        q = sa.select(tr).order_by(tr.c.created_at, tr.c.id)
        if open_only:
            q = q.where(tr.c.qty_received < tr.c.qty_shipped)
        with self.db.read() as tx:
            cols = [c.name for c in tr.columns]
            return [dict(zip(cols, r, strict=True)) for r in tx.all(*self._bound(q))]

    def transfer(self, transfer_id: str) -> dict[str, Any]:
        tr = t.transfers
        with self.db.read() as tx:
            row = tx.one(*self._bound(sa.select(tr).where(tr.c.id == transfer_id)))
        if row is None:
            raise NotFound("transfer", transfer_id)
        return dict(zip([c.name for c in tr.columns], row, strict=True))

    # ------------------------------------------------------------------ verification

    def verify(self) -> list[Mismatch]:
        """Replay the ledger and compare with balances; check invariants, transfers and ATS."""
        lg, b, tr = t.ledger, t.balances, t.transfers
        sums = [sa.func.sum(lg.c[f"d_{n}"]) for n in BUCKETS]
        replay_q = sa.select(lg.c.sku_id, lg.c.location_id, *sums).group_by(lg.c.sku_id, lg.c.location_id)
        bal_q = sa.select(b.c.sku_id, b.c.location_id, *(b.c[n] for n in BUCKETS))
        out: list[Mismatch] = []
        with self.db.read() as tx:
            replay = {(r[0], r[1]): tuple(int(v) for v in r[2:]) for r in tx.all(*self._bound(replay_q))}
            stored = {(r[0], r[1]): tuple(int(v) for v in r[2:]) for r in tx.all(*self._bound(bal_q))}
            zero = (0, 0, 0, 0, 0)
            packed_q = sa.select(t.sku_ats.c.sku_id, t.sku_ats.c.balances)
            packed = {
                (r[0], loc): tuple(v) for r in tx.all(*self._bound(packed_q)) for loc, v in orjson.loads(r[1]).items()
            }
            for key in sorted(set(packed) | set(stored)):
                exp, act = stored.get(key, zero), packed.get(key, zero)
                if exp != act:
                    out.append(Mismatch("packed", key[0], key[1], _fmt(exp), _fmt(act)))
            for key in sorted(set(replay) | set(stored)):
                exp, act = replay.get(key, zero), stored.get(key, zero)
                if exp != act:
                    out.append(Mismatch("balance", key[0], key[1], _fmt(exp), _fmt(act)))
                for problem in violations(Balance(*act)):
                    out.append(
                        Mismatch("invariant", key[0], key[1], "no negative bucket, committed <= on_hand", problem)
                    )
            open_q = sa.select(
                tr.c.sku_id, tr.c.to_location, sa.func.sum(tr.c.qty_shipped - tr.c.qty_received)
            ).group_by(tr.c.sku_id, tr.c.to_location)
            in_transit = {(r[0], r[1]): int(r[2]) for r in tx.all(*self._bound(open_q))}
            for key in sorted(set(in_transit) | {k for k, v in stored.items() if v[2]}):
                exp_t, act_t = in_transit.get(key, 0), stored.get(key, zero)[2]
                if exp_t != act_t:
                    out.append(Mismatch("transfer", key[0], key[1], f"in_transit={exp_t}", f"in_transit={act_t}"))
            cfg = self._config(tx)
            avail: dict[str, dict[str, int]] = {}
            for (sku, loc), v in stored.items():
                avail.setdefault(sku, {})[loc] = v[0] - v[1]
            ats_q = sa.select(t.sku_ats.c.sku_id, t.sku_ats.c.ats)
            shown: dict[str, dict[str, int]] = {r[0]: orjson.loads(r[1]) for r in tx.all(*self._bound(ats_q))}
            for sku in sorted(set(avail) | set(shown)):
                for ch_id in sorted(cfg.channels):
                    want = channel_ats(cfg.eligible[ch_id], cfg.channels[ch_id].policy, avail.get(sku, {}))
                    have = shown.get(sku, {}).get(ch_id, 0)
                    if want != have:
                        out.append(Mismatch("ats", sku, ch_id, f"ats={want}", f"ats={have}"))
        return out


def _ats_changes(
    sku: str, values: list[tuple[str, int]], stored: dict[str, int], cause: str, events: list[ev.Event]
) -> list[tuple[str, int, int]]:
    """Compare one SKU's freshly computed (channel, ATS) values with the stored ones; when any changed, append
    one ChannelAvailabilityChanged event listing every changed channel.
    Returns the changes as (channel, old, new), sorted by channel."""
    found = [(ch_id, old, new) for ch_id, new in values if (old := stored.get(ch_id, 0)) != new]
    if found:
        found.sort()
        events.append(ev.availability_changed(sku, found, cause))
    return found


def _record_ats(
    sku: str, found: list[tuple[str, int, int]], old_map: dict[str, int], cause: str, events: list[ev.Event]
) -> str:
    """One SKU's ChannelAvailabilityChanged event (``found`` is sorted) and its new packed ATS, returned as
    JSON. ``old_map`` (the stored map, parsed for this call) becomes the new one."""
    for ch_id, _, new in found:
        old_map[ch_id] = new
    events.append(ev.availability_changed(sku, found, cause))
    return orjson.dumps(old_map).decode()


def channel_dict(ch: Channel) -> dict[str, Any]:
    p = ch.policy
    return {
        "id": ch.id,
        "dialect": ch.dialect,
        "region": ch.region,
        "currency": ch.currency,
        "locations": list(ch.locations),
        "policy": {
            "buffer_units": p.buffer_units,
            "max_qty": p.max_qty,
            "pool_pct": p.pool_pct,
            "zero_at_or_below": p.zero_at_or_below,
        },
    }


def _fmt(v: tuple[int, ...]) -> str:
    return " ".join(f"{n}={x}" for n, x in zip(BUCKETS, v, strict=True))


_KIND_METRIC: dict[str, str] = {v: f"movements.{v}" for v in KIND_VALUE.values()}


def _check_transfer_in(tr: list[Any], m: Movement, index: int, total: int) -> None:
    """A transfer_in against its open transfer ``[sku, to_location, qty_shipped, qty_received]``."""
    if tr[0] != m.sku or tr[1] != m.location:
        raise _at(
            InvalidInput(f"transfer {m.transfer_id} carries {tr[0]} to {tr[1]}, not {m.sku} to {m.location}"),
            index,
            total,
        )
    if m.qty > tr[2] - tr[3]:
        raise _at(
            InsufficientStock(
                f"transfer_in {m.qty} of {m.sku} on {m.transfer_id}: only {tr[2] - tr[3]} still in transit"
            ),
            index,
            total,
        )


def _record(m: Movement, kind: str, transfer_id: str | None) -> dict[str, Any]:
    """One movement as the MovementsRecorded event lists it."""
    record: dict[str, Any] = {"key": m.key, "kind": kind, "sku": m.sku, "location": m.location, "qty": m.qty}
    if m.to_location is not None:
        record["to_location"] = m.to_location
    if transfer_id is not None or m.transfer_id is not None:
        record["transfer_id"] = transfer_id or m.transfer_id
    if m.reason is not None:
        record["reason"] = m.reason
    if m.ref is not None:
        record["ref"] = m.ref
    if m.source_bucket is not None:
        record["source_bucket"] = m.source_bucket
    return record


class _BalanceWrites(NamedTuple):
    new: list[tuple[Any, ...]]  # ``insert_balance`` rows: a location's first balance
    deltas: list[tuple[Any, ...]]  # ``add_balance`` rows: bucket deltas added to an existing row
    moved: list[tuple[Any, ...]]  # (sku, location, buckets after…) as the MovementsRecorded event lists them


def _balance_rows(
    sku: str, bal: dict[str, Balance], packed: dict[str, list[int]], now: int, out: _BalanceWrites
) -> None:
    """One SKU's changed locations into ``out``; ``packed`` (the SKU's packed balances) takes the new values.
    Invariant 2 is checked first (plan() prevents a violation; the check keeps a bug from ever being written)."""
    for loc, b in bal.items():
        oh, cm, it, dm, qu = b.on_hand, b.committed, b.in_transit, b.damaged, b.quarantine
        if cm > oh or oh < 0 or cm < 0 or it < 0 or dm < 0 or qu < 0:
            raise InsufficientStock(f"{sku} at {loc}: {'; '.join(violations(b))}")
        v = packed.get(loc)
        if v is None:
            out.new.append((sku, loc, oh, cm, it, dm, qu, now))
        else:
            out.deltas.append((oh - v[0], cm - v[1], it - v[2], dm - v[3], qu - v[4], now, sku, loc))
        packed[loc] = [oh, cm, it, dm, qu]
        out.moved.append((sku, loc, oh, cm, it, dm, qu))


def _validate_all(ms: Sequence[Movement]) -> None:
    """Shape checks of a batch before any I/O (the first bad movement is named by its position)."""
    n = len(ms)
    if n > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} movements, got {n}")
    for i, m in enumerate(ms):
        try:
            validate(m)
        except InvalidInput as exc:
            raise _at(exc, i, n) from None


def _at(exc: Exception, index: int, total: int) -> Exception:
    """Prefix an error with the movement's position when it came in a batch."""
    if total > 1:
        exc.args = (f"movement #{index}: {exc.args[0] if exc.args else exc}",)
    return exc


def _redo(exc: Exception, attempt: int) -> bool:
    """Whether a failed movement transaction is redone, looking its idempotency keys up this time. The first
    attempt does not look them up: a reused key surfaces as the ledger's primary-key conflict, and a domain error
    may be a replay that no longer fits today's stock (or reopens its transfer), which the redo answers from the
    ledger instead. PostgreSQL: a concurrent writer may have used the same key first; the redo sees its row."""
    return attempt < 3 and (_is_key_race(exc) or (attempt == 1 and isinstance(exc, AccordError)))


def _is_key_race(exc: Exception) -> bool:
    return isinstance(exc, INTEGRITY_ERRORS) and ("idem_key" in str(exc) or "pk_ledger" in str(exc))


__all__ = [
    "AtsChange",
    "Config",
    "Engine",
    "InvalidConfiguration",
    "Mismatch",
    "MoveResult",
]
