"""The sync worker: spends each channel's rate budget where oversell risk is highest.

``step()`` is deterministic given the clock and the channels' answers: per channel it refills a token bucket built
from the connector's :class:`~accord.connectors.base.Limits`, takes the most urgent due keys (critical drops first,
then decreases, increases, content), sends them in dialect-sized batches, and records acks, retries (backoff that
honours Retry-After), compare-and-set conflicts and dead letters. ``run()`` loops ``step()`` on an asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence
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
from accord.sync.store import P_CRITICAL, QUANTITY, Pending, SyncStore, quantity_priority

# dialects whose quantity writes address listings by the channel's own id
NEEDS_REF = frozenset({"shopify", "mercadolibre", "shopee", "lazada", "allegro"})
SHOPIFY_COST_PER_WRITE = 10


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
            self.buckets[ch] = TokenBucket(rate * self.options.bucket_safety, burst, now)
        self.samples: deque[Sample] = deque(maxlen=self.options.max_samples)
        self.refs: dict[str, dict[str, str]] = {ch: self.store.listing_refs(ch) for ch in self.connectors}

    # ------------------------------------------------------------------ one step

    async def step(self) -> StepReport:
        report = StepReport()
        channels = sorted(self.connectors)
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
        limit = min(calls_avail * batch_size, self.options.max_items_per_channel_step)
        items = self.store.due(channel, now, limit)
        items = [p for p in items if p.field == QUANTITY]
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
        try:
            results = await conn.set_quantities(updates)
        except ConnectorError as err:
            results = [
                ItemResult(
                    p.sku,
                    ItemStatus.RETRYABLE if err.retryable else ItemStatus.REJECTED,
                    err.reason,
                    str(err),
                    error=err,
                    retry_after_s=err.retry_after_s,
                )
                for p in items
            ]
        stale = self._apply_results(channel, items, results, report)
        if stale:
            await self._reread(channel, conn, stale, report)
        return report

    async def _reread(self, channel: str, conn: Connector, stale: list[Pending], report: StepReport) -> None:
        """A compare-and-set failed without telling us what the channel shows: read it, so the retry expects it."""
        now = self.clock.now_ms()
        observed: dict[str, int | None] = {p.sku: None for p in stale}
        if self.buckets[channel].take(math.ceil(len(stale) / 50), now):
            report.calls += math.ceil(len(stale) / 50)
            try:
                for snap in await conn.get_quantities([p.sku for p in stale]):
                    observed[snap.sku] = snap.qty
            except ConnectorError as err:
                self._rate_limit(channel, err, report)
        with self.store.db.tx() as tx:
            for p in stale:
                self.store.observed(tx, p, observed.get(p.sku), now)

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
                for p in unknown:
                    self.store.park(
                        tx, p, p.attempts + 1, "unknown_listing", f"{channel} has no listing for {p.sku}", None, now
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

    def _apply_results(
        self, channel: str, items: Sequence[Pending], results: Sequence[ItemResult], report: StepReport
    ) -> list[Pending]:
        """Record the outcome of one send; returns the compare-and-set conflicts that need a re-read."""
        now = self.clock.now_ms()
        opts = self.options
        stale: list[Pending] = []
        batch_size = max(1, self.connectors[channel].limits.max_batch_size)
        by_sku = {r.sku: r for r in results}
        counts: Counter[str] = Counter()
        samples: list[tuple[str, int]] = []
        rate_errors: dict[int, ConnectorError] = {}
        attempted = 0
        with self.store.db.tx() as tx:
            for p in items:
                r = by_sku.get(p.sku)
                if r is None:
                    r = ItemResult(p.sku, ItemStatus.RETRYABLE, "missing_result", "the connector returned no result")
                if r.reason != "not_attempted":
                    attempted += 1
                if r.status is ItemStatus.OK:
                    self.store.ack(tx, p, now)
                    klass = "critical" if p.priority == P_CRITICAL else "other"
                    latency = max(0, now - p.enqueued_at)
                    samples.append((klass, latency))
                    self.samples.append(Sample(channel, p.sku, klass, latency, now))
                    counts["acked"] += 1
                    report.acked += 1
                elif r.status is ItemStatus.CONFLICT:
                    if r.observed_qty is not None:
                        self.store.observed(tx, p, r.observed_qty, now)
                    else:
                        stale.append(p)
                    self._retry_or_park(tx, p, r, now, 0, counts, report)
                    counts["conflicts"] += 1
                    report.conflicts += 1
                elif r.status is ItemStatus.REJECTED:
                    body = r.error.body if r.error is not None else None
                    self.store.park(tx, p, p.attempts + 1, r.reason or "rejected", r.detail or "rejected", body, now)
                    counts["dead"] += 1
                    report.parked += 1
                else:
                    err = r.error
                    if isinstance(err, RateLimited):
                        rate_errors[id(err)] = err
                        wait = (
                            opts.default_retry_after_ms if err.retry_after_s is None else int(err.retry_after_s * 1e3)
                        )
                        self.store.retry(tx, p, p.attempts, now + wait, f"{r.reason}: {r.detail}", now)
                        counts["retries"] += 1
                        report.retried += 1
                    elif r.reason == "not_attempted":
                        self.store.retry(tx, p, p.attempts, now, f"{r.reason}: {r.detail}", now)
                    else:
                        delay = min(opts.max_backoff_ms, opts.backoff_ms * 2**p.attempts)
                        if r.retry_after_s is not None:
                            delay = max(delay, int(r.retry_after_s * 1000))
                        self._retry_or_park(tx, p, r, now, delay, counts, report)
            calls = max(1, math.ceil(attempted / batch_size)) if attempted else 0
            counts["calls"] += calls
            counts["http_429"] += len(rate_errors)
            report.calls += calls
            report.sent += len(items)
            self.store.count(tx, channel, counts)
            self.store.observe_latency(tx, channel, samples)
        for err in rate_errors.values():
            self._rate_limit(channel, err, report)
        return stale

    def _retry_or_park(
        self, tx: Any, p: Pending, r: ItemResult, now: int, delay_ms: int, counts: Counter[str], report: StepReport
    ) -> None:
        attempts = p.attempts + 1
        error = f"{r.reason}: {r.detail}"
        if attempts >= self.options.max_attempts:
            body = r.error.body if r.error is not None else None
            self.store.park(tx, p, attempts, r.reason or "retries_exhausted", error, body, now)
            counts["dead"] += 1
            report.parked += 1
        else:
            self.store.retry(tx, p, attempts, now + delay_ms, error, now)
            counts["retries"] += 1
            report.retried += 1

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
