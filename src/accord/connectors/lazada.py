"""Lazada Open Platform dialect (signed calls; stock can be locked during campaigns).

Common parameters ``app_key, timestamp (ms), access_token, sign_method=sha256, sign``; ``sign`` is the upper-case hex
HMAC-SHA256 (app secret) of the API path followed by every parameter ``key+value`` sorted by key. Write payloads go
as the form parameter ``payload`` (JSON). Responses carry ``code`` ("0" = success) and, on partial failure,
``detail`` entries naming the failed ``seller_sku``.

- Quantity: ``POST /product/stock/sellable/update`` (≤ 50 SKUs). A SKU in a running campaign is locked: the write
  is rejected and reported as RETRYABLE ``stock_locked`` (retry after the campaign; do not treat as drift).
- Reads: ``GET /products/get?sku_seller_list=[...]``. Content: ``POST /product/update``.
- Orders: ``GET /orders/get`` (created_after, offset) + ``GET /orders/items/get`` (one line per unit; grouped).

Config: credentials ``app_key``, ``app_secret``, ``access_token``. ``listing_ref`` is the ItemId.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal

import httpx

from accord.connectors.base import (
    CancelReason,
    ChannelOrder,
    ConnectorError,
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
    decode_time_cursor,
    iso_from_ms,
    money,
    next_time_cursor,
    not_attempted,
    parse_iso,
    retryable_result,
    run_per_item,
)

LOCK_CODES = frozenset({"STOCK_LOCKED_BY_CAMPAIGN"})
# /order/cancel reason_id per reason (ids of the seller cancel reasons /order/reason/cancel/list returns);
# override per channel with the option ``cancel_reason_ids`` ({"out_of_stock": "15", ...}, JSON)
CANCEL_REASON_IDS = {
    CancelReason.OUT_OF_STOCK: "15",
    CancelReason.CUSTOMER_REQUEST: "10",
    CancelReason.PRICING_ERROR: "21",
    CancelReason.UNDELIVERABLE: "17",
    CancelReason.OTHER: "15",
}
CLOSED_ITEM_STATUSES = frozenset({"shipped", "delivered", "canceled", "cancelled", "returned", "failed"})


def lazada_sign(app_secret: str, path: str, params: Mapping[str, str]) -> str:
    base = path + "".join(f"{k}{params[k]}" for k in sorted(params))
    return hmac.new(app_secret.encode(), base.encode(), hashlib.sha256).hexdigest().upper()


class LazadaConnector(HttpConnector):
    dialect = "lazada"

    def signed(self, path: str, params: Mapping[str, str]) -> dict[str, str]:
        c = self.config
        all_params = {
            "app_key": c.credential("app_key"),
            "timestamp": str(self.clock.now_ms()),
            "access_token": c.credential("access_token"),
            "sign_method": "sha256",
            **params,
        }
        all_params["sign"] = lazada_sign(c.credential("app_secret"), path, all_params)
        return all_params

    async def call(self, method: str, path: str, params: Mapping[str, str]) -> tuple[JsonObject, httpx.Response]:
        signed = self.signed(path, params)
        if method == "GET":
            resp = await self.request("GET", path, params=signed)
        else:
            resp = await self.request(
                method,
                path,
                content=httpx.QueryParams(signed).__str__().encode(),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
        data = self.decode_object(resp)
        code = str(data.get("code", ""))
        if code != "0" and not data.get("detail"):
            msg = f"lazada {path}: {code}: {data.get('message', '')}"
            if code in ("ApiCallLimit", "AppCallLimit", "SellerCallLimit"):
                raise RateLimited(msg, status=resp.status_code, body=resp.text)
            if code in ("ServiceTimeout", "InternalError", "ServiceUnavailable"):
                raise ServerError(msg, status=resp.status_code, body=resp.text)
            raise RequestRejected(msg, status=resp.status_code, body=resp.text)
        return data, resp

    @staticmethod
    def stock_payload(batch: Sequence[QuantityUpdate]) -> str:
        skus = [{"ItemId": i.listing_ref, "SellerSku": i.sku, "SellableQuantity": i.qty} for i in batch]
        return json.dumps({"Request": {"Product": {"Skus": {"Sku": skus}}}}, separators=(",", ":"))

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        results: dict[int, ItemResult] = {}
        sendable = []
        for n, item in enumerate(items):
            if item.listing_ref:
                sendable.append((n, item))
            else:
                results[n] = ItemResult(item.sku, ItemStatus.REJECTED, "missing_listing_ref", "ItemId needed")
        stop: ConnectorError | None = None
        for batch in chunked(sendable, self.limits.max_batch_size):
            if stop is not None:
                results.update({n: not_attempted(i.sku, stop) for n, i in batch})
                continue
            try:
                data, _ = await self.call(
                    "POST", "/product/stock/sellable/update", {"payload": self.stock_payload([i for _, i in batch])}
                )
            except ConnectorError as err:
                results.update({n: retryable_result(i.sku, err) for n, i in batch})
                stop = err if err.retryable else None
                continue
            failed = {str(d.get("seller_sku")): d for d in data.get("detail") or [] if isinstance(d, dict)}
            for n, item in batch:
                d = failed.get(item.sku)
                if d is None:
                    results[n] = ItemResult(item.sku, ItemStatus.OK)
                elif str(d.get("code")) in LOCK_CODES:
                    until = d.get("locked_until_ms")
                    wait = max(0.0, (int(until) - self.clock.now_ms()) / 1000) if until is not None else None
                    results[n] = ItemResult(
                        item.sku, ItemStatus.RETRYABLE, "stock_locked", str(d.get("message", "")), retry_after_s=wait
                    )
                else:
                    results[n] = ItemResult(item.sku, ItemStatus.REJECTED, "invalid", str(d.get("message", "")))
        return [results[n] for n in range(len(items))]

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        found: dict[str, QuantitySnapshot] = {}
        for batch in chunked(list(skus), 50):
            data, _ = await self.call(
                "GET", "/products/get", {"filter": "all", "sku_seller_list": json.dumps(list(batch)), "limit": "50"}
            )
            for product in (data.get("data") or {}).get("products") or []:
                for sku in product.get("skus") or []:
                    seller_sku = str(sku.get("SellerSku"))
                    qty = sku.get("sellableQuantity", sku.get("quantity"))
                    found[seller_sku] = QuantitySnapshot(
                        seller_sku, int(qty) if qty is not None else None, str(product.get("item_id"))
                    )
        return [found.get(s, QuantitySnapshot(s, None)) for s in skus]

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        async def one(item: ContentUpdate) -> ItemResult:
            if not item.listing_ref:
                return ItemResult(item.sku, ItemStatus.REJECTED, "missing_listing_ref", "ItemId needed")
            attrs: JsonObject = dict(item.attributes)
            if item.title is not None:
                attrs["name"] = item.title
            if item.description is not None:
                attrs["description"] = item.description
            sku: JsonObject = {"SellerSku": item.sku}
            if item.price is not None:
                sku["price"] = str(item.price)
            payload = {
                "Request": {"Product": {"ItemId": item.listing_ref, "Attributes": attrs, "Skus": {"Sku": [sku]}}}
            }
            try:
                await self.call("POST", "/product/update", {"payload": json.dumps(payload, separators=(",", ":"))})
            except RequestRejected as err:
                return ItemResult(item.sku, ItemStatus.REJECTED, "invalid", str(err), error=err)
            return ItemResult(item.sku, ItemStatus.OK)

        return await run_per_item(items, lambda i: i.sku, one)

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        since_ms, offset = decode_time_cursor(cursor, 1_577_836_800_000)
        data, _ = await self.call(
            "GET",
            "/orders/get",
            {
                "created_after": iso_from_ms(since_ms),
                "sort_by": "created_at",
                "sort_direction": "ASC",
                "offset": str(offset),
                "limit": "50",
            },
        )
        body = data.get("data") or {}
        orders = []
        for raw in body.get("orders") or []:
            items, _ = await self.call("GET", "/orders/items/get", {"order_id": str(raw["order_id"])})
            grouped: dict[str, list[Decimal | None]] = {}
            for unit in items.get("data") or []:
                grouped.setdefault(str(unit.get("sku", "")), []).append(money(unit.get("item_price")))
            lines = tuple(OrderLine(sku, len(prices), prices[0]) for sku, prices in grouped.items())
            orders.append(
                ChannelOrder(
                    channel_order_id=str(raw["order_id"]),
                    created_at=parse_iso(str(raw["created_at"])),
                    status=str((raw.get("statuses") or [""])[0]),
                    lines=lines,
                    currency=raw.get("currency"),
                    raw=raw,
                )
            )
        has_more = offset + len(orders) < int(body.get("countTotal", body.get("count", 0)))
        return OrdersPage(orders, next_time_cursor(since_ms, offset, orders, has_more))

    # ----- ship confirmations and cancellations

    async def _order_items(self, order_id: str) -> list[JsonObject]:
        data, resp = await self.call("GET", "/orders/items/get", {"order_id": order_id})
        units = data.get("data")
        if not isinstance(units, list):
            raise self.malformed(resp, "orders/items/get lacks data")
        return [u for u in units if isinstance(u, dict)]

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        """``/order/rts`` (ready to ship, dropship) for the order item ids of the shipped units (Lazada keeps one
        order item per unit), with the provider and tracking number."""
        units = await self._order_items(shipment.channel_order_id)
        open_units = [u for u in units if str(u.get("status", "")).lower() not in CLOSED_ITEM_STATUSES]
        chosen: list[int] = []
        short: list[str] = []
        for line in shipment.lines:
            mine = [u for u in open_units if str(u.get("sku")) == line.sku and int(u["order_item_id"]) not in chosen]
            chosen.extend(int(u["order_item_id"]) for u in mine[: line.qty])
            if len(mine) < line.qty:
                short.append(f"{line.sku} short by {line.qty - len(mine)}")
        if not chosen and units and all(str(u.get("status", "")).lower() == "shipped" for u in units):
            return  # shipped before: the earlier confirmation went through
        if short:
            raise RequestRejected(f"lazada order {shipment.channel_order_id}: no open items: {short}")
        await self.call(
            "POST",
            "/order/rts",
            {
                "delivery_type": "dropship",
                "order_item_ids": json.dumps(chosen),
                "shipment_provider": shipment.carrier,
                "tracking_number": shipment.tracking,
            },
        )

    def _reason_id(self, reason: CancelReason) -> str:
        custom = self.config.options.get("cancel_reason_ids")
        if custom:
            ids = json.loads(custom)
            if isinstance(ids, dict) and reason.value in ids:
                return str(ids[reason.value])
        return CANCEL_REASON_IDS[reason]

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """``/order/cancel`` per open order item (Lazada cancels item by item)."""
        units = await self._order_items(channel_order_id)
        for unit in units:
            if str(unit.get("status", "")).lower() in CLOSED_ITEM_STATUSES:
                continue
            await self.call(
                "POST",
                "/order/cancel",
                {
                    "order_item_id": str(unit["order_item_id"]),
                    "reason_id": self._reason_id(reason),
                    "reason_detail": note[:200],
                },
            )
