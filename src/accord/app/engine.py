"""The core use cases: configuration, stock movements, available-to-sell and verification.

Every state change writes balances, ledger rows and outbox events in one transaction.
A single movement is a batch of one: there is exactly one write path.
"""

from __future__ import annotations

import gc
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
    MOVEMENT_EVENTS,
    Balance,
    Leg,
    Movement,
    MovementKind,
    plan,
    validate,
    violations,
)
from accord.store import schema as t
from accord.store.db import INTEGRITY_ERRORS, Compiled, Database, Tx
from accord.store.statements import LOAD_ATS, LOAD_BALANCE, LOAD_KEY, build

MAX_BATCH = 10_000
# SQLite batches of at least this many movements find reused idempotency keys through the ledger's primary key
# (write under a savepoint; redo with a lookup only on conflict) instead of looking every key up first
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
    what: str  # "balance", "invariant", "transfer", "ats"
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


def _balance(rows: dict[str, Any] | None, location: str) -> Balance:
    """A fresh Balance from a loaded ``LOAD_BALANCE`` row (zero when the location holds nothing yet)."""
    r = rows.get(location) if rows else None
    return Balance(r[1], r[4], r[5], r[6], r[7]) if r is not None else Balance()


def _bucket_dict(v: tuple[int, int, int, int, int]) -> dict[str, int]:
    """``balance_dict`` of a balance's ``as_tuple()``."""
    return {
        "on_hand": v[0],
        "committed": v[1],
        "in_transit": v[2],
        "damaged": v[3],
        "quarantine": v[4],
        "available": v[0] - v[1],
    }


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
        self._load_one_plain = self.sql.load_one.names == ("key", "sku", "sku")  # bind without a dict
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
        return self.move_batch([m])[0]

    def move_batch(self, movements: Sequence[Movement], *, want_results: bool = True) -> list[MoveResult]:
        """Apply movements in order, all or nothing, in one transaction.

        ``want_results=False`` (bulk ingest) writes exactly the same rows — ledger, balances, transfers, ATS,
        outbox events — but builds no per-movement :class:`MoveResult` and returns an empty list."""
        if not movements:
            return []
        if len(movements) > MAX_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH} movements, got {len(movements)}")
        for i, m in enumerate(movements):
            try:
                validate(m)
            except InvalidInput as exc:
                raise _at(exc, i, len(movements)) from None
        attempt = 0
        while True:
            # counted only once the transaction commits: a rolled-back batch (or a retried one) moved nothing
            counts: dict[str, int] = {}
            try:
                with self.db.tx() as tx:
                    results = self._apply(tx, movements, counts, want_results)
                self._count(counts)
                return results
            except Exception as exc:
                # PostgreSQL: a concurrent writer used the same idempotency key first; the retry sees its
                # row and replays (same payload) or rejects (different payload)
                attempt += 1
                if attempt < 3 and _is_key_race(exc):
                    continue
                raise

    def move_batch_in(self, tx: Tx, movements: Sequence[Movement], *, want_results: bool = True) -> list[MoveResult]:
        """Like :meth:`move_batch`, inside the caller's open write transaction (e.g. an ingested order's rows
        and its reservations commit together). The caller owns commit and rollback; the movement metrics
        count once it commits."""
        if len(movements) > MAX_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH} movements, got {len(movements)}")
        for i, m in enumerate(movements):
            try:
                validate(m)
            except InvalidInput as exc:
                raise _at(exc, i, len(movements)) from None
        counts: dict[str, int] = {}
        results = self._apply(tx, movements, counts, want_results) if movements else []
        if counts:
            # counted when the caller's transaction commits: a rolled-back order intake moved nothing
            tx.after_commit(lambda: self._count(counts))
        return results

    def _apply(
        self, tx: Tx, ms: Sequence[Movement], counts: dict[str, int], want_results: bool = True
    ) -> list[MoveResult]:
        """One write path for every movement. SQLite, larger batches: instead of looking up every idempotency
        key first, write under a savepoint and let the ledger's primary key find a reused key; only then (rare)
        undo and redo the batch with the keys looked up, which replays or rejects them as usual."""
        if len(ms) >= GC_PAUSE_FROM:
            with _gc_paused():
                return self._apply_keys(tx, ms, counts, want_results)
        return self._apply_keys(tx, ms, counts, want_results)

    def _apply_keys(
        self, tx: Tx, ms: Sequence[Movement], counts: dict[str, int], want_results: bool
    ) -> list[MoveResult]:
        if self.db.backend != "sqlite" or len(ms) < OPTIMISTIC_KEYS_FROM:
            return self._apply_once(tx, ms, counts, True, want_results)
        tx.cur.execute("SAVEPOINT accord_batch")
        try:
            results = self._apply_once(tx, ms, counts, False, want_results)
        except INTEGRITY_ERRORS as exc:
            tx.cur.execute("ROLLBACK TO accord_batch")
            tx.cur.execute("RELEASE accord_batch")
            if not _is_key_race(exc):
                raise
            counts.clear()
            return self._apply_once(tx, ms, counts, True, want_results)
        except BaseException:
            tx.cur.execute("ROLLBACK TO accord_batch")
            tx.cur.execute("RELEASE accord_batch")
            raise
        tx.cur.execute("RELEASE accord_batch")
        return results

    def _apply_once(
        self, tx: Tx, ms: Sequence[Movement], counts: dict[str, int], check_keys: bool, want_results: bool
    ) -> list[MoveResult]:
        sql = self.sql
        n = len(ms)
        sku_ids = list(dict.fromkeys(m.sku for m in ms)) if n > 1 else [ms[0].sku]
        sku_param = self._list(sku_ids) if n > 1 or sql.skus_lock is not None else None
        version = -1
        if sql.skus_lock is not None:
            # PostgreSQL: serialise writers per SKU (ATS reads every location of a SKU). The lock also waits
            # for a configuration change in flight (it locks the skus table EXCLUSIVE), and the config version
            # is read after it, so a movement never computes ATS with a policy that is being replaced.
            found = {r[0] for r in tx.all(sql.skus_lock, (sku_param,))}
            missing = [s for s in sku_ids if s not in found]
        else:
            missing = [s for s in sku_ids if s not in self._known_skus]
            if missing:
                found = {r[0] for r in tx.all(sql.skus_existing, (self._list(missing),))}
                self._known_skus.update(found)
                missing = [s for s in missing if s not in found]
        if missing:
            i = next(i for i, m in enumerate(ms) if m.sku == missing[0])
            raise _at(NotFound("SKU", missing[0]), i, n)

        # one round trip: config version (SQLite), prior idempotency keys, balances and ATS of these SKUs
        prior: dict[str, str] = {}
        stored: dict[str, dict[str, Any]] = {}  # sku -> location -> loaded balance row (read-only)
        bal: dict[str, dict[str, Balance]] = {}  # sku -> location -> Balance, only where this batch moves stock
        old_ats: dict[str, dict[str, int]] = {}
        if n == 1:
            m0 = ms[0]
            params = (
                (m0.key, m0.sku, m0.sku) if self._load_one_plain else sql.load_one.bind({"key": m0.key, "sku": m0.sku})
            )
            loaded = tx.all(sql.load_one, params)
        else:
            keys = self._list({m.key for m in ms} if check_keys else ())
            loaded = tx.all(sql.load, (keys, sku_param, sku_param))
        for r in loaded:
            tag = r[0]
            if tag == LOAD_BALANCE:
                sku_rows = stored.get(r[2])
                if sku_rows is None:
                    sku_rows = stored[r[2]] = {}
                sku_rows[r[3]] = r
            elif tag == LOAD_ATS:
                old_ats[r[2]] = orjson.loads(r[3])
            elif tag == LOAD_KEY:
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
        events: list[ev.Event] = []
        results: list[MoveResult] = []
        dirty: dict[str, set[str]] = {}
        new_transfers: list[tuple[Any, ...]] = []
        touched_transfers: set[str] = set()
        fresh: dict[str, str] = {}
        kinds: dict[str, int] = {}
        receive, transfer_in, transfer_out = MovementKind.RECEIVE, MovementKind.TRANSFER_IN, MovementKind.TRANSFER_OUT
        event_type = MOVEMENT_EVENTS
        append_row, append_event = ledger_rows.append, events.append
        for i, m in enumerate(ms):
            key = m.key
            fp = m.fingerprint()
            prev = prior.get(key) if prior else None
            if prev is None:
                prev = fresh.get(key)
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
            qty = m.qty
            sku_bal = bal.get(sku)
            if sku_bal is None:
                sku_bal = bal[sku] = {}
            sku_rows = stored.get(sku)
            sku_dirty = dirty.get(sku)
            if sku_dirty is None:
                sku_dirty = dirty[sku] = set()
            transfer_id = None
            if mk is transfer_in:
                assert m.transfer_id is not None
                tr = transfers.get(m.transfer_id)
                if tr is None:
                    raise _at(NotFound("transfer", m.transfer_id), i, n)
                if tr[0] != sku or tr[1] != m.location:
                    raise _at(
                        InvalidInput(f"transfer {m.transfer_id} carries {tr[0]} to {tr[1]}, not {sku} to {m.location}"),
                        i,
                        n,
                    )
                if qty > tr[2] - tr[3]:
                    raise _at(
                        InsufficientStock(
                            f"transfer_in {qty} of {sku} on {m.transfer_id}: only {tr[2] - tr[3]} still in transit"
                        ),
                        i,
                        n,
                    )
                tr[3] += qty
                touched_transfers.add(m.transfer_id)
                transfer_id = m.transfer_id
            if mk is receive:  # the common case of bulk ingest, without building a Leg
                legs: list[Leg] = [Leg(m.location, (qty, 0, 0, 0, 0))]
            else:
                b = sku_bal.get(m.location)
                if b is None:
                    b = sku_bal[m.location] = _balance(sku_rows, m.location)
                try:
                    legs = plan(m, b)
                except InsufficientStock as exc:
                    raise _at(exc, i, n) from None
            after: dict[str, Any] = {}
            for leg_no, (loc, d) in enumerate(legs):
                b = sku_bal.get(loc)
                if b is None:
                    b = sku_bal[loc] = _balance(sku_rows, loc)
                b.on_hand += d[0]
                b.committed += d[1]
                b.in_transit += d[2]
                b.damaged += d[3]
                b.quarantine += d[4]
                after[loc] = b.copy() if want_results else b.as_tuple()
                append_row((key, leg_no, kind, sku, loc, d[0], d[1], d[2], d[3], d[4], qty, m.reason, m.ref, fp, now))
                sku_dirty.add(loc)
            if mk is transfer_out:
                transfer_id = m.transfer_id or key
                if transfer_id in transfers:
                    raise _at(AlreadyExists(f"transfer {transfer_id!r} already exists"), i, n)
                transfers[transfer_id] = [sku, m.to_location, qty, 0]
                new_transfers.append((transfer_id, sku, m.location, m.to_location, qty, 0, now, now))
            data: dict[str, Any] = {"kind": kind, "sku": sku, "location": m.location, "qty": qty}
            if m.to_location is not None:
                data["to_location"] = m.to_location
            if m.transfer_id is not None:
                data["transfer_id"] = m.transfer_id
            if m.reason is not None:
                data["reason"] = m.reason
            if m.ref is not None:
                data["ref"] = m.ref
            if m.source_bucket is not None:
                data["source_bucket"] = m.source_bucket
            data["key"] = key
            if transfer_id:
                data["transfer_id"] = transfer_id
            if want_results:
                data["balances"] = {loc: balance_dict(b) for loc, b in after.items()}
                results.append(MoveResult(key, kind, sku, m.location, qty, False, after, transfer_id))
            else:
                data["balances"] = {loc: _bucket_dict(v) for loc, v in after.items()}
            append_event(ev.Event(event_type[mk], sku, data))
            kinds[kind] = kinds.get(kind, 0) + 1
        for kind, k in kinds.items():
            counts[f"movements.{kind}"] = k

        if new_transfers:
            existing = {r[0] for r in tx.all(sql.transfers_by_ids, (self._list(t_[0] for t_ in new_transfers),))}
            if existing:
                raise AlreadyExists(f"transfer {sorted(existing)[0]!r} already exists")

        # available-to-sell: only the channels fed by the locations that changed
        ats_rows: list[tuple[Any, ...]] = []
        changes: dict[str, list[tuple[str, int, int]]] = {}
        cause = KIND_VALUE[ms[0].kind] if n == 1 else "batch"
        ats_plan = cfg.plan
        for sku, dirty_locs in dirty.items():
            sku_bal = bal[sku]
            for loc in dirty_locs:
                b = sku_bal[loc]
                # plan() prevents this; the check keeps a bug from ever being written
                if b.committed > b.on_hand or min(b.on_hand, b.committed, b.in_transit, b.damaged, b.quarantine) < 0:
                    raise InsufficientStock(f"{sku} at {loc}: {'; '.join(violations(b))}")
            groups = ats_plan.affected(dirty_locs)
            if not groups:
                continue
            rows = stored.get(sku)
            avail = {loc: r[1] - r[4] for loc, r in rows.items()} if rows else {}
            for loc, b in sku_bal.items():
                avail[loc] = b.on_hand - b.committed
            old_map = old_ats.get(sku) or {}
            sku_changes = ats_plan.changes(groups, avail, old_map)
            if sku_changes:
                changes[sku] = sku_changes
                _record_ats(sku, sku_changes, old_map, now, cause, ats_rows, events)
        for r in results:
            if not r.replayed:
                r.changed_ats = changes.get(r.sku, [])
        counts["ats.changes"] = sum(len(c) for c in changes.values())

        balance_rows = [(sku, loc, *bal[sku][loc].as_tuple(), now) for sku, ls in dirty.items() for loc in ls]
        transfer_rows = [(transfers[tid][3], now, tid) for tid in touched_transfers]
        if tx.backend == "postgresql":
            with tx.pipelined():
                self._write(tx, ledger_rows, balance_rows, new_transfers, transfer_rows, ats_rows, events, now)
        else:
            self._write(tx, ledger_rows, balance_rows, new_transfers, transfer_rows, ats_rows, events, now)
        return results

    def _write(
        self,
        tx: Tx,
        ledger_rows: list[tuple[Any, ...]],
        balance_rows: list[tuple[Any, ...]],
        new_transfers: list[tuple[Any, ...]],
        transfer_rows: list[tuple[Any, ...]],
        ats_rows: list[tuple[Any, ...]],
        events: list[ev.Event],
        now: int,
    ) -> None:
        sql = self.sql
        tx.many(sql.insert_ledger, ledger_rows)
        tx.many(sql.upsert_balance, balance_rows)
        tx.many(sql.insert_transfer, new_transfers)
        tx.many(sql.update_transfer, transfer_rows)
        tx.many(sql.upsert_ats, ats_rows)
        self._emit(tx, events, now)

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
            for r in tx.all(self.sql.balances_for_skus, (param,)):
                avail.setdefault(r[0], {})[r[1]] = r[2] - r[3]
            old = {r[0]: orjson.loads(r[1]) for r in tx.all(self.sql.ats_for_skus, (param,))}
            rows: list[tuple[Any, ...]] = []
            events: list[ev.Event] = []
            for sku in chunk:
                values = [v for v in cfg.plan.evaluate(groups, avail.get(sku, {})) if v[0] in wanted]
                changed += len(_ats_changes(sku, values, old.get(sku), now, cause, rows, events))
            with tx.pipelined():
                tx.many(self.sql.upsert_ats, rows)
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
    sku: str,
    values: list[tuple[str, int]],
    stored: dict[str, int] | None,
    now: int,
    cause: str,
    rows: list[tuple[Any, ...]],
    events: list[ev.Event],
) -> list[tuple[str, int, int]]:
    """Compare one SKU's freshly computed (channel, ATS) values with the stored ones; when any changed, append
    the new packed row and one ChannelAvailabilityChanged event listing every changed channel.
    Returns the changes as (channel, old, new), sorted by channel."""
    old_map = stored or {}
    found = [(ch_id, old, new) for ch_id, new in values if (old := old_map.get(ch_id, 0)) != new]
    if found:
        found.sort()
        _record_ats(sku, found, old_map, now, cause, rows, events)
    return found


def _record_ats(
    sku: str,
    found: list[tuple[str, int, int]],
    old_map: dict[str, int],
    now: int,
    cause: str,
    rows: list[tuple[Any, ...]],
    events: list[ev.Event],
) -> None:
    """The new packed ATS row of one SKU and its one ChannelAvailabilityChanged event (``found`` is sorted)."""
    new_map = dict(old_map)
    for ch_id, _, new in found:
        new_map[ch_id] = new
    rows.append((sku, orjson.dumps(new_map).decode(), now))
    events.append(ev.availability_changed(sku, found, cause))


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


def _at(exc: Exception, index: int, total: int) -> Exception:
    """Prefix an error with the movement's position when it came in a batch."""
    if total > 1:
        exc.args = (f"movement #{index}: {exc.args[0] if exc.args else exc}",)
    return exc


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
