"""Mercado Libre dialect: ``PUT /items/{id}`` with ``available_quantity``; content via ``PUT /items/{id}`` (title,
price) and ``PUT /items/{id}/description``; reads via ``/users/{id}/items/search?seller_sku=`` + ``GET /items?ids=``;
orders via ``/orders/search``.

Config: credentials ``access_token`` (Bearer); options ``seller_id``, ``orders_since`` (ISO).
``listing_ref`` is the item id (e.g. MLA123456).
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
    ms_from_datetime,
    next_time_cursor,
    parse_iso,
    run_per_item,
)

# reasons of a "sale not completed" feedback (how a seller cancels a sale)
CANCEL_REASONS = {
    CancelReason.OUT_OF_STOCK: "OUT_OF_STOCK",
    CancelReason.CUSTOMER_REQUEST: "BUYER_REGRETS",
    CancelReason.PRICING_ERROR: "SELLER_REGRETS",
    CancelReason.UNDELIVERABLE: "SELLER_REGRETS",
    CancelReason.OTHER: "SELLER_REGRETS",
}


def _error_text(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    causes = "; ".join(
        f"{c.get('code', '?')}: {c.get('message', '')}" for c in data.get("cause") or [] if isinstance(c, dict)
    )
    return f"{data.get('error', '')}: {data.get('message', '')}" + (f" ({causes})" if causes else "")


class MercadoLibreConnector(HttpConnector):
    dialect = "mercadolibre"
    one_tracking_per_order = True  # custom shipping (ME1) is one shipment per order

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.config.credential('access_token')}"}

    async def _put_item(self, sku: str, item_id: str | None, body: JsonObject) -> ItemResult:
        if not item_id:
            return ItemResult(sku, ItemStatus.REJECTED, "missing_listing_ref", "item id needed")
        resp = await self.request("PUT", f"/items/{quote(item_id, safe='')}", json_body=body)
        data = self.decode_object(resp)
        if resp.status_code == 200:
            qty = data.get("available_quantity")
            return ItemResult(sku, ItemStatus.OK, observed_qty=int(qty) if isinstance(qty, int) else None)
        return self.rejected_result(sku, resp, "not_found" if resp.status_code == 404 else "invalid", _error_text(data))

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        async def one(item: QuantityUpdate) -> ItemResult:
            return await self._put_item(item.sku, item.listing_ref, {"available_quantity": item.qty})

        return await run_per_item(items, lambda i: i.sku, one)

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        async def one(item: ContentUpdate) -> ItemResult:
            body: JsonObject = {}
            if item.title is not None:
                body["title"] = item.title
            if item.price is not None:
                body["price"] = float(item.price)
            body.update(item.attributes)
            result = ItemResult(item.sku, ItemStatus.OK, "nothing_to_do")
            if body:
                result = await self._put_item(item.sku, item.listing_ref, body)
            if result.ok and item.description is not None and item.listing_ref:
                resp = await self.request(
                    "PUT",
                    f"/items/{quote(item.listing_ref, safe='')}/description",
                    json_body={"plain_text": item.description},
                )
                if resp.status_code not in (200, 201):
                    return self.rejected_result(item.sku, resp, "invalid", _error_text(self.decode_object(resp)))
                result = ItemResult(item.sku, ItemStatus.OK)
            return result

        return await run_per_item(items, lambda i: i.sku, one)

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        seller = quote(self.config.option("seller_id", ""), safe="")
        ids: dict[str, str] = {}
        for sku in skus:
            resp = await self.request("GET", f"/users/{seller}/items/search", params={"seller_sku": sku})
            data = self.decode_object(resp)
            if resp.status_code != 200:
                raise RequestRejected(f"items search: {resp.status_code}", status=resp.status_code, body=resp.text)
            results = data.get("results") or []
            if results:
                ids[sku] = str(results[0])
        qty_by_id: dict[str, int | None] = {}
        for batch in chunked(list(ids.values()), 20):
            resp = await self.request(
                "GET", "/items", params={"ids": ",".join(batch), "attributes": "id,available_quantity"}
            )
            data = self.decode(resp)
            if resp.status_code != 200 or not isinstance(data, list):
                raise self.malformed(resp, "multiget did not return a list")
            for entry in data:
                body = entry.get("body") or {}
                if entry.get("code") == 200:
                    qty_by_id[str(body.get("id"))] = int(body.get("available_quantity", 0))
        return [QuantitySnapshot(s, qty_by_id.get(ids[s]) if s in ids else None, ids.get(s)) for s in skus]

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        default = ms_from_datetime(parse_iso(self.config.option("orders_since", "2020-01-01T00:00:00.000Z")))
        since_ms, offset = decode_time_cursor(cursor, default)
        resp = await self.request(
            "GET",
            "/orders/search",
            params={
                "seller": self.config.option("seller_id", ""),
                "order.date_created.from": iso_from_ms(since_ms),
                "sort": "date_asc",
                "offset": offset,
                "limit": 50,
            },
        )
        data = self.decode_object(resp)
        if resp.status_code != 200:
            raise RequestRejected(f"orders search: {resp.status_code}", status=resp.status_code, body=resp.text)
        orders = []
        for raw in data.get("results") or []:
            lines = tuple(
                OrderLine(
                    str((oi.get("item") or {}).get("seller_sku") or ""),
                    int(oi["quantity"]),
                    money(oi.get("unit_price")),
                    str((oi.get("item") or {}).get("id")),
                )
                for oi in raw.get("order_items") or []
            )
            orders.append(
                ChannelOrder(
                    channel_order_id=str(raw["id"]),
                    created_at=parse_iso(str(raw["date_created"])),
                    status=str(raw.get("status", "")),
                    lines=lines,
                    currency=raw.get("currency_id"),
                    raw=raw,
                )
            )
        paging = data.get("paging") or {}
        has_more = offset + len(orders) < int(paging.get("total", 0))
        return OrdersPage(orders, next_time_cursor(since_ms, offset, orders, has_more))

    # ----- ship confirmations and cancellations

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        """Custom (ME1) shipping: read the order's ``shipping.id``, then ``PUT /shipments/{id}`` with the tracking
        number and status ``shipped``. Mercado Libre ships whole orders (packs): the lines are informational."""
        oid = quote(shipment.channel_order_id, safe="")
        resp = await self.request("GET", f"/orders/{oid}")
        data = self.decode_object(resp)
        self.expect_status(resp, (200,), f"order {shipment.channel_order_id}", _error_text(data))
        shipping_id = (data.get("shipping") or {}).get("id")
        if shipping_id is None:
            raise RequestRejected(f"mercadolibre order {shipment.channel_order_id} has no shipment", body=resp.text)
        body = {"tracking_number": shipment.tracking, "status": "shipped", "service_id": shipment.carrier}
        resp = await self.request("PUT", f"/shipments/{quote(str(shipping_id), safe='')}", json_body=body)
        detail = "" if resp.status_code == 200 else _error_text(self.decode_object(resp))
        self.expect_status(resp, (200,), f"shipment {shipping_id}", detail)

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """A sale is cancelled by the seller's feedback ``fulfilled: false`` with a reason."""
        body = {
            "fulfilled": False,
            "rating": "neutral",
            "reason": CANCEL_REASONS[reason],
            "message": note[:160],
            "restock_item": False,
        }
        resp = await self.request("POST", f"/orders/{quote(channel_order_id, safe='')}/feedback", json_body=body)
        detail = "" if resp.status_code in (200, 201) else _error_text(self.decode_object(resp))
        self.expect_status(resp, (200, 201), f"feedback {channel_order_id}", detail)
