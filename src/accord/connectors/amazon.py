"""Amazon Selling Partner API dialect.

- Quantity: Listings Items ``patchListingsItem`` (``PATCH /listings/2021-08-01/items/{sellerId}/{sku}``) with a JSON
  Patch ``replace`` on ``/attributes/fulfillment_availability``; bulk via ``JSON_LISTINGS_FEED``
  (createFeedDocument → upload to the returned url → createFeed → getFeed → processing report).
- Orders: Orders v0 ``getOrders`` + ``getOrderItems``; ship confirmations with Orders v0 ``confirmShipment``
  (``packageReferenceId`` numeric, derived from the shipment id, so a resend names the same package); cancellations
  of seller-fulfilled (MFN) orders with a ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` feed (the same Feeds plumbing): an XML
  ``AmazonEnvelope`` of ``OrderAcknowledgement`` messages, ``StatusCode`` Failure and a ``CancelReason`` per item
  (NoInventory, BuyerCanceled...). Accepted at createFeed (202); the outcome per order is in the feed's XML
  processing report (:meth:`AmazonConnector.get_cancellation_results`). createFeed allows 0.0083/s burst 15 (one
  feed every two minutes), so :meth:`AmazonConnector.cancel_orders` puts many orders in one feed.
- Auth: ``x-amz-access-token`` (an LWA access token; refreshing it is the caller's job).

Config: credentials ``access_token``; options ``seller_id``, ``marketplace_id`` (default ATVPDKIKX0DER),
``product_type`` (default PRODUCT), ``fulfillment_channel_code`` (default DEFAULT), ``language_tag`` (en_US),
``orders_since`` (ISO timestamp, the first poll's CreatedAfter; default 2020-01-01T00:00:00Z).
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from accord.connectors.base import (
    CancelReason,
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
    ShipmentConfirmation,
    iso_from_ms,
    money,
    ms_from_datetime,
    parse_iso,
    run_per_item,
)

FEED_CONTENT_TYPE = "application/json; charset=UTF-8"
# carrierCode values Amazon recognises as such; any other carrier goes as "Other" with its name in carrierName
CARRIER_CODES = frozenset(
    {"UPS", "USPS", "FedEx", "DHL", "DHL eCommerce", "OnTrac", "Amazon Shipping", "Royal Mail", "Parcelforce",
     "Deutsche Post", "DPD", "GLS", "Hermes", "La Poste", "Colissimo", "Canada Post", "Purolator", "Japan Post",
     "Yamato Transport", "Australia Post", "China Post", "Correos", "Poste Italiane", "PostNL", "Bpost"}
)  # fmt: skip
ORDER_ACK_FEED = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
XML_FEED_CONTENT_TYPE = "text/xml; charset=UTF-8"
# OrderAcknowledgement CancelReason values for Accord's reasons (Amazon has no pricing-error reason)
CANCEL_REASON_CODES = {
    CancelReason.OUT_OF_STOCK: "NoInventory",
    CancelReason.CUSTOMER_REQUEST: "BuyerCanceled",
    CancelReason.PRICING_ERROR: "GeneralAdjustment",
    CancelReason.UNDELIVERABLE: "ShippingAddressUndeliverable",
    CancelReason.OTHER: "GeneralAdjustment",
}


@dataclass(frozen=True, slots=True)
class OrderCancel:
    """One order in an order-acknowledgement feed: cancelled item by item (AmazonOrderItemCode), or as a whole
    (no items: Amazon then records no reason)."""

    order_id: str
    reason: CancelReason
    item_codes: tuple[str, ...] = ()


def order_acknowledgement_feed(seller_id: str, cancels: Sequence[OrderCancel]) -> bytes:
    """The ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` document: one ``Message`` per order (MessageID i+1 for cancels[i]),
    ``StatusCode`` Failure, the reason on every item. Built with ElementTree, so every value is escaped."""
    env = ET.Element("AmazonEnvelope")
    env.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    env.set("xsi:noNamespaceSchemaLocation", "amzn-envelope.xsd")
    header = ET.SubElement(env, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.01"
    ET.SubElement(header, "MerchantIdentifier").text = seller_id
    ET.SubElement(env, "MessageType").text = "OrderAcknowledgement"
    for n, c in enumerate(cancels, start=1):
        msg = ET.SubElement(env, "Message")
        ET.SubElement(msg, "MessageID").text = str(n)
        ack = ET.SubElement(msg, "OrderAcknowledgement")
        ET.SubElement(ack, "AmazonOrderID").text = c.order_id
        ET.SubElement(ack, "StatusCode").text = "Failure"
        for code in c.item_codes:
            item = ET.SubElement(ack, "Item")
            ET.SubElement(item, "AmazonOrderItemCode").text = code
            ET.SubElement(item, "CancelReason").text = CANCEL_REASON_CODES[c.reason]
    return bytes(ET.tostring(env, encoding="UTF-8", xml_declaration=True))


def package_reference_id(shipment_id: str) -> str:
    """Amazon takes positive numeric package ids only: a numeric shipment id as is, else a stable number for it."""
    if shipment_id.isdigit() and int(shipment_id) > 0:
        return str(int(shipment_id))
    return str(int(hashlib.sha256(shipment_id.encode()).hexdigest()[:12], 16) % 999_999_999 + 1)


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
        lang = item.locale or self.config.option("language_tag", "en_US")
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
        if item.bullets:
            bullets = [{"value": b, "language_tag": lang, "marketplace_id": mp} for b in item.bullets]
            patches.append({"op": "replace", "path": "/attributes/bullet_point", "value": bullets})
        for name, value in sorted(item.attributes.items()):
            patches.append({"op": "replace", "path": f"/attributes/{name}", "value": _attribute_value(value, lang, mp)})
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
        content = json.dumps(self.listings_feed(items), separators=(",", ":")).encode()
        return await self.submit_feed("JSON_LISTINGS_FEED", FEED_CONTENT_TYPE, content)

    async def submit_feed(self, feed_type: str, content_type: str, content: bytes) -> str:
        """createFeedDocument → upload ``content`` to the returned url → createFeed; returns the feedId once
        Amazon accepted the feed (202). Processing is asynchronous: poll with :meth:`get_feed`."""
        resp = await self.request("POST", "/feeds/2021-06-30/documents", json_body={"contentType": content_type})
        doc = self._expect(resp, 201)
        doc_id, url = doc.get("feedDocumentId"), doc.get("url")
        if not isinstance(doc_id, str) or not isinstance(url, str):
            raise self.malformed(resp, "createFeedDocument response lacks feedDocumentId/url")
        upload = await self.request(
            "PUT", url, content=content, headers={"content-type": content_type}, with_auth=False
        )
        if upload.status_code not in (200, 201, 204):
            raise ConnectorError(f"feed upload: {upload.status_code}", status=upload.status_code, body=upload.text)
        resp = await self.request(
            "POST",
            "/feeds/2021-06-30/feeds",
            json_body={"feedType": feed_type, "marketplaceIds": [self.marketplace_id], "inputFeedDocumentId": doc_id},
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
        report = self.decode_object(await self._processing_report(feed))
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

    async def _processing_report(self, feed: FeedStatus) -> httpx.Response:
        """getFeedDocument for the feed's result document, then its download."""
        if feed.result_feed_document_id is None:
            raise ValueError(f"feed {feed.feed_id} has no result document yet ({feed.processing_status})")
        resp = await self.request("GET", f"/feeds/2021-06-30/documents/{quote(feed.result_feed_document_id, safe='')}")
        doc = self._expect(resp, 200)
        url = doc.get("url")
        if not isinstance(url, str):
            raise self.malformed(resp, "feed document lacks url")
        report = await self.request("GET", url, with_auth=False)
        if report.status_code != 200:
            raise ConnectorError(f"processing report: {report.status_code}", status=report.status_code)
        return report

    async def get_cancellation_results(self, feed: FeedStatus, order_ids_by_message: Sequence[str]) -> list[ItemResult]:
        """Per-order outcome of a finished ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` feed, from its XML processing report
        (``Result`` elements with ``ResultCode`` Error, by ``MessageID``). ``order_ids_by_message[i]`` is the order of
        MessageID i+1. A FATAL feed rejects every order with the report's reason. Results are keyed by order id."""
        resp = await self._processing_report(feed)
        try:
            root = ET.fromstring(resp.content)
        except ET.ParseError as exc:
            raise self.malformed(resp, f"processing report is not XML: {exc}") from None
        report = root.find("Message/ProcessingReport")
        if report is None:
            raise self.malformed(resp, "processing report lacks Message/ProcessingReport")
        errors: dict[int, list[str]] = {}
        fatal: list[str] = []
        for result in report.findall("Result"):
            if result.findtext("ResultCode") != "Error":
                continue
            text = f"{result.findtext('ResultMessageCode', '?')}: {result.findtext('ResultDescription', '')}"
            msg_id = (result.findtext("MessageID") or "").strip()
            if msg_id.isdigit() and int(msg_id) > 0:
                errors.setdefault(int(msg_id), []).append(text)
            else:
                fatal.append(text)  # MessageID 0: the document as a whole
        if feed.processing_status == "FATAL" and not fatal:
            fatal.append("feed FATAL")
        out = []
        for n, order_id in enumerate(order_ids_by_message, start=1):
            problems = fatal + errors.get(n, [])
            if problems:
                err = RequestRejected("; ".join(problems), status=resp.status_code, body=resp.text[:2000])
                out.append(ItemResult(order_id, ItemStatus.REJECTED, "invalid", "; ".join(problems), error=err))
            else:
                out.append(ItemResult(order_id, ItemStatus.OK))
        return out

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
        """Cursor: ``"next:<NextToken>|<since>"`` while paging, else ``"since:<since>"``; ``<since>`` is the ISO
        CreatedAfter, optionally followed by ``~id,id`` — orders created exactly then that were already returned.
        CreatedAfter is inclusive, so equal timestamps are re-read (never lost) and the known ids are skipped
        before their items are fetched."""
        since = self.config.option("orders_since", "2020-01-01T00:00:00Z")
        params: dict[str, str] = {"MarketplaceIds": self.marketplace_id}
        if cursor and cursor.startswith("next:"):
            token, _, since = cursor.removeprefix("next:").rpartition("|")
            params["NextToken"] = token
        elif cursor and cursor.startswith("since:"):
            since = cursor.removeprefix("since:")
        created_after, _, seen_text = since.partition("~")
        seen = set(seen_text.split(",")) if seen_text else set()
        params["CreatedAfter"] = created_after
        resp = await self.request("GET", "/orders/v0/orders", params=params)
        payload = self._expect(resp, 200).get("payload")
        if not isinstance(payload, dict) or not isinstance(payload.get("Orders"), list):
            raise self.malformed(resp, "getOrders payload lacks Orders")
        orders = []
        for raw in payload["Orders"]:
            order_id = str(raw["AmazonOrderId"])
            if order_id in seen:
                continue
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
        if not orders:
            return OrdersPage(orders, f"since:{since}")
        newest = max(orders, key=lambda o: o.created_at)
        at_newest = [o.channel_order_id for o in orders if o.created_at == newest.created_at]
        if newest.created_at == parse_iso(created_after):
            at_newest = sorted(seen) + at_newest
        return OrdersPage(orders, f"since:{newest.raw['PurchaseDate']}~{','.join(at_newest)}")

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

    # ----- ship confirmations and cancellations

    def confirm_shipment_request(self, shipment: ShipmentConfirmation, item_ids: dict[str, str]) -> JsonObject:
        """``confirmShipment`` body (ConfirmShipmentRequest). ``item_ids`` maps SKU → orderItemId for lines that
        carry no channel line id."""
        carrier = shipment.carrier.strip()
        package: JsonObject = {
            "packageReferenceId": package_reference_id(shipment.shipment_id),
            "carrierCode": carrier if carrier in CARRIER_CODES else "Other",
            "trackingNumber": shipment.tracking,
            "shipDate": iso_from_ms(ms_from_datetime(shipment.shipped_at)),
            "orderItems": [
                {"orderItemId": line.line_id or item_ids[line.sku], "quantity": line.qty} for line in shipment.lines
            ],
        }
        if carrier not in CARRIER_CODES:
            package["carrierName"] = carrier
        if shipment.ship_from_location:
            package["shipFromSupplySourceId"] = shipment.ship_from_location
        return {"marketplaceId": self.marketplace_id, "packageDetail": package}

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        """Orders v0 ``confirmShipment``; lines without an orderItemId are matched by SellerSKU (getOrderItems)."""
        item_ids: dict[str, str] = {}
        if any(not line.line_id for line in shipment.lines):
            for line in await self._order_lines(shipment.channel_order_id):
                if line.line_id:
                    item_ids.setdefault(line.sku, line.line_id)
            missing = sorted({ln.sku for ln in shipment.lines if not ln.line_id and ln.sku not in item_ids})
            if missing:
                raise RequestRejected(f"amazon order {shipment.channel_order_id} has no item for SKU {missing}")
        path = f"/orders/v0/orders/{quote(shipment.channel_order_id, safe='')}/shipmentConfirmation"
        resp = await self.request("POST", path, json_body=self.confirm_shipment_request(shipment, item_ids))
        detail = "" if resp.status_code == 204 else _issues_text(self._errors_of(resp))
        self.expect_status(resp, (204,), f"confirmShipment {shipment.channel_order_id}", detail)

    async def cancel_orders(self, orders: Sequence[tuple[str, CancelReason]]) -> tuple[str | None, list[ItemResult]]:
        """Cancel seller-fulfilled orders in one ``POST_ORDER_ACKNOWLEDGEMENT_DATA`` feed (createFeed allows one
        feed every two minutes: batch). Each order's items come from getOrderItems so the reason goes on every
        item; an order Amazon does not know (404) is rejected here and left out of the feed. Returns the feedId
        (None when no order was left to send) and, per order, OK (in the accepted feed: the processing report has
        the final word) or REJECTED. Throttles and outages raise, retryable, before anything is sent."""
        if not orders:
            return None, []
        cancels: list[OrderCancel] = []
        results: dict[str, ItemResult] = {}
        for order_id, reason in orders:
            try:
                lines = await self._order_lines(order_id)
            except RequestRejected as exc:
                results[order_id] = ItemResult(order_id, ItemStatus.REJECTED, "not_found", str(exc), error=exc)
                continue
            codes = tuple(dict.fromkeys(ln.line_id for ln in lines if ln.line_id))
            cancels.append(OrderCancel(order_id, reason, codes))
            results[order_id] = ItemResult(order_id, ItemStatus.OK)
        feed_id = None
        if cancels:
            content = order_acknowledgement_feed(self.seller_id, cancels)
            feed_id = await self.submit_feed(ORDER_ACK_FEED, XML_FEED_CONTENT_TYPE, content)
        return feed_id, [results[order_id] for order_id, _ in orders]

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """Cancel one seller-fulfilled order (the whole order) with a one-message order-acknowledgement feed;
        returns once the feed is accepted. An unknown order is :class:`RequestRejected`. ``note`` has no place in
        the feed. Amazon applies the feed minutes later; a repeat is harmless (the order is already cancelled)."""
        _, (result,) = await self.cancel_orders([(channel_order_id, reason)])
        if result.error is not None:
            raise result.error

    @staticmethod
    def _errors_of(resp: httpx.Response) -> Any:
        try:
            data = json.loads(resp.content)
        except ValueError:
            return None
        return data.get("errors") if isinstance(data, dict) else None


def _attribute_value(value: Any, lang: str, marketplace_id: str) -> Any:
    """A listing attribute as SP-API shapes it: a list of ``{"value", "language_tag", "marketplace_id"}`` entries
    (text gets the language tag); values already in that shape (a list of objects) are sent as given."""
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return value
    out: list[JsonObject] = []
    for v in value if isinstance(value, list | tuple) else [value]:
        entry: JsonObject = {"value": v, "marketplace_id": marketplace_id}
        if isinstance(v, str):
            entry["language_tag"] = lang
        out.append(entry)
    return out
