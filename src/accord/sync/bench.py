"""``accord bench sync``: a flash sale across 32 channels, real-time sync vs a 15-minute interval sync.

What runs
---------
* The demo world (:func:`accord.sync.world.build_world`: 32 channels, 8 dialects, 8 regions, FBA-like and dark-store
  stock), ``--skus`` SKUs (2,000 by default) on a fresh SQLite file, stock drawn from ``--seed``. A small "hot" set
  has little stock per regional DC, the rest has plenty.
* The sale starts in sync: every channel shows its ATS (the sandbox listings are seeded with it and the desired
  state is marked acknowledged), and listing ids are known (learnt once when a channel is onboarded).
* The flash sale is a seeded schedule of buyer attempts (Poisson arrivals, ``--orders-per-s`` for ``--seconds``,
  at most ``MAX_ORDERS``): a channel, a SKU (mostly hot ones) and 1–2 units. A buyer never buys more than the
  listing shows, so a stale quantity produces a real oversell; Accord must then cancel the order.
* **Real-time run** (wall clock): the sandbox is served by uvicorn on 127.0.0.1 (random free port) in a process of
  its own, as the remote marketplaces it stands in for would be (it never competes with Accord for the GIL), and the
  connectors talk to it over loopback HTTP with each dialect's published limits (the sandbox enforces them: 429 with
  Retry-After). Buyers buy through the sandbox; each placed order reaches Accord as a push notification would (the
  bench hands it to :class:`~accord.sync.orders.OrderIngestor` at once, skipping the webhook hop): it reserves stock
  in the transaction that records it → ``ChannelAvailabilityChanged`` → relay → desired state → the
  :class:`~accord.sync.worker.SyncWorker` sends within each channel's token bucket, most urgent first. After the
  sale the worker keeps running until every channel shows its ATS (or ``drain_timeout_s``).
* **Baseline** (``baseline_mode``): the same schedule (same seed) is replayed on a *virtual clock*
  (:class:`~accord.app.ports.ManualClock`) against an in-process sandbox and a second database, with a fixed
  15-minute interval sync instead of the worker: at ``phase + k × 900 s`` every listing is set to its ATS — instantly
  and for free, which flatters the baseline. ``phase`` is drawn from the seed in ``[0, 900 s)`` (an interval sync
  is not aligned with a sale). Orders are ingested the same way, so both runs count oversold units identically.
  Waiting 15 real minutes is not needed: nothing but the schedule and the sync times depends on time there.

Figures
-------
``critical_p50_ms`` / ``critical_p99_ms``: ATS reaching 0 or the channel's threshold, change committed → the channel
acknowledged the value (so it shows it); ``other_*`` every other change. ``calls``: HTTP calls the sandbox received
from Accord (writes, lookups, cancellations); ``calls_min``: per channel, one write per (channel, SKU) whose final
value differs from the value shown at the start, batched by the dialect's batch size. ``oversold_units``: units in
orders Accord had to cancel for lack of stock. ``converged_s``: seconds after the last order until every channel
shows its ATS; per channel it is compared with ``bound_s`` = the calls the backlog at the sale's end needs at the
channel's call rate (batched), plus one second. The backlog is the larger of the keys the channel shows wrongly
(``behind_at_sale_end``) and the keys queued for it (``queued_at_sale_end``: a buyer's own order already lowered the
channel's figure, which Accord cannot know without reading it back, so some queued sends are redundant).
Latency samples: the worker times each acknowledged value from the commit of the oldest unsent change, or, for a
critical one, from the commit that made it critical. Nothing here is asserted by tests; timings depend on the machine.

Explanations: ``oversold_detail`` (empty when none) describes each oversold order — channel, dialect, SKU, when it
sold, what the channel showed vs the true ATS, which order took the stock and ``accord_knew_for_ms`` (how long before
the sale Accord had written the value the channel needed; <= 0: the sale came first, no sync could have prevented it),
the writes and read-backs of that (channel, SKU), the orders on the SKU before it and the channel's calls at the time.
``unconverged_detail`` describes the keys a channel still showed wrongly when the bench stopped waiting (with Accord's
desired state for each). ``buyers_late_p99_ms`` / ``buyers_late_max_ms``: how late the bench's own loop placed buyer
attempts (a starved host bunches attempts that were due apart). Per channel, ``critical_p50_ms`` / ``critical_p99_ms``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import pickle
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from accord.app.engine import Engine
from accord.app.ports import ManualClock, SystemClock
from accord.app.relay import Relay
from accord.bootstrap import App, build_app
from accord.connectors.base import (
    ChannelOrder,
    Connector,
    ItemResult,
    OrderLine,
    QuantitySnapshot,
    QuantityUpdate,
    limits_for,
)
from accord.domain.catalog import Sku
from accord.domain.ledger import Movement, MovementKind
from accord.sandbox.app import Sandbox, channel_config, create_app, sandbox_of
from accord.sandbox.core import ChannelSpec, ListingSpec, SandboxConfig
from accord.sandbox.server import free_port
from accord.settings import Settings
from accord.store import schema as t
from accord.store import sync_tables as st
from accord.store.db import Tx
from accord.sync.orders import CANCELLED, OrderIngestor
from accord.sync.store import SyncStore
from accord.sync.subscriber import SyncSubscriber
from accord.sync.worker import StepReport, SyncWorker, WorkerOptions, build_connectors, call_budget
from accord.sync.world import World, build_world, demo_world

MAX_ORDERS = 50_000
MAX_SKUS = 20_000
MAX_SECONDS = 600.0
BASELINE_MODE = (
    "virtual_clock: the same seeded sale replayed on a ManualClock against an in-process sandbox; every listing is "
    "set to its ATS at phase + k*900 s (instant, free, phase drawn from the seed); the real-time run uses the wall "
    "clock over loopback HTTP"
)
CHECK_EVERY_S = 0.1
TARGET_EVERY_S = 1.0  # after the sale: how often the ATS the channels must show is re-read and handed over
SANDBOX_START_S = 60.0
CONVERGE_SLACK_S = 1.0
UNCONVERGED_KEYS = 20  # per channel that did not converge: keys described in ``unconverged_detail``
WORKER_IDLE_S = 0.05  # a channel's longest sleep with keys pending elsewhere; enqueues wake it at once


@dataclass(frozen=True)
class SaleConfig:
    seconds: float = 60.0
    skus: int = 2_000
    seed: int = 7
    orders_per_s: float = 50.0
    hot_skus: int = 150  # little stock: these sell out during the sale
    hot_share: float = 0.5  # share of buyer attempts on hot SKUs
    drain_timeout_s: float = 120.0  # after the sale: stop waiting for convergence
    baseline_interval_s: float = 900.0

    def __post_init__(self) -> None:
        if not 0 < self.seconds <= MAX_SECONDS:
            raise ValueError(f"seconds must be in (0, {MAX_SECONDS}]")
        if not 1 <= self.skus <= MAX_SKUS:
            raise ValueError(f"skus must be in [1, {MAX_SKUS}]")
        if self.orders_per_s <= 0 or self.drain_timeout_s < 0 or self.baseline_interval_s <= 0:
            raise ValueError("orders_per_s and baseline_interval_s must be > 0, drain_timeout_s >= 0")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One buyer: at ``at_ms`` after the sale starts, wants ``qty`` of ``sku`` on ``channel``."""

    at_ms: int
    channel: str
    sku: str
    qty: int


def sku_ids(n: int) -> list[str]:
    return [f"SKU{i:05d}" for i in range(n)]


def stock_plan(cfg: SaleConfig, world: World) -> list[Movement]:
    """Receipts before the sale: hot SKUs get a few units per location, the others plenty (seeded)."""
    rng = random.Random(cfg.seed * 7919 + 1)
    out: list[Movement] = []
    for i, sku in enumerate(sku_ids(cfg.skus)):
        hot = i < cfg.hot_skus
        for loc in world.locations:
            if loc.id.startswith("dc-"):
                qty = rng.randint(2, 8) if hot else rng.randint(20, 60)
            elif loc.id == "wh-us":
                qty = rng.randint(0, 3) if hot else rng.randint(10, 30)
            elif loc.id == "dark-nyc":
                qty = rng.randint(0, 3) if hot else rng.randint(2, 8)
            else:  # platform-held
                qty = rng.randint(0, 2) if hot else rng.randint(0, 10)
            if qty > 0:
                out.append(Movement(MovementKind.RECEIVE, sku, loc.id, qty, f"bench:rcv:{sku}:{loc.id}"))
    return out


def sale_schedule(cfg: SaleConfig, channels: Sequence[str]) -> list[Attempt]:
    """Poisson arrivals at ``orders_per_s`` for ``seconds`` (at most MAX_ORDERS), seeded; sorted by time."""
    rng = random.Random(cfg.seed)
    hot = max(1, min(cfg.hot_skus, cfg.skus))
    out: list[Attempt] = []
    t_s = 0.0
    while len(out) < MAX_ORDERS:
        t_s += rng.expovariate(cfg.orders_per_s)
        if t_s >= cfg.seconds:
            break
        channel = channels[rng.randrange(len(channels))]
        on_hot = rng.random() < cfg.hot_share or hot >= cfg.skus
        i = rng.randrange(hot) if on_hot else rng.randrange(hot, cfg.skus)
        out.append(Attempt(int(t_s * 1000), channel, f"SKU{i:05d}", 2 if rng.random() < 0.15 else 1))
    return out


def calls_min(changed: Mapping[str, int], batch_sizes: Mapping[str, int]) -> int:
    """The fewest write calls that could carry the final state: per channel, the (channel, SKU) keys whose final
    value differs from what the channel showed at the start, in batches of the dialect's batch size."""
    return sum(math.ceil(n / max(1, batch_sizes.get(ch, 1))) for ch, n in changed.items() if n > 0)


def changed_keys(before: Mapping[str, Mapping[str, int]], after: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """Per channel, how many SKUs have a different value in ``after`` than in ``before`` (missing = 0)."""
    out: dict[str, int] = {}
    for ch in sorted(set(before) | set(after)):
        b, a = before.get(ch, {}), after.get(ch, {})
        out[ch] = sum(1 for sku in set(a) | set(b) if a.get(sku, 0) != b.get(sku, 0))
    return out


def percentile(values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def converge_bound_s(behind: int, batch_size: int, calls_per_s: float) -> float:
    """Seconds a channel's limits need to write ``behind`` keys from an empty bucket, plus slack."""
    calls = math.ceil(behind / max(1, batch_size))
    return round(calls / calls_per_s + CONVERGE_SLACK_S, 3) if calls_per_s > 0 else math.inf


def read_ats(app: App) -> dict[str, dict[str, int]]:
    """channel → sku → ATS, from the engine's stored values."""
    out: dict[str, dict[str, int]] = {ch: {} for ch in app.engine.config().channels}
    with app.db.engine.connect() as conn:
        for sku, text in conn.execute(sa.select(t.sku_ats.c.sku_id, t.sku_ats.c.ats)):
            for ch, qty in json.loads(text).items():
                out.setdefault(ch, {})[sku] = int(qty)
        conn.rollback()
    return out


def order_of(channel_order_id: str, sku: str, qty: int, created_ms: int) -> ChannelOrder:
    when = datetime.fromtimestamp(created_ms / 1000, tz=UTC)
    return ChannelOrder(channel_order_id, when, "placed", (OrderLine(sku, qty, None, "1"),))


def oversold(ingestor: OrderIngestor) -> tuple[int, int, dict[str, int]]:
    """(units in orders cancelled for lack of stock, such orders, orders by status)."""
    rows = ingestor.orders(limit=MAX_ORDERS * 2)
    by_status: dict[str, int] = {}
    units = n = 0
    for r in rows:
        by_status[r.status] = by_status.get(r.status, 0) + 1
        if r.status == CANCELLED:
            n += 1
            units += sum(int(ln["qty"]) for ln in r.lines)
    return units, n, dict(sorted(by_status.items()))


# ------------------------------------------------------------------------------------------------ oversold detail


def wall_ms() -> int:
    """Wall-clock milliseconds: the engine (SystemClock) and the sandbox process stamp times with the same clock."""
    return time.time_ns() // 1_000_000


SetQuantities = Callable[[Sequence[QuantityUpdate]], Coroutine[Any, Any, list[ItemResult]]]
GetQuantities = Callable[[Sequence[str]], Coroutine[Any, Any, list[QuantitySnapshot]]]


@dataclass(frozen=True, slots=True)
class PushRecord:
    """One quantity call Accord made for a key, as the bench saw it leave and its result come back: a write (the
    value sent) or a read-back (the value the channel returned)."""

    kind: str  # "write" | "read"
    sent_ms: int
    done_ms: int
    qty: int | None
    expected_qty: int | None
    batch: int  # keys in the connector call
    result: str  # "ok" or "<status>:<reason>"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order of the real-time sale: placed on the channel by a buyer, then ingested by Accord."""

    channel: str
    order_id: str
    sku: str
    qty: int
    placed_ms: int
    shown_qty: int  # what the listing showed the buyer
    written_ms: int  # when a write last set the listing (0: no write since the sandbox started)
    ingested_ms: int  # the ingesting transaction's work done (committed just after, with its batch)
    status: str
    ats_before: Mapping[str, int]  # Accord's ATS per channel for the SKU just before ingestion (every earlier order in)
    ats_after: Mapping[str, int]
    # a cancelled order: the channel's last calls sent before the sale, as [kind, keys, sent_ms, done_ms (0: out)]
    calls_before: Sequence[list[Any]] = ()


@dataclass
class SaleJournal:
    """What the real-time sale did, kept to explain an oversold unit: every order with Accord's ATS around it, and
    the last quantity writes per (channel, SKU) with their timing and result (wall clock, bounded)."""

    pushes_per_key: int = 8
    calls_per_channel: int = 64
    orders: list[OrderRecord] = field(default_factory=list)
    pushes: dict[tuple[str, str], deque[PushRecord]] = field(default_factory=dict)
    # per channel, its last quantity calls as [kind, keys, sent_ms, done_ms] (done 0 while the call is out; filled
    # in when it returns): what the channel was busy with when a sale oversold (copied then, see ``calls_until``)
    calls: dict[str, deque[list[Any]]] = field(default_factory=dict)
    relayed_ms: dict[str, int] = field(default_factory=dict)  # order id → desired state written (relay drained)

    def record_push(self, channel: str, sku: str, rec: PushRecord) -> None:
        q = self.pushes.get((channel, sku))
        if q is None:
            q = self.pushes[(channel, sku)] = deque(maxlen=self.pushes_per_key)
        q.append(rec)

    def record_call(self, channel: str, kind: str, keys: int, sent_ms: int) -> list[Any]:
        """A call leaves: its entry, whose ``done_ms`` (index 3) the caller sets when it returns."""
        q = self.calls.get(channel)
        if q is None:
            q = self.calls[channel] = deque(maxlen=self.calls_per_channel)
        entry: list[Any] = [kind, keys, sent_ms, 0]
        q.append(entry)
        return entry

    def calls_until(self, channel: str, until_ms: int, n: int = 8) -> list[list[Any]]:
        """The channel's last ``n`` calls sent by ``until_ms`` (the entries themselves: one still out completes).
        Safe from another thread: copying a deque holds the GIL throughout."""
        return [c for c in tuple(self.calls.get(channel, ())) if c[2] <= until_ms][-n:]

    def wrap(self, conns: Mapping[str, Connector]) -> None:
        """Record every quantity write and read-back the worker makes through ``conns`` (the objects are patched)."""
        for ch, conn in conns.items():
            setattr(conn, "set_quantities", self._writes(ch, conn.set_quantities))  # noqa: B010 (patch the object)
            setattr(conn, "get_quantities", self._reads(ch, conn.get_quantities))  # noqa: B010

    def _writes(self, channel: str, inner: SetQuantities) -> SetQuantities:
        async def set_quantities(items: Sequence[QuantityUpdate]) -> list[ItemResult]:
            sent, n = wall_ms(), len(items)
            call = self.record_call(channel, "write", n, sent)
            try:
                results = await inner(items)
            except Exception as exc:
                done = call[3] = wall_ms()
                for u in items:
                    rec = PushRecord("write", sent, done, u.qty, u.expected_qty, n, f"raised:{exc!r}")
                    self.record_push(channel, u.sku, rec)
                raise
            done = call[3] = wall_ms()
            by_sku = {r.sku: r for r in results}
            for u in items:
                r = by_sku.get(u.sku)
                result = "missing" if r is None else "ok" if r.ok else f"{r.status.value}:{r.reason}"
                self.record_push(channel, u.sku, PushRecord("write", sent, done, u.qty, u.expected_qty, n, result))
            return results

        return set_quantities

    def _reads(self, channel: str, inner: GetQuantities) -> GetQuantities:
        async def get_quantities(skus: Sequence[str]) -> list[QuantitySnapshot]:
            sent, n = wall_ms(), len(skus)
            call = self.record_call(channel, "read", n, sent)
            try:
                snaps = await inner(skus)
            except Exception as exc:
                done = call[3] = wall_ms()
                for sku in skus:
                    self.record_push(channel, sku, PushRecord("read", sent, done, None, None, n, f"raised:{exc!r}"))
                raise
            done = call[3] = wall_ms()
            for snap in snaps:
                self.record_push(channel, snap.sku, PushRecord("read", sent, done, snap.qty, None, n, "ok"))
            return snaps

        return get_quantities

    def key_calls(self, channel: str, sku: str, t0_ms: int) -> list[dict[str, Any]]:
        """The last writes and read-backs of one (channel, SKU), times in ms since ``t0_ms``."""
        return [
            {
                "kind": p.kind,
                "qty": p.qty,
                "batch": p.batch,
                "expected_qty": p.expected_qty,
                "sent_at_ms": p.sent_ms - t0_ms,
                "done_at_ms": p.done_ms - t0_ms,
                "result": p.result,
            }
            for p in self.pushes.get((channel, sku), ())
        ]

    def oversold_detail(self, t0_ms: int, dialects: Mapping[str, str], recent: int = 8) -> list[dict[str, Any]]:
        """Every order Accord had to cancel: when it sold, what the channel showed vs the true ATS, which order took
        the stock and how long Accord had known it (``accord_knew_for_ms``: from the desired value being written to
        this sale; <= 0 or None: the sale came first), the writes and read-backs that had set the listing, the orders
        on that SKU just before it, and the channel's last calls before the sale (what it was busy with). Times in
        ms since the sale started."""

        def rel(ms: int) -> int | None:
            return ms - t0_ms if ms > 0 else None

        out: list[dict[str, Any]] = []
        for i, o in enumerate(self.orders):
            if o.status != CANCELLED:
                continue
            same_sku = [x for x in self.orders[:i] if x.sku == o.sku]
            before = same_sku[-recent:]
            busy = o.calls_before or self.calls_until(o.channel, o.placed_ms, recent)
            # the order that took this channel's ATS below this order's quantity, and how long before this sale Accord
            # had written the value the channel needed (<= 0: the sale came first; no sync could have prevented it)
            drop = next(
                (
                    x
                    for x in reversed(same_sku)
                    if x.ats_before.get(o.channel, 0) >= o.qty > x.ats_after.get(o.channel, 0)
                ),
                None,
            )
            known_ms = self.relayed_ms.get(drop.order_id, 0) if drop is not None else 0
            out.append(
                {
                    "channel": o.channel,
                    "dialect": dialects.get(o.channel),
                    "sku": o.sku,
                    "order_id": o.order_id,
                    "qty": o.qty,
                    "sold_at_ms": rel(o.placed_ms),
                    "channel_showed": o.shown_qty,
                    "true_ats": o.ats_before.get(o.channel),
                    "listing_written_at_ms": rel(o.written_ms),
                    "ingested_at_ms": rel(o.ingested_ms),
                    "ats_dropped_by": None
                    if drop is None
                    else {"channel": drop.channel, "order_id": drop.order_id, "sold_at_ms": rel(drop.placed_ms)},
                    "accord_knew_for_ms": o.placed_ms - known_ms if known_ms else None,
                    "last_pushes": self.key_calls(o.channel, o.sku, t0_ms),
                    "orders_on_sku_before": [
                        {
                            "channel": x.channel,
                            "qty": x.qty,
                            "sold_at_ms": rel(x.placed_ms),
                            "channel_showed": x.shown_qty,
                            "status": x.status,
                            "ingested_at_ms": rel(x.ingested_ms),
                            "desired_written_at_ms": rel(self.relayed_ms.get(x.order_id, 0)),
                            "ats_here_before": x.ats_before.get(o.channel),
                            "ats_here_after": x.ats_after.get(o.channel),
                        }
                        for x in before
                    ],
                    "channel_calls_before_sale": [
                        {"kind": kind, "keys": keys, "sent_at_ms": rel(sent), "done_at_ms": rel(done)}
                        for kind, keys, sent, done in busy
                    ],
                }
            )
        return out


def _prepare(url: str, cfg: SaleConfig, clock: ManualClock | None) -> tuple[App, World]:
    app = build_app(Settings(), database_url=url, clock=clock, migrate=True, sync=False)
    world = build_world(app.engine)
    engine: Engine = app.engine
    skus = sku_ids(cfg.skus)
    for i in range(0, len(skus), 5_000):
        engine.add_skus([Sku(s, f"bench item {s}") for s in skus[i : i + 5_000]])
    plan = stock_plan(cfg, world)
    for i in range(0, len(plan), 5_000):
        engine.move_batch(plan[i : i + 5_000])
    return app, world


def _specs(world: World, ats: Mapping[str, Mapping[str, int]], skus: Sequence[str]) -> list[ChannelSpec]:
    return [
        ChannelSpec(ch.id, ch.dialect, [ListingSpec(s, qty=ats.get(ch.id, {}).get(s, 0)) for s in skus], ch.currency)
        for ch in world.channels
    ]


def _add_bench_routes(app: FastAPI, sandbox: Sandbox) -> None:
    """The bench's own routes, on the sandbox's event loop (no races with the dialects):

    * ``POST /_bench/buy [[channel, sku, qty], ...]``: buyers; the placed orders come back, each with the quantity
      the listing showed and when a write last set the listing (``[channel, order, sku, qty, created_ms, shown,
      written_ms]``).
    * ``PUT /_bench/target {channel: {sku: qty}}``: what every channel must show (Accord's ATS).
    * ``POST /_bench/mismatches [channel, ...]``: per channel, listings that differ from the target (counted here,
      so the check costs the bench one small request, not a copy of every listing).
    * ``POST /_bench/mismatch_keys [channel, ...]``: per channel, the first listings that differ from the target
      (``[sku, shown, target]``): what a channel that did not converge still shows wrongly.
    * ``GET /_bench/calls``: ``[[channel, status], ...]`` of every call the channels received."""
    target: dict[str, dict[str, int]] = {}

    async def buy(request: Request) -> JSONResponse:
        placed: list[list[Any]] = []
        for channel, sku, qty in json.loads(await request.body()):
            o = sandbox.place_order(str(channel), str(sku), int(qty))
            if o is not None:
                written_ms = sandbox.channel(o.channel_id).listings[o.sku].updated_ms
                placed.append([o.channel_id, o.order_id, o.sku, o.qty, o.created_ms, o.shown_qty, written_ms])
        return JSONResponse({"placed": placed})

    async def put_target(request: Request) -> JSONResponse:
        target.clear()
        target.update(json.loads(await request.body()))
        return JSONResponse({"channels": len(target)})

    async def mismatches(request: Request) -> JSONResponse:
        out: dict[str, int] = {}
        for ch in json.loads(await request.body()):
            want = target.get(ch, {})
            out[ch] = sum(1 for sku, li in sandbox.channel(ch).listings.items() if li.qty != want.get(sku, 0))
        return JSONResponse(out)

    async def mismatch_keys(request: Request) -> JSONResponse:
        out: dict[str, list[list[Any]]] = {}
        for ch in json.loads(await request.body()):
            want = target.get(ch, {})
            rows = [[sku, li.qty, want.get(sku, 0)] for sku, li in sorted(sandbox.channel(ch).listings.items())]
            out[ch] = [r for r in rows if r[1] != r[2]][:UNCONVERGED_KEYS]
        return JSONResponse(out)

    async def calls(request: Request) -> JSONResponse:
        return JSONResponse([[c.channel, c.status] for c in sandbox.calls() if c.channel in sandbox.channels])

    for path, fn, method in (
        ("/_bench/buy", buy, "POST"),
        ("/_bench/target", put_target, "PUT"),
        ("/_bench/mismatches", mismatches, "POST"),
        ("/_bench/mismatch_keys", mismatch_keys, "POST"),
        ("/_bench/calls", calls, "GET"),
    ):
        app.add_api_route(path, fn, methods=[method])
        app.router.routes.insert(0, app.router.routes.pop())  # before the sandbox's catch-all channel route


def _sandbox_config(specs: list[ChannelSpec], seed: int) -> SandboxConfig:
    return SandboxConfig(channels=specs, seed=seed, clock=SystemClock(), max_call_records=2_000_000)


def serve_sandbox_process(specs_path: str, seed: int, port: int) -> None:
    """The sandbox process (:class:`SandboxProcess`): the marketplaces over loopback HTTP, with the bench's routes."""
    with open(specs_path, "rb") as f:
        specs = pickle.load(f)  # written by the bench itself, a moment ago
    app = create_app(_sandbox_config(specs, seed))
    _add_bench_routes(app, sandbox_of(app))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)


class SandboxProcess:
    """The sandbox served by uvicorn in a Python process of its own (a fresh interpreter: nothing is inherited)."""

    def __init__(self, specs: list[ChannelSpec], seed: int, workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.specs_path = workdir / "sandbox-specs.pickle"
        self.specs_path.write_bytes(pickle.dumps(specs))
        self.args = [
            sys.executable,
            "-c",
            "import sys; from accord.sync.bench import serve_sandbox_process as s; "
            "s(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))",
            str(self.specs_path),
            str(seed),
            str(self.port),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.args)
        deadline = time.monotonic() + SANDBOX_START_S
        while True:
            try:
                if httpx.get(f"{self.base_url}/_control/clock", timeout=1.0).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                pass
            if not self.alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("sandbox process did not start")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# ------------------------------------------------------------------------------------------------ real time


@dataclass
class RealtimeResult:
    critical_ms: list[int] = field(default_factory=list)
    other_ms: list[int] = field(default_factory=list)
    worker_calls: int = 0
    worker_429: int = 0
    orders_placed: int = 0
    behind_at_end: dict[str, int] = field(default_factory=dict)
    queue_at_end: dict[str, int] = field(default_factory=dict)
    converged_after_end_s: dict[str, float | None] = field(default_factory=dict)
    sale_s: float = 0.0
    changes: dict[str, int] = field(default_factory=dict)
    journal: SaleJournal = field(default_factory=SaleJournal)
    critical_by_channel: dict[str, list[int]] = field(default_factory=dict)
    unconverged: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)  # channel → (sku, shown, want)
    buyers_late_ms: list[int] = field(default_factory=list)  # per attempt: how late the bench's loop placed it
    t0_wall_ms: int = 0


Tick = Callable[[str, float], None]


async def _set_target(client: httpx.AsyncClient, base_url: str, app: App) -> None:
    """Hand the ATS every channel must show to the sandbox process (it counts mismatches on its side)."""
    ats = await asyncio.to_thread(read_ats, app)
    r = await client.put(f"{base_url}/_bench/target", content=json.dumps(ats))
    r.raise_for_status()


async def _mismatches(client: httpx.AsyncClient, base_url: str, channels: Sequence[str]) -> dict[str, int]:
    r = await client.post(f"{base_url}/_bench/mismatches", json=list(channels))
    r.raise_for_status()
    return {str(k): int(v) for k, v in r.json().items()}


def _versions(app: App) -> dict[str, int]:
    d = st.sync_desired
    with app.db.engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.channel_id, sa.func.sum(d.c.version)).group_by(d.c.channel_id)).all()
        conn.rollback()
    return {r[0]: int(r[1] or 0) for r in rows}


async def _realtime(
    app: App, channels: Sequence[str], base_url: str, schedule: Sequence[Attempt], cfg: SaleConfig, tick: Tick
) -> RealtimeResult:
    res = RealtimeResult()
    store = SyncStore(app.db)
    relay = Relay(app.db, [SyncSubscriber(store, app.engine.clock)], app.engine.clock, gap_timeout_ms=0)
    ingestor = OrderIngestor(app.engine)
    channels = sorted(channels)
    versions_before = _versions(app)
    journal = res.journal
    q_ats = app.db.compile(sa.select(t.sku_ats.c.ats).where(t.sku_ats.c.sku_id == sa.bindparam("sku")))

    def ats_of(tx: Tx, sku: str) -> dict[str, int]:
        row = tx.one(q_ats, (sku,))
        return {str(k): int(v) for k, v in json.loads(row[0]).items()} if row is not None else {}

    def ingest(placed: list[list[Any]]) -> None:
        with app.db.tx() as tx:
            for ch, oid, sku, qty, created_ms, shown, written_ms in placed:
                before = ats_of(tx, str(sku))
                got = ingestor.ingest(tx, str(ch), order_of(str(oid), str(sku), int(qty), int(created_ms)), "webhook")
                journal.orders.append(
                    OrderRecord(
                        str(ch),
                        str(oid),
                        str(sku),
                        int(qty),
                        int(created_ms),
                        int(shown),
                        int(written_ms),
                        wall_ms(),
                        got.status,
                        before,
                        ats_of(tx, str(sku)),
                        journal.calls_until(str(ch), int(created_ms)) if got.status == CANCELLED else (),
                    )
                )
        relay.drain()
        done = wall_ms()
        for _ch, oid, *_ in placed:
            journal.relayed_ms[str(oid)] = done

    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        conns = build_connectors(store.endpoints(), client, app.engine.clock)
        journal.wrap(conns)
        worker = SyncWorker(store, conns, app.engine.clock, WorkerOptions(), ingestor)
        stop = asyncio.Event()
        totals = StepReport()
        # every channel on its own loop, woken by the subscriber's enqueues (same process), as `accord serve` runs it
        task = asyncio.create_task(worker.serve(stop, idle_s=WORKER_IDLE_S, total=totals))
        t0 = time.monotonic()
        res.t0_wall_ms = wall_ms()
        i = 0
        try:
            while i < len(schedule):
                elapsed_ms = (time.monotonic() - t0) * 1000
                due: list[Attempt] = []
                while i < len(schedule) and schedule[i].at_ms <= elapsed_ms:
                    due.append(schedule[i])
                    i += 1
                tick("sale", elapsed_ms / 1000)
                if not due:
                    await asyncio.sleep(min(0.02, max(0.0, (schedule[i].at_ms - elapsed_ms) / 1000)))
                    continue
                res.buyers_late_ms.extend(int(elapsed_ms) - a.at_ms for a in due)
                r = await client.post(f"{base_url}/_bench/buy", json=[[a.channel, a.sku, a.qty] for a in due])
                r.raise_for_status()
                placed = r.json()["placed"]
                res.orders_placed += len(placed)
                await asyncio.to_thread(ingest, placed)
            rest_s = cfg.seconds - (time.monotonic() - t0)
            if rest_s > 0:
                await asyncio.sleep(rest_s)
            await asyncio.to_thread(relay.drain)
            res.sale_s = time.monotonic() - t0
            tick("sale", cfg.seconds)
            end = time.monotonic()
            await _set_target(client, base_url, app)
            target_at = end
            res.behind_at_end = await _mismatches(client, base_url, channels)
            res.queue_at_end = {s.channel: s.queue_depth for s in await asyncio.to_thread(store.status)}
            left = {ch for ch, n in res.behind_at_end.items() if n > 0}
            res.converged_after_end_s = {ch: (None if ch in left else 0.0) for ch in channels}
            while left and time.monotonic() - end < cfg.drain_timeout_s:
                await asyncio.sleep(CHECK_EVERY_S)
                now_s = round(time.monotonic() - end, 3)
                tick("converge", now_s)
                if time.monotonic() - target_at >= TARGET_EVERY_S:  # no orders after the sale: ATS stays; check it
                    await _set_target(client, base_url, app)
                    target_at = time.monotonic()
                current = await _mismatches(client, base_url, sorted(left))
                for ch, n in current.items():
                    if n == 0:
                        res.converged_after_end_s[ch] = now_s
                        left.discard(ch)
            if left:
                r = await client.post(f"{base_url}/_bench/mismatch_keys", json=sorted(left))
                r.raise_for_status()
                res.unconverged = {str(ch): [(str(k), int(a), int(b)) for k, a, b in v] for ch, v in r.json().items()}
        finally:
            stop.set()
            await task
            res.worker_calls, res.worker_429 = totals.calls, totals.http_429
    for s in worker.samples:
        (res.critical_ms if s.klass == "critical" else res.other_ms).append(s.latency_ms)
        if s.klass == "critical":
            res.critical_by_channel.setdefault(s.channel, []).append(s.latency_ms)
    after = _versions(app)
    res.changes = {ch: after.get(ch, 0) - versions_before.get(ch, 0) for ch in channels}
    return res


def _unconverged_detail(app: App, res: RealtimeResult) -> list[dict[str, Any]]:
    """Keys a channel still showed wrongly when the bench stopped waiting: what it showed and should show, Accord's
    desired state for the key, and the last calls for it (ms since the sale started)."""
    d = st.sync_desired
    cols = (d.c.value, d.c.version, d.c.acked_version, d.c.acked_value, d.c.dead, d.c.attempts, d.c.last_error)
    out: list[dict[str, Any]] = []
    with app.db.engine.connect() as conn:
        for ch, keys in sorted(res.unconverged.items()):
            for sku, shown, want in keys:
                where = (d.c.channel_id == ch, d.c.sku_id == sku, d.c.field == "quantity")
                row = conn.execute(sa.select(*cols).where(*where)).first()
                out.append(
                    {
                        "channel": ch,
                        "sku": sku,
                        "channel_shows": shown,
                        "ats": want,
                        "desired": None
                        if row is None
                        else {
                            "value": json.loads(row[0]),
                            "version": int(row[1]),
                            "acked_version": int(row[2]),
                            "acked_value": None if row[3] is None else json.loads(row[3]),
                            "dead": bool(row[4]),
                            "attempts": int(row[5]),
                            "last_error": row[6],
                        },
                        "last_calls": res.journal.key_calls(ch, sku, res.t0_wall_ms),
                    }
                )
        conn.rollback()
    return out


def _mark_in_sync(app: App, now_ms: int) -> None:
    d = st.sync_desired
    with app.db.engine.begin() as conn:
        conn.execute(sa.update(d).values(acked_version=d.c.version, acked_value=d.c.value, acked_at=now_ms))


def run_realtime(
    cfg: SaleConfig, workdir: Path, schedule: Sequence[Attempt], tick: Tick
) -> tuple[dict[str, Any], dict[str, dict[str, int]]]:
    app, world = _prepare(f"sqlite:///{workdir / 'realtime.db'}", cfg, None)
    try:
        store = SyncStore(app.db)
        relay = Relay(app.db, [SyncSubscriber(store, app.engine.clock)], app.engine.clock, gap_timeout_ms=0)
        relay.drain()  # the receipts' availability changes → desired state for every (channel, SKU)
        _mark_in_sync(app, app.engine.clock.now_ms())  # the sale starts with every channel showing its ATS
        before = read_ats(app)
        skus = sku_ids(cfg.skus)
        specs = _specs(world, before, skus)
        # the same (deterministic) sandbox, not served: credentials and listing ids as the served one has them
        sandbox = Sandbox(_sandbox_config(specs, cfg.seed))
        with SandboxProcess(specs, cfg.seed, workdir) as base_url:
            now = app.engine.clock.now_ms()
            for channel in world.channels:
                cid = channel.id
                store.set_endpoint(channel_config(sandbox, cid, base_url), now)
                store.save_listing_refs(cid, {s: li.ref for s, li in sandbox.channel(cid).listings.items()})
            res = asyncio.run(_realtime(app, sorted(sandbox.channels), base_url, schedule, cfg, tick))
            calls = [(str(ch), int(status)) for ch, status in httpx.get(f"{base_url}/_bench/calls", timeout=60).json()]
        after = read_ats(app)
        units, orders_n, by_status = oversold(OrderIngestor(app.engine))
        dialect = {ch.id: ch.dialect for ch in world.channels}
        per_channel: dict[str, Any] = {}
        for ch in sorted(dialect):
            lim = limits_for(dialect[ch])
            rate, _burst = call_budget(lim)
            queued = res.queue_at_end.get(ch, 0)
            bound = converge_bound_s(max(queued, res.behind_at_end.get(ch, 0)), lim.max_batch_size, rate)
            conv = res.converged_after_end_s.get(ch)
            budget = rate * max(1, lim.max_batch_size)
            per_channel[ch] = {
                "dialect": dialect[ch],
                "budget_keys_per_s": round(budget, 3),
                "ats_changes_per_s": round(res.changes.get(ch, 0) / cfg.seconds, 3),
                "calls": sum(1 for c, _ in calls if c == ch),
                "http_429": sum(1 for c, status in calls if c == ch and status == 429),
                "behind_at_sale_end": res.behind_at_end.get(ch, 0),
                "queued_at_sale_end": queued,
                "critical_p50_ms": percentile(res.critical_by_channel.get(ch, []), 0.5),
                "critical_p99_ms": percentile(res.critical_by_channel.get(ch, []), 0.99),
                "converged_s": conv,
                "bound_s": bound,
                "within_bound": conv is not None and conv <= bound,
            }
        batch = {ch: limits_for(d).max_batch_size for ch, d in dialect.items()}
        converged = [v for v in res.converged_after_end_s.values() if v is not None]
        all_converged = len(converged) == len(res.converged_after_end_s)
        out: dict[str, Any] = {
            "critical_p50_ms": percentile(res.critical_ms, 0.5),
            "critical_p99_ms": percentile(res.critical_ms, 0.99),
            "critical_samples": len(res.critical_ms),
            "other_p50_ms": percentile(res.other_ms, 0.5),
            "other_p99_ms": percentile(res.other_ms, 0.99),
            "other_samples": len(res.other_ms),
            "calls": len(calls),
            "calls_min": calls_min(changed_keys(before, after), batch),
            "worker_calls": res.worker_calls,
            "http_429": sum(1 for _, status in calls if status == 429),
            "oversold_units": units,
            "oversold_orders": orders_n,
            "orders_attempted": len(schedule),
            "orders_placed": res.orders_placed,
            # the bench's own loop places buyers; when the host starves it, attempts due apart go out together
            # (an oversold order with accord_knew_for_ms <= 0 sold before Accord could know of the first sale)
            "buyers_late_p99_ms": percentile(res.buyers_late_ms, 0.99),
            "buyers_late_max_ms": max(res.buyers_late_ms, default=None),
            "orders_by_status": by_status,
            "sale_s": round(res.sale_s, 3),
            "converged_s": max(converged, default=0.0) if all_converged else None,
            "channels_over_budget": sum(
                1 for v in per_channel.values() if v["ats_changes_per_s"] > v["budget_keys_per_s"]
            ),
            "oversold_detail": res.journal.oversold_detail(res.t0_wall_ms, dialect),
            "unconverged_detail": _unconverged_detail(app, res),
            "channels": per_channel,
        }
        return out, before
    finally:
        app.close()


# ------------------------------------------------------------------------------------------------ baseline


def run_baseline(cfg: SaleConfig, workdir: Path, schedule: Sequence[Attempt], tick: Tick) -> dict[str, Any]:
    clock = ManualClock()
    start = clock.now_ms()
    app, world = _prepare(f"sqlite:///{workdir / 'baseline.db'}", cfg, clock)
    try:
        skus = sku_ids(cfg.skus)
        sandbox = Sandbox(SandboxConfig(channels=_specs(world, read_ats(app), skus), seed=cfg.seed, clock=clock))
        ingestor = OrderIngestor(app.engine)
        interval_ms = int(cfg.baseline_interval_s * 1000)
        phase_ms = random.Random(cfg.seed * 31 + 5).randrange(interval_ms)
        next_sync = phase_ms
        sync_times: list[float] = []
        for n, a in enumerate(schedule):
            while next_sync <= a.at_ms:
                clock.ms = start + next_sync
                for ch, values in read_ats(app).items():
                    for sku, listing in sandbox.channel(ch).listings.items():
                        listing.qty = values.get(sku, 0)
                sync_times.append(next_sync / 1000)
                next_sync += interval_ms
            clock.ms = start + a.at_ms
            o = sandbox.place_order(a.channel, a.sku, a.qty)
            if o is not None:
                ingestor.ingest_one(a.channel, order_of(o.order_id, o.sku, o.qty, o.created_ms), "webhook")
            if n % 200 == 0:
                tick("baseline", n)
        tick("baseline", len(schedule))
        units, orders_n, by_status = oversold(ingestor)
        return {
            "baseline_15m_oversold_units": units,
            "baseline_15m_oversold_orders": orders_n,
            "baseline_15m_orders_by_status": by_status,
            "baseline_sync_phase_s": phase_ms / 1000,
            "baseline_syncs_during_sale_at_s": sync_times,
        }
    finally:
        app.close()


# ------------------------------------------------------------------------------------------------ entry point


def run_sync_bench(
    cfg: SaleConfig | None = None, *, progress: bool = True, workdir: Path | None = None
) -> dict[str, Any]:
    """Run both sales and return the figures (see the module docstring)."""
    cfg = cfg or SaleConfig()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    started = time.monotonic()
    channels = sorted(ch.id for ch in demo_world().channels)
    schedule = sale_schedule(cfg, channels)
    console = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="accord-bench-sync-") as tmp:
        work = workdir or Path(tmp)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TimeElapsedColumn(),
            console=console,
            disable=not progress,
            transient=False,
        ) as bar:
            tasks: dict[str, TaskID] = {
                "sale": bar.add_task(f"real-time flash sale ({len(schedule)} buyers, s)", total=cfg.seconds),
                "converge": bar.add_task("converging after the sale (s, bounded)", total=cfg.drain_timeout_s),
                "baseline": bar.add_task("baseline: 15-min interval sync, virtual clock", total=len(schedule)),
            }

            def tick(name: str, value: float) -> None:
                bar.update(tasks[name], completed=value)

            realtime, _before = run_realtime(cfg, work, schedule, tick)
            bar.update(tasks["converge"], completed=cfg.drain_timeout_s)
            baseline = run_baseline(cfg, work, schedule, tick)
    channel_rows = realtime.pop("channels")
    result: dict[str, Any] = {
        "bench": "sync",
        "baseline_mode": BASELINE_MODE,
        "seconds": cfg.seconds,
        "skus": cfg.skus,
        "channels_n": len(channels),
        "seed": cfg.seed,
        "orders_per_s": cfg.orders_per_s,
        **realtime,
        **baseline,
        "goals": {
            "critical_p99_ms_le_1000": realtime["critical_p99_ms"] is not None and realtime["critical_p99_ms"] <= 1000,
            "oversold_units_zero": realtime["oversold_units"] == 0,
            "every_channel_within_bound": all(r["within_bound"] for r in channel_rows.values()),
        },
        "channels": channel_rows,
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    return result
