"""Walmart Marketplace emulation: /v3/inventory (get/put), /v3/feeds (inventory feed, multipart), /v3/price,
/v3/orders (nextCursor paging), /v3/orders/{id} (get, shipping, cancel)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.sandbox.core import HOUR_MS, ChannelState, Order, WalmartFeed, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route

if TYPE_CHECKING:
    from accord.sandbox.app import Sandbox


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "errors": [{"code": f"{code}.GMP_GATEWAY_API", "description": message, "severity": "ERROR", "category": "DATA"}]
    }


def check_auth(ctx: Ctx) -> Reply | None:
    if ctx.headers.get("wm_sec.access_token") != ctx.channel.credentials["access_token"]:
        return Reply(401, error_body(401, "UNAUTHORIZED", "Unauthorized"))
    if not ctx.headers.get("wm_qos.correlation_id"):
        return Reply(400, error_body(400, "INVALID_REQUEST_HEADER", "WM_QOS.CORRELATION_ID is required"))
    return None


def _err(code: str, field: str, description: str) -> dict[str, Any]:
    return {
        "errors": [{"code": code, "field": field, "description": description, "severity": "ERROR", "category": "DATA"}]
    }


def put_inventory(ctx: Ctx) -> Reply:
    sku = ctx.q("sku") or ""
    body = ctx.json_object()
    if body.get("sku") != sku:
        return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_INVENTORY_API", "sku", "sku in body and query differ"))
    amount = (body.get("quantity") or {}).get("amount")
    err = ctx.channel.set_qty(ctx.channel.listings.get(sku), amount)
    if err is WriteError.NOT_FOUND:
        return Reply(404, _err("CONTENT_NOT_FOUND.GMP_INVENTORY_API", "sku", f"sku {sku} not found"))
    if err is not None:
        return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_INVENTORY_API", "quantity", f"rejected: {err}"))
    return Reply(200, {"sku": sku, "quantity": {"unit": "EACH", "amount": amount}})


def get_inventory(ctx: Ctx) -> Reply:
    sku = ctx.q("sku") or ""
    listing = ctx.channel.listings.get(sku)
    if listing is None:
        return Reply(404, _err("CONTENT_NOT_FOUND.GMP_INVENTORY_API", "sku", f"sku {sku} not found"))
    return Reply(200, {"sku": sku, "quantity": {"unit": "EACH", "amount": listing.qty}})


def _multipart_file(ctx: Ctx) -> bytes:
    ctype = ctx.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise BadRequest("feeds are uploaded as multipart/form-data")
    msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + ctx.body)
    for part in msg.iter_parts():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            return payload
    raise BadRequest("no file part")


def submit_feed(ctx: Ctx) -> Reply:
    if ctx.q("feedType") != "inventory":
        raise BadRequest("the sandbox accepts feedType=inventory only")
    ch = ctx.channel
    now = ctx.sandbox.clock.now_ms()
    cap = ch.limits.feeds_per_hour
    if cap is not None and sum(1 for f in ch.walmart_feeds.values() if f.created_ms > now - HOUR_MS) >= cap:
        return Reply(
            429, error_body(429, "REQUEST_THRESHOLD_VIOLATED", "hourly feed cap reached"), {"Retry-After": "3600"}
        )
    try:
        doc = json.loads(_multipart_file(ctx))
        items = [(str(i["sku"]), i["quantity"]["amount"]) for i in doc["Inventory"]]
    except (ValueError, KeyError, TypeError):
        raise BadRequest("feed file is not a valid inventory feed") from None
    feed_id = f"SBX{ch.next_id():010d}"
    ch.walmart_feeds[feed_id] = WalmartFeed(feed_id, now, items)
    return Reply(202, {"feedId": feed_id})


def on_time(sandbox: Sandbox, ch: ChannelState, now_ms: int) -> None:
    for feed in ch.walmart_feeds.values():
        if feed.status == "RECEIVED" and now_ms >= feed.created_ms + sandbox.config.feed_processing_ms:
            for sku, qty in feed.items:
                if ch.set_qty(ch.listings.get(sku), qty) is None:
                    feed.succeeded += 1
                else:
                    feed.failed += 1
            feed.status = "PROCESSED"


def get_feed(ctx: Ctx) -> Reply:
    on_time(ctx.sandbox, ctx.channel, ctx.sandbox.clock.now_ms())
    feed = ctx.channel.walmart_feeds.get(ctx.arg("feed"))
    if feed is None:
        return Reply(404, error_body(404, "CONTENT_NOT_FOUND", "feed not found"))
    return Reply(
        200,
        {
            "feedId": feed.feed_id,
            "feedStatus": feed.status,
            "itemsReceived": len(feed.items),
            "itemsSucceeded": feed.succeeded,
            "itemsFailed": feed.failed,
        },
    )


def put_price(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    listing = ctx.channel.listings.get(str(body.get("sku")))
    if listing is None:
        return Reply(404, _err("CONTENT_NOT_FOUND.GMP_PRICE_API", "sku", "sku not found"))
    try:
        if ctx.channel.wrong_currency(body["pricing"][0]["currentPrice"].get("currency")):
            raise TypeError("the price's currency is not the marketplace's")
        listing.price = Decimal(str(body["pricing"][0]["currentPrice"]["amount"]))
    except (KeyError, IndexError, TypeError, AttributeError, InvalidOperation):
        return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_PRICE_API", "pricing", "invalid price"))
    return Reply(
        200,
        {
            "ItemPriceResponse": {
                "mart": "WALMART_US",
                "sku": listing.sku,
                "message": "Thank you. Your price has been updated.",
            }
        },
    )


LINE_STATUS = {"shipped": "Shipped", "partially_shipped": "Shipped", "cancelled": "Cancelled"}
CANCEL_REASONS = frozenset(
    {
        "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
        "SELLER_CANCEL_OUT_OF_STOCK",
        "SELLER_CANCEL_PRICING_ERROR",
        "SELLER_CANCEL_FRAUD_STOP_SHIPMENT",
        "SELLER_CANCEL_ADDRESS_NOT_SERVICEABLE",
    }
)


def _order_json(ctx: Ctx, o: Order) -> dict[str, Any]:
    charge = {
        "chargeType": "PRODUCT",
        "chargeName": "ItemPrice",
        "chargeAmount": {"currency": o.currency, "amount": float(o.unit_price * o.qty)},
    }
    statuses: list[dict[str, Any]] = []
    if o.open_qty:
        statuses.append(
            {"status": "Created", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(o.open_qty)}}
        )
    for sh in o.shipments:
        tracking = {
            "carrierName": {"carrier": sh["carrier"]},
            "trackingNumber": sh["tracking"],
            "shipDateTime": sh["at_ms"],
        }
        statuses.append(
            {
                "status": "Shipped",
                "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(sh["qty"])},
                "trackingInfo": tracking,
            }
        )
    if o.cancelled_qty:
        statuses.append(
            {
                "status": "Cancelled",
                "cancellationReason": o.cancel_reason,
                "statusQuantity": {"unitOfMeasurement": "EACH", "amount": str(o.cancelled_qty)},
            }
        )
    line = {
        "lineNumber": "1",
        "item": {"productName": ctx.channel.listings[o.sku].title, "sku": o.sku},
        "charges": {"charge": [charge]},
        "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": str(o.qty)},
        "orderLineStatuses": {"orderLineStatus": statuses},
    }
    return {
        "purchaseOrderId": o.order_id,
        "customerOrderId": f"C{o.order_id}",
        "orderDate": o.created_ms,
        "orderLines": {"orderLine": [line]},
    }


def _line_statuses(body: Any, root: str, status: str) -> list[tuple[str, dict[str, Any]]]:
    """(lineNumber, orderLineStatus) pairs of an ``orderShipment`` / ``orderCancellation`` body, validated."""
    lines = (
        (((body or {}).get(root) or {}).get("orderLines") or {}).get("orderLine") if isinstance(body, dict) else None
    )
    if not isinstance(lines, list) or not lines:
        raise BadRequest(f"{root}.orderLines.orderLine must list the lines", "INVALID_REQUEST_CONTENT")
    out = []
    for ol in lines:
        entries = ((ol or {}).get("orderLineStatuses") or {}).get("orderLineStatus")
        if not isinstance(entries, list) or not entries:
            raise BadRequest("orderLineStatuses.orderLineStatus is required", "INVALID_REQUEST_CONTENT")
        for e in entries:
            if not isinstance(e, dict) or e.get("status") != status:
                raise BadRequest(f"orderLineStatus.status must be {status}", "INVALID_REQUEST_CONTENT")
            amount = (e.get("statusQuantity") or {}).get("amount")
            if not str(amount or "").isdigit():
                raise BadRequest("statusQuantity.amount must be a whole number", "INVALID_REQUEST_CONTENT")
            out.append((str(ol.get("lineNumber")), e))
    return out


def get_order(ctx: Ctx) -> Reply:
    order = ctx.channel.order(ctx.arg("po"))
    if order is None:
        return Reply(404, _err("CONTENT_NOT_FOUND.GMP_ORDER_API", "purchaseOrderId", "order not found"))
    return Reply(200, {"order": _order_json(ctx, order)})


def ship_order(ctx: Ctx) -> Reply:
    """``POST /v3/orders/{purchaseOrderId}/shipping``: Shipped statuses with tracking; idempotent per tracking."""
    order = ctx.channel.order(ctx.arg("po"))
    if order is None:
        return Reply(404, _err("CONTENT_NOT_FOUND.GMP_ORDER_API", "purchaseOrderId", "order not found"))
    entries = _line_statuses(ctx.json(), "orderShipment", "Shipped")
    now = ctx.sandbox.clock.now_ms()
    for line_number, e in entries:
        if line_number != "1":
            return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "lineNumber", f"no line {line_number}"))
        info = e.get("trackingInfo") or {}
        carrier_name = info.get("carrierName") or {}
        carrier = str(carrier_name.get("carrier") or carrier_name.get("otherCarrier") or "")
        tracking = str(info.get("trackingNumber") or "")
        if not isinstance(info.get("shipDateTime"), int):
            return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "shipDateTime", "epoch ms required"))
        qty = int(e["statusQuantity"]["amount"])
        err = order.ship(f"tracking:{tracking}", carrier, tracking, qty, now)
        if err is not None:
            return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "orderLine", err))
    return Reply(200, {"order": _order_json(ctx, order)})


def cancel_order(ctx: Ctx) -> Reply:
    """``POST /v3/orders/{purchaseOrderId}/cancel``: Cancelled statuses with a seller cancellation reason."""
    order = ctx.channel.order(ctx.arg("po"))
    if order is None:
        return Reply(404, _err("CONTENT_NOT_FOUND.GMP_ORDER_API", "purchaseOrderId", "order not found"))
    entries = _line_statuses(ctx.json(), "orderCancellation", "Cancelled")
    for line_number, e in entries:
        if line_number != "1":
            return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "lineNumber", f"no line {line_number}"))
        reason = e.get("cancellationReason")
        if reason not in CANCEL_REASONS:
            return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "cancellationReason", "unknown reason"))
        if order.status == "cancelled":
            continue
        qty = int(e["statusQuantity"]["amount"])
        err = order.cancel(str(reason), None if qty >= order.open_qty and not order.shipped_qty else qty)
        if err is not None:
            return Reply(400, _err("INVALID_REQUEST_CONTENT.GMP_ORDER_API", "orderLine", err))
    return Reply(200, {"order": _order_json(ctx, order)})


def get_orders(ctx: Ctx) -> Reply:
    start = ctx.q("createdStartDate")
    if not start:
        raise BadRequest("createdStartDate is required")
    try:
        since_ms = ms_from_datetime(parse_iso(start))
    except ValueError:
        raise BadRequest("createdStartDate is not ISO 8601") from None
    limit, offset = min(200, ctx.qint("limit", 50)), ctx.qint("offset", 0)
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    page = matching[offset : offset + limit]
    orders = [_order_json(ctx, o) for o in page]
    meta: dict[str, Any] = {"totalCount": len(matching), "limit": limit}
    if offset + limit < len(matching):
        meta["nextCursor"] = "?" + urlencode({"limit": limit, "offset": offset + limit, "createdStartDate": start})
    return Reply(200, {"list": {"meta": meta, "elements": {"order": orders}}})


DIALECT = Dialect(
    name="walmart",
    routes=[
        route("PUT", "/v3/inventory", "updateInventory", put_inventory),
        route("GET", "/v3/inventory", "getInventory", get_inventory),
        route("POST", "/v3/feeds", "submitFeed", submit_feed),
        route("GET", r"/v3/feeds/(?P<feed>[^/]+)", "getFeedStatus", get_feed),
        route("PUT", "/v3/price", "updatePrice", put_price),
        route("GET", "/v3/orders", "getOrders", get_orders),
        route("GET", r"/v3/orders/(?P<po>[^/]+)", "getOrder", get_order),
        route("POST", r"/v3/orders/(?P<po>[^/]+)/shipping", "shipOrderLines", ship_order),
        route("POST", r"/v3/orders/(?P<po>[^/]+)/cancel", "cancelOrderLines", cancel_order),
    ],
    check_auth=check_auth,
    error=error_body,
)
