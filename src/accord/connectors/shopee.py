"""Shopee Open Platform v2 dialect (signed shop-level calls).

Every call carries ``partner_id, timestamp, access_token, shop_id, sign`` where ``sign`` is the hex
HMAC-SHA256 (partner key) of ``partner_id + api path + timestamp + access_token + shop_id``. Business errors come
back as HTTP 200/4xx with a non-empty ``error`` field.

- Quantity: ``POST /api/v2/product/update_stock`` (one item, its models' seller stock).
- Reads: ``get_item_list`` (paged scan) + ``get_item_base_info``.
- Content: ``update_item`` (name, description), ``update_price``.
- Orders: ``get_order_list`` (create_time window ≤ 15 days, cursor) + ``get_order_detail``.

Config: credentials ``partner_id``, ``partner_key``, ``access_token``, ``shop_id``.
``listing_ref`` is ``"<item_id>"`` or ``"<item_id>:<model_id>"``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from accord.connectors.base import (
    CancelReason,
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
    RateLimited,
    RequestRejected,
    ServerError,
    ShipmentConfirmation,
    chunked,
    money,
    run_per_item,
)

WINDOW_S = 15 * 24 * 3600
# cancel_order reasons a seller may give (OUT_OF_STOCK names the items in item_list)
CANCEL_REASONS = {
    CancelReason.OUT_OF_STOCK: "OUT_OF_STOCK",
    CancelReason.CUSTOMER_REQUEST: "CUSTOMER_REQUEST",
    CancelReason.PRICING_ERROR: "OUT_OF_STOCK",
    CancelReason.UNDELIVERABLE: "UNDELIVERABLE_AREA",
    CancelReason.OTHER: "OUT_OF_STOCK",
}


def shopee_sign(partner_key: str, partner_id: str, path: str, timestamp: int, access_token: str, shop_id: str) -> str:
    base = f"{partner_id}{path}{timestamp}{access_token}{shop_id}"
    return hmac.new(partner_key.encode(), base.encode(), hashlib.sha256).hexdigest()


def split_ref(ref: str) -> tuple[int, int]:
    item, _, model = ref.partition(":")
    return int(item), int(model or 0)


class ShopeeConnector(HttpConnector):
    dialect = "shopee"
    one_tracking_per_order = True  # ``logistics/ship_order`` takes one tracking number per order (package)

    def signed_params(self, path: str) -> dict[str, str]:
        c = self.config
        ts = self.clock.now_ms() // 1000
        sign = shopee_sign(
            c.credential("partner_key"),
            c.credential("partner_id"),
            path,
            ts,
            c.credential("access_token"),
            c.credential("shop_id"),
        )
        return {
            "partner_id": c.credential("partner_id"),
            "timestamp": str(ts),
            "access_token": c.credential("access_token"),
            "shop_id": c.credential("shop_id"),
            "sign": sign,
        }

    async def call(
        self, method: str, path: str, params: Mapping[str, str] | None = None, body: JsonObject | None = None
    ) -> tuple[JsonObject, httpx.Response]:
        resp = await self.request(method, path, params={**self.signed_params(path), **(params or {})}, json_body=body)
        data = self.decode_object(resp)
        error = str(data.get("error") or "")
        if error:
            msg = f"shopee {path}: {error}: {data.get('message', '')}"
            if "too_many" in error or "rate_limit" in error:
                raise RateLimited(msg, status=resp.status_code, body=resp.text)
            if error in ("error_server", "error_inner", "error_busy"):
                raise ServerError(msg, status=resp.status_code, body=resp.text)
            raise RequestRejected(msg, status=resp.status_code, body=resp.text)
        return data, resp

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        async def one(item: QuantityUpdate) -> ItemResult:
            if not item.listing_ref:
                return ItemResult(item.sku, ItemStatus.REJECTED, "missing_listing_ref", "item_id needed")
            item_id, model_id = split_ref(item.listing_ref)
            body = {"item_id": item_id, "stock_list": [{"model_id": model_id, "seller_stock": [{"stock": item.qty}]}]}
            try:
                data, _ = await self.call("POST", "/api/v2/product/update_stock", body=body)
            except RequestRejected as err:
                reason = "stock_locked" if "lock" in str(err).lower() else "invalid"
                status = ItemStatus.RETRYABLE if reason == "stock_locked" else ItemStatus.REJECTED
                return ItemResult(item.sku, status, reason, str(err), error=err)
            response = data.get("response") or {}
            failures = response.get("failure_list") or []
            if failures:
                detail = "; ".join(str(f.get("failed_reason", "")) for f in failures)
                locked = "lock" in detail.lower() or "promotion" in detail.lower()
                status = ItemStatus.RETRYABLE if locked else ItemStatus.REJECTED
                return ItemResult(item.sku, status, "stock_locked" if locked else "invalid", detail)
            stock = next((s.get("stock") for s in response.get("success_list") or []), None)
            return ItemResult(item.sku, ItemStatus.OK, observed_qty=int(stock) if stock is not None else None)

        return await run_per_item(items, lambda i: i.sku, one)

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        wanted = set(skus)
        found: dict[str, QuantitySnapshot] = {}
        offset = 0
        while True:  # scan the shop's items (bounded by has_next_page)
            data, _ = await self.call(
                "GET",
                "/api/v2/product/get_item_list",
                {"offset": str(offset), "page_size": "100", "item_status": "NORMAL"},
            )
            response = data.get("response") or {}
            ids = [int(i["item_id"]) for i in response.get("item") or []]
            for batch in chunked(ids, 50):
                info, _ = await self.call(
                    "GET", "/api/v2/product/get_item_base_info", {"item_id_list": ",".join(map(str, batch))}
                )
                for it in (info.get("response") or {}).get("item_list") or []:
                    sku = str(it.get("item_sku", ""))
                    if sku in wanted:
                        stock_info = it.get("stock_info_v2") or {}
                        seller = stock_info.get("seller_stock") or [{}]
                        qty = seller[0].get("stock")
                        found[sku] = QuantitySnapshot(sku, int(qty) if qty is not None else None, str(it["item_id"]))
            if not response.get("has_next_page"):
                break
            offset = int(response.get("next_offset", offset + len(ids)))
        return [found.get(s, QuantitySnapshot(s, None)) for s in skus]

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        async def one(item: ContentUpdate) -> ItemResult:
            if not item.listing_ref:
                return ItemResult(item.sku, ItemStatus.REJECTED, "missing_listing_ref", "item_id needed")
            item_id, model_id = split_ref(item.listing_ref)
            try:
                body: JsonObject = {"item_id": item_id}
                if item.title is not None:
                    body["item_name"] = item.title
                if item.description is not None:
                    body["description"] = item.description
                if len(body) > 1:
                    await self.call("POST", "/api/v2/product/update_item", body=body)
                if item.price is not None:
                    price = {
                        "item_id": item_id,
                        "price_list": [{"model_id": model_id, "original_price": float(item.price)}],
                    }
                    await self.call("POST", "/api/v2/product/update_price", body=price)
            except RequestRejected as err:
                return ItemResult(item.sku, ItemStatus.REJECTED, "invalid", str(err), error=err)
            return ItemResult(item.sku, ItemStatus.OK)

        return await run_per_item(items, lambda i: i.sku, one)

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        """Cursor: ``"<time_from_s>|<shopee cursor>"``; orders may repeat at window edges (dedupe by order_sn)."""
        now_s = self.clock.now_ms() // 1000
        time_from, page_cursor = 0, ""
        if cursor:
            head, _, page_cursor = cursor.partition("|")
            time_from = int(head)
        else:
            time_from = now_s - WINDOW_S
        time_to = min(now_s, time_from + WINDOW_S)
        data, _ = await self.call(
            "GET",
            "/api/v2/order/get_order_list",
            {
                "time_range_field": "create_time",
                "time_from": str(time_from),
                "time_to": str(time_to),
                "page_size": "50",
                "cursor": page_cursor,
            },
        )
        response = data.get("response") or {}
        sns = [str(o["order_sn"]) for o in response.get("order_list") or []]
        orders = []
        for batch in chunked(sns, 50):
            detail, _ = await self.call(
                "GET",
                "/api/v2/order/get_order_detail",
                {"order_sn_list": ",".join(batch), "response_optional_fields": "item_list,currency,total_amount"},
            )
            for raw in (detail.get("response") or {}).get("order_list") or []:
                orders.append(self._order(raw))
        if response.get("more"):
            return OrdersPage(orders, f"{time_from}|{response.get('next_cursor', '')}")
        newest = max((int(o.raw["create_time"]) for o in orders), default=None)
        next_from = newest if newest is not None else time_to
        return OrdersPage(orders, f"{next_from}|")

    @staticmethod
    def _order(raw: Mapping[str, Any]) -> ChannelOrder:
        lines = tuple(
            OrderLine(
                str(li.get("model_sku") or li.get("item_sku") or ""),
                int(li["model_quantity_purchased"]),
                money(li.get("model_discounted_price")),
                f"{li.get('item_id')}:{li.get('model_id', 0)}",
            )
            for li in raw.get("item_list") or []
        )
        return ChannelOrder(
            channel_order_id=str(raw["order_sn"]),
            created_at=datetime.fromtimestamp(int(raw["create_time"]), tz=UTC),
            status=str(raw.get("order_status", "")),
            lines=lines,
            currency=raw.get("currency"),
            raw=raw,
        )

    # ----- ship confirmations and cancellations

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        """``logistics/ship_order`` for a non-integrated logistics channel: the seller's own tracking number."""
        body: JsonObject = {
            "order_sn": shipment.channel_order_id,
            "non_integrated": {"tracking_number": shipment.tracking},
        }
        await self.call("POST", "/api/v2/logistics/ship_order", body=body)

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """``order/cancel_order``; an OUT_OF_STOCK cancellation lists the order's items (from get_order_detail)."""
        code = CANCEL_REASONS[reason]
        body: JsonObject = {"order_sn": channel_order_id, "cancel_reason": code}
        if code == "OUT_OF_STOCK":
            detail, _ = await self.call(
                "GET",
                "/api/v2/order/get_order_detail",
                {"order_sn_list": channel_order_id, "response_optional_fields": "item_list"},
            )
            found = (detail.get("response") or {}).get("order_list") or []
            if not found:
                raise RequestRejected(f"shopee order {channel_order_id} not found", status=404)
            body["item_list"] = [
                {"item_id": int(li["item_id"]), "model_id": int(li.get("model_id") or 0)}
                for li in found[0].get("item_list") or []
            ]
        await self.call("POST", "/api/v2/order/cancel_order", body=body)
