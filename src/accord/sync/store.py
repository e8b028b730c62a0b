"""Reads and writes of the channel-sync tables. Statements are compiled once; everything that must commit with
other rows takes the caller's :class:`~accord.store.db.Tx`."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from accord.connectors.base import ChannelConfig
from accord.store import pim_tables as pt
from accord.store import schema as t
from accord.store import sync_tables as st
from accord.store.db import Compiled, Database, Tx

QUANTITY = "quantity"
PRICE = "price"
CONTENT = "content"
PUBLISHED = "published"
FIELDS = ("quantity", "price", "content", "published")
# fields a readiness-blocked variant holds (never sent while ``published`` is false on the channel)
HELD_FIELDS = (QUANTITY, PRICE, CONTENT)

# priority by oversell risk: lower is more urgent
P_CRITICAL = 0  # drops to zero or to the channel's threshold
P_DECREASE = 1
P_INCREASE = 2
P_PRICE = 3  # a price change: after every quantity change, before content
P_CONTENT = 4

# next_attempt_at of a quantity, price or content key held back while its variant is blocked by readiness errors
# on the channel (``published`` false): never due, never a wake-up; releasing the key makes it due at once
HELD_AT = 2**62

LATENCY_BUCKETS_MS: tuple[int, ...] = (
    50,
    100,
    250,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    30_000,
    60_000,
    300_000,
    900_000,
    3_600_000,
    2**62,
)

LATENCY_SUM = "latency_sum_ms:"  # counter name prefix: summed propagation latency per class
# last_error of a key reconciliation re-enqueued: its acknowledgement counts as a repaired drift (a failed attempt
# overwrites it with the error, so a repair that needed retries is not counted)
DRIFT_MARK = "drift: re-enqueued by reconciliation"

b = sa.bindparam


def quantity_priority(new_qty: int, shown_qty: int | None, threshold: int) -> int:
    """How urgent sending ``new_qty`` is when the channel shows ``shown_qty`` (None: unknown)."""
    if new_qty <= threshold and (shown_qty is None or shown_qty > new_qty):
        return P_CRITICAL
    if shown_qty is None or new_qty < shown_qty:
        return P_DECREASE
    return P_INCREASE


@dataclass(frozen=True, slots=True)
class Pending:
    channel: str
    sku: str
    field: str
    value: Any
    version: int
    priority: int
    enqueued_at: int
    acked_value: Any
    attempts: int
    drift: bool = False  # re-enqueued by reconciliation (its ack counts as a repaired drift)


@dataclass(frozen=True, slots=True)
class SyncDeadLetter:
    id: int
    channel: str
    sku: str
    field: str
    version: int
    value: Any
    attempts: int
    reason: str
    error: str
    body: str | None
    created_at: int

    def as_dict(self) -> dict[str, Any]:
        """The listing shape shared by ``accord sync deadletters --json`` and ``GET /v1/sync/deadletters``."""
        return {
            "id": self.id,
            "channel": self.channel,
            "sku": self.sku,
            "field": self.field,
            "value": self.value,
            "attempts": self.attempts,
            "reason": self.reason,
            "error": self.error,
            "body": self.body,
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class ChannelStatus:
    channel: str
    queue_depth: int = 0
    dead_letters: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    latency: dict[str, dict[int, int]] = field(default_factory=dict)  # klass -> le_ms -> count

    def percentile_ms(self, q: float, klass: str | None = None) -> int | None:
        merged: dict[int, int] = {}
        for k, hist in self.latency.items():
            if klass is None or k == klass:
                for le, n in hist.items():
                    merged[le] = merged.get(le, 0) + n
        return hist_percentile(merged, q)

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "queue_depth": self.queue_depth,
            "dead_letters": self.dead_letters,
            "calls": self.counters.get("calls", 0),
            "http_429": self.counters.get("http_429", 0),
            "drift": self.counters.get("drift", 0),
            "drift_repaired": self.counters.get("drift_repaired", 0),
            "reconcile_passes": self.counters.get("reconciled", 0),
            "counters": dict(sorted(self.counters.items())),
            "latency_p50_ms": self.percentile_ms(0.5),
            "latency_p99_ms": self.percentile_ms(0.99),
            "critical_p99_ms": self.percentile_ms(0.99, "critical"),
        }


def hist_percentile(hist: Mapping[int, int], q: float) -> int | None:
    """Upper bound of the bucket holding quantile ``q`` (None when empty)."""
    total = sum(hist.values())
    if total == 0:
        return None
    need = q * total
    seen = 0
    for le in sorted(hist):
        seen += hist[le]
        if seen >= need:
            return le
    return max(hist)


def bucket_of(latency_ms: int) -> int:
    for le in LATENCY_BUCKETS_MS:
        if latency_ms <= le:
            return le
    return LATENCY_BUCKETS_MS[-1]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


# backend → the store's compiled statements (``_q_*`` attributes): the dialect is fixed per backend
_COMPILED: dict[str, dict[str, Compiled]] = {}


class SyncStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # in-process wake-up hints: called with the channels an enqueue made pending (the database stays the truth;
        # a listener may run before the enqueuing transaction commits, so it must only wake a reader, never trust it)
        self._listeners: list[Callable[[frozenset[str]], None]] = []
        cached = _COMPILED.get(db.backend)
        if cached is not None:  # a store is built per webhook request: its statements are compiled once per backend
            vars(self).update(cached)
            return
        c = db.compile
        d, ep, dl = st.sync_desired, st.sync_endpoints, st.sync_dead_letters
        ins = postgresql.insert if db.backend == "postgresql" else sqlite.insert
        self._q_endpoints = c(sa.select(ep).order_by(ep.c.channel_id))
        self._q_endpoint_del = c(sa.delete(ep).where(ep.c.channel_id == b("ch")))
        self._q_endpoint_ins = c(
            sa.insert(ep).values(
                channel_id=b("ch"),
                dialect=b("dialect"),
                base_url=b("url"),
                credentials=b("cred"),
                options=b("opt"),
                currency=b("cur"),
                updated_at=b("at"),
            )
        )
        self._q_thresholds = c(sa.select(t.channels.c.id, t.channels.c.zero_at_or_below))
        # every channel's row for one (sku, field), and its ``published`` rows (a blocked variant holds quantity)
        self._q_rows_for_sku = c(
            sa.select(
                d.c.channel_id,
                d.c.version,
                d.c.acked_version,
                d.c.acked_value,
                d.c.dead,
                d.c.enqueued_at,
                d.c.priority,
                d.c.field,
                d.c.value,
            ).where(d.c.sku_id == b("sku"), sa.or_(d.c.field == b("field"), d.c.field == b("pub")))
        )
        self._q_desired_ins = c(
            sa.insert(d).values(
                channel_id=b("ch"),
                sku_id=b("sku"),
                field=b("field"),
                value=b("value"),
                version=b("version"),
                priority=b("prio"),
                enqueued_at=b("enq"),
                acked_value=sa.null(),
                acked_version=sa.literal_column("0"),
                attempts=sa.literal_column("0"),
                next_attempt_at=b("next"),
                dead=sa.false(),
                updated_at=b("at"),
            )
        )
        self._q_desired_upd = c(
            sa.update(d)
            .where(d.c.channel_id == b("ch"), d.c.sku_id == b("sku"), d.c.field == b("field"))
            .values(
                value=b("value"),
                version=b("version"),
                priority=b("prio"),
                enqueued_at=b("enq"),
                acked_version=b("acked_version"),
                attempts=b("attempts"),
                next_attempt_at=b("next"),
                dead=b("dead"),
                updated_at=b("at"),
            )
        )
        pending = sa.and_(d.c.dead == sa.false(), d.c.version > d.c.acked_version)
        cols = (
            d.c.channel_id,
            d.c.sku_id,
            d.c.field,
            d.c.value,
            d.c.version,
            d.c.priority,
            d.c.enqueued_at,
            d.c.acked_value,
            d.c.attempts,
            d.c.last_error,
        )
        self._q_due = c(
            sa.select(*cols)
            .where(d.c.channel_id == b("ch"), pending, d.c.next_attempt_at <= b("now"))
            .order_by(d.c.priority, d.c.enqueued_at, d.c.sku_id, d.c.field),
            suffix=" LIMIT __LIMIT__",
        )
        held_at: sa.ColumnElement[int] = sa.literal_column(str(HELD_AT))
        is_held = d.c.next_attempt_at >= held_at
        self._q_next_due = c(
            sa.select(sa.func.min(d.c.next_attempt_at)).where(d.c.channel_id == b("ch"), pending, ~is_held),
        )
        self._q_ack = c(
            sa.update(d)
            .where(
                d.c.channel_id == b("ch"),
                d.c.sku_id == b("sku"),
                d.c.field == b("field"),
                d.c.acked_version < b("version"),
            )
            .values(
                acked_value=b("value"),
                acked_version=b("version2"),
                acked_at=b("at"),
                attempts=sa.literal_column("0"),
                next_attempt_at=sa.case((is_held, held_at), else_=sa.literal_column("0")),  # a hold outlives a send
                last_error=sa.null(),
                updated_at=b("at2"),
            )
        )
        self._q_retry = c(
            sa.update(d)
            .where(d.c.channel_id == b("ch"), d.c.sku_id == b("sku"), d.c.field == b("field"), d.c.version == b("ver"))
            .values(
                attempts=b("n"),
                next_attempt_at=sa.case((is_held, held_at), else_=b("next")),
                last_error=b("err"),
                updated_at=b("at"),
            )
        )
        self._q_observed = c(
            sa.update(d)
            .where(d.c.channel_id == b("ch"), d.c.sku_id == b("sku"), d.c.field == b("field"))
            .values(acked_value=b("value"), updated_at=b("at"))
        )
        self._q_park = c(
            sa.update(d)
            .where(d.c.channel_id == b("ch"), d.c.sku_id == b("sku"), d.c.field == b("field"), d.c.version == b("ver"))
            .values(dead=sa.true(), attempts=b("n"), last_error=b("err"), updated_at=b("at"))
        )
        self._q_dead_ins = c(
            sa.insert(dl).values(
                channel_id=b("ch"),
                sku_id=b("sku"),
                field=b("field"),
                version=b("ver"),
                value=b("value"),
                attempts=b("n"),
                reason=b("reason"),
                error=b("err"),
                body=b("body"),
                created_at=b("at"),
            )
        )
        self._q_drift = c(
            sa.update(d)
            .where(d.c.channel_id == b("ch"), d.c.sku_id == b("sku"), d.c.field == b("field"))
            .values(
                acked_value=b("observed"),
                acked_version=d.c.version - sa.literal_column("1"),
                priority=b("prio"),
                enqueued_at=b("enq"),
                dead=sa.false(),
                attempts=sa.literal_column("0"),
                next_attempt_at=sa.case((is_held, held_at), else_=sa.literal_column("0")),
                last_error=b("mark"),
                updated_at=b("at"),
            )
        )
        # the keys of one channel and field named in a list (a JSON array on SQLite, an array on PostgreSQL)
        skus_in: sa.ColumnElement[bool] = (
            d.c.sku_id.in_(sa.select(sa.column("value")).select_from(sa.func.json_each(b("skus"))))
            if db.backend == "sqlite"
            else d.c.sku_id == sa.func.any(b("skus"))
        )
        self._q_current = c(
            sa.select(
                d.c.sku_id,
                d.c.value,
                d.c.version,
                d.c.acked_version,
                d.c.dead,
                d.c.next_attempt_at,
                d.c.priority,
                d.c.enqueued_at,
                d.c.attempts,
                d.c.last_error,
            ).where(d.c.channel_id == b("ch"), d.c.field == b("field"), skus_in)
        )
        self._q_desired_for_channel = c(
            sa.select(d.c.sku_id, d.c.value, d.c.version, d.c.acked_version, d.c.acked_value)
            .where(d.c.channel_id == b("ch"), d.c.field == b("field"))
            .order_by(d.c.sku_id)
        )
        held_fields: list[sa.ColumnElement[str]] = [sa.literal_column(f"'{f}'") for f in HELD_FIELDS]
        where_qty = sa.and_(d.c.channel_id == b("ch"), d.c.sku_id == b("sku"), d.c.field.in_(held_fields))
        self._q_hold = c(sa.update(d).where(where_qty).values(next_attempt_at=held_at, updated_at=b("at")))
        self._q_release = c(
            sa.update(d)
            .where(where_qty, is_held)
            .values(next_attempt_at=sa.literal_column("0"), enqueued_at=b("enq"), updated_at=b("at"))
        )
        rd = pt.pim_readiness
        self._q_not_ready = c(
            sa.select(rd.c.channel_id).where(rd.c.variant_id == b("sku"), rd.c.ready == sa.false()).distinct()
        )
        cn = st.sync_counters
        up = ins(cn).values(channel_id=b("ch"), name=b("name"), value=b("n"))
        self._q_count = c(
            up.on_conflict_do_update(index_elements=[cn.c.channel_id, cn.c.name], set_={"value": cn.c.value + b("n2")})
        )
        lt = st.sync_latency
        up2 = ins(lt).values(channel_id=b("ch"), klass=b("k"), le_ms=b("le"), count=b("n"))
        self._q_latency = c(
            up2.on_conflict_do_update(
                index_elements=[lt.c.channel_id, lt.c.klass, lt.c.le_ms], set_={"count": lt.c.count + b("n2")}
            )
        )
        _COMPILED[db.backend] = {k: v for k, v in vars(self).items() if k.startswith("_q_")}

    def add_listener(self, fn: Callable[[frozenset[str]], None]) -> None:
        """Call ``fn(channels)`` after each enqueue that left keys pending for those channels (same process)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[frozenset[str]], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    # ------------------------------------------------------------------ endpoints

    def set_endpoint(self, cfg: ChannelConfig, now_ms: int) -> None:
        with self.db.tx() as tx:
            tx.run(self._q_endpoint_del, (cfg.channel_id,))
            vals = {
                "ch": cfg.channel_id,
                "dialect": cfg.dialect,
                "url": cfg.base_url,
                "cred": dumps(dict(cfg.credentials)),
                "opt": dumps(dict(cfg.options)),
                "cur": cfg.currency,
                "at": now_ms,
            }
            tx.run(self._q_endpoint_ins, self._q_endpoint_ins.bind(vals))

    def endpoints(self) -> dict[str, ChannelConfig]:
        with self.db.read() as tx:
            rows = tx.all(self._q_endpoints)
        return {r[0]: ChannelConfig(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), currency=r[5]) for r in rows}

    # ------------------------------------------------------------------ desired state

    def thresholds(self, tx: Tx) -> dict[str, int]:
        return {r[0]: int(r[1]) for r in tx.all(self._q_thresholds)}

    def enqueue(
        self,
        tx: Tx,
        sku: str,
        field_name: str,
        values: Sequence[tuple[str, Any, int]],
        committed_at: int,
        now_ms: int,
        thresholds: Mapping[str, int] | None = None,
        hold: Collection[str] = (),
        revive: bool = False,
    ) -> int:
        """Set the desired ``value`` per channel for one SKU and field; ``values`` is (channel, value, priority
        hint). Coalesces in place. Returns how many keys became (or stay) pending.

        Quantity, price and content keys of a channel whose ``published`` flag is false are held (never due), as
        are those of the channels in ``hold`` (the caller knows the variant is blocked there). A price or content
        value equal to the one already desired writes nothing: an unrelated edit sends nothing, and a parked one
        stays parked until a new value or ``revive`` (``accord sync content``) queues it again."""
        existing: dict[str, Any] = {}
        blocked: set[str] = set()
        q_rows = self._q_rows_for_sku
        for r in tx.all(q_rows, q_rows.bind({"sku": sku, "field": field_name, "pub": PUBLISHED})):
            if r[7] == field_name:
                existing[r[0]] = r
            if r[7] == PUBLISHED and r[8] == "false":
                blocked.add(r[0])
        holds = (blocked | set(hold)) if field_name in HELD_FIELDS else set()
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        pending = 0
        woken: set[str] = set()
        for channel, value, prio in values:
            text = dumps(value)
            row = existing.get(channel)
            if row is None:
                vals = {"ch": channel, "sku": sku, "field": field_name, "value": text, "version": 1}
                vals.update({"prio": prio, "enq": committed_at, "at": now_ms})
                vals["next"] = HELD_AT if channel in holds else 0
                inserts.append(self._q_desired_ins.bind(vals))
                pending += 1
                if channel not in holds:
                    woken.add(channel)
                continue
            version, acked_version, acked_value, dead, enq = int(row[1]), int(row[2]), row[3], bool(row[4]), row[5]
            if field_name in (PRICE, CONTENT) and row[8] == text and channel not in holds and not (revive and dead):
                if version > acked_version and not dead:
                    pending += 1
                continue
            new_version = version + 1
            if field_name == QUANTITY and acked_value is not None and thresholds is not None:
                shown = json.loads(acked_value)
                if isinstance(shown, int) and isinstance(value, int):
                    prio = min(prio, quantity_priority(value, shown, thresholds.get(channel, 0)))
            was_pending = version > acked_version and not dead
            # back to what the channel shows: nothing to send, unless an older value is pending, since that send
            # may be in flight (a compare-and-set conflict's read-back or a concurrent step) and land afterwards
            if acked_value == text and not was_pending:
                new_acked = new_version
                enq_at = committed_at
            else:
                new_acked = acked_version
                # latency is timed from the oldest unsent change, or from the change that made the key critical
                became_critical = prio == P_CRITICAL and int(row[6]) != P_CRITICAL
                enq_at = int(enq) if was_pending and not became_critical else committed_at
                pending += 1
                if channel not in holds:
                    woken.add(channel)
            vals = {"ch": channel, "sku": sku, "field": field_name, "value": text, "version": new_version}
            nxt = HELD_AT if channel in holds else 0
            vals.update({"prio": prio, "enq": enq_at, "acked_version": new_acked, "attempts": 0, "next": nxt})
            vals.update({"dead": False, "at": now_ms})
            updates.append(self._q_desired_upd.bind(vals))
        tx.many(self._q_desired_ins, inserts)
        tx.many(self._q_desired_upd, updates)
        if woken:
            channels = frozenset(woken)
            for fn in list(self._listeners):
                fn(channels)
        return pending

    def not_ready_channels(self, tx: Tx, sku: str) -> set[str]:
        """Channels on which the PIM readiness tables show an error for variant ``sku`` (any locale)."""
        return {r[0] for r in tx.all(self._q_not_ready, (sku,))}

    def set_published(self, tx: Tx, sku: str, published: Mapping[str, bool], committed_at: int, now_ms: int) -> None:
        """Record whether ``sku`` may be published per channel (desired field ``published``). A blocked variant's
        quantity key is held (never due) and later quantities for it are held too; unblocking releases the key,
        due at once with whatever is pending (timed from the change that released it)."""
        if not published:
            return
        chans = sorted(published)
        self.enqueue(tx, sku, PUBLISHED, [(ch, bool(published[ch]), P_CONTENT) for ch in chans], committed_at, now_ms)
        released = [ch for ch in chans if published[ch]]
        holds = [self._q_hold.bind({"ch": ch, "sku": sku, "at": now_ms}) for ch in chans if not published[ch]]
        releases = [self._q_release.bind({"ch": ch, "sku": sku, "enq": committed_at, "at": now_ms}) for ch in released]
        tx.many(self._q_hold, holds)
        tx.many(self._q_release, releases)
        if released:
            channels = frozenset(released)
            for fn in list(self._listeners):
                fn(channels)

    def due(self, channel: str, now_ms: int, limit: int) -> list[Pending]:
        q = Compiled(self._q_due.sql.replace("__LIMIT__", str(max(1, int(limit)))), self._q_due.names)
        with self.db.read() as tx:
            rows = tx.all(q, q.bind({"ch": channel, "now": now_ms}))
        return [
            Pending(
                r[0],
                r[1],
                r[2],
                json.loads(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
                json.loads(r[7]) if r[7] is not None else None,
                int(r[8]),
                r[9] == DRIFT_MARK,
            )
            for r in rows
        ]

    def latest(self, items: Sequence[Pending]) -> list[Pending]:
        """``items`` (read from :meth:`due`, sent, now to be sent again) as they stand now: a key whose desired value
        changed since it was read carries the newest value, version, priority and attempts, and keeps the item's
        expectation (``acked_value``: what the channel showed as far as the sender knows); a key no longer pending
        (acknowledged, parked or held meanwhile) is left out. Order is kept."""
        if not items:
            return []
        groups: dict[tuple[str, str], list[str]] = {}
        for p in items:
            groups.setdefault((p.channel, p.field), []).append(p.sku)
        rows: dict[tuple[str, str, str], Any] = {}
        with self.db.read() as tx:
            for (channel, field_name), skus in groups.items():
                names = json.dumps(skus) if self.db.backend == "sqlite" else skus
                q = self._q_current
                for r in tx.all(q, q.bind({"ch": channel, "field": field_name, "skus": names})):
                    rows[(channel, field_name, r[0])] = r
        out: list[Pending] = []
        for p in items:
            r = rows.get((p.channel, p.field, p.sku))
            if r is None or bool(r[4]) or int(r[5]) >= HELD_AT or int(r[2]) <= int(r[3]):
                continue
            if int(r[2]) == p.version:
                out.append(p)
                continue
            out.append(
                replace(
                    p,
                    value=json.loads(r[1]),
                    version=int(r[2]),
                    priority=int(r[6]),
                    enqueued_at=int(r[7]),
                    attempts=int(r[8]),
                    drift=r[9] == DRIFT_MARK,
                )
            )
        return out

    def next_due_ms(self, channel: str) -> int | None:
        with self.db.read() as tx:
            row = tx.one(self._q_next_due, (channel,))
        return int(row[0]) if row is not None and row[0] is not None else None

    def _ack_row(self, p: Pending, now_ms: int) -> tuple[Any, ...]:
        vals = {"ch": p.channel, "sku": p.sku, "field": p.field, "version": p.version, "value": dumps(p.value)}
        vals.update({"version2": p.version, "at": now_ms, "at2": now_ms})
        return self._q_ack.bind(vals)

    def _retry_row(self, p: Pending, attempts: int, next_at: int, error: str, now_ms: int) -> tuple[Any, ...]:
        vals = {"ch": p.channel, "sku": p.sku, "field": p.field, "ver": p.version, "n": attempts}
        vals.update({"next": next_at, "err": error[:2000], "at": now_ms})
        return self._q_retry.bind(vals)

    def _observed_row(self, p: Pending, value: Any, now_ms: int) -> tuple[Any, ...]:
        text = None if value is None else dumps(value)
        return self._q_observed.bind({"ch": p.channel, "sku": p.sku, "field": p.field, "value": text, "at": now_ms})

    def ack(self, tx: Tx, p: Pending, now_ms: int) -> None:
        self.ack_many(tx, [p], now_ms)

    def ack_many(self, tx: Tx, items: Sequence[Pending], now_ms: int) -> None:
        """The channel acknowledged each item's value (one executemany; an older version never overwrites)."""
        tx.many(self._q_ack, [self._ack_row(p, now_ms) for p in items])

    def retry(self, tx: Tx, p: Pending, attempts: int, next_at: int, error: str, now_ms: int) -> None:
        tx.run(self._q_retry, self._retry_row(p, attempts, next_at, error, now_ms))

    def retry_many(self, tx: Tx, rows: Sequence[tuple[Pending, int, int, str]], now_ms: int) -> None:
        """(item, attempts, next attempt at, error) per row, in one executemany."""
        tx.many(self._q_retry, [self._retry_row(p, n, at, err, now_ms) for p, n, at, err in rows])

    def observed(self, tx: Tx, p: Pending, value: Any, now_ms: int) -> None:
        """The channel showed ``value`` (a compare-and-set mismatch): the next attempt expects it."""
        tx.run(self._q_observed, self._observed_row(p, value, now_ms))

    def observed_many(self, tx: Tx, rows: Sequence[tuple[Pending, Any]], now_ms: int) -> None:
        tx.many(self._q_observed, [self._observed_row(p, v, now_ms) for p, v in rows])

    def park(self, tx: Tx, p: Pending, attempts: int, reason: str, error: str, body: str | None, now_ms: int) -> None:
        self.park_many(tx, [(p, attempts, reason, error, body)], now_ms)

    def park_many(self, tx: Tx, rows: Sequence[tuple[Pending, int, str, str, str | None]], now_ms: int) -> None:
        """Dead-letter each (item, attempts, reason, error, body): the key stops, the letter keeps the body."""
        parks: list[tuple[Any, ...]] = []
        letters: list[tuple[Any, ...]] = []
        for p, attempts, reason, error, body in rows:
            vals = {"ch": p.channel, "sku": p.sku, "field": p.field, "ver": p.version, "n": attempts}
            vals.update({"err": error[:2000], "at": now_ms})
            parks.append(self._q_park.bind(vals))
            vals.update({"value": dumps(p.value), "reason": reason[:64], "body": body[:20000] if body else None})
            letters.append(self._q_dead_ins.bind(vals))
        tx.many(self._q_park, parks)
        tx.many(self._q_dead_ins, letters)

    def desired_for_channel(self, channel: str, field_name: str = QUANTITY) -> list[tuple[str, Any, bool, Any]]:
        """(sku, desired value, in sync as far as we know, acked value) for every key of a channel."""
        with self.db.read() as tx:
            rows = tx.all(self._q_desired_for_channel, (channel, field_name))
        return [
            (r[0], json.loads(r[1]), int(r[2]) <= int(r[3]), json.loads(r[4]) if r[4] is not None else None)
            for r in rows
        ]

    def desired_page(self, channel: str, after: str | None, limit: int) -> list[tuple[str, Any, bool, Any]]:
        """Like :meth:`desired_for_channel` (quantity) for at most ``limit`` SKUs after ``after``, in SKU order."""
        d = st.sync_desired
        q = (
            sa.select(d.c.sku_id, d.c.value, d.c.version, d.c.acked_version, d.c.acked_value)
            .where(d.c.channel_id == channel, d.c.field == QUANTITY)
            .order_by(d.c.sku_id)
            .limit(max(1, limit))
        )
        if after is not None:
            q = q.where(d.c.sku_id > after)
        with self.db.engine.connect() as conn:
            rows = conn.execute(q).all()
            conn.rollback()
        return [
            (r[0], json.loads(r[1]), int(r[2]) <= int(r[3]), json.loads(r[4]) if r[4] is not None else None)
            for r in rows
        ]

    def mark_drift(self, tx: Tx, channel: str, sku: str, observed: Any, priority: int, now_ms: int) -> None:
        vals = {"observed": dumps(observed), "prio": priority, "enq": now_ms, "at": now_ms, "mark": DRIFT_MARK}
        vals.update({"ch": channel, "sku": sku, "field": QUANTITY})
        tx.run(self._q_drift, self._q_drift.bind(vals))

    # ------------------------------------------------------------------ listing refs

    def listing_refs(self, channel: str) -> dict[str, str]:
        r = st.sync_listing_refs
        with self.db.engine.connect() as conn:
            rows = conn.execute(sa.select(r.c.sku_id, r.c.ref).where(r.c.channel_id == channel)).all()
            conn.rollback()
        return {row[0]: row[1] for row in rows}

    def save_listing_refs(self, channel: str, refs: Mapping[str, str]) -> None:
        r = st.sync_listing_refs
        if not refs:
            return
        with self.db.engine.begin() as conn:
            conn.execute(sa.delete(r).where(r.c.channel_id == channel, r.c.sku_id.in_(list(refs))))
            conn.execute(sa.insert(r), [{"channel_id": channel, "sku_id": k, "ref": v} for k, v in refs.items()])

    # ------------------------------------------------------------------ metrics

    def count(self, tx: Tx, channel: str, counts: Mapping[str, int]) -> None:
        rows = [(channel, name, n, n) for name, n in sorted(counts.items()) if n]
        tx.many(self._q_count, rows)

    def observe_latency(self, tx: Tx, channel: str, samples: Iterable[tuple[str, int]]) -> None:
        hist: dict[tuple[str, int], int] = {}
        sums: dict[str, int] = {}
        for klass, ms in samples:
            key = (klass, bucket_of(ms))
            hist[key] = hist.get(key, 0) + 1
            sums[klass] = sums.get(klass, 0) + ms
        tx.many(self._q_latency, [(channel, k, le, n, n) for (k, le), n in sorted(hist.items())])
        # the histogram's _sum on /metrics (a counter row per class: "latency_sum_ms:critical")
        tx.many(self._q_count, [(channel, f"{LATENCY_SUM}{k}", ms, ms) for k, ms in sorted(sums.items()) if ms])

    def status(self) -> list[ChannelStatus]:
        d, dl, cn, lt = st.sync_desired, st.sync_dead_letters, st.sync_counters, st.sync_latency
        out: dict[str, ChannelStatus] = {}
        with self.db.engine.connect() as conn:
            for (ch,) in conn.execute(sa.select(st.sync_endpoints.c.channel_id)):
                out.setdefault(ch, ChannelStatus(ch))
            q = (
                sa.select(d.c.channel_id, sa.func.count())
                .where(d.c.dead == sa.false(), d.c.version > d.c.acked_version)
                .group_by(d.c.channel_id)
            )
            for ch, n in conn.execute(q):
                out.setdefault(ch, ChannelStatus(ch)).queue_depth = int(n)
            for ch, n in conn.execute(sa.select(dl.c.channel_id, sa.func.count()).group_by(dl.c.channel_id)):
                out.setdefault(ch, ChannelStatus(ch)).dead_letters = int(n)
            for ch, name, n in conn.execute(sa.select(cn.c.channel_id, cn.c.name, cn.c.value)):
                out.setdefault(ch, ChannelStatus(ch)).counters[name] = int(n)
            for ch, k, le, n in conn.execute(sa.select(lt.c.channel_id, lt.c.klass, lt.c.le_ms, lt.c.count)):
                out.setdefault(ch, ChannelStatus(ch)).latency.setdefault(k, {})[int(le)] = int(n)
            conn.rollback()
        return [out[k] for k in sorted(out)]

    def dead_letters(self, channel: str | None = None, limit: int = 1000) -> list[SyncDeadLetter]:
        dl = st.sync_dead_letters
        q = sa.select(dl).order_by(dl.c.id).limit(limit)
        if channel:
            q = q.where(dl.c.channel_id == channel)
        with self.db.engine.connect() as conn:
            rows = conn.execute(q).all()
            conn.rollback()
        return [
            SyncDeadLetter(
                int(r[0]), r[1], r[2], r[3], int(r[4]), json.loads(r[5]), int(r[6]), r[7], r[8], r[9], int(r[10])
            )
            for r in rows
        ]
