"""Mercado Libre emulation: items (put, description, multiget, seller_sku search), orders (search, get,
feedback) and custom-shipping shipments."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.sandbox.core import Listing, Order, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"message": message, "error": code, "status": status, "cause": []}


def check_auth(ctx: Ctx) -> Reply | None:
    if ctx.headers.get("authorization") != f"Bearer {ctx.channel.credentials['access_token']}":
        return Reply(401, error_body(401, "unauthorized", "invalid access token"))
    return None


def _item(ctx: Ctx, li: Listing) -> dict[str, Any]:
    return {
        "id": li.ref,
        "title": li.title,
        "price": float(li.price),
        "currency_id": ctx.channel.spec.currency,
        "available_quantity": li.qty,
        "seller_custom_field": li.sku,
        "status": "active" if li.qty > 0 else "paused",
    }


def put_item(ctx: Ctx) -> Reply:
    ch = ctx.channel
    listing = ch.by_ref(ctx.arg("item"))
    if listing is None:
        return Reply(404, error_body(404, "not_found", f"Item with id {ctx.arg('item')} not found"))
    body = ctx.json_object()
    if "available_quantity" in body:
        err = ch.set_qty(listing, body["available_quantity"])
        if err is not None:
            cause = [{"code": "item.available_quantity.invalid", "message": f"available_quantity rejected: {err}"}]
            status = 409 if err is WriteError.LOCKED else 400
            return Reply(
                status, {"message": "Validation error", "error": "validation_error", "status": status, "cause": cause}
            )
    if "title" in body:
        listing.title = str(body["title"])
    if "price" in body:
        try:
            listing.price = Decimal(str(body["price"]))
        except InvalidOperation:
            raise BadRequest("price must be a number", "validation_error") from None
    return Reply(200, _item(ctx, listing))


def put_description(ctx: Ctx) -> Reply:
    listing = ctx.channel.by_ref(ctx.arg("item"))
    if listing is None:
        return Reply(404, error_body(404, "not_found", "item not found"))
    listing.description = str(ctx.json_object().get("plain_text", ""))
    return Reply(200, {"text": "", "plain_text": listing.description})


def multiget(ctx: Ctx) -> Reply:
    ids = [i for i in (ctx.q("ids") or "").split(",") if i]
    if not 1 <= len(ids) <= 20:
        raise BadRequest("ids must list 1 to 20 items", "bad_request")
    out = []
    for item_id in ids:
        li = ctx.channel.by_ref(item_id)
        if li is None:
            out.append({"code": 404, "body": error_body(404, "not_found", f"Item with id {item_id} not found")})
        else:
            out.append({"code": 200, "body": _item(ctx, li)})
    return Reply(200, out)


def search_items(ctx: Ctx) -> Reply:
    sku = ctx.q("seller_sku")
    results = [li.ref for li in ctx.channel.listings.values() if sku is None or li.sku == sku]
    return Reply(
        200,
        {
            "seller_id": ctx.arg("seller"),
            "results": results,
            "paging": {"total": len(results), "offset": 0, "limit": 50},
        },
    )


SHIPMENT_BASE = 40_000_000_000
FEEDBACK_REASONS = frozenset(
    {"THEY_DIDNT_ANSWER", "OUT_OF_STOCK", "THEY_NOT_HONORING_POLICIES", "SELLER_REGRETS", "BUYER_REGRETS"}
)


def _order_json(ctx: Ctx, o: Order) -> dict[str, Any]:
    return {
        "id": int(o.order_id),
        "date_created": o.created_iso,
        "status": "cancelled" if o.status == "cancelled" else "paid",
        "currency_id": o.currency,
        "total_amount": float(o.unit_price * o.qty),
        "shipping": {"id": SHIPMENT_BASE + o.seq},
        "order_items": [
            {
                "item": {"id": o.ref, "title": ctx.channel.listings[o.sku].title, "seller_sku": o.sku},
                "quantity": o.qty,
                "unit_price": float(o.unit_price),
                "currency_id": o.currency,
            }
        ],
    }


def get_order(ctx: Ctx) -> Reply:
    order = ctx.channel.order(ctx.arg("order"))
    if order is None:
        return Reply(404, error_body(404, "not_found", f"Order {ctx.arg('order')} not found"))
    return Reply(200, _order_json(ctx, order))


def put_shipment(ctx: Ctx) -> Reply:
    """Custom shipping (ME1): the seller reports the tracking number and status ``shipped`` for the whole order."""
    sid = int(ctx.arg("shipment"))
    order = next((o for o in ctx.channel.orders if SHIPMENT_BASE + o.seq == sid), None)
    if order is None:
        return Reply(404, error_body(404, "not_found", f"Shipment {sid} not found"))
    body = ctx.json_object()
    tracking = body.get("tracking_number")
    if not isinstance(tracking, str) or not tracking or body.get("status") != "shipped":
        raise BadRequest("tracking_number and status 'shipped' are required", "bad_request")
    if order.shipment(f"tracking:{tracking}") is None and order.status == "shipped":
        raise BadRequest("shipment already shipped with another tracking number", "bad_request")
    err = order.ship(
        f"tracking:{tracking}",
        str(body.get("service_id") or "custom"),
        tracking,
        order.open_qty,
        ctx.sandbox.clock.now_ms(),
    )
    if err is not None:
        raise BadRequest(err, "bad_request")
    return Reply(200, {"id": sid, "status": "shipped", "tracking_number": tracking, "order_id": int(order.order_id)})


def post_feedback(ctx: Ctx) -> Reply:
    """Seller feedback; ``fulfilled: false`` with a reason cancels the sale (repeat: the same answer)."""
    order = ctx.channel.order(ctx.arg("order"))
    if order is None:
        return Reply(404, error_body(404, "not_found", f"Order {ctx.arg('order')} not found"))
    body = ctx.json_object()
    if not isinstance(body.get("fulfilled"), bool):
        raise BadRequest("fulfilled must be true or false", "bad_request")
    if body["fulfilled"] is False:
        reason = body.get("reason")
        if reason not in FEEDBACK_REASONS:
            raise BadRequest(f"reason must be one of {sorted(FEEDBACK_REASONS)}", "bad_request")
        err = order.cancel(str(reason))
        if err is not None:
            raise BadRequest(err, "bad_request")
    return Reply(201, {"id": order.seq, "fulfilled": body["fulfilled"], "status": "active"})


def search_orders(ctx: Ctx) -> Reply:
    since = ctx.q("order.date_created.from")
    try:
        since_ms = ms_from_datetime(parse_iso(since)) if since else 0
    except ValueError:
        raise BadRequest("bad order.date_created.from", "bad_request") from None
    limit, offset = min(51, ctx.qint("limit", 50)), ctx.qint("offset", 0)
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    results = [_order_json(ctx, o) for o in matching[offset : offset + limit]]
    return Reply(200, {"results": results, "paging": {"total": len(matching), "offset": offset, "limit": limit}})


DIALECT = Dialect(
    name="mercadolibre",
    routes=[
        route("PUT", r"/items/(?P<item>[^/]+)", "putItem", put_item),
        route("PUT", r"/items/(?P<item>[^/]+)/description", "putDescription", put_description),
        route("GET", "/items", "multigetItems", multiget),
        route("GET", r"/users/(?P<seller>[^/]+)/items/search", "searchItems", search_items),
        route("GET", "/orders/search", "searchOrders", search_orders),
        route("GET", r"/orders/(?P<order>\d+)", "getOrder", get_order),
        route("POST", r"/orders/(?P<order>\d+)/feedback", "postFeedback", post_feedback),
        route("PUT", r"/shipments/(?P<shipment>\d+)", "putShipment", put_shipment),
    ],
    check_auth=check_auth,
    error=error_body,
)
