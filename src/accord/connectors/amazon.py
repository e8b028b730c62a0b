"""Amazon Selling Partner API dialect.

- Quantity: Listings Items ``patchListingsItem`` (``PATCH /listings/2021-08-01/items/{sellerId}/{sku}``) with a JSON
  Patch ``replace`` on ``/attributes/fulfillment_availability``; bulk via ``JSON_LISTINGS_FEED``
  (createFeedDocument → upload to the returned url → createFeed → getFeed → processing report).
- Orders: Orders v0 ``getOrders`` + ``getOrderItems``.
- Auth: ``x-amz-access-token`` (an LWA access token; refreshing it is the caller's job).

Config: credentials ``access_token``; options ``seller_id``, ``marketplace_id`` (default ATVPDKIKX0DER),
``product_type`` (default PRODUCT), ``fulfillment_channel_code`` (default DEFAULT), ``language_tag`` (en_US),
``orders_since`` (ISO timestamp, the first poll's CreatedAfter; default 2020-01-01T00:00:00Z).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from accord.connectors.base import (
    ChannelOrder,
    ConnectorError,
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
    money,
    parse_iso,
    run_per_item,
)

FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
FULFILLMENT_PATH = "/attributes/fulfillment_availability"


@dataclass(frozen=True, slots=True)
class FeedStatus:
    feed_id: str
    processing_status: str  # IN_QUEUE, IN_PROGRESS, DONE, CANCELLED, FATAL
    result_feed_document_id: str | None = None

    @property
    def finished(self) -> bool:
        return self.processing_status in ("DONE", "CANCELLED", "FATAL")


def _issues_text(issues: Any) -> str:
    if not isinstance(issues, list):
        return ""
    return "; ".join(f"{i.get('code', '?')}: {i.get('message', '')}" for i in issues if isinstance(i, dict))


class AmazonConnector(HttpConnector):
    dialect = "amazon"

    @property
    def seller_id(self) -> str:
        return self.config.option("seller_id", "")

    @property
    def marketplace_id(self) -> str:
        return self.config.option("marketplace_id", "ATVPDKIKX0DER")

    @property
    def product_type(self) -> str:
        return self.config.option("product_type", "PRODUCT")

    def auth_headers(self) -> dict[str, str]:
        return {"x-amz-access-token": self.config.credential("access_token")}

    def listing_path(self, sku: str) -> str:
        return f"/listings/2021-08-01/items/{quote(self.seller_id, safe='')}/{quote(sku, safe='')}"

    # ----- payloads (public so tests and the feed builder share them)

    def fulfillment_patch(self, qty: int) -> JsonObject:
        return {
            "op": "replace",
            "path": FULFILLMENT_PATH,
            "value": [
                {"fulfillment_channel_code": self.config.option("fulfillment_channel_code", "DEFAULT"), "quantity": qty}
            ],
        }

    def quantity_patch_request(self, qty: int) -> JsonObject:
        return {"productType": self.product_type, "patches": [self.fulfillment_patch(qty)]}

    def content_patch_request(self, item: ContentUpdate) -> JsonObject:
        lang = self.config.option("language_tag", "en_US")
        mp = self.marketplace_id
        patches: list[JsonObject] = []
        if item.title is not None:
            patches.append(
                {
                    "op": "replace",
                    "path": "/attributes/item_name",
                    "value": [{"value": item.title, "language_tag": lang, "marketplace_id": mp}],
                }
            )
        if item.description is not None:
            patches.append(
                {
                    "op": "replace",
                    "path": "/attributes/product_description",
                    "value": [{"value": item.description, "language_tag": lang, "marketplace_id": mp}],
                }
            )
        if item.price is not None:
            patches.append(
                {
                    "op": "replace",
                    "path": "/attributes/purchasable_offer",
                    "value": [
                        {
                            "marketplace_id": mp,
                            "currency": item.currency or self.config.currency,
                            "our_price": [{"schedule": [{"value_with_tax": float(item.price)}]}],
                        }
                    ],
                }
            )
        for name, value in sorted(item.attributes.items()):
            patches.append({"op": "replace", "path": f"/attributes/{name}", "value": value})
        return {"productType": self.product_type, "patches": patches}

    def listings_feed(self, items: Sequence[QuantityUpdate]) -> JsonObject:
        return {
            "header": {
                "sellerId": self.seller_id,
                "version": "2.0",
                "issueLocale": self.config.option("language_tag", "en_US"),
            },
            "messages": [
                {
                    "messageId": n,
                    "sku": item.sku,
                    "operationType": "PATCH",
                    "productType": self.product_type,
                    "patches": [self.fulfillment_patch(item.qty)],
                }
                for n, item in enumerate(items, start=1)
            ],
        }

    # ----- listings items

    async def _patch(self, sku: str, body: JsonObject) -> ItemResult:
        resp = await self.request(
            "PATCH", self.listing_path(sku), params={"marketplaceIds": self.marketplace_id}, json_body=body
        )
        if resp.status_code == 200:
            data = self.decode_object(resp)
            status = data.get("status")
            if status in ("ACCEPTED", "VALID"):
                return ItemResult(sku, ItemStatus.OK)
            if status == "INVALID":
                return self.rejected_result(sku, resp, "invalid", _issues_text(data.get("issues")))
            raise self.malformed(resp, f"unexpected submission status {status!r}")
        data = self.decode_object(resp)
        detail = _issues_text(data.get("errors"))
        return self.rejected_result(sku, resp, "not_found" if resp.status_code == 404 else "invalid", detail)

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        async def one(item: QuantityUpdate) -> ItemResult:
            return await self._patch(item.sku, self.quantity_patch_request(item.qty))

        return await run_per_item(items, lambda i: i.sku, one)

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        async def one(item: ContentUpdate) -> ItemResult:
            body = self.content_patch_request(item)
            if not body["patches"]:
                return ItemResult(item.sku, ItemStatus.OK, "nothing_to_do")
            return await self._patch(item.sku, body)

        return await run_per_item(items, lambda i: i.sku, one)

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        out: list[QuantitySnapshot] = []
        for sku in skus:
            resp = await self.request(
                "GET",
                self.listing_path(sku),
                params={"marketplaceIds": self.marketplace_id, "includedData": "summaries,fulfillmentAvailability"},
            )
            if resp.status_code == 404:
                out.append(QuantitySnapshot(sku, None))
                continue
            if resp.status_code != 200:
                raise ConnectorError(
                    f"getListingsItem {sku}: {resp.status_code}", status=resp.status_code, body=resp.text
                )
            data = self.decode_object(resp)
            qty: int | None = None
            for fa in data.get("fulfillmentAvailability") or []:
                if isinstance(fa, dict) and isinstance(fa.get("quantity"), int):
                    qty = int(fa["quantity"])
                    break
            asin = None
            for summary in data.get("summaries") or []:
                if isinstance(summary, dict) and summary.get("asin"):
                    asin = str(summary["asin"])
            out.append(QuantitySnapshot(sku, qty, asin))
        return out

    # ----- JSON_LISTINGS_FEED

    async def submit_quantity_feed(self, items: Sequence[QuantityUpdate]) -> str:
        """Upload a JSON_LISTINGS_FEED of quantity patches; returns the feedId. Poll with :meth:`get_feed`."""
        cap = self.limits.feed_max_messages or 10_000
        if not items or len(items) > cap:
            raise ValueError(f"a listings feed takes 1..{cap} messages, got {len(items)}")
        resp = await self.request("POST", "/feeds/2021-06-30/documents", json_body={"contentType": FEED_CONTENT_TYPE})
        doc = self._expect(resp, 201)
        doc_id, url = doc.get("feedDocumentId"), doc.get("url")
        if not isinstance(doc_id, str) or not isinstance(url, str):
            raise self.malformed(resp, "createFeedDocument response lacks feedDocumentId/url")
        content = json.dumps(self.listings_feed(items), separators=(",", ":")).encode()
        upload = await self.request(
            "PUT", url, content=content, headers={"content-type": FEED_CONTENT_TYPE}, with_auth=False
        )
        if upload.status_code not in (200, 201, 204):
            raise ConnectorError(f"feed upload: {upload.status_code}", status=upload.status_code, body=upload.text)
        resp = await self.request(
            "POST",
            "/feeds/2021-06-30/feeds",
            json_body={
                "feedType": "JSON_LISTINGS_FEED",
                "marketplaceIds": [self.marketplace_id],
                "inputFeedDocumentId": doc_id,
            },
        )
        created = self._expect(resp, 202)
        feed_id = created.get("feedId")
        if not isinstance(feed_id, str):
            raise self.malformed(resp, "createFeed response lacks feedId")
        return feed_id

    async def get_feed(self, feed_id: str) -> FeedStatus:
        resp = await self.request("GET", f"/feeds/2021-06-30/feeds/{quote(feed_id, safe='')}")
        data = self._expect(resp, 200)
        status = data.get("processingStatus")
        if not isinstance(status, str):
            raise self.malformed(resp, "feed lacks processingStatus")
        result_doc = data.get("resultFeedDocumentId")
        return FeedStatus(feed_id, status, result_doc if isinstance(result_doc, str) else None)

    async def get_feed_results(self, feed: FeedStatus, skus_by_message: Sequence[str]) -> list[ItemResult]:
        """Per-message outcome of a finished feed, from its processing report. ``skus_by_message[i]`` is the SKU of
        messageId i+1 (the order given to :meth:`submit_quantity_feed`)."""
        if feed.result_feed_document_id is None:
            raise ValueError(f"feed {feed.feed_id} has no result document yet ({feed.processing_status})")
        resp = await self.request("GET", f"/feeds/2021-06-30/documents/{quote(feed.result_feed_document_id, safe='')}")
        doc = self._expect(resp, 200)
        url = doc.get("url")
        if not isinstance(url, str):
            raise self.malformed(resp, "feed document lacks url")
        report_resp = await self.request("GET", url, with_auth=False)
        report = self.decode_object(report_resp)
        errors: dict[int, list[str]] = {}
        for issue in report.get("issues") or []:
            if isinstance(issue, dict) and issue.get("severity") == "ERROR" and isinstance(issue.get("messageId"), int):
                errors.setdefault(issue["messageId"], []).append(
                    f"{issue.get('code', '?')}: {issue.get('message', '')}"
                )
        results = []
        for n, sku in enumerate(skus_by_message, start=1):
            if n in errors:
                results.append(ItemResult(sku, ItemStatus.REJECTED, "invalid", "; ".join(errors[n])))
            else:
                results.append(ItemResult(sku, ItemStatus.OK))
        return results

    def _expect(self, resp: httpx.Response, status: int) -> JsonObject:
        data = self.decode_object(resp)
        if resp.status_code != status:
            raise RequestRejected(
                f"{resp.request.method} {resp.request.url}: {resp.status_code} {_issues_text(data.get('errors'))}",
                status=resp.status_code,
                body=resp.text[:2000],
            )
        return data

    # ----- orders

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        """Cursor: ``"next:<NextToken>|<since>"`` while paging, else ``"since:<ISO CreatedAfter>"``."""
        since = self.config.option("orders_since", "2020-01-01T00:00:00Z")
        params: dict[str, str] = {"MarketplaceIds": self.marketplace_id}
        if cursor and cursor.startswith("next:"):
            token, _, since = cursor.removeprefix("next:").rpartition("|")
            params["NextToken"] = token
        elif cursor and cursor.startswith("since:"):
            since = cursor.removeprefix("since:")
        params["CreatedAfter"] = since
        resp = await self.request("GET", "/orders/v0/orders", params=params)
        payload = self._expect(resp, 200).get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("Orders"), list):
            raise self.malformed(resp, "getOrders payload lacks Orders")
        orders = []
        for raw in payload["Orders"]:
            order_id = str(raw["AmazonOrderId"])
            lines = await self._order_lines(order_id)
            total = raw.get("OrderTotal") or {}
            orders.append(
                ChannelOrder(
                    channel_order_id=order_id,
                    created_at=parse_iso(str(raw["PurchaseDate"])),
                    status=str(raw["OrderStatus"]),
                    lines=tuple(lines),
                    currency=total.get("CurrencyCode"),
                    raw=raw,
                )
            )
        next_token = payload.get("NextToken")
        if isinstance(next_token, str) and next_token:
            return OrdersPage(orders, f"next:{next_token}|{since}")
        newest = max((str(o.raw["PurchaseDate"]) for o in orders), default=since)
        return OrdersPage(orders, f"since:{newest}")

    async def _order_lines(self, order_id: str) -> list[OrderLine]:
        lines: list[OrderLine] = []
        token: str | None = None
        while True:  # protocol paging, bounded by the order's own size
            params = {"NextToken": token} if token else None
            resp = await self.request("GET", f"/orders/v0/orders/{quote(order_id, safe='')}/orderItems", params=params)
            payload = self._expect(resp, 200).get("payload")
            if not isinstance(payload, dict) or not isinstance(payload.get("OrderItems"), list):
                raise self.malformed(resp, "getOrderItems payload lacks OrderItems")
            for item in payload["OrderItems"]:
                qty = int(item["QuantityOrdered"])
                price = money((item.get("ItemPrice") or {}).get("Amount"))
                unit = price / qty if price is not None and qty else price
                lines.append(OrderLine(str(item.get("SellerSKU", "")), qty, unit, str(item["OrderItemId"])))
            token = payload.get("NextToken") or None
            if token is None:
                return lines
