"""The sync worker: spends each channel's rate budget where oversell risk is highest.

``step()`` is deterministic given the clock and the channels' answers: per channel it refills a token bucket built
from the connector's :class:`~accord.connectors.base.Limits`, takes the most urgent due keys (critical drops first,
then decreases, increases, content), sends them in dialect-sized batches, and records acks, retries (backoff that
honours Retry-After), compare-and-set conflicts and dead letters. ``run()`` loops ``step()`` on an asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
from collections import Counter, deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from accord.app.ports import Clock, SystemClock
from accord.connectors.base import (
    ChannelConfig,
    Connector,
    ConnectorError,
    ItemResult,
    ItemStatus,
    Limits,
    QuantityUpdate,
    RateLimited,
)
from accord.connectors.registry import create_connector
from accord.sync.orders import OrderIngestor
from accord.sync.store import P_CRITICAL, PUBLISHED, QUANTITY, Pending, SyncStore, quantity_priority

# dialects whose quantity writes address listings by the channel's own id
NEEDS_REF = frozenset({"shopify", "mercadolibre", "shopee", "lazada", "allegro"})
SHOPIFY_COST_PER_WRITE = 10
SYNC_ERROR_PAUSE_S = 1.0
CANCEL_EVERY_S = 0.1

log = logging.getLogger("accord.sync")


class TokenBucket:
    """Calls per second with a burst, on the injected clock. ``block_until`` honours a server's Retry-After."""

    def __init__(self, rate_per_s: float, burst: int, now_ms: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = max(1, burst)
        self.tokens = float(self.burst)
        self.updated_ms = now_ms
        self.blocked_until_ms = 0

    def _refill(self, now_ms: int) -> None:
        if now_ms > self.updated_ms:
            self.tokens = min(float(self.burst), self.tokens + (now_ms - self.updated_ms) * self.rate_per_s / 1000)
            self.updated_ms = now_ms

    def available(self, now_ms: int) -> int:
        if now_ms < self.blocked_until_ms:
            return 0
        self._refill(now_ms)
        return int(self.tokens + 1e-9)

    def take(self, n: int, now_ms: int) -> bool:
        if self.available(now_ms) < n:
            return False
        self.tokens -= n
        return True

    def block_until(self, until_ms: int, now_ms: int) -> None:
        self._refill(now_ms)
        self.tokens = 1.0  # one probe when the wait is over; the rest refills at the published rate
        self.blocked_until_ms = max(self.blocked_until_ms, until_ms)
        self.updated_ms = max(self.updated_ms, until_ms)

    def wait_ms(self, n: int, now_ms: int) -> int:
        """How long until ``n`` tokens are there."""
        if now_ms < self.blocked_until_ms:
            return self.blocked_until_ms - now_ms
        self._refill(now_ms)
        missing = n - self.tokens
        return 0 if missing <= 0 else math.ceil(missing * 1000 / self.rate_per_s)


def call_budget(limits: Limits) -> tuple[float, int]:
    """(calls per second, burst) for quantity writes on a dialect."""
    if limits.cost_bucket_size and limits.cost_restore_per_s:
        return limits.cost_restore_per_s / SHOPIFY_COST_PER_WRITE, limits.cost_bucket_size // SHOPIFY_COST_PER_WRITE
    if limits.dialect == "amazon":
        op = limits.for_operation("patchListingsItem")
        return op.rate_per_s, op.burst
    return limits.rate_per_s, limits.burst


@dataclass(slots=True)
class StepReport:
    sent: int = 0
    acked: int = 0
    retried: int = 0
    conflicts: int = 0
    parked: int = 0
    calls: int = 0
    http_429: int = 0
    cancels: int = 0

    def add(self, other: StepReport) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class Drift:
    channel: str
    sku: str
    desired: int
    observed: int | None


@dataclass(slots=True)
class Sample:
    channel: str
    sku: str
    klass: str  # critical | other
    latency_ms: int
    acked_at: int


@dataclass
class WorkerOptions:
    max_attempts: int = 6
    backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    default_retry_after_ms: int = 1_000  # a 429 without Retry-After
    max_items_per_channel_step: int = 500
    max_samples: int = 1_000_000
    bucket_safety: float = 1.0  # scale of the published rate we allow ourselves
    # calls of the published burst we never use: the channel's bucket keeps a spare token, so calls that jitter
    # closer together on the way still fit (a 429 costs >= 1 s: the sandbox, like many APIs, rounds Retry-After up)
    burst_reserve: int = 1
    cas_resends: int = 2  # per step: resend compare-and-set conflicts at once, expecting what the channel showed


@dataclass
class SyncWorker:
    store: SyncStore
    connectors: Mapping[str, Connector]
    clock: Clock = field(default_factory=SystemClock)
    options: WorkerOptions = field(default_factory=WorkerOptions)
    orders: OrderIngestor | None = None

    def __post_init__(self) -> None:
        now = self.clock.now_ms()
        self.buckets: dict[str, TokenBucket] = {}
        for ch, conn in self.connectors.items():
            rate, burst = call_budget(conn.limits)
            reserve = max(0, min(self.options.burst_reserve, burst - 1))
            self.buckets[ch] = TokenBucket(rate * self.options.bucket_safety, burst - reserve, now)
        self.samples: deque[Sample] = deque(maxlen=self.options.max_samples)
        self.refs: dict[str, dict[str, str]] = {ch: self.store.listing_refs(ch) for ch in self.connectors}

    # ------------------------------------------------------------------ one step

    async def step(self, channels: Collection[str] | None = None) -> StepReport:
        """One round over every channel, or only over ``channels`` (a driver that knows which have due work)."""
        report = StepReport()
        channels = sorted(self.connectors) if channels is None else sorted(c for c in channels if c in self.connectors)
        results = await asyncio.gather(*(self._step_channel(ch) for ch in channels))
        for r in results:
            report.add(r)
        if self.orders is not None:
            report.cancels += await self.send_cancellations()
        return report

    def next_wake_ms(self) -> int | None:
        """Earliest time any channel could do work (virtual-clock drivers sleep until then)."""
        best: int | None = None
        now = self.clock.now_ms()
        for ch in self.connectors:
            due = self.store.next_due_ms(ch)
            if due is None:
                continue
            at = max(due, now + self.buckets[ch].wait_ms(1, now))
            best = at if best is None else min(best, at)
        return best

    async def _step_channel(self, channel: str) -> StepReport:
        report = StepReport()
        conn = self.connectors[channel]
        bucket = self.buckets[channel]
        now = self.clock.now_ms()
        calls_avail = bucket.available(now)
        if calls_avail <= 0:
            return report
        batch_size = max(1, conn.limits.max_batch_size)
        # one indexed range scan (pending keys by priority, enqueued_at), as many keys as the bucket can carry now
        limit = min(calls_avail * batch_size, self.options.max_items_per_channel_step)
        due = self.store.due(channel, now, limit)
        flags = [p for p in due if p.field == PUBLISHED]
        if flags:
            self._record_published(channel, flags, now, report)
        items = [p for p in due if p.field == QUANTITY]
        if not items:
            return report
        if conn.dialect in NEEDS_REF:
            items = await self._with_refs(channel, conn, items, report)
            if not items:
                return report
            now = self.clock.now_ms()
            calls_avail = bucket.available(now)
            items = items[: max(0, calls_avail * batch_size)]
            if not items:
                return report
        bucket.take(math.ceil(len(items) / batch_size), now)
        queue: deque[list[Pending]] = deque([items])
        resends = 0
        while queue:
            group = queue.popleft()
            results = await self._send(channel, conn, group)
            may_resend = resends < self.options.cas_resends
            innocent, conflicted = self._apply_results(channel, group, results, report, resend=may_resend)
            if not innocent and not conflicted:
                continue
            resends += 1
            ready = await self._observe(channel, conn, conflicted, report)
            # keys aborted with a conflicting one go first, alone: a conflicting key never holds the others back
            for again in (innocent, ready):
                if not again:
                    continue
                now = self.clock.now_ms()
                if bucket.take(math.ceil(len(again) / batch_size), now):
                    queue.append(again)
                else:
                    self._defer(channel, again, now)
        return report

    def _record_published(self, channel: str, flags: Sequence[Pending], now: int, report: StepReport) -> None:
        """``published`` keys take effect here, with no call: a blocked variant's quantity key is held (the store
        never makes it due, so nothing is listed or restocked for it) and released when it turns ready."""
        with self.store.db.tx() as tx:
            self.store.ack_many(tx, flags, now)
            self.store.count(tx, channel, {"published_changes": len(flags)})
        report.acked += len(flags)

    async def _send(self, channel: str, conn: Connector, items: Sequence[Pending]) -> list[ItemResult]:
        cas = conn.limits.supports_compare_and_set
        refs = self.refs.get(channel, {})
        updates = [
            QuantityUpdate(
                p.sku,
                int(p.value),
                listing_ref=refs.get(p.sku),
                expected_qty=int(p.acked_value) if cas and isinstance(p.acked_value, int) else None,
                idempotency_key=f"{channel}:{p.sku}:{p.version}",
            )
            for p in items
        ]
        # the calls the bucket already paid for go out together: a step lasts about one call, so a key that turns
        # critical meanwhile waits for one round trip, not for a queue of sequential ones
        batch_size = max(1, conn.limits.max_batch_size)
        chunks = [updates[i : i + batch_size] for i in range(0, len(updates), batch_size)]
        parts = await asyncio.gather(*(self._send_chunk(conn, chunk) for chunk in chunks))
        return [r for part in parts for r in part]

    @staticmethod
    async def _send_chunk(conn: Connector, updates: Sequence[QuantityUpdate]) -> list[ItemResult]:
        try:
            return list(await conn.set_quantities(updates))
        except ConnectorError as err:
            return [
                ItemResult(
                    u.sku,
                    ItemStatus.RETRYABLE if err.retryable else ItemStatus.REJECTED,
                    err.reason,
                    str(err),
                    error=err,
                    retry_after_s=err.retry_after_s,
                )
                for u in updates
            ]

    async def _observe(
        self, channel: str, conn: Connector, conflicted: Sequence[tuple[Pending, int | None]], report: StepReport
    ) -> list[Pending]:
        """Compare-and-set conflicts → the keys to resend at once, each expecting what the channel showed.

        The quantity the channel returned with the conflict is used as is; the others are read back (one call per
        50). A key the channel already shows is acknowledged; one whose quantity stays unknown waits (an attempt)."""
        if not conflicted:
            return []
        observed: dict[str, int | None] = {p.sku: qty for p, qty in conflicted}
        unknown = [p for p, qty in conflicted if qty is None]
        if unknown:
            observed.update(await self._reread(channel, conn, unknown, report))
        now = self.clock.now_ms()
        ready: list[Pending] = []
        shown: list[Pending] = []
        waiting: list[tuple[Pending, int, int, str]] = []
        for p, _ in conflicted:
            qty = observed.get(p.sku)
            if qty is None:
                waiting.append((p, p.attempts + 1, now, "cas_mismatch: the channel's quantity could not be read"))
            elif qty == p.value:
                shown.append(p)
            else:
                ready.append(dataclasses.replace(p, acked_value=qty))
        if shown or waiting:
            counts: Counter[str] = Counter()
            samples = self._samples(channel, shown, now)
            counts["acked"] += len(shown)
            report.acked += len(shown)
            with self.store.db.tx() as tx:
                self.store.ack_many(tx, shown, now)
                parks = [
                    (p, n, "cas_mismatch", err, None) for p, n, _, err in waiting if n >= self.options.max_attempts
                ]
                retries = [w for w in waiting if w[1] < self.options.max_attempts]
                self.store.park_many(tx, parks, now)
                self.store.retry_many(tx, retries, now)
                counts["dead"] += len(parks)
                counts["retries"] += len(retries)
                report.parked += len(parks)
                report.retried += len(retries)
                self.store.count(tx, channel, counts)
                self.store.observe_latency(tx, channel, samples)
        return ready

    def _defer(self, channel: str, items: Sequence[Pending], now: int) -> None:
        """No budget left to resend now: keep what the channel showed and make the keys due at once (no attempt)."""
        with self.store.db.tx() as tx:
            self.store.observed_many(tx, [(p, p.acked_value) for p in items if isinstance(p.acked_value, int)], now)
            self.store.retry_many(tx, [(p, p.attempts, now, "resend deferred: no call budget") for p in items], now)

    async def _reread(
        self, channel: str, conn: Connector, stale: Sequence[Pending], report: StepReport
    ) -> dict[str, int | None]:
        """A compare-and-set failed without telling us what the channel shows: read it, so the resend expects it."""
        now = self.clock.now_ms()
        observed: dict[str, int | None] = {p.sku: None for p in stale}
        calls = math.ceil(len(stale) / 50)
        if self.buckets[channel].take(calls, now):
            report.calls += calls
            try:
                for snap in await conn.get_quantities([p.sku for p in stale]):
                    observed[snap.sku] = snap.qty
            except ConnectorError as err:
                self._rate_limit(channel, err, report)
        return observed

    async def _with_refs(
        self, channel: str, conn: Connector, items: list[Pending], report: StepReport
    ) -> list[Pending]:
        refs = self.refs.setdefault(channel, {})
        missing = [p.sku for p in items if p.sku not in refs]
        if not missing:
            return items
        bucket = self.buckets[channel]
        now = self.clock.now_ms()
        lookups = math.ceil(len(missing) / 50)
        if not bucket.take(lookups, now):
            return [p for p in items if p.sku in refs]
        report.calls += lookups
        try:
            snaps = await conn.get_quantities(missing)
        except ConnectorError as err:
            self._rate_limit(channel, err, report)
            return [p for p in items if p.sku in refs]
        found = {s.sku: s.listing_ref for s in snaps if s.listing_ref and s.qty is not None}
        refs.update(found)
        self.store.save_listing_refs(channel, found)
        now = self.clock.now_ms()
        unknown = [p for p in items if p.sku not in refs]
        if unknown:
            with self.store.db.tx() as tx:
                self.store.park_many(
                    tx,
                    [
                        (p, p.attempts + 1, "unknown_listing", f"{channel} has no listing for {p.sku}", None)
                        for p in unknown
                    ],
                    now,
                )
                self.store.count(tx, channel, {"dead": len(unknown)})
            report.parked += len(unknown)
        return [p for p in items if p.sku in refs]

    def _rate_limit(self, channel: str, err: ConnectorError | None, report: StepReport) -> None:
        if not isinstance(err, RateLimited):
            return
        now = self.clock.now_ms()
        wait = self.options.default_retry_after_ms if err.retry_after_s is None else int(err.retry_after_s * 1000)
        self.buckets[channel].block_until(now + wait, now)
        report.http_429 += 1

    def _samples(self, channel: str, acked: Sequence[Pending], now: int) -> list[tuple[str, int]]:
        out: list[tuple[str, int]] = []
        for p in acked:
            klass = "critical" if p.priority == P_CRITICAL else "other"
            latency = max(0, now - p.enqueued_at)
            out.append((klass, latency))
            self.samples.append(Sample(channel, p.sku, klass, latency, now))
        return out

    def _apply_results(
        self,
        channel: str,
        items: Sequence[Pending],
        results: Sequence[ItemResult],
        report: StepReport,
        *,
        resend: bool = False,
    ) -> tuple[list[Pending], list[tuple[Pending, int | None]]]:
        """Record the outcome of one send in one transaction (an executemany per kind of write).

        With ``resend``, returns what the caller resends at once instead of recording it: the keys a conflicting
        key aborted (all-or-nothing batches), and the compare-and-set conflicts with the quantity the channel
        returned (None: unknown, read it back). Without it, those keys are made due again at once."""
        now = self.clock.now_ms()
        opts = self.options
        batch_size = max(1, self.connectors[channel].limits.max_batch_size)
        by_sku = {r.sku: r for r in results}
        counts: Counter[str] = Counter()
        acked: list[Pending] = []
        retries: list[tuple[Pending, int, int, str]] = []
        parks: list[tuple[Pending, int, str, str, str | None]] = []
        observed: list[tuple[Pending, Any]] = []
        innocent: list[Pending] = []
        conflicted: list[tuple[Pending, int | None]] = []
        rate_errors: dict[int, ConnectorError] = {}
        attempted = 0

        def retry_or_park(p: Pending, r: ItemResult, delay_ms: int) -> None:
            attempts = p.attempts + 1
            error = f"{r.reason}: {r.detail}"
            if attempts >= opts.max_attempts:
                body = r.error.body if r.error is not None else None
                parks.append((p, attempts, r.reason or "retries_exhausted", error, body))
            else:
                retries.append((p, attempts, now + delay_ms, error))
                counts["retries"] += 1

        for p in items:
            r = by_sku.get(p.sku)
            if r is None:
                r = ItemResult(p.sku, ItemStatus.RETRYABLE, "missing_result", "the connector returned no result")
            if r.reason != "not_attempted":
                attempted += 1
            if r.status is ItemStatus.OK:
                acked.append(p)
            elif r.status is ItemStatus.CONFLICT:
                counts["conflicts"] += 1
                report.conflicts += 1
                if resend:
                    conflicted.append((p, r.observed_qty))
                elif r.observed_qty is not None:  # known: due again at once, expecting it (not a failed attempt)
                    observed.append((p, r.observed_qty))
                    retries.append((p, p.attempts, now, f"{r.reason}: {r.detail}"))
                    counts["retries"] += 1
                else:
                    observed.append((p, None))
                    retry_or_park(p, r, 0)
            elif r.status is ItemStatus.REJECTED:
                body = r.error.body if r.error is not None else None
                parks.append((p, p.attempts + 1, r.reason or "rejected", r.detail or "rejected", body))
            elif r.reason == "batch_aborted":  # another key of an all-or-nothing batch failed, not this one
                if resend:
                    innocent.append(p)
                else:
                    retries.append((p, p.attempts, now, f"{r.reason}: {r.detail}"))
                    counts["retries"] += 1
            else:
                err = r.error
                if isinstance(err, RateLimited):
                    rate_errors[id(err)] = err
                    wait = opts.default_retry_after_ms if err.retry_after_s is None else int(err.retry_after_s * 1e3)
                    retries.append((p, p.attempts, now + wait, f"{r.reason}: {r.detail}"))
                    counts["retries"] += 1
                elif r.reason == "not_attempted":
                    retries.append((p, p.attempts, now, f"{r.reason}: {r.detail}"))
                else:
                    delay = min(opts.max_backoff_ms, opts.backoff_ms * 2**p.attempts)
                    if r.retry_after_s is not None:
                        delay = max(delay, int(r.retry_after_s * 1000))
                    retry_or_park(p, r, delay)
        samples = self._samples(channel, acked, now)
        counts["acked"] += len(acked)
        counts["dead"] += len(parks)
        report.acked += len(acked)
        report.parked += len(parks)
        report.retried += counts["retries"]
        calls = max(1, math.ceil(attempted / batch_size)) if attempted else 0
        counts["calls"] += calls
        counts["http_429"] += len(rate_errors)
        report.calls += calls
        report.sent += len(items)
        with self.store.db.tx() as tx:
            self.store.ack_many(tx, acked, now)
            self.store.observed_many(tx, observed, now)
            self.store.retry_many(tx, retries, now)
            self.store.park_many(tx, parks, now)
            self.store.count(tx, channel, counts)
            self.store.observe_latency(tx, channel, samples)
        for err in rate_errors.values():
            self._rate_limit(channel, err, report)
        return innocent, conflicted

    # ------------------------------------------------------------------ loops

    async def run(self, stop: asyncio.Event, idle_s: float = 0.05, max_steps: int | None = None) -> StepReport:
        total = StepReport()
        steps = 0
        while not stop.is_set() and (max_steps is None or steps < max_steps):
            r = await self.step()
            total.add(r)
            steps += 1
            if r.sent == 0 and r.cancels == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_s)
        return total

    async def serve(self, stop: asyncio.Event, idle_s: float = 0.05, total: StepReport | None = None) -> StepReport:
        """Run every channel on its own loop until ``stop`` (what ``run`` does in lock-step, without the lock-step):
        a slow or rate-limited channel never holds the others back. A channel sleeps until its bucket has a token,
        or until an enqueue in this process wakes it (:meth:`SyncStore.add_listener`), or ``idle_s`` at most (the
        database is the truth: the wake-up is a hint). Cancellations run on a loop of their own. Reports add up in
        ``total`` as they come."""
        total = total if total is not None else StepReport()
        loop = asyncio.get_running_loop()
        wake = {ch: asyncio.Event() for ch in self.connectors}

        def woken(channels: frozenset[str]) -> None:  # any thread: the relay may run the subscriber elsewhere
            for ch in channels:
                ev = wake.get(ch)
                if ev is not None:
                    loop.call_soon_threadsafe(ev.set)

        async def channel_loop(channel: str) -> None:
            ev = wake[channel]
            bucket = self.buckets[channel]
            while not stop.is_set():
                ev.clear()
                try:
                    r = await self._step_channel(channel)
                except Exception:  # keep the channel alive; its pending state is retried on the next round
                    log.exception("sync step failed on %s", channel)
                    await _sleep_or(stop, None, SYNC_ERROR_PAUSE_S)
                    continue
                total.add(r)
                if r.sent:
                    await asyncio.sleep(0)  # let the other channels (and the HTTP responses) in
                    continue
                now = self.clock.now_ms()
                if bucket.available(now) <= 0:  # out of budget: nothing to do before the next token
                    await _sleep_or(stop, None, max(0.001, bucket.wait_ms(1, now) / 1000))
                else:
                    await _sleep_or(stop, ev, idle_s)

        async def cancel_loop() -> None:
            while not stop.is_set() and self.orders is not None:
                try:
                    total.cancels += await self.send_cancellations()
                except Exception:
                    log.exception("sending cancellations failed")
                await _sleep_or(stop, None, max(idle_s, CANCEL_EVERY_S))

        self.store.add_listener(woken)
        try:
            await asyncio.gather(*(channel_loop(ch) for ch in sorted(self.connectors)), cancel_loop())
        finally:
            self.store.remove_listener(woken)
        return total

    async def drain(self, max_steps: int = 100) -> StepReport:
        """Step until nothing is sent (tests; the clock must move for retries that wait)."""
        total = StepReport()
        for _ in range(max_steps):
            r = await self.step()
            total.add(r)
            if r.sent == 0 and r.cancels == 0:
                break
        return total

    # ------------------------------------------------------------------ reconciliation

    async def reconcile(self, channel: str | None = None, max_skus: int = 100_000) -> list[Drift]:
        """Pull channel quantities, compare with what Accord wants them to show, re-enqueue and count drift."""
        drifts: list[Drift] = []
        for ch in sorted(self.connectors):
            if channel is not None and ch != channel:
                continue
            conn = self.connectors[ch]
            desired = self.store.desired_for_channel(ch)[:max_skus]
            if not desired:
                continue
            snaps = {}
            calls = 0
            for i in range(0, len(desired), 50):
                chunk = [row[0] for row in desired[i : i + 50]]
                for s in await conn.get_quantities(chunk):
                    snaps[s.sku] = s
                calls += 1
            refs = {k: s.listing_ref for k, s in snaps.items() if s.listing_ref and s.qty is not None}
            self.refs.setdefault(ch, {}).update(refs)
            self.store.save_listing_refs(ch, refs)
            now = self.clock.now_ms()
            found: list[Drift] = []
            with self.store.db.tx() as tx:
                for sku, value, in_sync, _acked in desired:
                    if not in_sync:  # a send is already queued: a difference is expected, not drift
                        continue
                    snap = snaps.get(sku)
                    observed = snap.qty if snap is not None else None
                    if observed is None or observed == value:
                        continue
                    found.append(Drift(ch, sku, int(value), observed))
                    prio = quantity_priority(int(value), observed, 0)
                    self.store.mark_drift(tx, ch, sku, observed, prio, now)
                self.store.count(tx, ch, {"drift": len(found), "reconcile_calls": calls, "reconciled": 1})
            drifts.extend(found)
        return drifts

    # ------------------------------------------------------------------ orders

    async def poll_orders(self, channel: str, max_pages: int = 20) -> int:
        """Fetch new orders with the stored cursor and ingest them (page and cursor commit together)."""
        assert self.orders is not None
        conn = self.connectors[channel]
        n = 0
        for _ in range(max_pages):
            cursor = self.orders.cursor(channel)
            page = await conn.fetch_orders(cursor)
            self.orders.ingest_page(channel, page.orders, page.next_cursor)
            n += len(page.orders)
            if not page.orders or page.next_cursor == cursor:
                break
        return n

    async def send_cancellations(self, limit: int = 50) -> int:
        """Cancel orders Accord could not cover back to their channel."""
        assert self.orders is not None
        sent = 0
        for row in self.orders.pending_cancellations(limit):
            conn = self.connectors.get(row.channel)
            if conn is None:
                continue
            try:
                await cancel_order(conn, row.channel_order_id, row.reason or "out of stock")
            except ConnectorError as err:
                if not err.retryable:
                    self.orders.set_cancel_state(row.channel, row.channel_order_id, "failed", str(err)[:2000])
                continue
            except NotImplementedError as err:
                self.orders.set_cancel_state(row.channel, row.channel_order_id, "unsupported", str(err))
                continue
            self.orders.set_cancel_state(row.channel, row.channel_order_id, "sent", None)
            sent += 1
        return sent


async def _sleep_or(stop: asyncio.Event, wake: asyncio.Event | None, timeout_s: float) -> None:
    """Sleep ``timeout_s`` or until ``stop`` (or ``wake``) is set."""
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=max(0.0, timeout_s), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


ORDER_CANCEL = """
mutation orderCancel($orderId: ID!, $reason: OrderCancelReason!, $refund: Boolean!, $restock: Boolean!,
  $staffNote: String) {
  orderCancel(orderId: $orderId, reason: $reason, refund: $refund, restock: $restock, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""


async def cancel_order(conn: Connector, channel_order_id: str, note: str) -> None:
    """Send a cancellation for an order Accord cannot fill (reason: inventory). Shopify only for now."""
    graphql = getattr(conn, "graphql", None)
    if conn.dialect != "shopify" or graphql is None:
        raise NotImplementedError(f"{conn.dialect}: order cancellation is not implemented by the connector")
    data, _resp = await graphql(
        ORDER_CANCEL,
        {"orderId": channel_order_id, "reason": "INVENTORY", "refund": True, "restock": False, "staffNote": note},
    )
    payload = data.get("orderCancel") or {}
    errors = payload.get("orderCancelUserErrors") or []
    if errors:
        raise ConnectorError("; ".join(str(e.get("message")) for e in errors))


def build_connectors(
    configs: Mapping[str, ChannelConfig], client: httpx.AsyncClient, clock: Clock | None = None
) -> dict[str, Connector]:
    return {ch: create_connector(cfg, client, clock=clock) for ch, cfg in sorted(configs.items())}
