"""Scenario runner: the real engine, relay, sync subscriber/worker, connectors and sandbox on one virtual clock.

Time moves in one-minute steps. Inside a step, buyer demand (drawn from its own seeded stream, so it is the same
for every sync policy) arrives at exact virtual milliseconds; each buyer buys on the sandbox, never more than the
listing shows. A placed order reaches Accord the way the channel's dialect delivers it in production: Shopify's
signed ``orders/create`` webhook, posted to Accord's API webhook route (in-process, HMAC verified), or the
connector's order poll (``SyncWorker.poll_orders``, every two minutes for a channel with new orders, within Amazon's
getOrders rate; a poll that would find nothing is not made). Ingestion reserves stock in the same transaction and
(with the order lifecycle) routes the order; the simulated warehouses then ship, re-route and deliver it
(:mod:`accord.sim.fulfilment`), and the ship confirmations and cancellations go back through the connectors. The
relay turns the ATS changes into desired state; the worker pushes it through the connectors over in-process HTTP
within each channel's token bucket:

- ``realtime``: the worker wakes one second after a change (and whenever a retry or a token is due);
- ``15m`` / ``6h``: desired state is flushed only at those boundaries (a flush runs until the queue is empty).

A worker step visits only the channels with work that may be due (enqueued since their last step, or a retry or
token due now); the HTTP goes straight into the sandbox's channel handler (:class:`SandboxTransport`). Neither changes
a result: both are checked against the plain path (every channel each step, the full ASGI app) in tests/sim.

Invariants are checked during the run (touched SKUs' buckets every ``check_every_min``, the full ledger replay every
``verify_every_min`` and at the end, token buckets never negative); a violation raises :class:`InvariantViolation`
naming the seed, policy and step.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import sqlalchemy as sa

from accord.api.app import create_app as create_api
from accord.app.ports import ManualClock, SequentialIds
from accord.app.relay import Relay, StoredEvent
from accord.bootstrap import build_app
from accord.connectors.base import ConnectorError
from accord.domain import events as ev
from accord.domain.ledger import Movement, MovementKind, violations
from accord.orders.service import OrderService
from accord.sandbox.app import Sandbox, channel_config, create_app, sandbox_of
from accord.sandbox.core import ChannelSpec, ListingSpec, SandboxConfig
from accord.sandbox.core import poisson as _poisson
from accord.sim.fulfilment import Warehouses, fulfilment_state
from accord.sim.metrics import Recorder, build_metrics
from accord.sim.world import DAY_MIN, SimWorld, WorldParams, generate_world, install_world
from accord.store import schema as t
from accord.store import sync_tables as st
from accord.store.db import Tx
from accord.sync.orders import CANCELLED, HELD, RESERVED
from accord.sync.store import SyncStore
from accord.sync.subscriber import SyncSubscriber
from accord.sync.worker import NEEDS_REF, SyncWorker, WorkerOptions, build_connectors

MIN_MS = 60_000
BASE_URL = "http://sandbox"
ACCORD_URL = "http://accord"
WEBHOOK_DIALECTS = frozenset({"shopify"})  # dialects whose orders reach Accord by webhook; the others are polled
SEND_BACK_EVERY_MIN = 5  # ship confirmations and cancellations go back to the channels this often
# policy -> flush interval in minutes (0: continuous)
POLICIES: dict[str, int] = {"realtime": 0, "15m": 15, "6h": 360}
DEMAND_SALT = 0x5EED_D3A1


class InvariantViolation(RuntimeError):
    def __init__(self, seed: int, policy: str, step: int, detail: str) -> None:
        super().__init__(f"invariant violated (seed {seed}, policy {policy}, step {step}): {detail}")
        self.seed, self.policy, self.step, self.detail = seed, policy, step, detail


@dataclass(frozen=True, slots=True)
class SimConfig:
    seed: int = 7
    days: int = 14
    policy: str = "realtime"
    params: WorldParams = field(default_factory=WorldParams)
    realtime_delay_ms: int = 1_000  # relay + worker reaction time in real-time mode
    # in-process HTTP straight into the sandbox's channel handler (the same handler the sandbox app's catch-all route
    # calls, without the web framework's routing and middleware around it); False: the full ASGI app
    direct_transport: bool = True
    check_every_min: int = 60
    verify_every_min: int = DAY_MIN
    sample_every_min: int = 60
    order_poll_every_min: int = 2  # how often a channel with new orders is polled (within Amazon's getOrders rate)
    fulfil: bool = True  # the simulated warehouses ship, re-route and deliver routed orders
    inject_violation_at_step: int | None = None  # tests: corrupt one balance at this step
    max_steps: int | None = None  # stop early (profiling); None = days × 1440 one-minute steps

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"unknown sync policy {self.policy!r}; use one of {', '.join(POLICIES)}")
        if self.days <= 0:
            raise ValueError(f"days must be > 0, got {self.days}")


ProgressFn = Callable[[int, int], None]


class AtsMirror:
    """Relay subscriber (not transactional): the true ATS per (channel, SKU), as the engine publishes it."""

    name = "sim-ats-mirror"
    types: frozenset[str] | None = frozenset({ev.CHANNEL_AVAILABILITY_CHANGED})
    transactional = False

    def __init__(self) -> None:
        self.ats: dict[tuple[str, str], int] = {}
        self.touched: set[tuple[str, str]] = set()

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        sku = str(event.data["sku"])
        for c in event.data.get("changes") or []:
            key = (str(c["channel"]), sku)
            self.ats[key] = int(c["new_ats"])
            self.touched.add(key)


class SandboxTransport(httpx.AsyncBaseTransport):
    """httpx transport into :meth:`Sandbox.serve`, the sandbox's channel API entry point, without the ASGI app or a
    Starlette request around it: the connectors' requests and the sandbox's replies are the same bytes, at a fraction
    of the per-call cost. Anything that is not a channel's API (the control routes) goes through the full app."""

    def __init__(self, app: Any, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.full = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        channel, _, rest = path[1:].partition("/")
        if channel not in self.sandbox.channels:
            return await self.full.handle_async_request(request)
        body = await request.aread()
        url = request.url
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
        host = headers.get("host") or url.netloc.decode("ascii")
        reply = await self.sandbox.serve(  # the parts a Starlette request would give (see Sandbox.handle)
            channel,
            "/" + rest,
            request.method,
            path,
            parse_qsl(url.query.decode("latin-1"), keep_blank_values=True),
            headers,
            body,
            f"{url.scheme}://{host}",
        )
        out = self.sandbox.response(reply)
        return httpx.Response(out.status_code, headers=out.raw_headers, content=bytes(out.body), request=request)


class _Skip:
    """Moves the sync subscriber's cursor past the world's set-up events (the run starts converged)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.types: frozenset[str] | None = frozenset({ev.CHANNEL_AVAILABILITY_CHANGED})
        self.transactional = False

    def handle(self, event: StoredEvent, tx: Tx | None) -> None:
        return None


@dataclass(order=True)
class _Demand:
    at_ms: int
    channel: str
    sku: str
    qty: int


@dataclass(frozen=True, slots=True)
class _Sale:
    """A sandbox order on its way to Accord (by webhook or the next poll)."""

    sku: str
    qty: int
    price: float


class Simulation:
    def __init__(
        self,
        cfg: SimConfig,
        database_url: str,
        *,
        world: SimWorld | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        cfg.check()
        self.cfg = cfg
        self.progress = progress
        params = replace(cfg.params, days=cfg.days)
        self.world = world or generate_world(cfg.seed, params)
        self.clock = ManualClock()
        self.start_ms = self.clock.now_ms()
        self.database_url = database_url
        self.app = build_app(database_url=database_url, clock=self.clock, ids=SequentialIds(), migrate=True)
        self.engine = self.app.engine
        install_world(self.engine, self.world)
        self.mirror = AtsMirror()
        Relay(self.app.db, [_Skip(SyncSubscriber.name), self.mirror], self.clock, gap_timeout_ms=0).drain()
        self.sku_spec = self.world.sku_index()
        for s in self.world.skus:  # SKUs without stock never produced an event: their ATS is 0 everywhere
            for ch in self.world.channels:
                self.mirror.ats.setdefault((ch.id, s.id), 0)
        self.mirror.touched.clear()
        specs = [
            ChannelSpec(
                ch.id,
                ch.dialect,
                [
                    ListingSpec(s.id, qty=self.mirror.ats[ch.id, s.id], title=s.title, price=f"{s.price_usd:.2f}")
                    for s in self.world.skus
                ],
                currency=ch.currency,
            )
            for ch in self.world.channels
        ]
        self.sandbox_app = create_app(SandboxConfig(channels=specs, seed=cfg.seed, clock=self.clock))
        self.sandbox = sandbox_of(self.sandbox_app)
        self.store = SyncStore(self.app.db)
        for ch in self.world.channels:
            self.store.set_endpoint(channel_config(self.sandbox, ch.id, BASE_URL), self.clock.now_ms())
            if ch.dialect in NEEDS_REF:  # the listing mapping an onboarding would have stored
                listings = self.sandbox.channels[ch.id].listings
                self.store.save_listing_refs(ch.id, {sku: li.ref for sku, li in sorted(listings.items())})
        self.relay = Relay(
            self.app.db, [SyncSubscriber(self.store, self.clock), self.mirror], self.clock, gap_timeout_ms=0
        )
        self.service = OrderService(self.engine)
        self.orders = self.service.ingestor  # with the order lifecycle: every ingested order becomes an order
        self.warehouses = Warehouses(self.world, self.service, cfg.seed, self.start_ms)
        self.warehouses.configure()
        self.api = create_api(self.app)
        self.awaiting: dict[str, dict[str, _Sale]] = {}  # channel -> sandbox order id -> sale not yet ingested
        self.poll_due: set[str] = set()
        self.last_webhook: dict[str, str] = {}  # channel -> id of the last delivery posted
        self.dialect = {ch.id: ch.dialect for ch in self.world.channels}
        self.rec = Recorder(self.world, self.start_ms)
        for (ch_id, sku), ats in sorted(self.mirror.ats.items()):
            self.rec.init_key(ch_id, sku, self.sandbox.channels[ch_id].listings[sku].qty, ats)
        self.demand_rng = random.Random(cfg.seed ^ DEMAND_SALT)
        self.touched_skus: set[str] = set()
        self.returns: list[tuple[int, str, str, int]] = []
        self.step = 0
        self.wake_ms: int | None = None
        self.flush_open = False
        self.worker: SyncWorker
        self.accord: httpx.AsyncClient  # Accord's API, in-process (the marketplaces' webhooks are posted to it)
        # per-channel scheduling: a worker step visits only channels with work that may be due (the others have
        # nothing to send, so stepping them would only cost a queue scan each)
        self.channel_due: dict[str, int] = {}  # channel -> when its next key is due and its bucket has a token
        self.dirty: set[str] = set()  # channels the sync store enqueued for since their last step
        self.store.add_listener(self.dirty.update)

    # ------------------------------------------------------------------ public

    def run(self) -> dict[str, Any]:
        try:
            return asyncio.run(self._run())
        finally:
            self.app.close()

    # ------------------------------------------------------------------ the loop

    async def _run(self) -> dict[str, Any]:
        cfg = self.cfg
        steps = cfg.days * DAY_MIN if cfg.max_steps is None else min(cfg.max_steps, cfg.days * DAY_MIN)
        interval = POLICIES[cfg.policy]
        pos = list(self.world.purchase_orders)
        po_i = 0
        transport: httpx.AsyncBaseTransport = (
            SandboxTransport(self.sandbox_app, self.sandbox)
            if cfg.direct_transport
            else httpx.ASGITransport(app=self.sandbox_app)
        )
        async with (
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=self.api), base_url=ACCORD_URL) as accord,
        ):
            self.accord = accord
            conns = build_connectors(self.store.endpoints(), client, self.clock)
            self.worker = SyncWorker(self.store, conns, self.clock, WorkerOptions(), self.orders)
            for step in range(steps):
                self.step = step
                t0 = self.start_ms + step * MIN_MS
                if cfg.fulfil:
                    await self._fulfil(t0, send_back=step % SEND_BACK_EVERY_MIN == 0)
                if interval and step % interval == 0:
                    self.flush_open = True
                    self.wake_ms = t0
                arrivals: list[Movement] = []
                while po_i < len(pos) and pos[po_i].arrive_min <= step:
                    po = pos[po_i]
                    arrivals.append(Movement(MovementKind.RECEIVE, po.sku, po.location, po.qty, f"sim:{po.id}"))
                    self.rec.inbound_units += po.qty
                    po_i += 1
                if arrivals:
                    self._advance(t0)
                    self.engine.move_batch(arrivals)
                    self.touched_skus.update(m.sku for m in arrivals)
                    self._after_change()
                for d in self._demand(step, t0):
                    await self._worker_until(d.at_ms)
                    self._advance(d.at_ms)
                    await self._buy(d)
                await self._worker_until(t0 + MIN_MS - 1)
                self._advance(t0 + MIN_MS)
                if self.poll_due and (step + 1) % cfg.order_poll_every_min == 0:
                    await self._poll()
                if (step + 1) % cfg.sample_every_min == 0:
                    self.rec.sample(self.clock.now_ms())
                if cfg.inject_violation_at_step == step:
                    self._corrupt()
                if (step + 1) % cfg.check_every_min == 0 or cfg.inject_violation_at_step == step:
                    self._check(full=(step + 1) % cfg.verify_every_min == 0 or cfg.inject_violation_at_step == step)
                if self.progress is not None:
                    self.progress(step + 1, steps)
            self._check(full=True)
        final = self._final_state()
        return {
            "schema": 1,
            "seed": cfg.seed,
            "policy": cfg.policy,
            "days": cfg.days,
            "world": self.world.summary(),
            "metrics": build_metrics(self.rec, final),
        }

    def _advance(self, to_ms: int) -> None:
        if to_ms > self.clock.ms:
            self.rec.integrate(to_ms)
            self.clock.ms = to_ms

    def _demand(self, step: int, t0: int) -> list[_Demand]:
        """Buyer arrivals in one minute: base Poisson per channel, plus the surges. Independent of the policy."""
        rng = self.demand_rng
        w = self.world
        out: list[_Demand] = []
        for ch in w.channels:
            lam = w.base_rate_per_min(ch.id, step)
            for _ in range(_poisson(rng, lam)):
                s = w.pick_sku(ch.id, rng)
                qty = rng.randint(2, 6) if s.long_tail and rng.random() < 0.2 else (2 if rng.random() < 0.12 else 1)
                out.append(_Demand(t0 + rng.randrange(MIN_MS), ch.id, s.id, qty))
        for surge in w.surges:
            if not surge.start_min <= step < surge.end_min:
                continue
            for ch_id, mult in sorted(surge.channels.items()):
                for sku in surge.skus:
                    base = self.sku_spec[sku].base_per_day * w.params.orders_per_day / w._base_total
                    lam = base * mult / DAY_MIN * w.time_factor(ch_id, step)  # extra, on top of the base
                    for _ in range(_poisson(rng, lam)):
                        out.append(_Demand(t0 + rng.randrange(MIN_MS), ch_id, sku, 1))
        out.sort()
        return out

    async def _buy(self, d: _Demand) -> None:
        rec = self.rec
        listing = self.sandbox.channels[d.channel].listings[d.sku]
        shown = listing.qty
        true_ats = self.mirror.ats[d.channel, d.sku]
        order = self.sandbox.place_order(d.channel, d.sku, d.qty, at_ms=d.at_ms)
        sold = order.qty if order is not None else 0
        price = self.sku_spec[d.sku].price_usd
        rec.demand(d.channel, d.qty, sold, shown, true_ats, price)
        if order is None:
            return
        self.rec.touch(d.channel, d.sku)
        self.awaiting.setdefault(d.channel, {})[order.order_id] = _Sale(d.sku, sold, price)
        if self.dialect[d.channel] in WEBHOOK_DIALECTS:
            await self._post_webhooks(d.channel)
        else:
            self.poll_due.add(d.channel)
        self.rec.refresh(self.mirror.ats, self.sandbox.channels)

    async def _post_webhooks(self, channel: str) -> None:
        """Post the sandbox's new signed deliveries for ``channel`` to Accord's webhook route, as the marketplace
        would; a delivery Accord refuses is a failure of the run."""
        deliveries = self.sandbox.channels[channel].webhooks
        last = self.last_webhook.get(channel)
        new: list[dict[str, Any]] = []
        for h in reversed(deliveries):
            if h["headers"].get("X-Shopify-Webhook-Id") == last:
                break
            new.append(h)
        for h in reversed(new):
            resp = await self.accord.post(
                f"/v1/sync/webhooks/shopify/{channel}", content=h["body"], headers=h["headers"]
            )
            self.last_webhook[channel] = str(h["headers"].get("X-Shopify-Webhook-Id"))
            if resp.status_code != 200:
                self._fail(f"Accord refused a {channel} webhook: HTTP {resp.status_code} {resp.text[:300]}")
            body = resp.json()
            self.rec.webhooks += 1
            self._settle(channel, str(body["order"]), str(body["status"]))
        self._after_change()

    async def _poll(self) -> None:
        """Poll the channels that have orders Accord has not seen, through their connectors (the production path);
        a failed poll (429, 5xx) is tried again next minute."""
        for channel in sorted(self.poll_due):
            try:
                await self.worker.poll_orders(channel)
            except ConnectorError:
                self.rec.poll_errors += 1
                continue
            self.rec.order_polls += 1
            waiting = self.awaiting.get(channel, {})
            co = st.channel_orders
            with self.app.db.engine.connect() as conn:
                got = conn.execute(
                    sa.select(co.c.channel_order_id, co.c.status).where(
                        co.c.channel_id == channel, co.c.channel_order_id.in_(sorted(waiting))
                    )
                ).all()
                conn.rollback()
            for oid, status in sorted(got):
                self._settle(channel, str(oid), str(status))
            if not waiting:
                self.poll_due.discard(channel)
        self._after_change()

    def _settle(self, channel: str, oid: str, status: str) -> None:
        """What Accord made of one sandbox order: reserved (sold; the warehouses take over), cancelled (it could not
        be covered: an oversell) or held."""
        sale = self.awaiting.get(channel, {}).pop(oid, None)
        if sale is None:
            return  # a redelivery of an order already settled
        rec = self.rec
        if status == RESERVED:
            rec.sold(channel, sale.qty, sale.price)
            self.touched_skus.add(sale.sku)
            rate = self.world.return_rates.get(self.sku_spec[sale.sku].category, 0.0)
            r = random.Random(f"{self.cfg.seed}:return:{channel}:{oid}")
            if r.random() < rate:
                rec.returns_units += sale.qty
            if self.cfg.fulfil:
                self.warehouses.admit(channel, oid, self.clock.now_ms())
        elif status == CANCELLED:
            rec.oversold(channel, sale.qty, sale.price)
        elif status == HELD:
            rec.held += 1
        else:
            self._fail(f"{channel} order {oid} ingested as {status!r}")

    async def _fulfil(self, now_ms: int, *, send_back: bool) -> None:
        """The warehouses' work due by ``now_ms`` (parcels, re-routes, deliveries), then, every few minutes, the
        ship confirmations and cancellations back to the channels."""
        due = self.warehouses.next_due_ms()
        if due is not None and due <= now_ms:
            self._advance(now_ms)
            self.warehouses.run_due(now_ms)
            self._after_change()
        if send_back:
            await self.warehouses.send_back(self.worker)

    def _after_change(self) -> None:
        """Deliver outbox events (sync desired state + the ATS mirror); schedule the worker per the policy."""
        self.relay.drain()
        touched = self.mirror.touched
        if touched:
            for key in touched:
                self.rec.touch(*key)
                self.touched_skus.add(key[1])
            touched.clear()
            if POLICIES[self.cfg.policy] == 0:
                due = self.clock.now_ms() + self.cfg.realtime_delay_ms
                self.wake_ms = due if self.wake_ms is None else min(self.wake_ms, due)
        self.rec.refresh(self.mirror.ats, self.sandbox.channels)

    async def _worker_until(self, until_ms: int) -> None:
        """Run worker steps due at or before ``until_ms`` (in time order)."""
        realtime = POLICIES[self.cfg.policy] == 0
        while self.wake_ms is not None and self.wake_ms <= until_ms and (realtime or self.flush_open):
            self._advance(self.wake_ms)
            now = self.clock.now_ms()
            due = self.channel_due
            stepped = sorted(self.dirty.union(ch for ch, at in due.items() if at <= now))
            self.dirty.clear()
            report = await self.worker.step(stepped)
            self.rec.api(report.calls, report.http_429)
            self._consume_samples()
            now = self.clock.now_ms()
            for ch in stepped:
                bucket = self.worker.buckets[ch]
                if bucket.tokens < -1e-9:
                    self._fail(f"token bucket of {ch} is negative ({bucket.tokens:.3f})")
                at = self.store.next_due_ms(ch)  # as SyncWorker.next_wake_ms, for the channels that may have moved
                if at is None:
                    due.pop(ch, None)
                else:
                    due[ch] = max(at, now + bucket.wait_ms(1, now))
            if not due and not self.dirty:
                self.wake_ms = None
                self.flush_open = False
            else:
                nxt = min(due.values()) if due else now
                self.wake_ms = max(nxt, now + 100)

    def _consume_samples(self) -> None:
        samples = self.worker.samples
        while samples:
            s = samples.popleft()
            self.rec.latency(s.channel, s.klass, s.latency_ms)
            self.rec.touch(s.channel, s.sku)
        self.rec.refresh(self.mirror.ats, self.sandbox.channels)

    # ------------------------------------------------------------------ invariants

    def _fail(self, detail: str) -> None:
        raise InvariantViolation(self.cfg.seed, self.cfg.policy, self.step, detail)

    def _check(self, *, full: bool) -> None:
        self.rec.checks += 1
        for sku in sorted(self.touched_skus):
            for _sku, loc, bal in self.engine.balances(sku=sku):
                problems = violations(bal)
                if problems:
                    self._fail(f"{sku} at {loc}: {'; '.join(problems)}")
        self.touched_skus.clear()
        if self.rec.negative_shown is not None:
            ch_id, sku, qty = self.rec.negative_shown
            self._fail(f"{ch_id} shows {qty} for {sku}")
        if full:
            self.rec.verifications += 1
            bad = self.engine.verify()
            if bad:
                m = bad[0]
                self._fail(f"{len(bad)} mismatch(es); first: {m.what} {m.sku} at {m.where}: {m.expected} != {m.actual}")

    def _corrupt(self) -> None:
        """Test hook: break ledger replay by writing a balance behind the engine's back."""
        sku, loc, _qty = self.world.stock[0]
        b = t.balances
        with self.app.db.engine.begin() as conn:
            conn.execute(sa.update(b).where(b.c.sku_id == sku, b.c.location_id == loc).values(on_hand=b.c.on_hand + 7))
        self.touched_skus.add(sku)

    def _final_state(self) -> dict[str, Any]:
        status = {s.channel: s.as_dict() for s in self.store.status()}
        return {
            "fulfilment": fulfilment_state(self.app.db, self.service, self.warehouses.tally, self.clock.now_ms()),
            "sync_status": status,
            "dead_letters": len(self.store.dead_letters()),
            "queue_depth": sum(int(s.get("queue_depth") or 0) for s in status.values()),
        }


def run_scenario(
    cfg: SimConfig,
    database_url: str | None = None,
    *,
    world: SimWorld | None = None,
    progress: ProgressFn | None = None,
    keep: dict[str, Simulation] | None = None,
) -> dict[str, Any]:
    """Run one scenario; a fresh temporary SQLite file unless ``database_url`` is given. ``keep`` receives the
    finished :class:`Simulation` under its policy (its sandbox keeps the run's state: ``accord simulate --serve``)."""
    if database_url is not None:
        sim = Simulation(cfg, database_url, world=world, progress=progress)
        result = sim.run()
        if keep is not None:
            keep[cfg.policy] = sim
        return result
    with tempfile.TemporaryDirectory(prefix="accord-sim-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'sim.db'}"
        return Simulation(cfg, url, world=world, progress=progress).run()
