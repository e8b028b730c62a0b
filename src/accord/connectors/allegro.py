"""Allegro REST dialect: ``PATCH /sale/product-offers/{offerId}`` (``stock.available``, name, price),
``GET /sale/offers?external.id=`` for reads, ``GET /order/checkout-forms`` for orders.

Media type ``application/vnd.allegro.public.v1+json``; Bearer auth. Config: credentials ``access_token``.
``listing_ref`` is the offer id; the SKU is the offer's ``external.id``.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    chunked,
    decode_time_cursor,
    iso_from_ms,
    money,
    next_time_cursor,
    parse_iso,
    run_per_item,
)

MEDIA_TYPE = "application/vnd.allegro.public.v1+json"
# carrierId values Allegro knows; any other carrier goes as OTHER with carrierName
CARRIER_IDS = frozenset(
    {"ALLEGRO", "DPD", "DHL", "INPOST", "POCZTA_POLSKA", "UPS", "GLS", "FEDEX", "ORLEN", "GEIS", "RABEN", "PACZKOMATY"}
)


def _errors_text(data: Any) -> str:
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(f"{e.get('code', '?')}: {e.get('userMessage') or e.get('message', '')}" for e in errors)


class AllegroConnector(HttpConnector):
    dialect = "allegro"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.credential('access_token')}", "accept": MEDIA_TYPE}

    async def _patch(self, sku: str, offer_id: str | None, body: JsonObject) -> ItemResult:
        if not offer_id:
            return ItemResult(sku, ItemStatus.REJECTED, "missing_listing_ref", "offer id needed")
        resp = await self.request(
            "PATCH",
            f"/sale/product-offers/{quote(offer_id, safe='')}",
            json_body=body,
            headers={"content-type": MEDIA_TYPE},
        )
        data = self.decode_object(resp)
        if resp.status_code in (200, 202):
            available = (data.get("stock") or {}).get("available")
            return ItemResult(sku, ItemStatus.OK, observed_qty=int(available) if available is not None else None)
        return self.rejected_result(
            sku, resp, "not_found" if resp.status_code == 404 else "invalid", _errors_text(data)
        )

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        async def one(item: QuantityUpdate) -> ItemResult:
            return await self._patch(item.sku, item.listing_ref, {"stock": {"available": item.qty}})

        return await run_per_item(items, lambda i: i.sku, one)

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        async def one(item: ContentUpdate) -> ItemResult:
            body: JsonObject = {}
            if item.title is not None:
                body["name"] = item.title
            if item.description is not None:
                body["description"] = {
                    "sections": [{"items": [{"type": "TEXT", "content": f"<p>{item.description}</p>"}]}]
                }
            if item.price is not None:
                body["sellingMode"] = {
                    "price": {"amount": str(item.price), "currency": item.currency or self.config.currency}
                }
            if not body:
                return ItemResult(item.sku, ItemStatus.OK, "nothing_to_do")
            return await self._patch(item.sku, item.listing_ref, body)

        return await run_per_item(items, lambda i: i.sku, one)

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        found: dict[str, QuantitySnapshot] = {}
        for batch in chunked(list(skus), 50):
            params = [("external.id", s) for s in batch] + [("limit", "1000")]
            resp = await self.request("GET", "/sale/offers", params=params)
            data = self.decode_object(resp)
            if resp.status_code != 200:
                raise RequestRejected(f"offers: {resp.status_code}", status=resp.status_code, body=resp.text)
            for offer in data.get("offers") or []:
                sku = str((offer.get("external") or {}).get("id"))
                available = (offer.get("stock") or {}).get("available")
                found[sku] = QuantitySnapshot(
                    sku, int(available) if available is not None else None, str(offer.get("id"))
                )
        return [found.get(s, QuantitySnapshot(s, None)) for s in skus]

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        since_ms, offset = decode_time_cursor(cursor, 1_577_836_800_000)
        resp = await self.request(
            "GET",
            "/order/checkout-forms",
            params={"lineItems.boughtAt.gte": iso_from_ms(since_ms), "offset": offset, "limit": 100},
        )
        data = self.decode_object(resp)
        if resp.status_code != 200:
            raise RequestRejected(f"checkout-forms: {resp.status_code}", status=resp.status_code, body=resp.text)
        orders = []
        for raw in data.get("checkoutForms") or []:
            line_items = raw.get("lineItems") or []
            lines = tuple(
                OrderLine(
                    str(((li.get("offer") or {}).get("external") or {}).get("id") or ""),
                    int(li["quantity"]),
                    money((li.get("price") or {}).get("amount")),
                    str(li.get("id")),
                )
                for li in line_items
            )
            bought = min((str(li.get("boughtAt")) for li in line_items), default=str(raw.get("updatedAt")))
            total = (raw.get("summary") or {}).get("totalToPay") or {}
            orders.append(
                ChannelOrder(
                    channel_order_id=str(raw["id"]),
                    created_at=parse_iso(bought),
                    status=str(raw.get("status", "")),
                    lines=lines,
                    currency=total.get("currency"),
                    raw=raw,
                )
            )
        has_more = offset + len(orders) < int(data.get("totalCount", 0))
        return OrdersPage(orders, next_time_cursor(since_ms, offset, orders, has_more))

    # ----- ship confirmations and cancellations

    async def _line_ids(self, form_id: str) -> dict[str, str]:
        resp = await self.request("GET", f"/order/checkout-forms/{quote(form_id, safe='')}")
        data = self.decode_object(resp)
        self.expect_status(resp, (200,), f"checkout-form {form_id}", _errors_text(data))
        out: dict[str, str] = {}
        for li in data.get("lineItems") or []:
            if isinstance(li, dict):
                sku = str(((li.get("offer") or {}).get("external") or {}).get("id") or "")
                out.setdefault(sku, str(li.get("id")))
        return out

    def shipment_body(self, shipment: ShipmentConfirmation, line_ids: dict[str, str]) -> JsonObject:
        """``POST /order/checkout-forms/{id}/shipments`` body: carrier, waybill and the line items it carries."""
        carrier = shipment.carrier.strip().upper().replace(" ", "_")
        body: JsonObject = {
            "carrierId": carrier if carrier in CARRIER_IDS else "OTHER",
            "waybill": shipment.tracking,
            "lineItems": [{"id": line.line_id or line_ids[line.sku]} for line in shipment.lines],
        }
        if body["carrierId"] == "OTHER":
            body["carrierName"] = shipment.carrier
        return body

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        line_ids: dict[str, str] = {}
        if any(not line.line_id for line in shipment.lines):
            line_ids = await self._line_ids(shipment.channel_order_id)
            missing = sorted({ln.sku for ln in shipment.lines if not ln.line_id and ln.sku not in line_ids})
            if missing:
                raise RequestRejected(f"allegro checkout form {shipment.channel_order_id} has no line for {missing}")
        resp = await self.request(
            "POST",
            f"/order/checkout-forms/{quote(shipment.channel_order_id, safe='')}/shipments",
            json_body=self.shipment_body(shipment, line_ids),
            headers={"content-type": MEDIA_TYPE},
        )
        detail = "" if resp.status_code == 201 else _errors_text(self.decode_object(resp))
        self.expect_status(resp, (201,), f"shipments {shipment.channel_order_id}", detail)

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """Allegro has no seller cancel call with a reason: the seller sets the order's fulfillment status to
        CANCELLED (``PUT /order/checkout-forms/{id}/fulfillment``); the buyer is refunded from Allegro's panel."""
        resp = await self.request(
            "PUT",
            f"/order/checkout-forms/{quote(channel_order_id, safe='')}/fulfillment",
            json_body={"status": "CANCELLED"},
            headers={"content-type": MEDIA_TYPE},
        )
        detail = "" if resp.status_code in (200, 204) else _errors_text(self.decode_object(resp))
        self.expect_status(resp, (200, 204), f"fulfillment {channel_order_id}", detail)
