"""Worker paths added for speed: due-work selection, conflict resends, batched acknowledgements, per-channel loops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from accord.connectors.base import (
    ChannelConfig,
    ContentUpdate,
    ItemResult,
    ItemStatus,
    OrdersPage,
    QuantitySnapshot,
    QuantityUpdate,
    limits_for,
)
from accord.domain.ledger import Movement, MovementKind
from accord.sync.store import P_CRITICAL, P_DECREASE, P_INCREASE
from accord.sync.worker import StepReport, SyncWorker

from .harness import Harness

Make = Callable[..., Harness]


@pytest.fixture
def make(backend: Any) -> Iterator[Make]:
    made: list[Harness] = []

    def factory(*args: Any, **kw: Any) -> Harness:
        h = Harness(backend.url, *args, **kw)
        made.append(h)
        return h

    yield factory
    for h in made:
        h.close()


@dataclass
class CasChannel:
    """A compare-and-set channel that, unlike Shopify, returns what it shows with a conflict."""

    shown: dict[str, int]
    dialect: str = "walmart"  # any dialect without listing ids; compare-and-set switched on below
    config: ChannelConfig = field(default_factory=lambda: ChannelConfig("cas", "walmart", "http://x", {}, {}))
    limits: Any = field(default_factory=lambda: replace(limits_for("walmart"), supports_compare_and_set=True))
    sent: list[QuantityUpdate] = field(default_factory=list)
    reads: int = 0

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        out = []
        for u in items:
            self.sent.append(u)
            now = self.shown.get(u.sku, 0)
            if u.expected_qty is not None and u.expected_qty != now:
                out.append(ItemResult(u.sku, ItemStatus.CONFLICT, "cas_mismatch", "stale", observed_qty=now))
            else:
                self.shown[u.sku] = u.qty
                out.append(ItemResult(u.sku, ItemStatus.OK, observed_qty=u.qty))
        return out

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        self.reads += 1
        return [QuantitySnapshot(s, self.shown.get(s)) for s in skus]

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        raise NotImplementedError

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        raise NotImplementedError


def test_due_selects_by_priority_then_age_with_a_limit(make: Make) -> None:
    h = make({"A": 10, "B": 10, "C": 1, "D": 10}, channels=(("amz", "amazon"),))
    h.relay.drain()
    h.run(lambda w: w.drain())
    h.reserve("A", 2, "a")  # decrease
    h.clock.advance(10)
    h.engine.move(Movement(MovementKind.RECEIVE, "B", "wh", 5, "b"))  # increase
    h.clock.advance(10)
    h.reserve("D", 1, "d")  # a later decrease
    h.clock.advance(10)
    h.reserve("C", 1, "c")  # the newest change, but a drop to zero
    h.relay.drain()
    now = h.clock.now_ms()
    assert [(p.sku, p.priority) for p in h.store.due("amz", now, 1)] == [("C", P_CRITICAL)]
    assert [(p.sku, p.priority) for p in h.store.due("amz", now, 3)] == [
        ("C", P_CRITICAL),
        ("A", P_DECREASE),
        ("D", P_DECREASE),
    ]
    assert [p.sku for p in h.store.due("amz", now, 100)] == ["C", "A", "D", "B"]
    assert [p.priority for p in h.store.due("amz", now, 100)][-1] == P_INCREASE


def test_due_skips_keys_waiting_for_a_retry_and_acknowledged_ones(make: Make) -> None:
    h = make({"A": 10, "B": 10}, channels=(("amz", "amazon"),))
    h.relay.drain()
    due = h.store.due("amz", h.clock.now_ms(), 10)
    now = h.clock.now_ms()
    with h.app.db.tx() as tx:
        h.store.retry_many(tx, [(due[0], 1, now + 5_000, "later")], now)
        h.store.ack_many(tx, [due[1]], now)
    assert h.store.due("amz", now, 10) == []
    assert [p.sku for p in h.store.due("amz", now + 5_000, 10)] == [due[0].sku]
    assert h.store.next_due_ms("amz") == now + 5_000


def test_conflict_resends_at_once_expecting_the_observed_quantity(make: Make) -> None:
    h = make({"A": 10, "B": 10}, channels=(("cas", "walmart"),))
    h.relay.drain()
    fake = CasChannel({"A": 10, "B": 10})
    with h.app.db.tx() as tx:  # the channel showed 10 for both, as far as Accord knows
        h.store.ack_many(tx, h.store.due("cas", h.clock.now_ms(), 10), h.clock.now_ms())
    h.reserve("A", 3, "r1")  # A: 10 -> 7
    h.relay.drain()
    fake.shown["A"] = 9  # a buyer bought one on the channel meanwhile

    async def go(w: SyncWorker) -> StepReport:
        return await w.step()

    report = h.run_with({"cas": fake}, go)
    assert report.conflicts == 1 and report.acked == 1 and report.retried == 0
    assert [(u.sku, u.qty, u.expected_qty) for u in fake.sent] == [("A", 7, 10), ("A", 7, 9)]
    assert fake.reads == 0  # the conflict said what the channel shows: no read-back
    assert fake.shown["A"] == 7
    assert h.store.due("cas", h.clock.now_ms(), 10) == []


def test_conflict_showing_the_desired_value_is_acknowledged_without_a_resend(make: Make) -> None:
    h = make({"A": 10}, channels=(("cas", "walmart"),))
    h.relay.drain()
    fake = CasChannel({"A": 10})
    with h.app.db.tx() as tx:
        h.store.ack_many(tx, h.store.due("cas", h.clock.now_ms(), 10), h.clock.now_ms())
    h.reserve("A", 1, "r1")  # a buyer's own order: the channel already went 10 -> 9
    h.relay.drain()
    fake.shown["A"] = 9

    report = h.run_with({"cas": fake}, lambda w: w.step())
    assert report.conflicts == 1 and report.acked == 1
    assert len(fake.sent) == 1 and h.store.due("cas", h.clock.now_ms(), 10) == []


def test_a_conflicting_key_does_not_hold_back_its_batch(make: Make) -> None:
    h = make({f"S{i}": 10 for i in range(5)}, channels=(("shop", "shopify"),))
    h.relay.drain()
    h.run(lambda w: w.drain())
    for i in range(5):
        h.reserve(f"S{i}", 2, f"r{i}")  # every key 10 -> 8
    h.relay.drain()
    h.sandbox.listing("shop", "S3").qty = 9  # one key changed on the channel: its batch is all-or-nothing

    report = h.run(lambda w: w.step())
    assert report.conflicts == 1 and report.acked == 5 and report.retried == 0 and report.parked == 0
    assert [h.shown("shop", f"S{i}") for i in range(5)] == [8] * 5
    assert h.store.dead_letters("shop") == []


def test_serve_runs_channels_on_their_own_and_wakes_on_enqueue(make: Make) -> None:
    h = make({"A": 10, "B": 10})
    h.relay.drain()
    h.run(lambda w: w.drain())

    async def go(w: SyncWorker) -> StepReport:
        stop = asyncio.Event()
        total = StepReport()
        task = asyncio.create_task(w.serve(stop, idle_s=0.01, total=total))
        h.reserve("A", 10, "all")  # to zero on every channel
        h.relay.drain()
        for _ in range(500):  # no timing assertion: just wait until it is there
            if all(h.shown(ch, "A") == 0 for ch in ("shop", "amz", "eb")):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task
        return total

    total = h.run(go, max_items_per_channel_step=50)
    assert [h.shown(ch, "A") for ch in ("shop", "amz", "eb")] == [0, 0, 0]
    assert total.acked == 3 and total.http_429 == 0
    status = {s.channel: s for s in h.store.status()}
    assert all(status[ch].latency.get("critical") for ch in ("shop", "amz", "eb"))


def test_worker_keeps_a_call_of_the_burst_in_reserve(make: Make) -> None:
    h = make({"A": 1}, channels=(("amz", "amazon"), ("shop", "shopify")))

    async def buckets(w: SyncWorker) -> dict[str, tuple[float, int]]:
        return {ch: (b.rate_per_s, b.burst) for ch, b in w.buckets.items()}

    assert h.run(buckets) == {"amz": (5.0, 4), "shop": (10.0, 199)}  # published: 5/s burst 5; 100 points/s, 2000
    assert h.run(buckets, burst_reserve=0) == {"amz": (5.0, 5), "shop": (10.0, 200)}
