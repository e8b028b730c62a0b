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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape
from typing import Any

import httpx

from accord.app.ports import Clock, SystemClock
from accord.connectors.amazon import AmazonConnector
from accord.connectors.base import (
    CALLS,
    ChannelConfig,
    Connector,
    ConnectorError,
    ContentUpdate,
    ItemResult,
    ItemStatus,
    Limits,
    QuantitySnapshot,
    QuantityUpdate,
    RateLimited,
    RequestRejected,
)
from accord.connectors.registry import create_connector
from accord.orders.shipments import PendingShipment, ShipmentOutbox
from accord.sync.cancellations import SUBMITTED, CancelQueue, PendingCancel
from accord.sync.orders import OrderIngestor
from accord.sync.store import (
    CONTENT,
    P_CRITICAL,
    PRICE,
    PUBLISHED,
    QUANTITY,
    Pending,
    SyncStore,
    quantity_priority,
)

# dialects whose quantity reads take one request per SKU (reconciliation pages one SKU per call there)
PER_SKU_READS = frozenset({"amazon", "walmart"})
# dialects whose quantity writes address listings by the channel's own id
NEEDS_REF = frozenset({"shopify", "mercadolibre", "shopee", "lazada", "allegro"})
SHOPIFY_COST_PER_WRITE = 10
SYNC_ERROR_PAUSE_S = 1.0
CANCEL_EVERY_S = 0.1
SEND_BACK_EVERY_S = 0.1  # the ship-confirmation and cancellation loops look for due work this often
SHIPMENTS, CANCELS, FEED_REPORTS = "shipments", "cancels", "feed_reports"
# names in limits.json operations; a cancellation feed's processing report is found with getFeed
SEND_BACK_OPERATIONS = {SHIPMENTS: "confirmShipment", CANCELS: "cancelOrder", FEED_REPORTS: "getFeed"}
FEED_FIRST_CHECK_MS = 60_000  # a feed's report is first looked for this long after createFeed accepted it
FEED_RECHECK_MS = 30_000  # and again this often while the feed is IN_QUEUE / IN_PROGRESS
# dialects whose send-back goes through another operation's usage plan: Amazon cancels with order-acknowledgement
# feeds (a channel's due cancellations batched in one), so createFeed's (0.0083/s, burst 15) paces them
SEND_BACK_OPERATION_OVERRIDES = {("amazon", CANCELS): "createFeed"}

log = logging.getLogger("accord.sync")

# ---------------------------------------------------------------- price and content (desired fields from the PIM)
CONTENT_FIELDS = (PRICE, CONTENT)  # price first: its priority is above content's
# dialects whose content writes address the listing by the channel's own id (the same ref as quantity writes);
# Shopify's connector finds the product and variant by SKU itself, eBay its offer
CONTENT_NEEDS_REF = frozenset({"mercadolibre", "shopee", "lazada", "allegro"})
# dialects whose content update carries marketplace attributes (Amazon attributes, eBay aspects, Lazada attributes)
ATTRIBUTE_DIALECTS = frozenset({"amazon", "ebay", "lazada"})
BULLET_DIALECTS = frozenset({"amazon"})  # a field of their own; elsewhere they are folded into the description
HTML_DESCRIPTION = frozenset({"shopify", "ebay", "allegro", "lazada"})


def content_batch_size(conn: Connector) -> int:
    """Content updates per call: one listing per request on every HTTP dialect, one file for a file feed."""
    return max(1, conn.limits.max_batch_size) if conn.dialect == "filefeed" else 1


def critical_reserve(bucket: TokenBucket, options: WorkerOptions) -> int:
    """Tokens kept for critical quantity changes (none on a channel with a burst of one)."""
    return max(0, min(options.critical_reserve, bucket.burst - 1))


def content_reserve(bucket: TokenBucket) -> int:
    """Tokens price and content never take: half the burst stays for quantity changes (0 with a burst of 1)."""
    return bucket.burst // 2


def with_bullets(description: str | None, bullets: Sequence[str], *, html: bool) -> str | None:
    """The description followed by the bullets, as an HTML list or as text lines."""
    if not bullets:
        return description
    if html:
        items = "".join(f"<li>{escape(b)}</li>" for b in bullets)
        return (description or "") + f"<ul>{items}</ul>"
    lines = "\n".join(f"- {b}" for b in bullets)
    return f"{description}\n\n{lines}" if description else lines


def content_update(dialect: str, p: Pending, ref: str | None) -> ContentUpdate:
    """The connector's update for one price or content key (values as :mod:`accord.sync.content` derives them)."""
    v = p.value if isinstance(p.value, dict) else {}
    if p.field == PRICE:
        return ContentUpdate(p.sku, ref, price=Decimal(str(v["amount"])), currency=str(v["currency"]))
    bullets = tuple(str(b) for b in v.get("bullets") or ())
    description = v.get("description")
    if dialect not in BULLET_DIALECTS:
        description = with_bullets(description, bullets, html=dialect in HTML_DESCRIPTION)
        bullets = ()
    attributes = dict(v.get("attributes") or {}) if dialect in ATTRIBUTE_DIALECTS else {}
    return ContentUpdate(
        p.sku,
        ref,
        title=v.get("title"),
        description=description,
        attributes=attributes,
        bullets=bullets,
        locale=v.get("locale"),
    )


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

    def refund(self, n: int, now_ms: int) -> None:
        """Give back ``n`` tokens taken for calls that were not made (never above the burst)."""
        self._refill(now_ms)
        self.tokens = min(float(self.burst), self.tokens + n)

    def charge(self, n: int, now_ms: int) -> None:
        """Spend ``n`` more tokens after the fact (calls an operation needed beyond the one it took): the balance
        may go below zero, and the bucket then waits until it is paid back."""
        self._refill(now_ms)
        self.tokens -= n

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
    shipments: int = 0  # ship confirmations the channels accepted

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
    klass: str  # critical | other | content (price and content keys)
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
    # tokens of a channel's burst only a critical change may take while a backlog waits (at most the burst less
    # one). Off by default: on virtual time one token cuts the critical wait behind a backlog at 5 calls/s from
    # p99 200 ms to 0, but on a CPU-starved host the loop wakes late, the bucket sits full and the withheld token
    # is lost to the cap (the wall-clock sync bench got worse with it)
    critical_reserve: int = 0
    # scheduled reconciliation by ``serve`` (None: only on demand, ``accord reconcile``), spread over the channels
    reconcile_every_ms: int | None = None
    # ship confirmations and cancellations sent back to channels: exponential backoff from send_backoff_ms (or the
    # server's Retry-After when longer), parked as a dead letter after send_max_attempts failed attempts
    send_max_attempts: int = 8
    send_backoff_ms: int = 1_000
    send_max_backoff_ms: int = 600_000


@dataclass
class SyncWorker:
    store: SyncStore
    connectors: Mapping[str, Connector]
    clock: Clock = field(default_factory=SystemClock)
    options: WorkerOptions = field(default_factory=WorkerOptions)
    orders: OrderIngestor | None = None
    shipments: ShipmentOutbox | None = None  # default: the outbox on the store's database
    cancels: CancelQueue | None = None  # default: the cancellation queue on the store's database

    def __post_init__(self) -> None:
        if self.shipments is None:
            self.shipments = ShipmentOutbox(self.store.db)
        if self.cancels is None:
            self.cancels = CancelQueue(self.store.db)
        self._send_back_buckets: dict[tuple[str, str], TokenBucket | None] = {}
        now = self.clock.now_ms()
        self.buckets: dict[str, TokenBucket] = {}
        for ch, conn in self.connectors.items():
            rate, burst = call_budget(conn.limits)
            reserve = max(0, min(self.options.burst_reserve, burst - 1))
            self.buckets[ch] = TokenBucket(rate * self.options.bucket_safety, burst - reserve, now)
        self.samples: deque[Sample] = deque(maxlen=self.options.max_samples)
        self.refs: dict[str, dict[str, str]] = {ch: self.store.listing_refs(ch) for ch in self.connectors}
        # scheduled reconciliation: when each channel's next pass is due, and where an unfinished pass stands
        self.reconcile_at: dict[str, int] = {}
        self.reconcile_after: dict[str, str] = {}
        # channels whose last step left due quantity keys for the token above the critical reserve
        self.held_back: set[str] = set()

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
            report.shipments += await self.send_shipments()
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
        self.held_back.discard(channel)
        now = self.clock.now_ms()
        calls_avail = bucket.available(now)
        if calls_avail <= 0:
            return report
        batch_size = max(1, conn.limits.max_batch_size)
        # one indexed range scan (pending keys by priority, enqueued_at), as many keys as the bucket can carry now
        limit = min(calls_avail * batch_size, self.options.max_items_per_channel_step)
        due = self.store.due(channel, now, limit + 1)  # one more: is there a backlog beyond this step?
        backlog = len(due) > limit
        due = due[:limit]
        flags = [p for p in due if p.field == PUBLISHED]
        if flags:
            self._record_published(channel, flags, now, report)
        items = [p for p in due if p.field == QUANTITY]
        if items:
            await self._step_quantities(channel, conn, items, report, backlog=backlog)
        content = [p for p in due if p.field in CONTENT_FIELDS]
        if content:
            await self._step_content(channel, conn, content, report)
        return report

    async def _step_quantities(
        self, channel: str, conn: Connector, items: list[Pending], report: StepReport, *, backlog: bool = False
    ) -> None:
        bucket = self.buckets[channel]
        batch_size = max(1, conn.limits.max_batch_size)
        now = self.clock.now_ms()
        if conn.dialect in NEEDS_REF:
            items = await self._with_refs(channel, conn, items, report)
            if not items:
                return
            now = self.clock.now_ms()
            calls_avail = bucket.available(now)
            items = items[: max(0, calls_avail * batch_size)]
            if not items:
                return
        # with a backlog, a token of the burst stays for a change that turns critical while this step's calls are
        # out (else the backlog keeps the bucket empty and every critical change waits for a refill): other keys use
        # the tokens above it (the same throughput, one token later), criticals (first in ``due`` order) all
        calls_avail = bucket.available(now)
        critical_calls = math.ceil(sum(1 for p in items if p.priority == P_CRITICAL) / batch_size)
        reserve = critical_reserve(bucket, self.options) if backlog else 0
        allowed = min(calls_avail, max(critical_calls, calls_avail - reserve))
        if len(items) > allowed * batch_size:
            items = items[: allowed * batch_size]
            self.held_back.add(channel)
            if not items:
                return
        bucket.take(math.ceil(len(items) / batch_size), now)
        await self._send_quantities(channel, conn, items, report, self.options.cas_resends)

    async def _send_quantities(
        self, channel: str, conn: Connector, items: Sequence[Pending], report: StepReport, resends: int
    ) -> None:
        """Send ``items`` (their calls are paid for) and record the outcome. While ``resends`` rounds are left, the
        keys that need another go are sent again at once: those a conflicting key aborted (all-or-nothing batches)
        straight away, alone, without waiting for the read-back the conflicting keys need (a critical drop in an
        aborted batch waits one round trip, not three); the compare-and-set conflicts once the channel's quantity
        is known. Both go with the value desired *now*: a newer one is often enqueued while the first send is out
        (the conflict itself is usually a sale on the channel, ingested meanwhile), and resending the value read
        before it would put a stale, higher quantity back on the channel."""
        results = await self._send(channel, conn, items)
        innocent, conflicted = self._apply_results(channel, items, results, report, resend=resends > 0)
        if innocent or conflicted:
            outcomes = await asyncio.gather(
                self._resend(channel, conn, self.store.latest(innocent), report, resends - 1),
                self._resend_observed(channel, conn, conflicted, report, resends - 1),
                return_exceptions=True,  # both finish before the step ends: no send outlives it
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _resend(
        self, channel: str, conn: Connector, items: Sequence[Pending], report: StepReport, resends: int
    ) -> None:
        if not items:
            return
        now = self.clock.now_ms()
        if self.buckets[channel].take(math.ceil(len(items) / max(1, conn.limits.max_batch_size)), now):
            await self._send_quantities(channel, conn, items, report, resends)
        else:
            self._defer(channel, items, now)

    async def _resend_observed(
        self,
        channel: str,
        conn: Connector,
        conflicted: Sequence[tuple[Pending, int | None]],
        report: StepReport,
        resends: int,
    ) -> None:
        if conflicted:
            ready = await self._observe(channel, conn, conflicted, report)
            await self._resend(channel, conn, ready, report, resends)

    async def _step_content(self, channel: str, conn: Connector, items: list[Pending], report: StepReport) -> None:
        """Price and content keys (priority below every quantity change) with the budget quantity left over, less
        a reserve of the burst kept for a quantity change that turns critical meanwhile: one call per key (file
        feeds: one file per batch). Price and content of one SKU go as separate updates, so a dialect that takes
        one and refuses the other (Walmart content) parks only that key."""
        bucket = self.buckets[channel]
        per_call = content_batch_size(conn)
        now = self.clock.now_ms()
        spare = bucket.available(now) - content_reserve(bucket)
        if spare <= 0:
            return
        items = items[: spare * per_call]
        if conn.dialect in CONTENT_NEEDS_REF:
            items = await self._with_refs(channel, conn, items, report)
            if not items:
                return
            now = self.clock.now_ms()
            spare = bucket.available(now) - content_reserve(bucket)
            items = items[: max(0, spare * per_call)]
        groups = [[p for p in items if p.field == f] for f in CONTENT_FIELDS]
        groups = [g for g in groups if g]
        if not groups or not bucket.take(sum(math.ceil(len(g) / per_call) for g in groups), now):
            return
        refs = self.refs.get(channel, {}) if conn.dialect in CONTENT_NEEDS_REF else {}
        sent = await asyncio.gather(
            *(
                self._send_content(conn, [content_update(conn.dialect, p, refs.get(p.sku)) for p in g], per_call)
                for g in groups
            )
        )
        for group, results in zip(groups, sent, strict=True):
            self._apply_results(channel, group, results, report, batch_size=per_call)

    async def _send_content(self, conn: Connector, updates: Sequence[ContentUpdate], per_call: int) -> list[ItemResult]:
        chunks = [updates[i : i + per_call] for i in range(0, len(updates), per_call)]
        parts = await asyncio.gather(*(self._send_content_chunk(conn, chunk) for chunk in chunks))
        return [r for part in parts for r in part]

    @staticmethod
    async def _send_content_chunk(conn: Connector, updates: Sequence[ContentUpdate]) -> list[ItemResult]:
        try:
            return list(await conn.update_content(updates))
        except ConnectorError as err:
            status = ItemStatus.RETRYABLE if err.retryable else ItemStatus.REJECTED
            return [
                ItemResult(u.sku, status, err.reason, str(err), error=err, retry_after_s=err.retry_after_s)
                for u in updates
            ]

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
        50). Each key is then compared with the value desired now (:meth:`SyncStore.latest`; it may have changed
        while the send and the read were out): a key the channel already shows is acknowledged; one no longer
        pending only records what the channel showed. A key whose quantity stays unknown because the read failed
        waits (an attempt); one the channel's call budget left unread spends no attempt but loses its stale
        expectation, so the next send sets the value without a compare, as a first send does: kept, it would
        conflict again at every send, abort its batch each time (critical keys with it) and be parked after
        ``max_attempts`` steps while the channel shows a wrong quantity."""
        if not conflicted:
            return []
        observed: dict[str, int | None] = {p.sku: qty for p, qty in conflicted}
        unknown = [p for p, qty in conflicted if qty is None]
        unread: set[str] = set()
        if unknown:
            got = await self._reread(channel, conn, unknown, report)
            if got is None:
                unread = {p.sku for p in unknown}
            else:
                observed.update(got)
        now = self.clock.now_ms()
        current = {p.sku: p for p in self.store.latest([p for p, _ in conflicted])}
        ready: list[Pending] = []
        shown: list[Pending] = []
        waiting: list[tuple[Pending, int, int, str]] = []
        gone: list[tuple[Pending, Any]] = []
        blind: list[Pending] = []
        for old, _ in conflicted:
            qty = observed.get(old.sku)
            p = current.get(old.sku)
            if p is None:
                if qty is not None:
                    gone.append((old, qty))
            elif qty is None and old.sku in unread:
                blind.append(p)
            elif qty is None:
                waiting.append((p, p.attempts + 1, now, "cas_mismatch: the channel's quantity could not be read"))
            elif qty == p.value:
                shown.append(p)
            else:
                ready.append(dataclasses.replace(p, acked_value=qty))
        if gone or blind:
            note = "cas_mismatch: no call budget to read the channel's quantity; next send without a compare"
            with self.store.db.tx() as tx:
                self.store.observed_many(tx, [*gone, *((p, None) for p in blind)], now)
                self.store.retry_many(tx, [(p, p.attempts, now, note) for p in blind], now)
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
    ) -> dict[str, int | None] | None:
        """A compare-and-set failed without telling us what the channel shows: read it, so the resend expects it.
        None: no call budget to read now (nothing was asked); a SKU the read did not return maps to None."""
        now = self.clock.now_ms()
        observed: dict[str, int | None] = {p.sku: None for p in stale}
        calls = math.ceil(len(stale) / 50)
        if not self.buckets[channel].take(calls, now):
            return None
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
            klass = "content" if p.field in CONTENT_FIELDS else "critical" if p.priority == P_CRITICAL else "other"
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
        batch_size: int | None = None,
    ) -> tuple[list[Pending], list[tuple[Pending, int | None]]]:
        """Record the outcome of one send in one transaction (an executemany per kind of write).

        With ``resend``, returns what the caller resends at once instead of recording it: the keys a conflicting
        key aborted (all-or-nothing batches), and the compare-and-set conflicts with the quantity the channel
        returned (None: unknown, read it back). Without it, those keys are made due again at once."""
        now = self.clock.now_ms()
        opts = self.options
        batch_size = max(1, batch_size or self.connectors[channel].limits.max_batch_size)
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
        counts["drift_repaired"] += sum(1 for p in acked if p.drift)
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
            if r.sent == 0 and r.cancels == 0 and r.shipments == 0:
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
                try:
                    calls, _ = await self.reconcile_when_idle(channel)
                except Exception:  # a failed page is read again at the next idle moment
                    log.exception("scheduled reconciliation failed on %s", channel)
                    calls = 0
                if calls:
                    total.calls += calls
                    continue  # a change may have been enqueued meanwhile: look at the queue first
                now = self.clock.now_ms()
                avail = bucket.available(now)
                if avail <= 0:  # out of budget: nothing to do before the next token
                    await _sleep_or(stop, None, max(0.001, bucket.wait_ms(1, now) / 1000))
                elif channel in self.held_back:  # due keys wait for the token above the critical reserve
                    need = critical_reserve(bucket, self.options) + 1
                    await _sleep_or(stop, ev, max(0.001, bucket.wait_ms(need, now) / 1000))
                else:
                    await _sleep_or(stop, ev, idle_s)

        async def cancel_loop() -> None:
            while not stop.is_set():
                try:
                    total.cancels += await self.send_cancellations()
                except Exception:
                    log.exception("sending cancellations failed")
                await _sleep_or(stop, None, max(idle_s, CANCEL_EVERY_S))

        async def shipment_loop() -> None:
            while not stop.is_set():
                try:
                    n = await self.send_shipments()
                    total.shipments += n
                except Exception:
                    log.exception("sending ship confirmations failed")
                    n = 0
                if not n:  # a full batch went out: look again at once
                    await _sleep_or(stop, None, max(idle_s, SEND_BACK_EVERY_S))

        self.store.add_listener(woken)
        try:
            await asyncio.gather(*(channel_loop(ch) for ch in sorted(self.connectors)), cancel_loop(), shipment_loop())
        finally:
            self.store.remove_listener(woken)
        return total

    async def drain(self, max_steps: int = 100) -> StepReport:
        """Step until nothing is sent (tests; the clock must move for retries that wait)."""
        total = StepReport()
        for _ in range(max_steps):
            r = await self.step()
            total.add(r)
            if r.sent == 0 and r.cancels == 0 and r.shipments == 0:
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
            found = self._record_reconcile(ch, desired, snaps, calls, passes=1)
            drifts.extend(found)
        return drifts

    def _record_reconcile(
        self,
        ch: str,
        desired: Sequence[tuple[str, Any, bool, Any]],
        snaps: Mapping[str, QuantitySnapshot],
        calls: int,
        passes: int,
    ) -> list[Drift]:
        """Compare what the channel showed with the desired quantities, re-enqueue and count the drift (one tx)."""
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
            self.store.count(tx, ch, {"drift": len(found), "reconcile_calls": calls, "reconciled": passes})
        return found

    def _first_reconcile_ms(self, channel: str, now: int) -> int:
        """Scheduled passes are spread over the interval: channel i of n starts at (i + 1) / n of it."""
        every = self.options.reconcile_every_ms or 0
        chans = sorted(self.connectors)
        return now + every * (chans.index(channel) + 1) // len(chans)

    async def reconcile_when_idle(self, channel: str) -> tuple[int, int]:
        """The scheduled reconciliation (``WorkerOptions.reconcile_every_ms``), a page at a time, only while the
        channel is idle: nothing due, and tokens above the reserve kept for quantity changes. A pass walks the
        channel's desired quantities in SKU order over as many idle moments as it needs (the cursor is kept), then
        the next pass is due one interval later. Returns (calls made, drifted keys found)."""
        every = self.options.reconcile_every_ms
        if not every:
            return 0, 0
        now = self.clock.now_ms()
        due_at = self.reconcile_at.setdefault(channel, self._first_reconcile_ms(channel, now))
        if now < due_at:
            return 0, 0
        conn = self.connectors[channel]
        bucket = self.buckets[channel]
        per_page = 1 if conn.dialect in PER_SKU_READS else 50
        calls = drifted = 0
        while True:
            now = self.clock.now_ms()
            nxt = self.store.next_due_ms(channel)
            if (nxt is not None and nxt <= now) or bucket.available(now) - content_reserve(bucket) <= 0:
                return calls, drifted  # sends wait for nothing: the pass goes on at the next idle moment
            page = self.store.desired_page(channel, self.reconcile_after.get(channel), per_page)
            if not page:
                self.reconcile_after.pop(channel, None)
                self.reconcile_at[channel] = now + every
                with self.store.db.tx() as tx:
                    self.store.count(tx, channel, {"reconciled": 1})
                return calls, drifted
            bucket.take(1, now)
            calls += 1
            try:
                snaps = {s.sku: s for s in await conn.get_quantities([row[0] for row in page])}
            except ConnectorError as err:
                report = StepReport()
                self._rate_limit(channel, err, report)
                with self.store.db.tx() as tx:
                    self.store.count(tx, channel, {"reconcile_calls": 1, "http_429": report.http_429})
                return calls, drifted
            drifted += len(self._record_reconcile(channel, page, snaps, 1, passes=0))
            self.reconcile_after[channel] = page[-1][0]

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

    # ------------------------------------------------------------------ ship confirmations and cancellations

    async def send_shipments(self, limit: int = 50, channels: Collection[str] | None = None) -> int:
        """Drain due ship confirmations (:class:`~accord.orders.shipments.ShipmentOutbox`) through each channel's
        ``confirm_shipment``, spending its token bucket; channels run concurrently, each in order. Returns how many
        the channels accepted. Usable from ``step``-driven callers (the simulator) and from ``serve``'s loop."""
        assert self.shipments is not None
        outbox = self.shipments
        due = self._due_per_channel(lambda now, n, ch: outbox.due(now, n, ch), limit, channels, SHIPMENTS)
        return await self._send_back(due, self._confirm_one, outbox, SHIPMENTS)

    async def send_cancellations(self, limit: int = 50, channels: Collection[str] | None = None) -> int:
        """Send due order cancellations (:class:`~accord.sync.cancellations.CancelQueue`) through each channel's
        ``cancel_order`` with the reason mapped to its vocabulary. Returns how many the channels accepted."""
        assert self.cancels is not None
        queue = self.cancels
        wanted = [ch for ch in sorted(self.connectors) if channels is None or ch in channels]
        feeds = [ch for ch in wanted if isinstance(self.connectors[ch], AmazonConnector)]
        if feeds:
            await self._read_cancel_reports(queue, feeds)
        sent = await self._send_cancel_feeds(queue, limit, feeds) if feeds else 0
        rest = [ch for ch in wanted if ch not in feeds]
        due = self._due_per_channel(lambda now, n, ch: queue.due(now, n, ch), limit, rest, CANCELS)
        return sent + await self._send_back(due, self._cancel_one, queue, CANCELS)

    async def _send_cancel_feeds(self, queue: CancelQueue, limit: int, channels: Sequence[str]) -> int:
        """Channels that cancel through a feed (Amazon ``POST_ORDER_ACKNOWLEDGEMENT_DATA``): a channel's due
        cancellations (up to ``limit``) go in one feed for one createFeed token, and wait as submitted until the
        feed's processing report is read (:meth:`_read_cancel_reports`). Orders the channel does not know are
        parked; an error before the feed was accepted (throttle, outage) retries them all."""

        async def one(ch: str) -> int:
            conn = self.connectors[ch]
            assert isinstance(conn, AmazonConnector)
            now = self.clock.now_ms()
            bucket = self._bucket_for(ch, CANCELS)
            if bucket.available(now) < 1:
                return 0
            items = queue.due(now, limit, ch)
            if not items or not bucket.take(1, now):
                return 0
            try:
                feed_id, results = await conn.cancel_orders([(p.channel_order_id, p.reason) for p in items])
            except Exception as exc:  # nothing was accepted: every order of the batch is retried (or parked)
                for p in items:
                    self._send_back_failed(ch, CANCELS, p.attempts, exc, queue, p.channel_order_id)
                return 0
            sent = 0
            for p, result in zip(items, results, strict=True):
                if result.ok and feed_id is not None:  # MessageIDs follow the accepted orders' order
                    now = self.clock.now_ms()
                    check = now + FEED_FIRST_CHECK_MS
                    queue.mark_submitted(ch, p.channel_order_id, feed_id, sent + 1, p.attempts + 1, check, now)
                    sent += 1
                    continue
                err = result.error or RequestRejected(result.detail or f"cancellation of {p.channel_order_id} refused")
                self._send_back_failed(ch, CANCELS, p.attempts, err, queue, p.channel_order_id)
            if sent:
                self._count(ch, {"cancels_sent": sent})
            return sent

        return sum(await asyncio.gather(*(one(ch) for ch in channels)))

    async def _read_cancel_reports(self, queue: CancelQueue, channels: Sequence[str]) -> int:
        """Settle submitted feed cancellations from their feeds' processing reports (getFeed, then the report
        document, paced by getFeed's usage plan): accepted → sent; an order the report rejects (already shipped,
        unknown item...) → dead with the report's reason, visible and redrivable. A feed still being processed is
        looked at again later; a failed lookup (throttle, outage) is retried at the next look. Returns how many
        cancellations were settled."""

        async def one(ch: str) -> int:
            conn = self.connectors[ch]
            assert isinstance(conn, AmazonConnector)
            settled = 0
            for feed_id, items in queue.submitted(ch, self.clock.now_ms()).items():
                now = self.clock.now_ms()
                if not self._bucket_for(ch, FEED_REPORTS).take(1, now):
                    break
                try:
                    status = await conn.get_feed(feed_id)
                    if not status.finished:
                        queue.recheck(ch, feed_id, now + FEED_RECHECK_MS, now)
                        continue
                    by_message = [""] * max(p.message for p in items)
                    for p in items:
                        by_message[p.message - 1] = p.channel_order_id
                    results = await conn.get_cancellation_results(status, by_message)
                except Exception as exc:  # the report could not be read now: look again later
                    log.warning("cancellation feed %s on %s: report not read: %s", feed_id, ch, exc)
                    queue.recheck(ch, feed_id, now + FEED_RECHECK_MS, now)
                    continue
                outcome = {r.sku: r for r in results}  # keyed by order id
                done = self.clock.now_ms()
                for p in items:
                    result = outcome.get(p.channel_order_id)
                    if result is not None and not result.ok:
                        body = result.error.body if result.error is not None else None
                        text = f"rejected in feed {feed_id}: {result.detail}"
                        queue.park(ch, p.channel_order_id, p.attempts, text, body, done, from_state=SUBMITTED)
                        self._count(ch, {"cancels_dead": 1})
                        log.warning(
                            "cancellation of %s on %s rejected by feed report: %s", p.channel_order_id, ch, text
                        )
                    else:
                        queue.mark_sent(ch, p.channel_order_id, p.attempts, done)
                    settled += 1
            return settled

        return sum(await asyncio.gather(*(one(ch) for ch in channels)))

    def _op_bucket(self, channel: str, kind: str) -> TokenBucket | None:
        """The operation's own bucket where the dialect publishes one (Amazon ``confirmShipment`` 2/s burst 10,
        cancellations by ``createFeed`` 0.0083/s burst 15: usage plans of their own, so the quantity writes' budget is
        left alone); None where the channel's one rate covers every call."""
        key = (channel, kind)
        if key not in self._send_back_buckets:
            conn = self.connectors[channel]
            name = SEND_BACK_OPERATION_OVERRIDES.get((conn.dialect, kind), SEND_BACK_OPERATIONS[kind])
            op = conn.limits.operations.get(name)
            bucket = None
            if op is not None:
                reserve = max(0, min(self.options.burst_reserve, op.burst - 1))
                bucket = TokenBucket(
                    op.rate_per_s * self.options.bucket_safety, op.burst - reserve, self.clock.now_ms()
                )
            self._send_back_buckets[key] = bucket
        return self._send_back_buckets[key]

    def _bucket_for(self, channel: str, kind: str) -> TokenBucket:
        op = self._op_bucket(channel, kind)
        return self.buckets[channel] if op is None else op

    def _due_per_channel(
        self,
        due: Callable[[int, int, str | None], Sequence[Any]],
        limit: int,
        channels: Collection[str] | None,
        kind: str,
    ) -> list[tuple[str, Any]]:
        """Due rows, at most what each channel's bucket can carry now, read per channel so a throttled channel's
        backlog never hides another's (one cheap query first: usually nothing is due at all)."""
        now = self.clock.now_ms()
        if not due(now, 1, None):
            return []
        out: list[tuple[str, Any]] = []
        for ch in sorted(self.connectors):
            if channels is not None and ch not in channels:
                continue
            room = min(limit, self._bucket_for(ch, kind).available(now))
            if room > 0:
                out.extend((ch, p) for p in due(now, room, ch))
        return out

    async def _send_back(self, due: Sequence[tuple[str, Any]], one: Any, queue: Any, kind: str) -> int:
        by_channel: dict[str, list[Any]] = {}
        for ch, p in due:
            if ch in self.connectors:  # a channel without a connector here keeps its rows pending
                by_channel.setdefault(ch, []).append(p)

        async def channel(ch: str, items: list[Any]) -> int:
            n = 0
            for p in items:
                now = self.clock.now_ms()
                bucket = self._bucket_for(ch, kind)
                if not bucket.take(1, now):
                    break  # out of budget: the rest stay due for the next round
                calls = [0]
                token = CALLS.set(calls)  # this task's context only: the channel's other loops are not counted
                try:
                    n += int(await one(ch, p, queue))
                finally:
                    CALLS.reset(token)
                if calls[0] > 1:  # a lookup before the write, one call per unit (Lazada): pay for every call
                    bucket.charge(calls[0] - 1, self.clock.now_ms())
            return n

        counts = await asyncio.gather(*(channel(ch, items) for ch, items in sorted(by_channel.items())))
        return sum(counts)

    async def _confirm_one(self, channel: str, p: PendingShipment, outbox: ShipmentOutbox) -> bool:
        key = p.confirmation.shipment_id
        conn = self.connectors[channel]
        if conn.one_tracking_per_order:  # a later parcel of a split order: the channel's order is confirmed already
            by = outbox.sent_sibling(channel, p.confirmation.channel_order_id, key)
            if by is not None:
                now = self.clock.now_ms()
                outbox.mark_covered(channel, key, by, now)
                self._bucket_for(channel, SHIPMENTS).refund(1, now)  # settled without a call
                self._count(channel, {"shipments_covered": 1})
                return False
        try:
            await conn.confirm_shipment(p.confirmation)
        except Exception as exc:  # anything else is a bug in one dialect: retried, then dead
            self._send_back_failed(channel, SHIPMENTS, p.attempts, exc, outbox, key)
            return False
        outbox.mark_sent(channel, key, p.attempts + 1, self.clock.now_ms())
        self._count(channel, {"shipments_sent": 1})
        return True

    async def _cancel_one(self, channel: str, p: PendingCancel, queue: CancelQueue) -> bool:
        try:
            await self.connectors[channel].cancel_order(p.channel_order_id, p.reason, p.note)
        except Exception as exc:  # anything else is a bug in one dialect: retried, then dead
            self._send_back_failed(channel, CANCELS, p.attempts, exc, queue, p.channel_order_id)
            return False
        queue.mark_sent(channel, p.channel_order_id, p.attempts + 1, self.clock.now_ms())
        self._count(channel, {"cancels_sent": 1})
        return True

    def _send_back_failed(self, channel: str, kind: str, attempts: int, exc: Exception, queue: Any, key: str) -> None:
        """A failed confirmation or cancellation: rate limited → due again after Retry-After (not an attempt; the
        operation's bucket, or the channel's when it has none, blocked meanwhile); retryable → exponential backoff
        (at least Retry-After); rejected or out of attempts → dead, with the marketplace's answer kept."""
        now = self.clock.now_ms()
        opts = self.options
        err = exc if isinstance(exc, ConnectorError) else None
        text = f"{err.reason}: {err}" if err is not None else f"{type(exc).__name__}: {exc}"
        if isinstance(err, RateLimited):
            wait = opts.default_retry_after_ms if err.retry_after_s is None else int(err.retry_after_s * 1000)
            op = self._op_bucket(channel, kind)
            if op is not None:  # the operation's own limit: the channel's other writes go on
                op.block_until(now + wait, now)
            else:
                self._rate_limit(channel, err, StepReport())
            queue.retry(channel, key, attempts, now + wait, text, now)
            self._count(channel, {f"{kind}_retries": 1, "http_429": 1})
            return
        tried = attempts + 1
        if (err is not None and not err.retryable) or tried >= opts.send_max_attempts:
            queue.park(channel, key, tried, text, err.body if err is not None else None, now)
            self._count(channel, {f"{kind}_dead": 1})
            log.warning("%s %s on %s parked after %d attempt(s): %s", kind, key, channel, tried, text)
            return
        delay = min(opts.send_max_backoff_ms, opts.send_backoff_ms * 2**attempts)
        if err is not None and err.retry_after_s is not None:
            delay = max(delay, int(err.retry_after_s * 1000))
        queue.retry(channel, key, tried, now + delay, text, now)
        self._count(channel, {f"{kind}_retries": 1})

    def _count(self, channel: str, counts: Mapping[str, int]) -> None:
        with self.store.db.tx() as tx:
            self.store.count(tx, channel, counts)


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


def build_connectors(
    configs: Mapping[str, ChannelConfig], client: httpx.AsyncClient, clock: Clock | None = None
) -> dict[str, Connector]:
    return {ch: create_connector(cfg, client, clock=clock) for ch, cfg in sorted(configs.items())}
