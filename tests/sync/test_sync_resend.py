"""Resends within a step (all-or-nothing batches, compare-and-set conflicts) carry the value desired *now* and do not
wait for a conflicting key's read-back. The bench caught the stale case: a Shopify batch carrying a drop was aborted
by another key's stale expectation (a buyer's sale on the channel), and the drop went out again only after that key's
read-back — while a buyer bought the unit that was no longer there."""

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
from accord.sync.store import P_CRITICAL
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


def test_a_key_aborted_with_a_conflict_is_resent_with_the_value_desired_now(make: Make) -> None:
    """A drops 5 -> 3 and B 5 -> 4; a buyer on the Shopify channel bought one B, so B's expectation (5) is stale and
    the all-or-nothing batch carrying both is aborted. While that send was out, A's ATS reached 0. The resend of A
    must carry 0: resending the 3 read before would put three units back on sale that are gone."""
    h = make({"A": 5, "B": 5}, channels=(("shop", "shopify"),))
    h.relay.drain()
    h.run(lambda w: w.drain())
    assert (h.shown("shop", "A"), h.shown("shop", "B")) == (5, 5)
    h.reserve("A", 2, "a1")  # another channel's order
    h.reserve("B", 1, "b1")  # the channel's own order ...
    h.relay.drain()
    h.sandbox.listing("shop", "B").qty = 4  # ... which the channel already took off its listing
    written: list[tuple[str, int, int | None]] = []

    async def go(w: SyncWorker) -> StepReport:
        conn = w.connectors["shop"]
        inner = conn.set_quantities

        async def set_quantities(items: Sequence[QuantityUpdate]) -> list[ItemResult]:
            if not written:  # while the first send is out, the last three A sell elsewhere: A's ATS -> 0
                h.reserve("A", 3, "a2")
                h.relay.drain()
            written.extend((u.sku, u.qty, u.expected_qty) for u in items)
            return await inner(items)

        setattr(conn, "set_quantities", set_quantities)  # noqa: B010
        return await w.step()

    report = h.run(go)
    assert written[:2] == [("A", 3, 5), ("B", 4, 5)]  # one batch, aborted by B
    assert ("A", 3, 5) not in written[2:], "the value read before the abort was resent"
    assert ("A", 0, 5) in written[2:]
    assert report.conflicts == 1 and report.parked == 0
    assert (h.shown("shop", "A"), h.shown("shop", "B")) == (0, 4)
    assert h.store.due("shop", h.clock.now_ms(), 10) == []  # both acknowledged in the step, at their newest values


@dataclass
class AllOrNothingChannel:
    """A compare-and-set channel whose batch is all-or-nothing and whose conflicts do not say what it shows (as
    Shopify's ``inventorySetQuantities``): a stale expectation aborts the whole batch and needs a read-back. The
    read-back stays out (yielding to the event loop) until a write arrives or ``read_yields`` yields have passed."""

    shown: dict[str, int]
    read_yields: int = 200
    dialect: str = "walmart"  # any dialect without listing ids; compare-and-set and batches of 50 switched on below
    config: ChannelConfig = field(default_factory=lambda: ChannelConfig("cas", "walmart", "http://x", {}, {}))
    limits: Any = field(
        default_factory=lambda: replace(limits_for("walmart"), supports_compare_and_set=True, max_batch_size=50)
    )
    calls: list[tuple[str, tuple[tuple[str, int], ...]]] = field(default_factory=list)
    _written: asyncio.Event | None = None

    def written(self) -> asyncio.Event:
        if self._written is None:
            self._written = asyncio.Event()
        return self._written

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        self.calls.append(("write", tuple((u.sku, u.qty) for u in items)))
        self.written().set()
        stale = {u.sku for u in items if u.expected_qty is not None and u.expected_qty != self.shown.get(u.sku, 0)}
        if stale:
            return [
                ItemResult(u.sku, ItemStatus.CONFLICT, "cas_mismatch", "stale")
                if u.sku in stale
                else ItemResult(u.sku, ItemStatus.RETRYABLE, "batch_aborted", "another item in the batch failed")
                for u in items
            ]
        for u in items:
            self.shown[u.sku] = u.qty
        return [ItemResult(u.sku, ItemStatus.OK, observed_qty=u.qty) for u in items]

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        self.calls.append(("read", tuple((s, self.shown.get(s, 0)) for s in skus)))
        ev = self.written()
        ev.clear()
        for _ in range(self.read_yields):  # no clock: the read-back is out while the loop turns
            if ev.is_set():
                break
            await asyncio.sleep(0)
        self.calls.append(("read_done", ()))
        return [QuantitySnapshot(s, self.shown.get(s)) for s in skus]

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        raise NotImplementedError

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        raise NotImplementedError


def test_keys_aborted_with_a_conflict_go_again_without_waiting_for_its_read_back(make: Make) -> None:
    """A drops to zero (critical) in a batch with B, whose expectation is stale: the batch is aborted. A goes out again
    while B's read-back is still out, not after it (that round trip is when a buyer takes the unit)."""
    h = make({"A": 1, "B": 5}, channels=(("cas", "walmart"),))
    h.relay.drain()
    fake = AllOrNothingChannel({"A": 1, "B": 5})
    with h.app.db.tx() as tx:  # the channel showed the ATS, as far as Accord knows
        h.store.ack_many(tx, h.store.due("cas", h.clock.now_ms(), 10), h.clock.now_ms())
    h.reserve("A", 1, "a1")  # A: 1 -> 0 (another channel's order)
    h.reserve("B", 2, "b1")  # B: 5 -> 3
    h.relay.drain()
    fake.shown["B"] = 4  # a buyer on the channel bought one B: Accord expects 5
    assert [(p.sku, p.priority) for p in h.store.due("cas", h.clock.now_ms(), 10)][:1] == [("A", P_CRITICAL)]

    report = h.run_with({"cas": fake}, lambda w: w.step())
    kinds = [k for k, _ in fake.calls]
    assert fake.calls[0] == ("write", (("A", 0), ("B", 3)))  # aborted by B
    assert ("write", (("A", 0),)) in fake.calls
    assert fake.calls.index(("write", (("A", 0),))) < kinds.index("read_done"), "A waited for B's read-back"
    assert fake.shown == {"A": 0, "B": 3}
    assert report.conflicts == 1 and report.acked == 2 and report.parked == 0
    assert h.store.due("cas", h.clock.now_ms(), 10) == []


def test_a_conflict_left_unread_for_lack_of_budget_is_not_parked(make: Make) -> None:
    """One call per step (the bucket refills one token at a time, as under a sustained sale): B's stale expectation
    aborts the batch, and no token is left to read B back. That is no failed attempt, and B must not keep its stale
    expectation: kept, B conflicts at every step and aborts its batch each time — A's drop to zero with it, so the
    channel keeps selling five units that are gone — until B is parked after ``max_attempts`` steps, the channel
    still showing a quantity Accord no longer has (the bench caught a channel stuck showing 1 with an ATS of 0)."""
    h = make({"A": 5, "B": 5}, channels=(("cas", "walmart"),))
    h.relay.drain()
    one_call = replace(limits_for("walmart"), supports_compare_and_set=True, max_batch_size=50, burst=2)
    fake = AllOrNothingChannel({"A": 5, "B": 5}, limits=one_call)  # burst 2, one kept in reserve: one call a step
    with h.app.db.tx() as tx:
        h.store.ack_many(tx, h.store.due("cas", h.clock.now_ms(), 10), h.clock.now_ms())
    h.reserve("A", 5, "a1")  # A: 5 -> 0 (another channel's order)
    h.reserve("B", 2, "b1")  # B: 5 -> 3
    h.relay.drain()
    fake.shown["B"] = 4  # a buyer on the channel bought one B: Accord expects 5

    async def go(w: SyncWorker) -> StepReport:
        total = StepReport()
        for _ in range(8):
            total.add(await w.step())
            h.clock.advance(200)  # 5 calls/s: one token
        return total

    total = h.run_with({"cas": fake}, go)
    assert h.store.dead_letters("cas") == []
    assert fake.shown == {"A": 0, "B": 3}
    assert total.parked == 0 and h.store.due("cas", h.clock.now_ms(), 10) == []
    assert [k for k, _ in fake.calls].count("write") <= 3  # aborted once, then both go through
