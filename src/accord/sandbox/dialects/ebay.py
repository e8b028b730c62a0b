"""eBay emulation: Inventory API (bulkUpdatePriceQuantity, bulkGetInventoryItem, inventory_item get/put) and
Fulfillment getOrders. The per-listing daily revision cap answers errorId 25099 (sandbox convention)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.sandbox.core import Listing, WriteError
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
    if ctx.headers.get("authorization") != f"Bearer {ctx.channel.credentials['access_token']}":
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
                    listing.price = Decimal(str(offer["price"]["value"]))
                except (KeyError, TypeError, InvalidOperation):
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
    orders = [
        {
            "orderId": o.order_id,
            "creationDate": o.created_iso,
            "lastModifiedDate": o.created_iso,
            "orderFulfillmentStatus": "NOT_STARTED",
            "orderPaymentStatus": "PAID",
            "pricingSummary": {"total": {"value": f"{o.unit_price * o.qty:.2f}", "currency": o.currency}},
            "lineItems": [
                {
                    "lineItemId": f"{10_000_000 + o.seq}",
                    "sku": o.sku,
                    "title": ctx.channel.listings[o.sku].title,
                    "quantity": o.qty,
                    "lineItemCost": {"value": f"{o.unit_price * o.qty:.2f}", "currency": o.currency},
                }
            ],
        }
        for o in page
    ]
    return Reply(200, {"total": len(matching), "limit": limit, "offset": offset, "orders": orders})


DIALECT = Dialect(
    name="ebay",
    routes=[
        route("POST", "/sell/inventory/v1/bulk_update_price_quantity", "bulkUpdatePriceQuantity", bulk_update),
        route("POST", "/sell/inventory/v1/bulk_get_inventory_item", "bulkGetInventoryItem", bulk_get),
        route("GET", r"/sell/inventory/v1/inventory_item/(?P<sku>[^/]+)", "getInventoryItem", get_item),
        route("PUT", r"/sell/inventory/v1/inventory_item/(?P<sku>[^/]+)", "createOrReplaceInventoryItem", put_item),
        route("GET", "/sell/fulfillment/v1/order", "getOrders", get_orders),
    ],
    check_auth=check_auth,
    error=error_body,
)
