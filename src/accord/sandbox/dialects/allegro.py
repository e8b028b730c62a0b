"""Allegro emulation: PATCH /sale/product-offers/{id}, GET /sale/offers?external.id=, GET /order/checkout-forms."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from accord.connectors.base import ms_from_datetime, parse_iso
from accord.sandbox.core import Listing, WriteError
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
            listing.price = Decimal(str(body["sellingMode"]["price"]["amount"]))
        except (KeyError, TypeError, InvalidOperation):
            raise BadRequest("sellingMode.price.amount is invalid", "VALIDATION_ERROR") from None
    if "description" in body:
        listing.description = str(body["description"])
    return Reply(200, _offer(ctx, listing), media_type=MEDIA)


def list_offers(ctx: Ctx) -> Reply:
    wanted = set(ctx.q_all("external.id"))
    offers = [_offer(ctx, li) for li in ctx.channel.listings.values() if not wanted or li.sku in wanted]
    return Reply(200, {"offers": offers, "count": len(offers), "totalCount": len(offers)}, media_type=MEDIA)


def checkout_forms(ctx: Ctx) -> Reply:
    since = ctx.q("lineItems.boughtAt.gte")
    try:
        since_ms = ms_from_datetime(parse_iso(since)) if since else 0
    except ValueError:
        raise BadRequest("bad lineItems.boughtAt.gte") from None
    limit, offset = min(100, ctx.qint("limit", 100)), ctx.qint("offset", 0)
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    forms = []
    for o in matching[offset : offset + limit]:
        li = ctx.channel.listings[o.sku]
        line = {
            "id": f"{o.order_id}-1",
            "offer": {"id": o.ref, "name": li.title, "external": {"id": o.sku}},
            "quantity": o.qty,
            "price": {"amount": f"{o.unit_price:.2f}", "currency": o.currency},
            "boughtAt": o.created_iso,
        }
        total = {"amount": f"{o.unit_price * o.qty:.2f}", "currency": o.currency}
        forms.append(
            {
                "id": o.order_id,
                "status": "READY_FOR_PROCESSING",
                "lineItems": [line],
                "summary": {"totalToPay": total},
                "updatedAt": o.created_iso,
            }
        )
    return Reply(200, {"checkoutForms": forms, "count": len(forms), "totalCount": len(matching)}, media_type=MEDIA)


DIALECT = Dialect(
    name="allegro",
    routes=[
        route("PATCH", r"/sale/product-offers/(?P<offer>[^/]+)", "patchProductOffer", patch_offer),
        route("GET", "/sale/offers", "getOffers", list_offers),
        route("GET", "/order/checkout-forms", "getCheckoutForms", checkout_forms),
    ],
    check_auth=check_auth,
    error=error_body,
)
