"""eBay emulation: Inventory API (bulkUpdatePriceQuantity, bulkGetInventoryItem, inventory_item get/put) and
Fulfillment getOrders / getOrder / createShippingFulfillment, Post-Order cancellation. The per-listing daily
revision cap answers errorId 25099 (sandbox convention)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.sandbox.core import Listing, Order, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route

CAP_ERROR_ID = 25099


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {
        "errors": [
            {
                "errorId": 25001 if status >= 500 else 2004,
                "domain": "API_INVENTORY",
                "category": "REQUEST",
                "message": message,
                "longMessage": code,
            }
        ]
    }


def check_auth(ctx: Ctx) -> Reply | None:
    # the Post-Order API takes the same OAuth user token with the IAF scheme
    scheme = "IAF" if ctx.path.startswith("/post-order/") else "Bearer"
    if ctx.headers.get("authorization") != f"{scheme} {ctx.channel.credentials['access_token']}":
        err = {"errorId": 1001, "domain": "OAuth", "category": "REQUEST", "message": "Invalid access token"}
        return Reply(401, {"errors": [err]})
    return None


def _err(error_id: int, message: str) -> dict[str, Any]:
    return {"errorId": error_id, "domain": "API_INVENTORY", "category": "REQUEST", "message": message}


def _write_result(sku: str, err: WriteError | None) -> dict[str, Any]:
    if err is None:
        return {"statusCode": 200, "sku": sku, "warnings": []}
    if err is WriteError.NOT_FOUND:
        return {"statusCode": 404, "sku": sku, "errors": [_err(25702, f"SKU {sku} is not available in the system")]}
    if err is WriteError.DAILY_CAP:
        return {
            "statusCode": 400,
            "sku": sku,
            "errors": [_err(CAP_ERROR_ID, "Listing revision limit for today reached")],
        }
    if err is WriteError.LOCKED:
        return {"statusCode": 409, "sku": sku, "errors": [_err(25098, "Quantity is locked by a promotion")]}
    return {"statusCode": 400, "sku": sku, "errors": [_err(25604, "Input error: invalid quantity")]}


def bulk_update(ctx: Ctx) -> Reply:
    requests = ctx.json_object().get("requests")
    if not isinstance(requests, list) or not 1 <= len(requests) <= 25:
        return Reply(400, {"errors": [_err(25709, "requests must hold 1 to 25 entries")]})
    ch = ctx.channel
    responses = []
    for r in requests:
        sku = str(r.get("sku", ""))
        listing = ch.listings.get(sku)
        ship = r.get("shipToLocationAvailability")
        if ship is not None:
            responses.append(_write_result(sku, ch.set_qty(listing, ship.get("quantity"))))
            continue
        offers = r.get("offers") or []
        if listing is None:
            responses.append(_write_result(sku, WriteError.NOT_FOUND))
            continue
        err = ch.count_revision(listing)
        result = _write_result(sku, err)
        if err is None:
            for offer in offers:
                try:
                    if ch.wrong_currency(offer["price"].get("currency")):
                        raise TypeError("the offer's currency is not the marketplace's")
                    listing.price = Decimal(str(offer["price"]["value"]))
                except (KeyError, TypeError, AttributeError, InvalidOperation):
                    result = _write_result(sku, WriteError.INVALID)
                if "availableQuantity" in offer:
                    listing.qty = int(offer["availableQuantity"])
            result["offerId"] = str(offers[0].get("offerId")) if offers else None
        responses.append(result)
    all_ok = all(r["statusCode"] == 200 for r in responses)
    return Reply(200 if all_ok else 207, {"responses": responses})


def _inventory_item(listing: Listing) -> dict[str, Any]:
    return {
        "sku": listing.sku,
        "availability": {"shipToLocationAvailability": {"quantity": listing.qty}},
        "condition": "NEW",
        "product": {
            "title": listing.title,
            "description": listing.description,
            "aspects": listing.attributes.get("aspects", {}),
        },
    }


def bulk_get(ctx: Ctx) -> Reply:
    requests = ctx.json_object().get("requests")
    if not isinstance(requests, list) or not 1 <= len(requests) <= 25:
        return Reply(400, {"errors": [_err(25709, "requests must hold 1 to 25 entries")]})
    out = []
    for r in requests:
        listing = ctx.channel.listings.get(str(r.get("sku")))
        if listing is None:
            out.append(_write_result(str(r.get("sku")), WriteError.NOT_FOUND))
        else:
            out.append({"statusCode": 200, "sku": listing.sku, "inventoryItem": _inventory_item(listing)})
    return Reply(200 if all(o["statusCode"] == 200 for o in out) else 207, {"responses": out})


def get_item(ctx: Ctx) -> Reply:
    listing = ctx.channel.listings.get(unquote(ctx.arg("sku")))
    if listing is None:
        return Reply(404, {"errors": [_err(25710, "We didn't find the entity you are requesting.")]})
    return Reply(200, _inventory_item(listing))


def get_offers(ctx: Ctx) -> Reply:
    """getOffers: the seller's offer for one SKU (the sandbox lists one offer per listing, its id the listing ref)."""
    sku = ctx.q("sku")
    if not sku:
        return Reply(400, {"errors": [_err(25707, "sku is required")]})
    listing = ctx.channel.listings.get(sku)
    if listing is None:
        return Reply(404, {"errors": [_err(25713, "This Offer is not available.")]})
    offer = {
        "offerId": listing.ref,
        "sku": listing.sku,
        "marketplaceId": "EBAY_US",
        "format": "FIXED_PRICE",
        "availableQuantity": listing.qty,
        "pricingSummary": {"price": {"value": f"{listing.price:.2f}", "currency": ctx.channel.spec.currency}},
        "status": "PUBLISHED",
    }
    return Reply(200, {"total": 1, "size": 1, "limit": 25, "offset": 0, "offers": [offer]})


def put_item(ctx: Ctx) -> Reply:
    if not ctx.headers.get("content-language"):
        return Reply(400, {"errors": [_err(25709, "Invalid value for header Content-Language.")]})
    body = ctx.json_object()
    sku = unquote(ctx.arg("sku"))
    ch = ctx.channel
    listing = ch.listings.get(sku)
    if listing is None:
        from accord.sandbox.core import ListingSpec, listing_from_spec

        listing = ch.listings[sku] = listing_from_spec("ebay", ListingSpec(sku=sku), len(ch.listings) + 1)
    qty = ((body.get("availability") or {}).get("shipToLocationAvailability") or {}).get("quantity", listing.qty)
    err = ch.set_qty(listing, qty)
    if err is not None:
        return Reply(400, {"errors": _write_result(sku, err)["errors"]})
    product = body.get("product") or {}
    listing.title = str(product.get("title", listing.title))
    listing.description = str(product.get("description", listing.description))
    if "aspects" in product:
        listing.attributes["aspects"] = product["aspects"]
    return Reply(204)


FULFILLMENT_STATUS = {"shipped": "FULFILLED", "partially_shipped": "IN_PROGRESS"}
SELLER_CANCEL_REASONS = frozenset({"OUT_OF_STOCK_OR_CANNOT_FULFILL", "BUYER_ASKED_CANCEL", "ADDRESS_ISSUES"})


def _order_json(ctx: Ctx, o: Order) -> dict[str, Any]:
    return {
        "orderId": o.order_id,
        "legacyOrderId": o.order_id,
        "creationDate": o.created_iso,
        "lastModifiedDate": o.created_iso,
        "orderFulfillmentStatus": FULFILLMENT_STATUS.get(o.status, "NOT_STARTED"),
        "orderPaymentStatus": "FULLY_REFUNDED" if o.status == "cancelled" else "PAID",
        "cancelStatus": {"cancelState": "CANCELED" if o.status == "cancelled" else "NONE_REQUESTED"},
        "pricingSummary": {"total": {"value": f"{o.unit_price * o.qty:.2f}", "currency": o.currency}},
        "lineItems": [
            {
                "lineItemId": f"{10_000_000 + o.seq}",
                "sku": o.sku,
                "title": ctx.channel.listings[o.sku].title,
                "quantity": o.qty,
                "lineItemCost": {"value": f"{o.unit_price * o.qty:.2f}", "currency": o.currency},
                "lineItemFulfillmentStatus": FULFILLMENT_STATUS.get(o.status, "NOT_STARTED"),
            }
        ],
    }


def get_order(ctx: Ctx) -> Reply:
    order = ctx.channel.order(unquote(ctx.arg("order")))
    if order is None:
        return Reply(404, {"errors": [_err(32100, "Invalid order ID: " + ctx.arg("order"))]})
    return Reply(200, _order_json(ctx, order))


def create_shipping_fulfillment(ctx: Ctx) -> Reply:
    """``createShippingFulfillment``: 201 with the new fulfillment's URI in Location; a repeat of the same tracking
    number for the order answers the same fulfillment (no second package is recorded)."""
    order = ctx.channel.order(unquote(ctx.arg("order")))
    if order is None:
        return Reply(404, {"errors": [_err(32100, "Invalid order ID: " + ctx.arg("order"))]})
    body = ctx.json_object()
    lines = body.get("lineItems")
    if not isinstance(lines, list) or not lines:
        return Reply(400, {"errors": [_err(32200, "lineItems is required")]})
    qty = 0
    for li in lines:
        if not isinstance(li, dict) or li.get("lineItemId") != f"{10_000_000 + order.seq}":
            return Reply(400, {"errors": [_err(32400, "Invalid line item ID")]})
        if not isinstance(li.get("quantity"), int) or isinstance(li.get("quantity"), bool):
            return Reply(400, {"errors": [_err(32400, "lineItems.quantity must be an integer")]})
        qty += int(li["quantity"])
    for name in ("shippedDate", "shippingCarrierCode", "trackingNumber"):
        if not isinstance(body.get(name), str) or not body[name]:
            return Reply(400, {"errors": [_err(32500, f"{name} is required")]})
    try:
        parse_iso(body["shippedDate"])
    except ValueError:
        return Reply(400, {"errors": [_err(32500, "shippedDate is not ISO 8601")]})
    key = f"tracking:{body['trackingNumber']}"
    err = order.ship(key, body["shippingCarrierCode"], body["trackingNumber"], qty, ctx.sandbox.clock.now_ms())
    if err is not None:
        return Reply(400, {"errors": [_err(32600, err)]})
    shipment = order.shipment(key)
    assert shipment is not None
    fid = shipment.setdefault("fulfillment_id", str(ctx.channel.next_id()))
    location = f"{ctx.channel_url}/sell/fulfillment/v1/order/{order.order_id}/shipping_fulfillment/{fid}"
    return Reply(201, headers={"Location": location})


def create_cancellation(ctx: Ctx) -> Reply:
    """Post-Order ``POST /post-order/v2/cancellation`` by the seller; approved at once in the sandbox."""
    body = ctx.json_object()
    order = ctx.channel.order(str(body.get("legacyOrderId") or ""))
    if order is None:
        return Reply(404, {"errors": [_err(1604, "Order not found")]})
    reason = body.get("cancelReason")
    if reason not in SELLER_CANCEL_REASONS:
        return Reply(400, {"errors": [_err(1603, f"cancelReason must be one of {sorted(SELLER_CANCEL_REASONS)}")]})
    err = order.cancel(str(reason))
    if err is not None:
        return Reply(409, {"errors": [_err(1605, err)]})
    return Reply(201, {"cancelId": f"5{order.seq:09d}"})


def get_orders(ctx: Ctx) -> Reply:
    flt = ctx.q("filter") or ""
    since_ms = 0
    if flt:
        if not flt.startswith("creationdate:[") or ".." not in flt:
            raise BadRequest("unsupported filter")
        try:
            since_ms = ms_from_datetime(parse_iso(flt.removeprefix("creationdate:[").split("..", 1)[0]))
        except ValueError:
            raise BadRequest("bad creationdate") from None
    limit, offset = min(200, ctx.qint("limit", 50)), ctx.qint("offset", 0)
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    page = matching[offset : offset + limit]
    orders = [_order_json(ctx, o) for o in page]
    return Reply(200, {"total": len(matching), "limit": limit, "offset": offset, "orders": orders})


DIALECT = Dialect(
    name="ebay",
    routes=[
        route("POST", "/sell/inventory/v1/bulk_update_price_quantity", "bulkUpdatePriceQuantity", bulk_update),
        route("POST", "/sell/inventory/v1/bulk_get_inventory_item", "bulkGetInventoryItem", bulk_get),
        route("GET", r"/sell/inventory/v1/inventory_item/(?P<sku>[^/]+)", "getInventoryItem", get_item),
        route("GET", "/sell/inventory/v1/offer", "getOffers", get_offers),
        route("PUT", r"/sell/inventory/v1/inventory_item/(?P<sku>[^/]+)", "createOrReplaceInventoryItem", put_item),
        route("GET", "/sell/fulfillment/v1/order", "getOrders", get_orders),
        route("GET", r"/sell/fulfillment/v1/order/(?P<order>[^/]+)", "getOrder", get_order),
        route(
            "POST",
            r"/sell/fulfillment/v1/order/(?P<order>[^/]+)/shipping_fulfillment",
            "createShippingFulfillment",
            create_shipping_fulfillment,
        ),
        route("POST", "/post-order/v2/cancellation", "createCancellation", create_cancellation),
    ],
    check_auth=check_auth,
    error=error_body,
)
