"""Relay: hands outbox events to subscribers, each exactly once in effect.

Per subscriber a cursor marks the outbox id up to which every event was handled (or parked as
dead). Delivery is in outbox order. A failing event is retried in place with exponential backoff
(only that subscriber waits); after ``max_attempts`` it is parked as a dead letter — visible in the
CLI and API, and redrivable — and the subscriber moves on. Nothing is dropped silently.

Transactional subscribers (projections in the same database) run their handler in the same
transaction as the inbox row, so an event's effect commits exactly once. External subscribers
(webhooks, brokers) do their I/O first and record the inbox row after; they receive the outbox id
as an idempotency key, so a redelivery after a crash is deduplicated on their side.

PostgreSQL: a worker holds an advisory lock per subscriber while delivering, so many ``accord
worker`` processes can run. Outbox ids are taken at insert time but transactions commit in any order,
so id 51 can be visible while id 50 is still in flight. Before its first outbox id a transaction takes a
transaction-scoped shared advisory lock keyed on the sequence's last value (migration 0010). The relay
first reads the highest id handed out, then the smallest key still locked, and only then — in a later
snapshot — the rows, up to that *frontier*: an id below it belongs to a finished transaction, so it is
visible now or was rolled back. A transaction left open holds delivery of later ids (in order, nothing
skipped, no timeout) until it commits or rolls back. SQLite serialises writers: its ids commit in order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from accord.app.ports import Clock, SystemClock
from accord.domain.errors import NotFound
from accord.store import schema as t
from accord.store.db import Compiled, Database, Tx

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    type: str
    key: str
    data: dict[str, Any]
    created_at: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "key": self.key, "data": self.data, "created_at": self.created_at}


class Subscriber(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def types(self) -> frozenset[str] | None:
        """Event types it wants; None for all."""
        ...

    @property
    def transactional(self) -> bool: ...

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        """Apply the event. ``tx`` is the open transaction for transactional subscribers, else None."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    subscriber: str
    event_id: int
    event_type: str
    key: str
    attempts: int
    last_error: str
    updated_at: int


@dataclass(slots=True)
class RelayReport:
    delivered: int = 0
    skipped: int = 0  # not wanted by the subscriber, or already in its inbox
    failed: int = 0  # attempts that failed this round (will be retried)
    dead: int = 0  # parked this round
    waiting: dict[str, str] = field(default_factory=dict)  # subscriber -> why it stopped early


def fetch_events(
    db: Database, *, after: int = 0, limit: int = 100, types: Sequence[str] | None = None
) -> list[StoredEvent]:
    o = t.outbox
    q = sa.select(o.c.id, o.c.type, o.c.key, o.c.data, o.c.created_at).where(o.c.id > after)
    if types:
        q = q.where(o.c.type.in_(list(types)))
    q = q.order_by(o.c.id).limit(limit)
    with db.engine.connect() as conn:
        if db.backend == "postgresql":
            # a reader paging by id must not pass an id still in flight (see the module docstring)
            frontier = _frontier(lambda c: conn.exec_driver_sql(c.sql).first())
            q = q.where(o.c.id <= frontier)
        rows = conn.execute(q).all()
        conn.rollback()
    return [StoredEvent(int(r[0]), r[1], r[2], json.loads(r[3]), int(r[4])) for r in rows]


def last_event_ids(db: Database, n: int) -> int:
    """The outbox id after which the last ``n`` events follow (for ``events tail``)."""
    o = t.outbox
    with db.engine.connect() as conn:
        top = conn.execute(sa.select(sa.func.max(o.c.id))).scalar()
        conn.rollback()
    return max(0, int(top or 0) - n)


class Relay:
    def __init__(
        self,
        db: Database,
        subscribers: Sequence[Subscriber],
        clock: Clock | None = None,
        *,
        batch_size: int = 500,
        max_attempts: int = 8,
        backoff_ms: int = 500,
        max_backoff_ms: int = 300_000,
        gap_timeout_ms: int | None = None,
    ) -> None:
        """``gap_timeout_ms`` is accepted for compatibility and has no effect: ordering is snapshot-based."""
        names = [s.name for s in subscribers]
        if len(set(names)) != len(names):
            raise ValueError(f"subscriber names must be unique: {names}")
        self.db = db
        self.subscribers = {s.name: s for s in subscribers}
        self.clock: Clock = clock or SystemClock()
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_ms = backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self._locks = {name: threading.Lock() for name in names}
        c = db.compile
        o, cur, ib, dl = t.outbox, t.relay_cursors, t.inbox, t.deliveries
        b = sa.bindparam
        self._q_cursor = c(sa.select(cur.c.position).where(cur.c.subscriber == b("s")))
        self._q_new_cursor = c(sa.insert(cur).values(subscriber=b("s"), position=b("p"), updated_at=b("at")))
        self._q_move_cursor = c(
            sa.update(cur)
            .where(cur.c.subscriber == b("s"), cur.c.position < b("p"))
            .values(position=b("p2"), updated_at=b("at"))
        )
        self._q_events = c(
            sa.select(o.c.id, o.c.type, o.c.key, o.c.data, o.c.created_at)
            .where(o.c.id > b("after"), o.c.id <= b("frontier"))
            .order_by(o.c.id),
            suffix=f" LIMIT {int(batch_size)}",
        )
        self._q_event = c(sa.select(o.c.id, o.c.type, o.c.key, o.c.data, o.c.created_at).where(o.c.id == b("id")))
        self._q_in_inbox = c(sa.select(ib.c.event_id).where(ib.c.subscriber == b("s"), ib.c.event_id == b("e")))
        ins_fn = sqlite.insert if db.backend == "sqlite" else postgresql.insert
        # ON CONFLICT DO NOTHING: a second worker that handled the event first makes this a no-op (rowcount 0)
        self._q_add_inbox = c(
            ins_fn(ib).values(subscriber=b("s"), event_id=b("e"), handled_at=b("at")).on_conflict_do_nothing()
        )
        self._q_delivery = c(
            sa.select(dl.c.attempts, dl.c.next_attempt_at, dl.c.dead).where(
                dl.c.subscriber == b("s"), dl.c.event_id == b("e")
            )
        )
        self._q_del_delivery = c(sa.delete(dl).where(dl.c.subscriber == b("s"), dl.c.event_id == b("e")))
        self._q_add_delivery = c(
            sa.insert(dl).values(
                subscriber=b("s"),
                event_id=b("e"),
                attempts=b("n"),
                next_attempt_at=b("next"),
                last_error=b("err"),
                dead=b("dead"),
                updated_at=b("at"),
            )
        )
        self._q_upd_delivery = c(
            sa.update(dl)
            .where(dl.c.subscriber == b("s"), dl.c.event_id == b("e"))
            .values(attempts=b("n"), next_attempt_at=b("next"), last_error=b("err"), dead=b("dead"), updated_at=b("at"))
        )

    # ------------------------------------------------------------------ delivery

    def run_once(self) -> RelayReport:
        """Deliver everything that is due to every subscriber, once. Returns what happened."""
        report = RelayReport()
        for name in sorted(self.subscribers):
            with self._claim(name) as got:
                if got:
                    self._run_subscriber(self.subscribers[name], report)
                else:
                    report.waiting[name] = "another worker holds this subscriber"
        return report

    def drain(self, max_rounds: int = 1000) -> RelayReport:
        """Run until nothing more can be delivered now (tests, demo, simulator)."""
        total = RelayReport()
        for _ in range(max_rounds):
            r = self.run_once()
            total.delivered += r.delivered
            total.skipped += r.skipped
            total.failed += r.failed
            total.dead += r.dead
            total.waiting = r.waiting
            if r.delivered == 0 and r.skipped == 0 and r.dead == 0:
                break
        return total

    def run_forever(self, stop: threading.Event, idle_s: float = 0.2) -> None:
        while not stop.is_set():
            try:
                r = self.run_once()
            except Exception:  # keep the worker alive; the failure is logged and retried next round
                log.exception("relay round failed")
                r = RelayReport()
            if r.delivered == 0 and r.skipped == 0:
                stop.wait(idle_s)

    @contextmanager
    def _claim(self, name: str) -> Iterator[bool]:
        lock = self._locks[name]
        if not lock.acquire(blocking=False):
            yield False
            return
        try:
            if self.db.backend != "postgresql":
                yield True
                return
            key = zlib.crc32(f"accord-relay:{name}".encode()) - 2**31
            with self.db.engine.connect() as conn:
                got = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar())
                conn.commit()
                try:
                    yield got
                finally:
                    if got:
                        conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                        conn.commit()
        finally:
            lock.release()

    def _position(self, name: str) -> int:
        with self.db.tx() as tx:
            row = tx.one(self._q_cursor, (name,))
            if row is not None:
                return int(row[0])
            tx.run(self._q_new_cursor, (name, 0, self.clock.now_ms()))
            return 0

    def _advance(self, tx: Tx, name: str, position: int) -> None:
        q = self._q_move_cursor
        tx.run(q, q.bind({"s": name, "p": position, "p2": position, "at": self.clock.now_ms()}))

    def _run_subscriber(self, sub: Subscriber, report: RelayReport) -> None:
        name = sub.name
        position = self._position(name)
        while True:
            with self.db.read() as tx:
                frontier = self._frontier(tx)
                rows = tx.all(self._q_events, (position, frontier))
            if not rows:
                if frontier < NO_FRONTIER:
                    report.waiting[name] = f"outbox ids above {frontier} wait for transactions still in flight"
                return
            skip_to = position
            for r in rows:
                ev = StoredEvent(int(r[0]), r[1], r[2], json.loads(r[3]), int(r[4]))
                if sub.types is not None and ev.type not in sub.types:
                    skip_to = ev.id
                    report.skipped += 1
                    continue
                self._flush_skips(name, position, skip_to)
                position = skip_to
                outcome = self._deliver(sub, ev, report)
                if outcome == "stop":
                    return
                position = skip_to = ev.id
            self._flush_skips(name, position, skip_to)
            position = skip_to
            if len(rows) < self.batch_size:
                return

    def _frontier(self, tx: Tx) -> int:
        """The highest outbox id below which every id is settled (committed or rolled back).

        SQLite: writers are serialised, so every committed id is settled. PostgreSQL: read the highest id handed
        out, then the smallest id announced by a transaction still in flight (its advisory lock, taken before its
        first id); the caller reads rows in a later statement, whose snapshot sees every finished transaction."""
        if self.db.backend != "postgresql":
            return NO_FRONTIER
        return _frontier(tx.one)

    def _flush_skips(self, name: str, position: int, skip_to: int) -> None:
        if skip_to > position:
            with self.db.tx() as tx:
                self._advance(tx, name, skip_to)

    def _deliver(self, sub: Subscriber, ev: StoredEvent, report: RelayReport) -> str:
        name = sub.name
        with self.db.read() as tx:
            state = tx.one(self._q_delivery, (name, ev.id))
            handled = tx.one(self._q_in_inbox, (name, ev.id)) is not None
        if handled:
            with self.db.tx() as tx:
                self._advance(tx, name, ev.id)
            report.skipped += 1
            return "next"
        attempts = int(state[0]) if state else 0
        if state is not None and int(state[1]) > self.clock.now_ms():
            report.waiting[name] = f"event {ev.id} retries at {int(state[1])}"
            return "stop"
        try:
            if sub.transactional:
                with self.db.tx() as tx:
                    if tx.run(self._q_add_inbox, (name, ev.id, self.clock.now_ms())).rowcount == 1:
                        sub.handle(ev, tx)
                    self._advance(tx, name, ev.id)
                    if state is not None:
                        tx.run(self._q_del_delivery, (name, ev.id))
            else:
                sub.handle(ev, None)
                with self.db.tx() as tx:
                    tx.run(self._q_add_inbox, (name, ev.id, self.clock.now_ms()))
                    self._advance(tx, name, ev.id)
                    if state is not None:
                        tx.run(self._q_del_delivery, (name, ev.id))
        except Exception as exc:
            attempts += 1
            dead = attempts >= self.max_attempts
            self._record_failure(name, ev.id, attempts, dead, exc, exists=state is not None)
            if dead:
                report.dead += 1
                return "next"
            report.failed += 1
            report.waiting[name] = f"event {ev.id} failed ({attempts}/{self.max_attempts}): {_one_line(exc)}"
            return "stop"
        report.delivered += 1
        return "next"

    def _record_failure(
        self, name: str, event_id: int, attempts: int, dead: bool, exc: Exception, *, exists: bool
    ) -> None:
        now = self.clock.now_ms()
        delay = min(self.max_backoff_ms, self.backoff_ms * 2 ** (attempts - 1))
        err = _one_line(exc)[:2000]
        with self.db.tx() as tx:
            values = {"s": name, "e": event_id, "n": attempts, "next": now + delay, "err": err, "dead": dead, "at": now}
            q = self._q_upd_delivery if exists else self._q_add_delivery
            tx.run(q, q.bind(values))
            if dead:
                self._advance(tx, name, event_id)
        log.warning("delivery of event %s to %s failed (%s/%s): %s", event_id, name, attempts, self.max_attempts, err)

    # ------------------------------------------------------------------ dead letters

    def redrive(self, subscriber: str, event_id: int) -> bool:
        """Deliver a dead letter again now. True when it succeeded (the dead letter is gone)."""
        sub = self.subscribers.get(subscriber)
        if sub is None:
            raise NotFound("subscriber", subscriber)
        with self.db.read() as tx:
            state = tx.one(self._q_delivery, (subscriber, event_id))
            row = tx.one(self._q_event, (event_id,))
        if state is None or not state[2]:
            raise NotFound("dead letter", f"{subscriber}/{event_id}")
        assert row is not None
        ev = StoredEvent(int(row[0]), row[1], row[2], json.loads(row[3]), int(row[4]))
        try:
            if sub.transactional:
                with self.db.tx() as tx:
                    if tx.run(self._q_add_inbox, (subscriber, event_id, self.clock.now_ms())).rowcount == 1:
                        sub.handle(ev, tx)
                    tx.run(self._q_del_delivery, (subscriber, event_id))
            else:
                sub.handle(ev, None)
                with self.db.tx() as tx:
                    tx.run(self._q_add_inbox, (subscriber, event_id, self.clock.now_ms()))
                    tx.run(self._q_del_delivery, (subscriber, event_id))
        except Exception as exc:
            self._record_failure(subscriber, event_id, int(state[0]) + 1, True, exc, exists=True)
            return False
        return True

    def backlog(self) -> dict[str, int]:
        """Events each subscriber has not yet been handed (outbox ids above its cursor)."""
        o, cur = t.outbox, t.relay_cursors
        with self.db.engine.connect() as conn:
            top = int(conn.execute(sa.select(sa.func.max(o.c.id))).scalar() or 0)
            pos = dict(conn.execute(sa.select(cur.c.subscriber, cur.c.position)).all())
            conn.rollback()
        return {name: max(0, top - int(pos.get(name, 0))) for name in sorted(self.subscribers)}


NO_FRONTIER = 2**63 - 1
OUTBOX_LOCK_BASE = 1 << 62  # as in migration 0010_core_speed
_Q_HANDED_OUT = Compiled("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM outbox_id_seq", ())
_Q_ANNOUNCED = Compiled(
    f"SELECT min(((classid::bigint << 32) | objid::bigint)) - {OUTBOX_LOCK_BASE} FROM pg_locks"
    f" WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND classid >= {OUTBOX_LOCK_BASE >> 32}"
    f" AND classid < {1 << 31} AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    (),
)


def _frontier(one: Callable[[Compiled], Any]) -> int:
    """PostgreSQL: the highest outbox id handed out, lowered below the smallest id still announced by a transaction
    in flight. Run it before reading rows, in an earlier statement (READ COMMITTED: the rows' snapshot is later)."""
    handed = one(_Q_HANDED_OUT)
    top = int(handed[0]) if handed is not None and handed[0] is not None else 0
    locked = one(_Q_ANNOUNCED)
    if locked is not None and locked[0] is not None:
        # the announcing transaction's ids are >= its key: everything below the key is settled
        top = min(top, int(locked[0]) - 1)
    return top


def dead_letters(db: Database, subscriber: str | None = None) -> list[DeadLetter]:
    dl, o = t.deliveries, t.outbox
    q = (
        sa.select(dl.c.subscriber, dl.c.event_id, o.c.type, o.c.key, dl.c.attempts, dl.c.last_error, dl.c.updated_at)
        .join(o, o.c.id == dl.c.event_id)
        .where(dl.c.dead == sa.true())
        .order_by(dl.c.subscriber, dl.c.event_id)
    )
    if subscriber:
        q = q.where(dl.c.subscriber == subscriber)
    with db.engine.connect() as conn:
        rows = conn.execute(q).all()
        conn.rollback()
    return [DeadLetter(r[0], int(r[1]), r[2], r[3], int(r[4]), r[5], int(r[6])) for r in rows]


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


class WebhookSubscriber:
    """Posts each event as JSON to a URL, signed with HMAC-SHA256 over the raw body.

    Headers: ``X-Accord-Event-Id`` (the outbox id: receivers deduplicate on it), ``X-Accord-Event-Type``
    and ``X-Accord-Signature: sha256=<hex>``. Any non-2xx answer is a failure (retried, then dead-lettered).
    """

    transactional = False

    def __init__(
        self,
        name: str,
        url: str,
        secret: str,
        *,
        types: frozenset[str] | None = None,
        client: httpx.Client | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.name = name
        self.url = url
        self.secret = secret.encode()
        self.types = types
        self.client = client or httpx.Client(timeout=timeout_s)

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        body = json.dumps(event.as_dict(), separators=(",", ":"), sort_keys=True).encode()
        sig = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        resp = self.client.post(
            self.url,
            content=body,
            headers={
                "content-type": "application/json",
                "x-accord-event-id": str(event.id),
                "x-accord-event-type": event.type,
                "x-accord-signature": f"sha256={sig}",
            },
        )
        if resp.status_code // 100 != 2:
            raise RuntimeError(f"webhook {self.url} answered HTTP {resp.status_code}: {resp.text[:300]}")


__all__ = [
    "Compiled",
    "DeadLetter",
    "Relay",
    "RelayReport",
    "StoredEvent",
    "Subscriber",
    "WebhookSubscriber",
    "dead_letters",
    "fetch_events",
    "last_event_ids",
]
