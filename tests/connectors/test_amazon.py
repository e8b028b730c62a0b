from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from accord.connectors.amazon import AmazonConnector
from accord.connectors.base import ConnectorTimeout, ContentUpdate, ItemStatus, MalformedResponse, QuantityUpdate
from accord.sandbox.core import ChannelSpec

from .conftest import Env, listings
from .spapi import LISTINGS, ValidatingTransport, validate, validate_document


def amazon_env(make_env: Callable[..., Env], **config: object) -> tuple[Env, ValidatingTransport]:
    env = make_env([ChannelSpec("amazon-us", "amazon", listings("A1", "A2", "A3", "A4", "A5", "A6", "A7"))], **config)
    vt = ValidatingTransport(env.transport)
    env.transport = vt
    return env, vt


def test_patch_quantities_round_trip_with_schema_validation(make_env: Callable[..., Env]) -> None:
    env, vt = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        results = await conn.set_quantities([QuantityUpdate("A1", 3), QuantityUpdate("A2", 0)])
        assert [r.status for r in results] == [ItemStatus.OK, ItemStatus.OK]
        snaps = await conn.get_quantities(["A1", "A2", "NOPE"])
        assert [(s.sku, s.qty) for s in snaps] == [("A1", 3), ("A2", 0), ("NOPE", None)]

    env.run(go)
    assert env.sandbox.listing("amazon-us", "A1").qty == 3
    assert env.sandbox.listing("amazon-us", "A2").qty == 0
    assert ("PATCH", "/amazon-us/listings/2021-08-01/items/SANDBOXSELLER/A1", 200) in vt.validated
    calls = env.sandbox.calls("amazon-us")
    assert [c.operation for c in calls] == ["patchListingsItem"] * 2 + ["getListingsItem"] * 3


def test_payload_is_the_documented_json_patch(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        body = conn.quantity_patch_request(7)
        validate(LISTINGS, "ListingsItemPatchRequest", body)
        assert body["patches"] == [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}],
            }
        ]
        content = conn.content_patch_request(ContentUpdate("A1", title="New", description="D", price=None))
        validate(LISTINGS, "ListingsItemPatchRequest", content)

    env.run(go)


def test_rejections_are_not_retryable(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        unknown, negative, ok = await conn.set_quantities(
            [QuantityUpdate("GHOST", 1), QuantityUpdate("A1", -1), QuantityUpdate("A2", 4)]
        )
        assert (unknown.status, unknown.reason) == (ItemStatus.REJECTED, "not_found")
        assert unknown.error is not None and unknown.error.body and "GHOST" in unknown.error.body
        assert (negative.status, negative.reason) == (ItemStatus.REJECTED, "invalid")
        assert ok.ok

    env.run(go)
    assert env.sandbox.listing("amazon-us", "A1").qty == 10


def test_burst_exhaustion_gives_429_with_retry_after_and_stops_the_batch(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        results = await conn.set_quantities([QuantityUpdate(f"A{i}", i) for i in range(1, 8)])
        assert [r.status for r in results[:5]] == [ItemStatus.OK] * 5
        limited, skipped = results[5], results[6]
        assert (limited.status, limited.reason) == (ItemStatus.RETRYABLE, "rate_limited")
        assert limited.retry_after_s == 1.0
        assert (
            limited.error is not None and limited.error.status == 429 and "QuotaExceeded" in (limited.error.body or "")
        )
        assert (skipped.status, skipped.reason) == (ItemStatus.RETRYABLE, "not_attempted")
        env.clock.advance(1000)  # 5 requests/s refill
        again = await conn.set_quantities([QuantityUpdate("A6", 6)])
        assert again[0].ok

    env.run(go)
    statuses = [c.status for c in env.sandbox.calls("amazon-us")]
    assert statuses == [200] * 5 + [429, 200]


def test_429_without_retry_after(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env)
    env.sandbox.set_faults("amazon-us", omit_retry_after=True, script=["429"])

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        (result,) = await conn.set_quantities([QuantityUpdate("A1", 1)])
        assert (result.status, result.reason, result.retry_after_s) == (ItemStatus.RETRYABLE, "rate_limited", None)

    env.run(go)


def test_injected_5xx_malformed_and_timeout(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client, timeout_s=0.2)
        env.sandbox.set_faults("amazon-us", script=["503"])
        (r,) = await conn.set_quantities([QuantityUpdate("A1", 1)])
        assert (r.status, r.reason) == (ItemStatus.RETRYABLE, "server_error")
        assert r.error is not None and r.error.status == 503 and "InternalFailure" in (r.error.body or "")
        assert env.sandbox.listing("amazon-us", "A1").qty == 10

        env.sandbox.set_faults("amazon-us", script=["malformed"])
        (r,) = await conn.set_quantities([QuantityUpdate("A1", 2)])
        assert (r.status, r.reason) == (ItemStatus.RETRYABLE, "malformed_response")
        assert isinstance(r.error, MalformedResponse) and r.error.body
        # the write landed although the answer was garbage: the caller must re-read, which shows it
        assert (await conn.get_quantities(["A1"]))[0].qty == 2

        env.sandbox.set_faults("amazon-us", script=["timeout"], hang_s=30.0)
        (r,) = await conn.set_quantities([QuantityUpdate("A1", 3)])
        assert (r.status, r.reason) == (ItemStatus.RETRYABLE, "timeout")
        assert isinstance(r.error, ConnectorTimeout)

    env.run(go)


def test_json_listings_feed_flow(make_env: Callable[..., Env]) -> None:
    env, vt = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        items = [QuantityUpdate("A1", 0), QuantityUpdate("GHOST", 5), QuantityUpdate("A3", 33)]
        validate_document("listings-feed-schema-v2.json", conn.listings_feed(items))
        feed_id = await conn.submit_quantity_feed(items)
        status = await conn.get_feed(feed_id)
        assert status.processing_status == "IN_QUEUE" and not status.finished
        assert env.sandbox.listing("amazon-us", "A1").qty == 10  # minutes of latency: nothing applied yet
        env.sandbox.tick(60_000)
        status = await conn.get_feed(feed_id)
        assert status.processing_status == "DONE" and status.result_feed_document_id
        results = await conn.get_feed_results(status, [i.sku for i in items])
        assert [(r.sku, r.status) for r in results] == [
            ("A1", ItemStatus.OK),
            ("GHOST", ItemStatus.REJECTED),
            ("A3", ItemStatus.OK),
        ]

    env.run(go)
    assert env.sandbox.listing("amazon-us", "A1").qty == 0
    assert env.sandbox.listing("amazon-us", "A3").qty == 33
    ops = {c.operation for c in env.sandbox.calls("amazon-us")}
    assert {"createFeedDocument", "uploadFeedDocument", "createFeed", "getFeed", "downloadFeedDocument"} <= ops
    assert any(p.endswith("/feeds/2021-06-30/feeds") for _, p, _ in vt.validated)


def test_orders_with_pagination_and_schema(make_env: Callable[..., Env]) -> None:
    env, vt = amazon_env(make_env)
    for _ in range(3):
        env.clock.advance(1000)
        assert env.sandbox.place_order("amazon-us", "A1", 2) is not None

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        page = await conn.fetch_orders(None)
        assert len(page.orders) == 3
        first = page.orders[0]
        assert first.lines[0].sku == "A1" and first.lines[0].qty == 2
        assert str(first.lines[0].unit_price) == "10.00"
        again = await conn.fetch_orders(page.next_cursor)
        assert {o.channel_order_id for o in again.orders} <= {o.channel_order_id for o in page.orders}

    env.run(go)
    assert any(p.endswith("/orderItems") for _, p, _ in vt.validated)


def test_order_poll_skips_orders_already_seen_without_losing_equal_timestamps(make_env: Callable[..., Env]) -> None:
    env, vt = amazon_env(make_env)
    env.clock.advance(1000)
    first = env.sandbox.place_order("amazon-us", "A1", 1)
    assert first is not None

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        page = await conn.fetch_orders(None)
        assert [o.channel_order_id for o in page.orders] == [first.order_id]
        items_calls = sum(p.endswith("/orderItems") for _, p, _ in vt.validated)
        idle = await conn.fetch_orders(page.next_cursor)
        assert idle.orders == [] and idle.next_cursor == page.next_cursor
        assert sum(p.endswith("/orderItems") for _, p, _ in vt.validated) == items_calls
        same_ms = env.sandbox.place_order("amazon-us", "A1", 1)  # created in the same millisecond as the first
        assert same_ms is not None
        later = await conn.fetch_orders(idle.next_cursor)
        assert [o.channel_order_id for o in later.orders] == [same_ms.order_id]
        assert (await conn.fetch_orders(later.next_cursor)).orders == []

    env.run(go)


def test_orders_next_token(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env, enforce_limits=False)  # 105 getOrderItems calls exceed its burst of 30
    env.sandbox.upsert_listing("amazon-us", listings("BIG", qty=500)[0])
    for _ in range(105):
        env.clock.advance(10)
        env.sandbox.place_order("amazon-us", "BIG", 1)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        page1 = await conn.fetch_orders(None)
        assert len(page1.orders) == 100 and page1.next_cursor and page1.next_cursor.startswith("next:")
        page2 = await conn.fetch_orders(page1.next_cursor)
        assert len(page2.orders) == 5
        ids = {o.channel_order_id for o in page1.orders + page2.orders}
        assert len(ids) == 105

    env.run(go)


def test_missing_token_is_an_auth_rejection(make_env: Callable[..., Env]) -> None:
    env, _ = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client, credentials={"access_token": "wrong"})
        results = await conn.set_quantities([QuantityUpdate("A1", 1), QuantityUpdate("A2", 1)])
        assert [(r.status, r.reason) for r in results] == [(ItemStatus.REJECTED, "auth")] * 2

    env.run(go)
    assert len(env.sandbox.calls("amazon-us")) == 1


@pytest.mark.parametrize("attr", ["title", "price"])
def test_content_update(make_env: Callable[..., Env], attr: str) -> None:
    from decimal import Decimal

    env, _ = amazon_env(make_env)

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("amazon-us", client)
        update = ContentUpdate("A1", title="Better") if attr == "title" else ContentUpdate("A1", price=Decimal("12.50"))
        (r,) = await conn.update_content([update])
        assert r.ok

    env.run(go)
    listing = env.sandbox.listing("amazon-us", "A1")
    assert listing.title == "Better" if attr == "title" else listing.price == Decimal("12.5")
