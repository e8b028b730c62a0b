from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from accord.sync.store import P_CRITICAL, P_DECREASE, P_INCREASE, QUANTITY
from accord.sync.worker import Drift, StepReport, SyncWorker, TokenBucket

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


def test_coalescing_keeps_only_the_latest_value(make: Make) -> None:
    h = make({"A": 10})
    h.relay.drain()
    for i in range(4):
        h.reserve("A", 1, f"r{i}")
    h.relay.drain()
    due = h.store.due("amz", h.clock.now_ms(), 100)
    assert [(p.sku, p.value) for p in due] == [("A", 6)]
    assert due[0].version == 5  # five changes, one pending send
    report = h.run(lambda w: w.drain())
    assert report.acked == 3  # one per channel
    assert [h.shown(ch, "A") for ch in ("shop", "amz", "eb")] == [6, 6, 6]
    assert h.store.due("amz", h.clock.now_ms(), 100) == []


def test_priority_zero_first_then_decreases_then_increases(make: Make) -> None:
    h = make({"A": 10, "B": 10, "C": 1, "D": 10})
    h.relay.drain()
    h.run(lambda w: w.drain())
    h.engine.move_batch([])
    h.reserve("A", 2, "a")  # decrease 10 -> 8
    h.reserve("C", 1, "c")  # drop to zero
    from accord.domain.ledger import Movement, MovementKind

    h.engine.move(Movement(MovementKind.RECEIVE, "B", "wh", 5, "b"))  # increase
    h.relay.drain()
    due = h.store.due("amz", h.clock.now_ms(), 100)
    assert [(p.sku, p.priority) for p in due] == [("C", P_CRITICAL), ("A", P_DECREASE), ("B", P_INCREASE)]


def test_token_bucket_honours_limits(make: Make) -> None:
    bucket = TokenBucket(5, 5, 0)
    assert bucket.take(5, 0) and not bucket.take(1, 0)
    assert bucket.available(199) == 0 and bucket.available(200) == 1
    skus = {f"S{i:02d}": 3 for i in range(20)}
    h = make(skus, channels=(("amz", "amazon"),))
    h.relay.drain()
    report = h.run(lambda w: w.step())
    calls = [c for c in h.sandbox.calls("amz") if c.operation == "patchListingsItem"]
    # burst 5 less the one call the worker keeps in reserve (jitter on the way must not cost a 429): four calls
    assert len(calls) == 4 and report.acked == 4
    assert report.http_429 == 0 and all(c.status == 200 for c in calls)

    async def rest(w: SyncWorker) -> StepReport:
        total = StepReport()
        for _ in range(10):
            h.clock.advance(1000)  # 5 calls per second
            total.add(await w.step())
        return total

    later = h.run(rest)
    assert later.acked == 16 and later.http_429 == 0
    assert all(c.status == 200 for c in h.sandbox.calls("amz"))


def test_retry_after_is_honoured(make: Make) -> None:
    h = make({"A": 4}, channels=(("amz", "amazon"),))
    h.relay.drain()
    h.sandbox.set_faults("amz", script=["429"])

    async def go(w: SyncWorker) -> list[StepReport]:
        first = await w.step()  # 429 with Retry-After: 1
        same_time = await w.step()  # nothing: the channel asked us to wait
        h.clock.advance(999)
        early = await w.step()
        h.clock.advance(1)
        on_time = await w.step()
        return [first, same_time, early, on_time]

    first, same_time, early, on_time = h.run(go)
    assert first.http_429 == 1 and first.acked == 0
    assert same_time.sent == 0 and early.sent == 0
    assert on_time.acked == 1 and h.shown("amz", "A") == 4
    status = {s.channel: s for s in h.store.status()}["amz"]
    assert status.counters["http_429"] == 1


def test_compare_and_set_conflict_is_handled(make: Make) -> None:
    h = make({"A": 10}, channels=(("shop", "shopify"),))
    h.relay.drain()
    h.run(lambda w: w.drain())
    assert h.shown("shop", "A") == 10
    h.sandbox.listing("shop", "A").qty = 7  # someone changed it on the channel
    h.reserve("A", 1, "r1")
    h.relay.drain()

    async def go(w: SyncWorker) -> list[StepReport]:
        out = []
        for _ in range(3):
            out.append(await w.step())
        return out

    reports = h.run(go)
    # the conflict is read back (the sandbox, like Shopify, does not say what it shows) and resent at once,
    # expecting 7: acknowledged in the same step (write, read, write), with no attempt spent
    assert reports[0].conflicts == 1 and reports[0].acked == 1 and reports[0].calls == 3
    assert sum(r.acked for r in reports) == 1 and reports[0].retried == 0
    assert h.shown("shop", "A") == 9
    writes = [c for c in h.sandbox.calls("shop") if c.operation != "getQuantities"]
    assert len(writes) >= 2


def test_malformed_responses_are_retried_then_dead_lettered_with_body(make: Make) -> None:
    h = make({"A": 5}, channels=(("eb", "ebay"),))
    h.relay.drain()
    h.sandbox.set_faults("eb", malformed_rate=1.0)

    async def go(w: SyncWorker) -> StepReport:
        total = StepReport()
        for _ in range(20):
            total.add(await w.step())
            h.clock.advance(120_000)
        return total

    report = h.run(go, max_attempts=4)
    assert report.retried == 3 and report.parked == 1
    dead = h.store.dead_letters("eb")
    assert len(dead) == 1 and dead[0].sku == "A" and dead[0].value == 5 and dead[0].attempts == 4
    assert dead[0].reason == "malformed_response" and dead[0].body
    assert h.store.due("eb", h.clock.now_ms(), 10) == []
    assert {s.channel: s for s in h.store.status()}["eb"].dead_letters == 1


def test_reconcile_reports_and_repairs_drift(make: Make) -> None:
    h = make({"A": 10, "B": 4}, channels=(("amz", "amazon"), ("shop", "shopify")))
    h.relay.drain()
    h.run(lambda w: w.drain())
    h.sandbox.listing("amz", "B").qty = 9  # drifted on the channel

    async def go(w: SyncWorker) -> tuple[list[Drift], StepReport, list[Drift]]:
        drift = await w.reconcile()
        rep = await w.drain()
        again = await w.reconcile()
        return list(drift), rep, list(again)

    drift, rep, again = h.run(go)
    assert [(d.channel, d.sku, d.desired, d.observed) for d in drift] == [("amz", "B", 4, 9)]
    assert rep.acked == 1 and h.shown("amz", "B") == 4
    assert again == []
    assert {s.channel: s for s in h.store.status()}["amz"].counters["drift"] == 1


def test_threshold_counts_as_critical(make: Make) -> None:
    h = make({"A": 10}, channels=(("amz", "amazon"),), threshold=3)
    h.relay.drain()
    h.run(lambda w: w.drain())
    h.reserve("A", 7, "r")  # pool 3 -> at or below the threshold -> 0
    h.relay.drain()
    due = h.store.due("amz", h.clock.now_ms(), 10)
    assert [(p.value, p.priority, p.field) for p in due] == [(0, P_CRITICAL, QUANTITY)]


def test_demo_world_builds_32_channels(backend: Any) -> None:
    from accord.bootstrap import build_app
    from accord.sync.world import build_world

    app = build_app(database_url=backend.url)
    try:
        world = build_world(app.engine)
        cfg = app.engine.config()
        assert len(cfg.channels) == 32
        assert len({c.dialect for c in world.channels}) >= 8 and len({c.region for c in world.channels}) >= 6
        assert "fba-us" in cfg.eligible["amazon-us"] and "fba-us" not in cfg.eligible["amazon-ca"]
        assert cfg.eligible["quick-nyc"] == ("dark-nyc",)
    finally:
        app.close()


def test_value_back_to_the_shown_one_stays_pending_while_an_older_send_may_land(make: Make) -> None:
    """A compare-and-set conflict stored what the channel showed (3) while 4 was pending; the send of 4 is in flight
    when the value comes back to 3. That send lands afterwards (the channel shows 4), so 3 must still be sent."""
    h = make({"A": 10}, channels=(("shop", "shopify"),))
    h.relay.drain()
    h.run(lambda w: w.drain())
    now = h.clock.now_ms()
    with h.store.db.tx() as tx:
        h.store.enqueue(tx, "A", QUANTITY, [("shop", 4, P_DECREASE)], now, now)
    (in_flight,) = h.store.due("shop", now, 10)
    with h.store.db.tx() as tx:
        h.store.observed_many(tx, [(in_flight, 3)], now)  # the channel's own sale showed 3
        h.store.enqueue(tx, "A", QUANTITY, [("shop", 3, P_DECREASE)], now, now)  # Accord's ATS catches up: 3
    with h.store.db.tx() as tx:
        h.store.ack_many(tx, [in_flight], now)  # the in-flight send of 4 lands
    assert [(p.sku, p.value, p.acked_value) for p in h.store.due("shop", now, 10)] == [("A", 3, 4)]
