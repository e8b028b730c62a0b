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
from urllib.parse import quote

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
    RequestRejected,
    ShipmentConfirmation,
    UnsupportedOperation,
    decode_time_cursor,
    encode_time_cursor,
    iso_from_ms,
    money,
    ms_from_datetime,
    parse_iso,
    run_per_item,
)

# carriers Walmart names in carrierName.carrier; any other goes as carrierName.otherCarrier
CARRIERS = frozenset({"UPS", "USPS", "FedEx", "Airborne", "OnTrac", "DHL", "LS", "UDS", "UPSMI", "FDX", "PILOT"})
CANCEL_REASONS = {
    CancelReason.OUT_OF_STOCK: "SELLER_CANCEL_OUT_OF_STOCK",
    CancelReason.CUSTOMER_REQUEST: "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
    CancelReason.PRICING_ERROR: "SELLER_CANCEL_PRICING_ERROR",
    CancelReason.UNDELIVERABLE: "SELLER_CANCEL_ADDRESS_NOT_SERVICEABLE",
    CancelReason.OTHER: "SELLER_CANCEL_OUT_OF_STOCK",
}


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
            if item.title is not None or item.description is not None or item.attributes or item.bullets:
                err = UnsupportedOperation(
                    "walmart: item content (title, description, key features) goes through the MP_ITEM item feed, "
                    "which this connector does not send; prices go by PUT /v3/price"
                )
                return ItemResult(item.sku, ItemStatus.REJECTED, "unsupported", str(err), error=err)
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

    # ----- ship confirmations and cancellations

    async def _order_lines(self, purchase_order_id: str) -> list[JsonObject]:
        resp = await self.request(
            "GET",
            f"/v3/orders/{quote(purchase_order_id, safe='')}",
            headers={"WM_QOS.CORRELATION_ID": correlation_id("order", purchase_order_id)},
        )
        data = self.decode_object(resp)
        self.expect_status(resp, (200,), f"getOrder {purchase_order_id}", _errors_text(data))
        inner = data.get("order")
        order: JsonObject = inner if isinstance(inner, dict) else data
        lines = (order.get("orderLines") or {}).get("orderLine")
        if not isinstance(lines, list):
            raise self.malformed(resp, "order lacks orderLines.orderLine")
        return [ln for ln in lines if isinstance(ln, dict)]

    @staticmethod
    def shipping_body(shipment: ShipmentConfirmation, line_numbers: dict[str, str]) -> JsonObject:
        """``POST /v3/orders/{purchaseOrderId}/shipping`` body: one Shipped status per line with tracking."""
        carrier = shipment.carrier.strip()
        carrier_name = {"carrier": carrier} if carrier in CARRIERS else {"otherCarrier": carrier}
        return {
            "orderShipment": {
                "orderLines": {
                    "orderLine": [
                        {
                            "lineNumber": line.line_id or line_numbers[line.sku],
                            "orderLineStatuses": {
                                "orderLineStatus": [
                                    {
                                        "status": "Shipped",
                                        "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(line.qty)},
                                        "trackingInfo": {
                                            "shipDateTime": ms_from_datetime(shipment.shipped_at),
                                            "carrierName": carrier_name,
                                            "methodCode": "Standard",
                                            "trackingNumber": shipment.tracking,
                                        },
                                    }
                                ]
                            },
                        }
                        for line in shipment.lines
                    ]
                }
            }
        }

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        numbers: dict[str, str] = {}
        if any(not line.line_id for line in shipment.lines):
            for ol in await self._order_lines(shipment.channel_order_id):
                sku = str((ol.get("item") or {}).get("sku", ""))
                numbers.setdefault(sku, str(ol.get("lineNumber")))
            missing = sorted({ln.sku for ln in shipment.lines if not ln.line_id and ln.sku not in numbers})
            if missing:
                raise RequestRejected(f"walmart order {shipment.channel_order_id} has no line for SKU {missing}")
        resp = await self.request(
            "POST",
            f"/v3/orders/{quote(shipment.channel_order_id, safe='')}/shipping",
            json_body=self.shipping_body(shipment, numbers),
            headers={"WM_QOS.CORRELATION_ID": shipment.shipment_id},
        )
        detail = "" if resp.status_code == 200 else _errors_text(self.decode_object(resp))
        self.expect_status(resp, (200,), f"shipOrderLines {shipment.channel_order_id}", detail)

    @staticmethod
    def cancel_body(lines: Sequence[JsonObject], reason: CancelReason) -> JsonObject:
        return {
            "orderCancellation": {
                "orderLines": {
                    "orderLine": [
                        {
                            "lineNumber": str(ol.get("lineNumber")),
                            "orderLineStatuses": {
                                "orderLineStatus": [
                                    {
                                        "status": "Cancelled",
                                        "cancellationReason": CANCEL_REASONS[reason],
                                        "statusQuantity": {
                                            "unitOfMeasurement": "EACH",
                                            "amount": str((ol.get("orderLineQuantity") or {}).get("amount", "1")),
                                        },
                                    }
                                ]
                            },
                        }
                        for ol in lines
                    ]
                }
            }
        }

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """Cancel every line of the purchase order (``POST /v3/orders/{purchaseOrderId}/cancel``)."""
        lines = await self._order_lines(channel_order_id)
        resp = await self.request(
            "POST",
            f"/v3/orders/{quote(channel_order_id, safe='')}/cancel",
            json_body=self.cancel_body(lines, reason),
            headers={"WM_QOS.CORRELATION_ID": correlation_id("cancel", channel_order_id)},
        )
        detail = "" if resp.status_code == 200 else _errors_text(self.decode_object(resp))
        self.expect_status(resp, (200,), f"cancelOrderLines {channel_order_id}", detail)
