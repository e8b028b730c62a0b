"""Shopee Open Platform v2 emulation (signed calls): product update_stock / get_item_list / get_item_base_info /
update_item / update_price, order get_order_list (15-day window) / get_order_detail / cancel_order,
logistics ship_order."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from accord.connectors.shopee import shopee_sign
from accord.sandbox.core import Listing, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route

WINDOW_S = 15 * 24 * 3600


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    error = {429: "error_too_many_request"}.get(status, "error_server" if status >= 500 else "error_param")
    return {"error": error, "message": message, "request_id": "sbx"}


def check_auth(ctx: Ctx) -> Reply | None:
    c = ctx.channel.credentials
    try:
        ts = int(ctx.q("timestamp") or "")
    except ValueError:
        return Reply(403, {"error": "error_param", "message": "timestamp is required", "request_id": "sbx"})
    expected = shopee_sign(
        c["partner_key"], c["partner_id"], "/" + ctx.path.lstrip("/"), ts, c["access_token"], c["shop_id"]
    )
    if (ctx.q("partner_id"), ctx.q("shop_id"), ctx.q("access_token")) != (
        c["partner_id"],
        c["shop_id"],
        c["access_token"],
    ):
        return Reply(
            403, {"error": "error_auth", "message": "Invalid partner_id, shop_id or access_token", "request_id": "sbx"}
        )
    if ctx.q("sign") != expected:
        return Reply(403, {"error": "error_sign", "message": "Wrong sign.", "request_id": "sbx"})
    return None


def ok(response: dict[str, Any]) -> Reply:
    return Reply(200, {"error": "", "message": "", "request_id": "sbx", "response": response})


def _listing(ctx: Ctx, item_id: Any) -> Listing | None:
    return ctx.channel.by_ref(str(item_id))


def update_stock(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    listing = _listing(ctx, body.get("item_id"))
    if listing is None:
        return Reply(200, {"error": "error_item_not_found", "message": "Item not found", "request_id": "sbx"})
    success, failure = [], []
    for entry in body.get("stock_list") or []:
        model_id = entry.get("model_id", 0)
        stock = ((entry.get("seller_stock") or [{}])[0]).get("stock")
        err = ctx.channel.set_qty(listing, stock)
        if err is None:
            success.append({"model_id": model_id, "stock": listing.qty})
        elif err is WriteError.LOCKED:
            failure.append({"model_id": model_id, "failed_reason": "Stock is locked by an ongoing promotion"})
        else:
            failure.append({"model_id": model_id, "failed_reason": f"Invalid stock: {err}"})
    return ok({"success_list": success, "failure_list": failure})


def item_list(ctx: Ctx) -> Reply:
    offset, size = ctx.qint("offset", 0), min(100, ctx.qint("page_size", 10))
    listings = sorted(ctx.channel.listings.values(), key=lambda li: li.ref)
    page = listings[offset : offset + size]
    items = [{"item_id": int(li.ref), "item_status": "NORMAL", "update_time": li.updated_ms // 1000} for li in page]
    more = offset + size < len(listings)
    return ok({"item": items, "total_count": len(listings), "has_next_page": more, "next_offset": offset + size})


def base_info(ctx: Ctx) -> Reply:
    ids = [i for i in (ctx.q("item_id_list") or "").split(",") if i]
    if not 1 <= len(ids) <= 50:
        raise BadRequest("item_id_list takes 1 to 50 ids")
    out = []
    for item_id in ids:
        li = _listing(ctx, item_id)
        if li is not None:
            stock = {"summary_info": {"total_available_stock": li.qty}, "seller_stock": [{"stock": li.qty}]}
            out.append(
                {
                    "item_id": int(li.ref),
                    "item_sku": li.sku,
                    "item_name": li.title,
                    "item_status": "NORMAL",
                    "stock_info_v2": stock,
                }
            )
    return ok({"item_list": out})


def update_item(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    li = _listing(ctx, body.get("item_id"))
    if li is None:
        return Reply(200, {"error": "error_item_not_found", "message": "Item not found", "request_id": "sbx"})
    li.title = str(body.get("item_name", li.title))
    li.description = str(body.get("description", li.description))
    return ok({"item_id": int(li.ref), "item_name": li.title})


def update_price(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    li = _listing(ctx, body.get("item_id"))
    if li is None:
        return Reply(200, {"error": "error_item_not_found", "message": "Item not found", "request_id": "sbx"})
    try:
        li.price = Decimal(str((body.get("price_list") or [{}])[0]["original_price"]))
    except (KeyError, InvalidOperation):
        raise BadRequest("original_price is required") from None
    return ok({"success_list": [{"model_id": 0, "original_price": float(li.price)}], "failure_list": []})


def order_list(ctx: Ctx) -> Reply:
    if ctx.q("time_range_field") != "create_time":
        raise BadRequest("time_range_field must be create_time")
    t_from, t_to = ctx.qint("time_from", -1), ctx.qint("time_to", -1)
    if t_from < 0 or t_to < t_from or t_to - t_from > WINDOW_S:
        raise BadRequest("time_from/time_to must span at most 15 days")
    size, offset = min(100, ctx.qint("page_size", 20)), ctx.qint("cursor", 0)
    matching = [o for o in ctx.channel.orders if t_from <= o.created_ms // 1000 <= t_to]
    page = matching[offset : offset + size]
    more = offset + size < len(matching)
    return ok(
        {
            "more": more,
            "next_cursor": str(offset + size) if more else "",
            "order_list": [{"order_sn": o.order_id} for o in page],
        }
    )


def order_detail(ctx: Ctx) -> Reply:
    sns = set((ctx.q("order_sn_list") or "").split(","))
    out = []
    for o in ctx.channel.orders:
        if o.order_id in sns:
            item = {
                "item_id": int(o.ref),
                "item_sku": o.sku,
                "model_id": 0,
                "model_sku": o.sku,
                "model_quantity_purchased": o.qty,
                "model_discounted_price": float(o.unit_price),
            }
            out.append(
                {
                    "order_sn": o.order_id,
                    "order_status": ORDER_STATUS.get(o.status, "READY_TO_SHIP"),
                    "create_time": o.created_ms // 1000,
                    "currency": o.currency,
                    "total_amount": float(o.unit_price * o.qty),
                    "item_list": [item],
                }
            )
    return ok({"order_list": out})


ORDER_STATUS = {"shipped": "SHIPPED", "partially_shipped": "PROCESSED", "cancelled": "CANCELLED"}
CANCEL_REASONS = frozenset({"OUT_OF_STOCK", "CUSTOMER_REQUEST", "UNDELIVERABLE_AREA", "COD_NOT_SUPPORTED"})


def _not_found(order_sn: str) -> Reply:
    return Reply(200, {"error": "error_not_found", "message": f"order {order_sn} not found", "request_id": "sbx"})


def ship_order(ctx: Ctx) -> Reply:
    """``logistics/ship_order`` (non-integrated channel: the seller's tracking number); a repeat with the same
    tracking number is accepted again."""
    body = ctx.json_object()
    order_sn = str(body.get("order_sn") or "")
    order = ctx.channel.order(order_sn)
    if order is None:
        return _not_found(order_sn)
    tracking = (body.get("non_integrated") or {}).get("tracking_number")
    if not isinstance(tracking, str) or not tracking:
        raise BadRequest("non_integrated.tracking_number is required")
    if order.shipment(f"tracking:{tracking}") is None and order.status == "shipped":
        return Reply(200, {"error": "logistics.ship_order_invalid", "message": "already shipped", "request_id": "sbx"})
    err = order.ship(f"tracking:{tracking}", "non_integrated", tracking, order.open_qty, ctx.sandbox.clock.now_ms())
    if err is not None:
        return Reply(200, {"error": "logistics.ship_order_invalid", "message": err, "request_id": "sbx"})
    return ok({})


def cancel_order(ctx: Ctx) -> Reply:
    """``order/cancel_order``; OUT_OF_STOCK must name the items (item_list)."""
    body = ctx.json_object()
    order_sn = str(body.get("order_sn") or "")
    order = ctx.channel.order(order_sn)
    if order is None:
        return _not_found(order_sn)
    reason = body.get("cancel_reason")
    if reason not in CANCEL_REASONS:
        raise BadRequest(f"cancel_reason must be one of {sorted(CANCEL_REASONS)}")
    if reason == "OUT_OF_STOCK":
        items = body.get("item_list")
        if not isinstance(items, list) or not items:
            raise BadRequest("item_list is required when cancel_reason is OUT_OF_STOCK")
        if any(not isinstance(i, dict) or str(i.get("item_id")) != order.ref for i in items):
            raise BadRequest("item_list names an item that is not in the order")
    err = order.cancel(str(reason))
    if err is not None:
        return Reply(200, {"error": "error_param", "message": err, "request_id": "sbx"})
    return ok({"update_time": ctx.sandbox.clock.now_ms() // 1000})


DIALECT = Dialect(
    name="shopee",
    routes=[
        route("POST", "/api/v2/product/update_stock", "update_stock", update_stock),
        route("GET", "/api/v2/product/get_item_list", "get_item_list", item_list),
        route("GET", "/api/v2/product/get_item_base_info", "get_item_base_info", base_info),
        route("POST", "/api/v2/product/update_item", "update_item", update_item),
        route("POST", "/api/v2/product/update_price", "update_price", update_price),
        route("GET", "/api/v2/order/get_order_list", "get_order_list", order_list),
        route("GET", "/api/v2/order/get_order_detail", "get_order_detail", order_detail),
        route("POST", "/api/v2/logistics/ship_order", "ship_order", ship_order),
        route("POST", "/api/v2/order/cancel_order", "cancel_order", cancel_order),
    ],
    check_auth=check_auth,
    error=error_body,
)
