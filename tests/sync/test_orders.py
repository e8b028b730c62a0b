from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from accord.api.app import create_app
from accord.connectors.shopify import sign_webhook
from accord.sync.orders import CANCELLED, HELD, RESERVED
from accord.sync.worker import SyncWorker

from .harness import Harness

URL = "/v1/sync/webhooks/shopify/shop"


class ApiClient:
    """httpx over ASGITransport, one event loop per request (Starlette's ApiClient is deprecated here)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://accord") as client:
                return await client.post(url, content=content, headers=headers)

        return asyncio.run(go())


@pytest.fixture
def h(backend: Any) -> Iterator[Harness]:
    harness = Harness(backend.url, {"A": 5, "B": 1}, (("shop", "shopify"), ("amz", "amazon")), shown={"A": 5, "B": 5})
    yield harness
    harness.close()


def delivery(h: Harness) -> tuple[dict[str, str], str]:
    d = h.sandbox.channel("shop").webhooks[-1]
    return dict(d["headers"]), str(d["body"])


def test_forged_or_unsigned_webhooks_are_401_and_store_nothing(h: Harness) -> None:
    h.sandbox.place_order("shop", "A", 1)
    headers, body = delivery(h)
    api = ApiClient(create_app(h.app))
    forged = {**headers, "X-Shopify-Hmac-Sha256": sign_webhook(body.encode(), "not-the-secret")}
    unsigned = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    tampered_body = body.replace('"quantity":1', '"quantity":5')
    for hdrs, raw in ((forged, body), (unsigned, body), (headers, tampered_body)):
        r = api.post(URL, content=raw.encode(), headers=hdrs)
        assert r.status_code == 401, r.text
    assert h.orders.orders() == []
    assert h.engine.ats("A", "amz") == {"amz": 5}


def test_duplicate_deliveries_make_one_order_and_reserve_once(h: Harness) -> None:
    h.sandbox.place_order("shop", "A", 2)
    headers, body = delivery(h)
    api = ApiClient(create_app(h.app))
    statuses = []
    for _ in range(3):
        r = api.post(URL, content=body.encode(), headers=headers)
        assert r.status_code == 200, r.text
        statuses.append(r.json()["status"])
    again = {**headers, "X-Shopify-Webhook-Id": "another-delivery-id"}  # same order, new delivery id
    statuses.append(api.post(URL, content=body.encode(), headers=again).json()["status"])
    assert statuses == [RESERVED, "duplicate", "duplicate", "duplicate"]
    rows = h.orders.orders()
    assert len(rows) == 1 and rows[0].status == RESERVED
    assert h.engine.ats("A", "amz") == {"amz": 3}  # reserved in the same transaction: every channel drops
    h.relay.drain()
    assert [(p.channel, p.value) for p in h.store.due("amz", h.clock.now_ms(), 10) if p.sku == "A"] == [("amz", 3)]


def test_unknown_sku_is_held_with_a_reason(h: Harness) -> None:
    payload = {
        "id": 1,
        "admin_graphql_api_id": "gid://shopify/Order/77",
        "created_at": "2026-01-01T00:00:00Z",
        "currency": "USD",
        "line_items": [{"id": 1, "sku": "NOPE", "quantity": 1, "price": "1.00"}],
    }
    raw = json.dumps(payload).encode()
    headers = {"X-Shopify-Hmac-Sha256": sign_webhook(raw, "sandbox-app-secret"), "X-Shopify-Webhook-Id": "w1"}
    r = ApiClient(create_app(h.app)).post(URL, content=raw, headers=headers)
    assert r.status_code == 200 and r.json()["status"] == HELD
    (row,) = h.orders.orders()
    assert row.status == HELD and row.reason is not None and "unknown SKU 'NOPE'" in row.reason


def test_oversold_order_is_cancelled_back_to_the_channel(h: Harness) -> None:
    order = h.sandbox.place_order("shop", "B", 3)  # the channel still shows 5; Accord has 1
    assert order is not None
    headers, body = delivery(h)
    r = ApiClient(create_app(h.app)).post(URL, content=body.encode(), headers=headers)
    assert r.json()["status"] == CANCELLED
    (row,) = h.orders.orders()
    assert row.reason is not None and row.reason.startswith("out of stock") and row.cancel_state == "pending"
    assert h.engine.ats("B", "amz") == {"amz": 1}  # nothing reserved

    sent = h.run(lambda w: w.send_cancellations())
    assert sent == 1
    assert h.orders.orders()[0].cancel_state == "sent"
    assert order.status == "cancelled"
    assert any(c.operation == "graphql" and c.status == 200 for c in h.sandbox.calls("shop"))


def test_polling_with_a_cursor_ingests_each_order_once(h: Harness) -> None:
    h.sandbox.place_order("shop", "A", 1)
    h.sandbox.place_order("shop", "A", 1)

    async def go(w: SyncWorker) -> tuple[int, int]:
        first = await w.poll_orders("shop")
        h.sandbox.place_order("shop", "A", 1)
        second = await w.poll_orders("shop")
        return first, second

    first, second = h.run(go)
    assert first == 2 and second == 1
    rows = h.orders.orders()
    assert len(rows) == 3 and {r.status for r in rows} == {RESERVED} and {r.source for r in rows} == {"poll"}
    assert h.engine.ats("A", "amz") == {"amz": 2}
    assert h.orders.cursor("shop") is not None


def test_webhook_order_becomes_a_routed_lifecycle_order(h: Harness) -> None:
    from accord.orders import OrderService

    h.sandbox.place_order("shop", "A", 2)
    headers, body = delivery(h)
    r = ApiClient(create_app(h.app)).post(URL, content=body.encode(), headers=headers)
    assert r.status_code == 200 and r.json()["status"] == RESERVED
    svc = OrderService(h.engine)
    (listed,) = svc.list_orders()
    d = svc.show(listed["id"])
    assert (d["status"], d["source"], d["channel"]) == ("routed", "webhook", "shop")
    assert [(a["location"], a["qty_reserved"]) for a in d["allocations"]] == [("wh", 2)]
    assert d["lines"][0]["unit_price_minor"] > 0  # the channel's price, in minor units
