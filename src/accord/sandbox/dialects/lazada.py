"""Lazada Open Platform emulation (signed calls, form ``payload``): sellable stock update with campaign locks,
products/get, product/update, orders/get, orders/items/get, order/rts, order/cancel. A partially failed stock update
answers ``code: "PARTIAL_FAILURE"`` with one ``detail`` entry per failed SKU (sandbox convention); the rest are
applied."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.connectors.lazada import lazada_sign
from accord.sandbox.core import Order, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    lz = {429: "ApiCallLimit"}.get(status, "InternalError" if status >= 500 else "InvalidParameter")
    return {"code": lz, "type": "ISP" if status >= 500 else "ISV", "message": message, "request_id": "sbx"}


def params(ctx: Ctx) -> dict[str, str]:
    merged = dict(ctx.query)
    if ctx.method != "GET":
        merged.update(ctx.form())
    return merged


def check_auth(ctx: Ctx) -> Reply | None:
    p = params(ctx)
    c = ctx.channel.credentials
    if p.get("app_key") != c["app_key"] or p.get("access_token") != c["access_token"]:
        return Reply(
            200,
            {
                "code": "IllegalAccessToken",
                "type": "ISV",
                "message": "The specified access token is invalid",
                "request_id": "sbx",
            },
        )
    sign = p.pop("sign", None)
    if sign != lazada_sign(c["app_secret"], "/" + ctx.path.lstrip("/"), p):
        return Reply(
            200,
            {
                "code": "IncompleteSignature",
                "type": "ISV",
                "message": "The request signature does not conform to platform standards",
                "request_id": "sbx",
            },
        )
    return None


def _payload(ctx: Ctx) -> dict[str, Any]:
    try:
        data = json.loads(params(ctx).get("payload") or "")
        product = data["Request"]["Product"]
        assert isinstance(product, dict)
        return product
    except (ValueError, KeyError, TypeError, AssertionError):
        raise BadRequest("payload must be {'Request': {'Product': ...}} JSON") from None


def stock_update(ctx: Ctx) -> Reply:
    skus = ((_payload(ctx).get("Skus") or {}).get("Sku")) or []
    if not isinstance(skus, list) or not 1 <= len(skus) <= 50:
        raise BadRequest("Skus.Sku takes 1 to 50 entries")
    ch = ctx.channel
    detail = []
    for s in skus:
        seller_sku = str(s.get("SellerSku"))
        listing = ch.listings.get(seller_sku)
        if listing is not None and str(s.get("ItemId")) != listing.ref:
            listing = None
        err = ch.set_qty(listing, s.get("SellableQuantity"))
        if err is WriteError.LOCKED:
            detail.append(
                {
                    "field": "SellableQuantity",
                    "seller_sku": seller_sku,
                    "code": "STOCK_LOCKED_BY_CAMPAIGN",
                    "message": "Sellable quantity is locked by an ongoing campaign",
                    "locked_until_ms": ch.faults.stock_lock_until_ms,
                }
            )
        elif err is not None:
            detail.append(
                {
                    "field": "SellerSku",
                    "seller_sku": seller_sku,
                    "code": err.value.upper(),
                    "message": f"rejected: {err}",
                }
            )
    if detail:
        return Reply(
            200, {"code": "PARTIAL_FAILURE", "message": "some SKUs failed", "detail": detail, "request_id": "sbx"}
        )
    return Reply(200, {"code": "0", "request_id": "sbx"})


def products_get(ctx: Ctx) -> Reply:
    try:
        wanted = json.loads(ctx.q("sku_seller_list") or "null")
    except ValueError:
        raise BadRequest("sku_seller_list must be a JSON array") from None
    products = []
    for li in sorted(ctx.channel.listings.values(), key=lambda x: x.ref):
        if wanted is None or li.sku in wanted:
            sku = {"SellerSku": li.sku, "quantity": li.qty, "sellableQuantity": li.qty, "price": str(li.price)}
            products.append({"item_id": int(li.ref), "attributes": {"name": li.title}, "skus": [sku]})
    return Reply(
        200, {"code": "0", "data": {"total_products": len(products), "products": products[: ctx.qint("limit", 50)]}}
    )


def product_update(ctx: Ctx) -> Reply:
    product = _payload(ctx)
    listing = ctx.channel.by_ref(str(product.get("ItemId")))
    if listing is None:
        return Reply(200, {"code": "208", "message": "Item not found", "request_id": "sbx"})
    attrs = product.get("Attributes") or {}
    listing.title = str(attrs.get("name", listing.title))
    listing.description = str(attrs.get("description", listing.description))
    for sku in (product.get("Skus") or {}).get("Sku") or []:
        if "price" in sku:
            try:
                listing.price = Decimal(str(sku["price"]))
            except InvalidOperation:
                raise BadRequest("price must be a number") from None
    return Reply(200, {"code": "0", "request_id": "sbx"})


def orders_get(ctx: Ctx) -> Reply:
    after = ctx.q("created_after")
    if not after:
        raise BadRequest("created_after is required")
    try:
        since_ms = ms_from_datetime(parse_iso(after))
    except ValueError:
        raise BadRequest("created_after is not ISO 8601") from None
    limit, offset = min(100, ctx.qint("limit", 50)), ctx.qint("offset", 0)
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    orders = [
        {
            "order_id": int(o.order_id),
            "created_at": o.created_iso,
            "statuses": [{"cancelled": "canceled", "shipped": "shipped"}.get(o.status, "pending")],
            "price": f"{o.unit_price * o.qty:.2f}",
            "currency": o.currency,
        }
        for o in matching[offset : offset + limit]
    ]
    return Reply(200, {"code": "0", "data": {"count": len(orders), "countTotal": len(matching), "orders": orders}})


def order_items(ctx: Ctx) -> Reply:
    order = next((o for o in ctx.channel.orders if o.order_id == ctx.q("order_id")), None)
    if order is None:
        return Reply(200, {"code": "16", "message": "Order not found", "request_id": "sbx"})
    units = [
        {
            "order_item_id": order.seq * 100 + n,
            "order_id": int(order.order_id),
            "sku": order.sku,
            "item_price": f"{order.unit_price:.2f}",
            "currency": order.currency,
            "status": _unit_status(order, n),
        }
        for n in range(order.qty)
    ]
    return Reply(200, {"code": "0", "data": units})


def _unit_status(order: Order, n: int) -> str:
    """One order item per unit: cancelled ones by index, the first ``shipped_qty`` of the others shipped."""
    if order.status == "cancelled" or n in order.cancelled_units:
        return "canceled"
    kept = [i for i in range(order.qty) if i not in order.cancelled_units]
    return "shipped" if n in kept[: order.shipped_qty] else "pending"


def _order_for_item(ctx: Ctx, item_id: int) -> Order | None:
    return next((o for o in ctx.channel.orders if o.seq == item_id // 100 and item_id % 100 < o.qty), None)


def rts(ctx: Ctx) -> Reply:
    """``/order/rts`` (dropship): the named pending order items are shipped with the provider's tracking number."""
    p = params(ctx)
    try:
        ids = [int(i) for i in json.loads(p.get("order_item_ids") or "null")]
    except (TypeError, ValueError):
        raise BadRequest("order_item_ids must be a JSON array of ids") from None
    tracking, provider = p.get("tracking_number"), p.get("shipment_provider")
    if not ids or not tracking or not provider or p.get("delivery_type") != "dropship":
        raise BadRequest("order_item_ids, shipment_provider, tracking_number and delivery_type=dropship are required")
    found = [_order_for_item(ctx, i) for i in ids]
    order = found[0]
    if order is None or any(o is not order for o in found):
        return Reply(200, {"code": "16", "message": "Order item not found", "request_id": "sbx"})
    pending = [i for i in ids if _unit_status(order, i % 100) == "pending"]
    key = f"tracking:{tracking}"
    if order.shipment(key) is None:
        if len(pending) != len(ids):
            return Reply(200, {"code": "20", "message": "Order item is not pending", "request_id": "sbx"})
        err = order.ship(key, provider, tracking, len(pending), ctx.sandbox.clock.now_ms())
        if err is not None:
            return Reply(200, {"code": "20", "message": err, "request_id": "sbx"})
    items = [{"order_item_id": i, "tracking_number": tracking, "shipment_provider": provider} for i in ids]
    return Reply(200, {"code": "0", "data": {"order_items": items}, "request_id": "sbx"})


def cancel(ctx: Ctx) -> Reply:
    """``/order/cancel`` of one pending order item with a seller reason id."""
    p = params(ctx)
    try:
        item_id = int(p.get("order_item_id") or "")
    except ValueError:
        raise BadRequest("order_item_id is required") from None
    if not (p.get("reason_id") or "").isdigit():
        raise BadRequest("reason_id is required")
    order = _order_for_item(ctx, item_id)
    if order is None:
        return Reply(200, {"code": "16", "message": "Order item not found", "request_id": "sbx"})
    status = _unit_status(order, item_id % 100)
    if status == "shipped":
        return Reply(200, {"code": "20", "message": "Order item has shipped", "request_id": "sbx"})
    if status == "pending":
        err = order.cancel(f"reason_id:{p['reason_id']}", 1)
        if err is not None:
            return Reply(200, {"code": "20", "message": err, "request_id": "sbx"})
        order.cancelled_units.add(item_id % 100)
    return Reply(200, {"code": "0", "request_id": "sbx"})


DIALECT = Dialect(
    name="lazada",
    routes=[
        route("POST", "/product/stock/sellable/update", "stock_sellable_update", stock_update),
        route("GET", "/products/get", "products_get", products_get),
        route("POST", "/product/update", "product_update", product_update),
        route("GET", "/orders/get", "orders_get", orders_get),
        route("GET", "/orders/items/get", "order_items_get", order_items),
        route("POST", "/order/rts", "order_rts", rts),
        route("POST", "/order/cancel", "order_cancel", cancel),
    ],
    check_auth=check_auth,
    error=error_body,
)
