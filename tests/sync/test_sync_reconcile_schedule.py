"""Scheduled reconciliation: ``serve`` reconciles each channel every ``reconcile_every_ms`` (spread over the
channels), only while the channel is idle and only with the budget above the reserve kept for quantity changes;
drift found and repaired is counted for ``accord sync status`` and /metrics. A manual clock drives the schedule."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from accord.settings import load_settings
from accord.sync.worker import SyncWorker, content_reserve

from .harness import Harness

EVERY_MS = 60_000


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 5, "B": 7, "C": 9})
    try:
        harness.relay.drain()
        harness.run(lambda w: w.drain())  # every channel shows what Accord wants
        yield harness
    finally:
        harness.close()


def _status(h: Harness, channel: str) -> dict[str, Any]:
    return next(s.as_dict() for s in h.store.status() if s.channel == channel)


def test_passes_are_spread_over_the_interval_and_repair_drift(h: Harness) -> None:
    h.sandbox.listing("eb", "B").qty = 40  # someone edited the listing on eBay
    h.sandbox.listing("shop", "C").qty = 0

    async def go(w: SyncWorker) -> dict[str, tuple[int, int]]:
        start = h.clock.now_ms()
        assert [await w.reconcile_when_idle(ch) for ch in sorted(w.connectors)] == [(0, 0)] * 3  # not yet due
        starts = sorted(w.reconcile_at.values())
        assert len(set(starts)) == 3 and start < starts[0] and starts[-1] == start + EVERY_MS  # spread, no burst
        found: dict[str, tuple[int, int]] = {}
        by_start = {at: ch for ch, at in w.reconcile_at.items()}
        for at in starts:
            h.clock.advance(max(0, at - h.clock.now_ms()))
            ch = by_start[at]
            calls = drifted = 0
            for _ in range(20):  # a pass may span idle moments (budget above reserve; repairs go first)
                c, d = await w.reconcile_when_idle(ch)
                calls, drifted = calls + c, drifted + d
                if w.reconcile_at[ch] > h.clock.now_ms():
                    break
                await w.step()
                h.clock.advance(1_000)
            assert w.reconcile_at[ch] == h.clock.now_ms() + EVERY_MS  # the next pass one interval later
            found[ch] = (calls, drifted)
        await w.drain()
        return found

    found = h.run(go, reconcile_every_ms=EVERY_MS)
    assert {ch: d for ch, (_, d) in found.items()} == {"amz": 0, "eb": 1, "shop": 1}
    assert found["amz"][0] == 3  # Amazon reads one listing per call; the others a page per call
    assert h.shown("eb", "B") == 7 and h.shown("shop", "C") == 9
    for ch, drift in (("eb", 1), ("shop", 1), ("amz", 0)):
        st = _status(h, ch)
        assert (st["drift"], st["drift_repaired"], st["reconcile_passes"]) == (drift, drift, 1)


def test_a_pass_waits_while_anything_is_due_and_never_takes_the_reserve(h: Harness) -> None:
    h.sandbox.listing("amz", "A").qty = 1

    async def go(w: SyncWorker) -> None:
        w.reconcile_at = dict.fromkeys(w.connectors, h.clock.now_ms())  # every pass due now
        h.reserve("C", 1, "r1")
        h.relay.drain()  # C is due on every channel: sends go first
        assert await w.reconcile_when_idle("amz") == (0, 0)
        await w.step()
        bucket = w.buckets["amz"]
        calls, _ = await w.reconcile_when_idle("amz")
        # Amazon's bucket (4 usable tokens) paid one send; the pass reads while tokens stay above the reserve
        assert calls >= 1 and bucket.available(h.clock.now_ms()) == content_reserve(bucket)
        assert w.reconcile_after.get("amz") is not None  # unfinished: it goes on at the next idle moment
        for _ in range(5):
            h.clock.advance(1_000)
            await w.step()
            await w.reconcile_when_idle("amz")
        assert "amz" not in w.reconcile_after and w.reconcile_at["amz"] > h.clock.now_ms()
        assert _status(h, "amz")["drift"] == 1 and _status(h, "amz")["reconcile_passes"] == 1
        await w.drain()

    h.run(go, reconcile_every_ms=EVERY_MS)
    assert h.shown("amz", "A") == 5 and _status(h, "amz")["drift_repaired"] == 1


def test_serve_reconciles_on_its_schedule(h: Harness) -> None:
    h.sandbox.listing("eb", "A").qty = 2

    async def go(w: SyncWorker) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(w.serve(stop, idle_s=0.01))
        await asyncio.sleep(0.05)  # the loops have scheduled their first pass
        h.clock.advance(EVERY_MS)
        for _ in range(
            500
        ):  # until the drift is repaired and the pass done (bounded: a failure does not hang the suite)
            if h.shown("eb", "A") == 5 and _status(h, "eb")["reconcile_passes"] >= 1:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    h.run(go, reconcile_every_ms=EVERY_MS)
    assert h.shown("eb", "A") == 5
    st = _status(h, "eb")
    assert st["drift"] == 1 and st["drift_repaired"] == 1 and st["reconcile_passes"] >= 1


def test_the_interval_is_a_setting() -> None:
    assert load_settings({}).sync_reconcile_every_s == 900
    assert load_settings({"ACCORD_RECONCILE_EVERY_S": "0"}).sync_reconcile_every_s == 0
    with pytest.raises(Exception, match="ACCORD_RECONCILE_EVERY_S"):
        load_settings({"ACCORD_RECONCILE_EVERY_S": "-5"})
