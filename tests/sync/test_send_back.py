"""Ship confirmations and cancellations go back to the channels: sent once, retried with backoff (honouring
Retry-After), parked as dead letters with the marketplace's answer, redrivable — and every dialect's sandbox sees
an oversold order cancelled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from accord.connectors.base import ChannelOrder, OrderLine, ShipmentConfirmation, ShipmentLine
from accord.orders.shipments import ShipmentOutbox
from accord.sync.cancellations import CancelQueue
from accord.sync.orders import CANCELLED
from accord.sync.worker import SyncWorker

from .harness import Harness

ALL = (
    ("amz", "amazon"),
    ("shop", "shopify"),
    ("eb", "ebay"),
    ("wm", "walmart"),
    ("ml", "mercadolibre"),
    ("sp", "shopee"),
    ("lz", "lazada"),
    ("al", "allegro"),
)
# how each dialect's sandbox records an out-of-stock cancellation
REASON = {
    "amz": "NoInventory",  # the CancelReason of its POST_ORDER_ACKNOWLEDGEMENT_DATA feed
    "shop": "INVENTORY",
    "eb": "OUT_OF_STOCK_OR_CANNOT_FULFILL",
    "wm": "SELLER_CANCEL_OUT_OF_STOCK",
    "ml": "OUT_OF_STOCK",
    "sp": "OUT_OF_STOCK",
    "lz": "reason_id:15",
    "al": "CANCELLED",
}


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 20, "B": 1}, (("amz", "amazon"), ("eb", "ebay")), shown={"A": 20, "B": 5})
    yield harness
    harness.close()


def place(h: Harness, channel: str, sku: str, qty: int) -> str:
    order = h.sandbox.place_order(channel, sku, qty)
    assert order is not None
    return order.order_id


def enqueue(
    h: Harness, channel: str, order_id: str, sid: str, qty: int = 1, tracking: str = "1Z001", line: str | None = None
) -> None:
    cf = ShipmentConfirmation(
        order_id, sid, "UPS", tracking, datetime(2026, 1, 2, tzinfo=UTC), (ShipmentLine("A", qty, line),)
    )
    with h.app.db.tx() as tx:
        assert ShipmentOutbox(h.app.db).enqueue(tx, channel, f"o-{sid}", cf, h.clock.now_ms())


def settle_feeds(h: Harness) -> None:
    """Amazon cancels through a feed that is processed minutes after createFeed accepted it."""
    h.clock.advance(60_000)
    h.sandbox.process_due()


def counter(h: Harness, channel: str, name: str) -> int:
    status = {c.channel: c for c in h.store.status()}
    return status[channel].counters.get(name, 0)


def state(h: Harness, sid: str) -> tuple[str, int, str | None]:
    (row,) = [r for r in ShipmentOutbox(h.app.db).list() if r.shipment_id == sid]
    return row.state, row.attempts, row.last_error


def test_confirmations_are_sent_once_through_each_connector(h: Harness) -> None:
    a, e = place(h, "amz", "A", 2), place(h, "eb", "A", 1)
    enqueue(h, "amz", a, "s-a", qty=2)
    enqueue(h, "eb", e, "s-e")

    async def go(w: SyncWorker) -> tuple[int, int]:
        return await w.send_shipments(), await w.send_shipments()

    first, again = h.run(go)
    assert (first, again) == (2, 0)
    assert state(h, "s-a")[0] == "sent" and state(h, "s-e")[0] == "sent"
    shipped = h.sandbox.order("amz", a)
    assert shipped.status == "shipped" and [(s["carrier"], s["tracking"]) for s in shipped.shipments] == [
        ("UPS", "1Z001")
    ]
    assert h.sandbox.order("eb", e).status == "shipped"
    ops = [c.operation for c in h.sandbox.calls("amz")]
    assert ops.count("confirmShipment") == 1  # sent once; the second round found nothing due
    assert counter(h, "amz", "shipments_sent") == 1


def test_a_resend_after_a_lost_answer_confirms_nothing_twice(h: Harness) -> None:
    a = place(h, "amz", "A", 1)
    enqueue(h, "amz", a, "s-1")

    async def go(w: SyncWorker) -> int:
        (p,) = w.shipments.due(h.clock.now_ms()) if w.shipments else []
        await w.connectors["amz"].confirm_shipment(p.confirmation)  # went through; the answer "was lost"
        return await w.send_shipments()

    assert h.run(go) == 1
    assert state(h, "s-1")[0] == "sent"
    assert len(h.sandbox.order("amz", a).shipments) == 1


def test_a_throttled_confirmation_waits_for_retry_after_without_spending_an_attempt(h: Harness) -> None:
    e = place(h, "eb", "A", 1)
    enqueue(h, "eb", e, "s-t")
    h.sandbox.set_faults("eb", script=["429"])

    assert h.run(lambda w: w.send_shipments()) == 0
    st, attempts, err = state(h, "s-t")
    assert (st, attempts) == ("pending", 0) and err is not None and err.startswith("rate_limited")
    h.clock.advance(999)
    assert h.run(lambda w: w.send_shipments()) == 0  # Retry-After (1 s) not over: not even tried
    assert [c.fault for c in h.sandbox.calls("eb")] == ["429"]
    h.clock.advance(1)
    assert h.run(lambda w: w.send_shipments()) == 1
    assert state(h, "s-t")[0] == "sent"


def test_outages_back_off_then_park_with_the_body_and_a_redrive_sends_it(h: Harness) -> None:
    e = place(h, "eb", "A", 1)
    enqueue(h, "eb", e, "s-d")
    h.sandbox.set_faults("eb", error_rate=1.0, error_status=503)
    opts = {"send_max_attempts": 3, "send_backoff_ms": 1_000}

    assert h.run(lambda w: w.send_shipments(), **opts) == 0
    assert state(h, "s-d")[:2] == ("pending", 1)
    h.clock.advance(999)  # backoff 1 s after the first failure
    assert h.run(lambda w: w.send_shipments(), **opts) == 0
    assert len(h.sandbox.calls("eb")) == 1
    h.clock.advance(1)
    h.run(lambda w: w.send_shipments(), **opts)
    assert state(h, "s-d")[:2] == ("pending", 2)
    h.clock.advance(2_000)  # then 2 s
    h.run(lambda w: w.send_shipments(), **opts)
    st, attempts, err = state(h, "s-d")
    assert (st, attempts) == ("dead", 3) and err is not None and err.startswith("server_error")
    assert len(h.sandbox.calls("eb")) == 3
    assert counter(h, "eb", "shipments_dead") == 1

    h.sandbox.set_faults("eb", error_rate=0.0)
    assert ShipmentOutbox(h.app.db).redrive("eb", now_ms=h.clock.now_ms()) == 1
    assert h.run(lambda w: w.send_shipments(), **opts) == 1
    assert state(h, "s-d")[0] == "sent" and h.sandbox.order("eb", e).status == "shipped"


def test_a_rejected_confirmation_is_parked_at_once_with_the_marketplace_answer(h: Harness) -> None:
    enqueue(h, "amz", "111-0000000-0000000", "s-x")
    assert h.run(lambda w: w.send_shipments()) == 0
    st, attempts, err = state(h, "s-x")
    assert (st, attempts) == ("dead", 1) and err is not None and err.startswith("rejected")
    rows = [r for r in ShipmentOutbox(h.app.db).list(state="dead")]
    assert [r.shipment_id for r in rows] == ["s-x"]


def test_the_channel_token_bucket_gates_confirmations(h: Harness) -> None:
    e = place(h, "eb", "A", 1)
    enqueue(h, "eb", e, "s-b")

    async def go(w: SyncWorker) -> int:
        w.buckets["eb"].tokens = 0.0  # the channel's budget is spent (by quantity writes, say)
        return await w.send_shipments()

    assert h.run(go) == 0
    assert state(h, "s-b")[:2] == ("pending", 0) and h.sandbox.calls("eb") == []


def test_amazon_confirmations_keep_to_the_confirm_shipment_usage_plan(h: Harness) -> None:
    ids = [place(h, "amz", "A", 1) for _ in range(12)]
    for n, oid in enumerate(ids):  # with Amazon's orderItemId (as ingested): one call per confirmation
        enqueue(h, "amz", oid, f"s-{n}", tracking=f"T{n}", line=f"{h.sandbox.order('amz', oid).seq:014d}")

    async def go(w: SyncWorker) -> tuple[int, int]:
        first = await w.send_shipments()  # burst 10 less the spare token: 9 now, none throttled
        h.clock.advance(500)  # 2/s: one more token
        return first, await w.send_shipments()

    assert h.run(go) == (9, 1)
    calls = [c for c in h.sandbox.calls("amz") if c.operation == "confirmShipment"]
    assert len(calls) == 10 and all(c.status == 204 for c in calls)


def test_lookups_are_paid_for_out_of_the_same_budget(h: Harness) -> None:
    ids = [place(h, "amz", "A", 1) for _ in range(3)]
    for n, oid in enumerate(ids):  # no orderItemId: getOrderItems first, then confirmShipment
        enqueue(h, "amz", oid, f"s-{n}", tracking=f"T{n}")

    async def go(w: SyncWorker) -> tuple[int, float]:
        sent = await w.send_shipments()
        return sent, w._bucket_for("amz", "shipments").tokens

    sent, tokens = h.run(go)
    assert sent == 3 and tokens == 9 - 6  # three operations, six calls


def test_cancellations_retry_with_backoff_and_park_when_the_channel_refuses(h: Harness) -> None:
    oid = place(h, "amz", "B", 3)  # the channel shows 5, Accord has 1: oversold
    ingested = h.orders.ingest_one(
        "amz", ChannelOrder(oid, datetime(2026, 1, 1, tzinfo=UTC), "Unshipped", (OrderLine("B", 3),)), "poll"
    )
    assert ingested.status == CANCELLED
    h.orders.ingest_one(  # a second cancelled order the channel does not know
        "amz", ChannelOrder("111-9999999-9999999", datetime(2026, 1, 1, tzinfo=UTC), "x", (OrderLine("B", 2),)), "poll"
    )
    h.sandbox.set_faults("amz", script=["503"])
    queue = CancelQueue(h.app.db)

    assert h.run(lambda w: w.send_cancellations()) == 0
    rows = {r.channel_order_id: r for r in queue.list()}
    # 503 before the feed was accepted: the whole batch (one feed for both) is retried after the backoff
    assert {(r.state, r.attempts) for r in rows.values()} == {("pending", 1)}
    assert h.run(lambda w: w.send_cancellations()) == 0  # not due yet
    h.clock.advance(1_000)
    assert h.run(lambda w: w.send_cancellations()) == 1
    rows = {r.channel_order_id: r for r in queue.list()}
    assert rows["111-9999999-9999999"].state == "dead"  # 404: the marketplace will keep saying no
    assert rows["111-9999999-9999999"].body and "Invalid orderId" in rows["111-9999999-9999999"].body
    assert h.sandbox.order("amz", oid).status == "new"  # the feed is accepted, not yet processed
    assert rows[oid].state == "submitted"  # in a feed the channel accepted: its report has the final word
    settle_feeds(h)
    assert h.sandbox.order("amz", oid).status == "cancelled"
    assert h.run(lambda w: w.send_cancellations()) == 0  # reads the report: accepted; nothing new to send
    assert {(k, v) for k, v in queue.counts().items()} == {(("amz", "sent"), 1), (("amz", "dead"), 1)}
    assert h.run(lambda w: w.send_cancellations()) == 0  # sent once


def test_an_oversold_order_is_cancelled_on_every_dialect(backend: Any) -> None:
    h = Harness(backend.url, {"B": 1}, ALL, shown={"B": 5})
    try:
        ids = {}
        for ch, _dialect in ALL:
            ids[ch] = place(h, ch, "B", 3)
            order = ChannelOrder(ids[ch], datetime(2026, 1, 1, tzinfo=UTC), "new", (OrderLine("B", 3),))
            assert h.orders.ingest_one(ch, order, "poll").status == CANCELLED
        assert h.run(lambda w: w.send_cancellations()) == len(ALL)
        settle_feeds(h)
        h.run(lambda w: w.send_cancellations())  # Amazon's feed report read
        for ch, _dialect in ALL:
            o = h.sandbox.order(ch, ids[ch])
            assert (o.status, o.cancel_reason) == ("cancelled", REASON[ch]), ch
            assert h.sandbox.sold_units(ch) == 0, ch
        assert {r.state for r in CancelQueue(h.app.db).list()} == {"sent"}
    finally:
        h.close()


def test_amazon_cancellations_are_batched_in_one_feed_paced_by_create_feed(h: Harness) -> None:
    ids = [place(h, "amz", "B", 1) for _ in range(3)]  # ingested as 3 units each: Accord has 1, all oversold
    for oid in [*ids, "111-0000000-0000404"]:  # and one the channel does not know
        order = ChannelOrder(oid, datetime(2026, 1, 1, tzinfo=UTC), "Unshipped", (OrderLine("B", 3),))
        assert h.orders.ingest_one("amz", order, "poll").status == CANCELLED

    async def go(w: SyncWorker) -> tuple[int, float]:
        sent = await w.send_cancellations()
        return sent, w._bucket_for("amz", "cancels").tokens

    before = [c.operation for c in h.sandbox.calls("amz")]
    sent, tokens = h.run(go)
    ops = [c.operation for c in h.sandbox.calls("amz")][len(before) :]
    assert sent == 3 and ops.count("createFeed") == 1 and ops.count("getOrderItems") == 4
    assert tokens == 14 - 1  # createFeed's burst 15 less the reserve, one feed for the batch
    rows = {r.channel_order_id: r.state for r in CancelQueue(h.app.db).list()}
    assert rows == {**dict.fromkeys(ids, "submitted"), "111-0000000-0000404": "dead"}
    settle_feeds(h)
    assert [h.sandbox.order("amz", oid).status for oid in ids] == ["cancelled"] * 3
    assert h.run(lambda w: w.send_cancellations()) == 0  # sent once; the report read
    rows = {r.channel_order_id: r.state for r in CancelQueue(h.app.db).list()}
    assert rows == {**dict.fromkeys(ids, "sent"), "111-0000000-0000404": "dead"}


def test_an_amazon_feed_report_that_rejects_a_cancellation_parks_it_with_the_reason(h: Harness) -> None:
    shipped, fine = place(h, "amz", "B", 1), place(h, "amz", "B", 1)
    for oid in (shipped, fine):  # 3 units each against Accord's 1: both oversold, both cancelled
        order = ChannelOrder(oid, datetime(2026, 1, 1, tzinfo=UTC), "Unshipped", (OrderLine("B", 3),))
        assert h.orders.ingest_one("amz", order, "poll").status == CANCELLED
    queue = CancelQueue(h.app.db)
    h.sandbox.config.feed_processing_ms = 90_000  # Amazon takes its time over this feed
    assert h.run(lambda w: w.send_cancellations()) == 2
    # the warehouse shipped one of them before Amazon processed the feed: that message fails in the report
    assert h.sandbox.order("amz", shipped).ship("pkg-1", "UPS", "1Z999", 1, h.clock.now_ms()) is None

    def calls(op: str) -> int:
        return [c.operation for c in h.sandbox.calls("amz")].count(op)

    h.clock.advance(30_000)
    h.run(lambda w: w.send_cancellations())
    assert calls("getFeed") == 0  # too early to look for the report
    h.clock.advance(30_000)
    h.run(lambda w: w.send_cancellations())  # not processed yet: IN_QUEUE, looked at again later
    assert calls("getFeed") == 1
    assert {r.state for r in queue.list()} == {"submitted"}
    h.run(lambda w: w.send_cancellations())
    assert calls("getFeed") == 1  # not before the recheck time

    h.clock.advance(30_000)
    h.run(lambda w: w.send_cancellations())
    assert calls("getFeed") == 2
    rows = {r.channel_order_id: r for r in queue.list()}
    assert rows[fine].state == "sent" and h.sandbox.order("amz", fine).status == "cancelled"
    dead = rows[shipped]
    assert dead.state == "dead" and dead.last_error is not None
    assert "rejected in feed" in dead.last_error and "18030" in dead.last_error and "shipped" in dead.last_error
    assert counter(h, "amz", "cancels_dead") == 1
    assert queue.redrive("amz", shipped, h.clock.now_ms()) == 1  # visible and redrivable like any dead letter


# channels that keep one tracking number per order: a split order's later parcels are covered, not sent
ONE_TRACKING = {"ml", "sp"}


def test_a_split_order_is_confirmed_on_every_dialect_without_dead_letters(backend: Any) -> None:
    h = Harness(backend.url, {"A": 20}, ALL, shown={"A": 20})
    try:
        ids = {ch: place(h, ch, "A", 2) for ch, _dialect in ALL}
        for ch, _dialect in ALL:  # one unit from each of two locations: two parcels, the first enqueued first
            enqueue(h, ch, ids[ch], f"{ch}-S1", qty=1, tracking=f"1Z{ch}1")
            h.clock.advance(10)
            enqueue(h, ch, ids[ch], f"{ch}-S2", qty=1, tracking=f"1Z{ch}2")
        for _ in range(5):
            h.run(lambda w: w.send_shipments())
            h.clock.advance(2_000)
        rows = {r.shipment_id: r for r in ShipmentOutbox(h.app.db).list()}
        for ch, _dialect in ALL:
            first, second = rows[f"{ch}-S1"], rows[f"{ch}-S2"]
            assert first.state == "sent", (ch, first.last_error)
            order = h.sandbox.order(ch, ids[ch])
            assert order.status == "shipped", ch
            trackings = [s["tracking"] for s in order.shipments]
            if ch in ONE_TRACKING:
                assert second.state == "covered", ch
                assert second.last_error is not None and f"{ch}-S1" in second.last_error
                assert trackings == [f"1Z{ch}1"], ch
                assert counter(h, ch, "shipments_covered") == 1
            else:
                assert second.state == "sent", (ch, second.last_error)
                assert trackings == [f"1Z{ch}1", f"1Z{ch}2"], ch
        assert not ShipmentOutbox(h.app.db).list(state="dead")
        assert {r.state for r in rows.values()} <= {"sent", "covered"}
    finally:
        h.close()
