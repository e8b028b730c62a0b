"""Allegro emulation: PATCH /sale/product-offers/{id}, GET /sale/offers?external.id=, GET /order/checkout-forms[/{id}],
POST .../shipments, PUT .../fulfillment."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.sandbox.core import Listing, Order, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route

MEDIA = "application/vnd.allegro.public.v1+json"


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": None, "path": None, "userMessage": message}]}


def check_auth(ctx: Ctx) -> Reply | None:
    if ctx.headers.get("authorization") != f"Bearer {ctx.channel.credentials['access_token']}":
        return Reply(401, {"error": "unauthorized", "error_description": "Invalid access token"})
    return None


def _offer(ctx: Ctx, li: Listing) -> dict[str, Any]:
    return {
        "id": li.ref,
        "name": li.title,
        "external": {"id": li.sku},
        "stock": {"available": li.qty, "unit": "UNIT"},
        "sellingMode": {"price": {"amount": f"{li.price:.2f}", "currency": ctx.channel.spec.currency}},
        "publication": {"status": "ACTIVE"},
    }


def patch_offer(ctx: Ctx) -> Reply:
    listing = ctx.channel.by_ref(ctx.arg("offer"))
    if listing is None:
        return Reply(404, error_body(404, "NOT_FOUND", "Offer not found"), media_type=MEDIA)
    body = ctx.json_object()
    if "stock" in body:
        err = ctx.channel.set_qty(listing, (body.get("stock") or {}).get("available"))
        if err is not None:
            status = 404 if err is WriteError.NOT_FOUND else 422
            return Reply(
                status, error_body(status, "VALIDATION_ERROR", f"stock.available rejected: {err}"), media_type=MEDIA
            )
    if "name" in body:
        listing.title = str(body["name"])
    if "sellingMode" in body:
        try:
            if ctx.channel.wrong_currency(body["sellingMode"]["price"].get("currency")):
                raise TypeError("the offer's currency is not the marketplace's")
            listing.price = Decimal(str(body["sellingMode"]["price"]["amount"]))
        except (KeyError, TypeError, AttributeError, InvalidOperation):
            raise BadRequest("sellingMode.price.amount is invalid", "VALIDATION_ERROR") from None
    if "description" in body:
        listing.description = str(body["description"])
    return Reply(200, _offer(ctx, listing), media_type=MEDIA)


def list_offers(ctx: Ctx) -> Reply:
    wanted = set(ctx.q_all("external.id"))
    offers = [_offer(ctx, li) for li in ctx.channel.listings.values() if not wanted or li.sku in wanted]
    return Reply(200, {"offers": offers, "count": len(offers), "totalCount": len(offers)}, media_type=MEDIA)


FULFILLMENT_STATUSES = frozenset(
    {"NEW", "PROCESSING", "READY_FOR_SHIPMENT", "READY_FOR_PICKUP", "SENT", "PICKED_UP", "CANCELLED", "SUSPENDED"}
)


def _form(ctx: Ctx, o: Order) -> dict[str, Any]:
    li = ctx.channel.listings[o.sku]
    line = {
        "id": f"{o.order_id}-1",
        "offer": {"id": o.ref, "name": li.title, "external": {"id": o.sku}},
        "quantity": o.qty,
        "price": {"amount": f"{o.unit_price:.2f}", "currency": o.currency},
        "boughtAt": o.created_iso,
    }
    total = {"amount": f"{o.unit_price * o.qty:.2f}", "currency": o.currency}
    status = {"cancelled": "CANCELLED", "shipped": "SENT"}.get(o.status, "NEW")
    return {
        "id": o.order_id,
        "status": "CANCELLED" if o.status == "cancelled" else "READY_FOR_PROCESSING",
        "fulfillment": {"status": status},
        "lineItems": [line],
        "summary": {"totalToPay": total},
        "updatedAt": o.created_iso,
    }


def _not_found(form_id: str) -> Reply:
    return Reply(404, error_body(404, "NOT_FOUND", f"Checkout form {form_id} not found"), media_type=MEDIA)


def get_form(ctx: Ctx) -> Reply:
    order = ctx.channel.order(ctx.arg("form"))
    if order is None:
        return _not_found(ctx.arg("form"))
    return Reply(200, _form(ctx, order), media_type=MEDIA)


def add_shipment(ctx: Ctx) -> Reply:
    """``POST /order/checkout-forms/{id}/shipments``: a parcel with carrier and waybill for some line items (no
    quantities: a line may go in several parcels); the same waybill again answers the parcel already recorded."""
    order = ctx.channel.order(ctx.arg("form"))
    if order is None:
        return _not_found(ctx.arg("form"))
    body = ctx.json_object()
    carrier, waybill = body.get("carrierId"), body.get("waybill")
    if not isinstance(carrier, str) or not carrier or not isinstance(waybill, str) or not waybill:
        raise BadRequest("carrierId and waybill are required", "VALIDATION_ERROR")
    if carrier == "OTHER" and not body.get("carrierName"):
        raise BadRequest("carrierName is required for carrierId OTHER", "VALIDATION_ERROR")
    lines = body.get("lineItems")
    if not isinstance(lines, list) or not lines or any(li.get("id") != f"{order.order_id}-1" for li in lines):
        raise BadRequest("lineItems must name line items of the checkout form", "VALIDATION_ERROR")
    key, name, now = f"waybill:{waybill}", str(body.get("carrierName") or carrier), ctx.sandbox.clock.now_ms()
    if order.open_qty == 0 and order.shipment(key) is None:  # a further parcel of lines already sent
        err = order.add_parcel(key, name, waybill, now)
    else:
        err = order.ship(key, name, waybill, order.open_qty, now)
    if err is not None:
        return Reply(422, error_body(422, "VALIDATION_ERROR", err), media_type=MEDIA)
    shipment = order.shipment(key)
    assert shipment is not None
    sid = shipment.setdefault("parcel_id", f"{order.order_id}-p{ctx.channel.next_id()}")
    out = {"id": sid, "waybill": waybill, "carrierId": carrier, "lineItems": lines, "createdAt": order.created_iso}
    return Reply(201, out, media_type=MEDIA)


def set_fulfillment(ctx: Ctx) -> Reply:
    """``PUT /order/checkout-forms/{id}/fulfillment``: the seller's fulfillment status; CANCELLED cancels the sale
    (refused once a parcel went out)."""
    order = ctx.channel.order(ctx.arg("form"))
    if order is None:
        return _not_found(ctx.arg("form"))
    status = ctx.json_object().get("status")
    if status not in FULFILLMENT_STATUSES:
        raise BadRequest(f"status must be one of {sorted(FULFILLMENT_STATUSES)}", "VALIDATION_ERROR")
    if status == "CANCELLED":
        err = order.cancel("CANCELLED")
        if err is not None:
            return Reply(422, error_body(422, "VALIDATION_ERROR", err), media_type=MEDIA)
    return Reply(204)


def checkout_forms(ctx: Ctx) -> Reply:
    since = ctx.q("lineItems.boughtAt.gte")
    try:
        since_ms = ms_from_datetime(parse_iso(since)) if since else 0
    except ValueError:
        raise BadRequest("bad lineItems.boughtAt.gte") from None
    limit, offset = min(100, ctx.qint("limit", 100)), ctx.qint("offset", 0)
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    forms = [_form(ctx, o) for o in matching[offset : offset + limit]]
    return Reply(200, {"checkoutForms": forms, "count": len(forms), "totalCount": len(matching)}, media_type=MEDIA)


DIALECT = Dialect(
    name="allegro",
    routes=[
        route("PATCH", r"/sale/product-offers/(?P<offer>[^/]+)", "patchProductOffer", patch_offer),
        route("GET", "/sale/offers", "getOffers", list_offers),
        route("GET", "/order/checkout-forms", "getCheckoutForms", checkout_forms),
        route("GET", r"/order/checkout-forms/(?P<form>[^/]+)", "getCheckoutForm", get_form),
        route("POST", r"/order/checkout-forms/(?P<form>[^/]+)/shipments", "addShipment", add_shipment),
        route("PUT", r"/order/checkout-forms/(?P<form>[^/]+)/fulfillment", "setFulfillmentStatus", set_fulfillment),
    ],
    check_auth=check_auth,
    error=error_body,
)
