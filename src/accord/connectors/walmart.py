"""Walmart Marketplace dialect: ``PUT /v3/inventory?sku=`` per SKU, bulk inventory feed (``POST /v3/feeds?feedType=
inventory``, multipart, hourly caps), ``PUT /v3/price`` and ``GET /v3/orders``.

Config: credentials ``access_token`` (sent as ``WM_SEC.ACCESS_TOKEN``); options ``orders_since`` (ISO).
Every request carries ``WM_QOS.CORRELATION_ID`` (the item's idempotency key when given) and ``WM_SVC.NAME``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from accord.connectors.base import (
    ChannelOrder,
    ContentUpdate,
    HttpConnector,
    ItemResult,
    ItemStatus,
    JsonObject,
    OrderLine,
    OrdersPage,
    QuantitySnapshot,
    QuantityUpdate,
    RequestRejected,
    decode_time_cursor,
    encode_time_cursor,
    iso_from_ms,
    money,
    ms_from_datetime,
    parse_iso,
    run_per_item,
)


@dataclass(frozen=True, slots=True)
class WalmartFeedStatus:
    feed_id: str
    status: str  # RECEIVED, INPROGRESS, PROCESSED, ERROR
    items_succeeded: int = 0
    items_failed: int = 0


def _errors_text(data: Any) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, dict):
        errors = errors.get("error")
    if not isinstance(errors, list):
        return ""
    return "; ".join(
        f"{e.get('code', '?')}: {e.get('description', e.get('info', ''))}" for e in errors if isinstance(e, dict)
    )


def correlation_id(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class WalmartConnector(HttpConnector):
    dialect = "walmart"

    def auth_headers(self) -> dict[str, str]:
        return {"WM_SEC.ACCESS_TOKEN": self.config.credential("access_token"), "WM_SVC.NAME": "Walmart Marketplace"}

    @staticmethod
    def inventory_body(sku: str, qty: int) -> JsonObject:
        return {"sku": sku, "quantity": {"unit": "EACH", "amount": qty}}

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        async def one(item: QuantityUpdate) -> ItemResult:
            cid = item.idempotency_key or correlation_id(item.sku, str(item.qty))
            resp = await self.request(
                "PUT",
                "/v3/inventory",
                params={"sku": item.sku},
                json_body=self.inventory_body(item.sku, item.qty),
                headers={"WM_QOS.CORRELATION_ID": cid},
            )
            data = self.decode_object(resp)
            if resp.status_code == 200:
                amount = (data.get("quantity") or {}).get("amount")
                return ItemResult(item.sku, ItemStatus.OK, observed_qty=int(amount) if amount is not None else None)
            reason = "not_found" if resp.status_code == 404 else "invalid"
            return self.rejected_result(item.sku, resp, reason, _errors_text(data))

        return await run_per_item(items, lambda i: i.sku, one)

    def inventory_feed(self, items: Sequence[QuantityUpdate]) -> JsonObject:
        return {"InventoryHeader": {"version": "1.4"}, "Inventory": [self.inventory_body(i.sku, i.qty) for i in items]}

    async def submit_inventory_feed(self, items: Sequence[QuantityUpdate]) -> str:
        cap = self.limits.feed_max_messages or 10_000
        if not items or len(items) > cap:
            raise ValueError(f"an inventory feed takes 1..{cap} items, got {len(items)}")
        doc = json.dumps(self.inventory_feed(items)).encode()
        resp = await self.request(
            "POST",
            "/v3/feeds",
            params={"feedType": "inventory"},
            files={"file": ("inventory.json", doc, "application/json")},
            headers={"WM_QOS.CORRELATION_ID": correlation_id("feed", hashlib.sha256(doc).hexdigest())},
        )
        data = self.decode_object(resp)
        if resp.status_code not in (200, 202) or not isinstance(data.get("feedId"), str):
            raise RequestRejected(
                f"submit feed: {resp.status_code} {_errors_text(data)}", status=resp.status_code, body=resp.text
            )
        return str(data["feedId"])

    async def get_feed_status(self, feed_id: str) -> WalmartFeedStatus:
        resp = await self.request(
            "GET", f"/v3/feeds/{feed_id}", headers={"WM_QOS.CORRELATION_ID": correlation_id(feed_id)}
        )
        data = self.decode_object(resp)
        if resp.status_code != 200:
            raise RequestRejected(f"feed status: {resp.status_code}", status=resp.status_code, body=resp.text)
        return WalmartFeedStatus(
            feed_id, str(data.get("feedStatus")), int(data.get("itemsSucceeded", 0)), int(data.get("itemsFailed", 0))
        )

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        out = []
        for sku in skus:
            resp = await self.request(
                "GET",
                "/v3/inventory",
                params={"sku": sku},
                headers={"WM_QOS.CORRELATION_ID": correlation_id("get", sku)},
            )
            if resp.status_code == 404:
                out.append(QuantitySnapshot(sku, None))
                continue
            data = self.decode_object(resp)
            if resp.status_code != 200:
                raise RequestRejected(
                    f"get inventory {sku}: {resp.status_code}", status=resp.status_code, body=resp.text
                )
            amount = (data.get("quantity") or {}).get("amount")
            out.append(QuantitySnapshot(sku, int(amount) if amount is not None else None))
        return out

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        async def one(item: ContentUpdate) -> ItemResult:
            if item.title is not None or item.description is not None or item.attributes:
                return ItemResult(
                    item.sku, ItemStatus.REJECTED, "unsupported", "item content goes through the MP_ITEM feed"
                )
            if item.price is None:
                return ItemResult(item.sku, ItemStatus.OK, "nothing_to_do")
            body = {
                "sku": item.sku,
                "pricing": [
                    {
                        "currentPriceType": "BASE",
                        "currentPrice": {
                            "currency": item.currency or self.config.currency,
                            "amount": float(item.price),
                        },
                    }
                ],
            }
            resp = await self.request(
                "PUT", "/v3/price", json_body=body, headers={"WM_QOS.CORRELATION_ID": correlation_id("price", item.sku)}
            )
            if resp.status_code == 200:
                return ItemResult(item.sku, ItemStatus.OK)
            return self.rejected_result(item.sku, resp, "invalid", _errors_text(self.decode_object(resp)))

        return await run_per_item(items, lambda i: i.sku, one)

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        """Cursor: ``next:<Walmart nextCursor query>`` while paging, else a time cursor (orders may repeat)."""
        headers = {"WM_QOS.CORRELATION_ID": correlation_id("orders", cursor or "")}
        if cursor and cursor.startswith("next:"):
            resp = await self.request("GET", "/v3/orders" + cursor.removeprefix("next:"), headers=headers)
            since_ms = -1
        else:
            default = ms_from_datetime(parse_iso(self.config.option("orders_since", "2020-01-01T00:00:00.000Z")))
            since_ms, _ = decode_time_cursor(cursor, default)
            resp = await self.request(
                "GET", "/v3/orders", params={"createdStartDate": iso_from_ms(since_ms), "limit": 50}, headers=headers
            )
        data = self.decode_object(resp)
        if resp.status_code != 200:
            raise RequestRejected(f"getOrders: {resp.status_code}", status=resp.status_code, body=resp.text)
        listing = data.get("list") or {}
        meta = listing.get("meta") or {}
        orders = []
        for raw in (listing.get("elements") or {}).get("order") or []:
            lines = []
            for ol in (raw.get("orderLines") or {}).get("orderLine") or []:
                charges = (ol.get("charges") or {}).get("charge") or []
                product: dict[str, Any] = next((c for c in charges if c.get("chargeType") == "PRODUCT"), {})
                qty = int((ol.get("orderLineQuantity") or {}).get("amount", 0))
                amount = money((product.get("chargeAmount") or {}).get("amount"))
                unit = amount / qty if amount is not None and qty else amount
                lines.append(
                    OrderLine(str((ol.get("item") or {}).get("sku", "")), qty, unit, str(ol.get("lineNumber")))
                )
            orders.append(
                ChannelOrder(
                    channel_order_id=str(raw["purchaseOrderId"]),
                    created_at=datetime.fromtimestamp(int(raw["orderDate"]) / 1000, tz=UTC),
                    status="Created",
                    lines=tuple(lines),
                    raw=raw,
                )
            )
        next_cursor = meta.get("nextCursor")
        if next_cursor:
            return OrdersPage(orders, "next:" + str(next_cursor))
        newest = max((int(o.raw["orderDate"]) for o in orders), default=since_ms)
        return OrdersPage(orders, encode_time_cursor(newest) if newest >= 0 else cursor)
