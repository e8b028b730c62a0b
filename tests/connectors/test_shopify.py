from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from accord.connectors.base import ContentUpdate, ItemStatus, Limits, QuantityUpdate, RateLimited
from accord.connectors.shopify import (
    SET_QUANTITIES,
    ShopifyConnector,
    WebhookDeduper,
    WebhookVerificationError,
    parse_order_webhook,
    sign_webhook,
    verify_webhook,
)
from accord.sandbox.core import ChannelSpec

from .conftest import Env, listings


def shopify_env(make_env: Callable[..., Env]) -> Env:
    return make_env([ChannelSpec("shop", "shopify", listings("S1", "S2", "S3"))])


def test_set_quantities_with_compare_and_set(make_env: Callable[..., Env]) -> None:
    env = shopify_env(make_env)
    ref1, ref2 = env.sandbox.listing("shop", "S1").ref, env.sandbox.listing("shop", "S2").ref

    async def go(client: httpx.AsyncClient) -> None:
        conn: ShopifyConnector = env.connector("shop", client)
        ok = await conn.set_quantities([QuantityUpdate("S1", 4, ref1, expected_qty=10)])
        assert ok[0].ok and ok[0].observed_qty == 4
        assert conn.throttle_status is not None and conn.throttle_status.maximum_available == 2000
        stale, other = await conn.set_quantities(
            [QuantityUpdate("S1", 3, ref1, expected_qty=10), QuantityUpdate("S2", 1, ref2, expected_qty=10)]
        )
        assert (stale.status, stale.reason) == (ItemStatus.CONFLICT, "cas_mismatch")
        assert (other.status, other.reason) == (ItemStatus.RETRYABLE, "batch_aborted")
        missing = await conn.set_quantities([QuantityUpdate("S3", 1)])
        assert missing[0].reason == "missing_listing_ref"
        snaps = await conn.get_quantities(["S1", "S2", "ZZ"])
        assert [(s.sku, s.qty) for s in snaps] == [("S1", 4), ("S2", 10), ("ZZ", None)]

    env.run(go)
    assert env.sandbox.listing("shop", "S2").qty == 10  # all-or-nothing mutation


def test_idempotent_key_replays_instead_of_reapplying(make_env: Callable[..., Env]) -> None:
    env = shopify_env(make_env)
    ref = env.sandbox.listing("shop", "S1").ref

    async def go(client: httpx.AsyncClient) -> None:
        conn: ShopifyConnector = env.connector("shop", client)
        update = QuantityUpdate("S1", 5, ref, expected_qty=None, idempotency_key="evt-1")
        variables = conn.set_quantities_variables([update])
        assert variables["key"] == conn.set_quantities_variables([update])["key"]
        assert "@idempotent(key: $key)" in SET_QUANTITIES and "changeFromQuantity" in json.dumps(variables)
        assert (await conn.set_quantities([update]))[0].ok
        env.sandbox.place_order("shop", "S1", 1)  # shows 4 now
        assert (await conn.set_quantities([update]))[0].ok  # retried delivery: replayed, not applied twice

    env.run(go)
    assert env.sandbox.listing("shop", "S1").qty == 4


def test_cost_throttle_maps_to_rate_limited(make_env: Callable[..., Env]) -> None:
    env = make_env(
        [
            ChannelSpec(
                "shop",
                "shopify",
                listings("S1"),
                limits=Limits("shopify", 1, 20, 250, True, True, cost_bucket_size=20, cost_restore_per_s=5),
            )
        ]
    )
    ref = env.sandbox.listing("shop", "S1").ref

    async def go(client: httpx.AsyncClient) -> None:
        conn: ShopifyConnector = env.connector("shop", client)
        assert (await conn.set_quantities([QuantityUpdate("S1", 1, ref, None)]))[0].ok
        assert (await conn.set_quantities([QuantityUpdate("S1", 2, ref, None)]))[0].ok
        (r,) = await conn.set_quantities([QuantityUpdate("S1", 3, ref, None)])
        assert (r.status, r.reason) == (ItemStatus.RETRYABLE, "rate_limited")
        assert r.retry_after_s == pytest.approx(2.0)  # 10 points needed, 0 available, 5/s restore
        with pytest.raises(RateLimited):
            await conn.fetch_orders(None)

    env.run(go)


def test_orders_and_content(make_env: Callable[..., Env]) -> None:
    env = shopify_env(make_env)
    env.sandbox.place_order("shop", "S1", 2)
    product = env.sandbox.listing("shop", "S1").product_ref

    async def go(client: httpx.AsyncClient) -> None:
        conn: ShopifyConnector = env.connector("shop", client)
        page = await conn.fetch_orders(None)
        assert [(o.lines[0].sku, o.lines[0].qty) for o in page.orders] == [("S1", 2)]
        assert (await conn.fetch_orders(page.next_cursor)).orders == []
        env.sandbox.place_order("shop", "S2", 1)
        assert [o.lines[0].sku for o in (await conn.fetch_orders(page.next_cursor)).orders] == ["S2"]
        (r,) = await conn.update_content([ContentUpdate("S1", product, title="Fresh", description="<p>x</p>")])
        assert r.ok
        (bad,) = await conn.update_content([ContentUpdate("S1", "gid://shopify/Product/0", title="x")])
        assert bad.status is ItemStatus.REJECTED

    env.run(go)
    assert env.sandbox.listing("shop", "S1").title == "Fresh"


def test_webhook_verification_and_dedupe(make_env: Callable[..., Env]) -> None:
    env = shopify_env(make_env)
    env.sandbox.place_order("shop", "S1", 1)
    (delivery,) = env.sandbox.channel("shop").webhooks
    secret = env.sandbox.channel("shop").credentials["app_secret"]
    raw = delivery["body"].encode()
    headers = delivery["headers"]
    assert verify_webhook(raw, headers["X-Shopify-Hmac-Sha256"], secret)
    assert not verify_webhook(raw + b" ", headers["X-Shopify-Hmac-Sha256"], secret)
    assert not verify_webhook(raw, headers["X-Shopify-Hmac-Sha256"], "other-secret")
    assert not verify_webhook(raw, None, secret)
    deduper = WebhookDeduper(max_entries=2)
    order = parse_order_webhook(raw, headers, secret, deduper)
    assert order is not None and order.lines[0].sku == "S1"
    assert parse_order_webhook(raw, headers, secret, deduper) is None  # redelivery
    with pytest.raises(WebhookVerificationError):
        parse_order_webhook(raw.replace(b'"quantity":1', b'"quantity":9'), headers, secret, deduper)
    assert sign_webhook(b"{}", "k") == "rdhTsQP7zJNqGU+esV4pxP8Ir25H1dG8pPICGOMeT/8="


def test_deduper_is_bounded() -> None:
    d = WebhookDeduper(max_entries=2)
    assert d.first_time("a") and d.first_time("b") and d.first_time("c")
    assert d.first_time("a")  # evicted, so seen as new
    assert not d.first_time("c")
