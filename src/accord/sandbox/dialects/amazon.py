"""Amazon SP-API emulation: Listings Items (get/patch), Feeds 2021-06-30 (documents, upload, feeds, processing
report), Orders v0 (getOrders, getOrderItems, confirmShipment) and cancellations of seller-fulfilled orders through
``POST_ORDER_ACKNOWLEDGEMENT_DATA`` feeds (XML ``OrderAcknowledgement`` messages with ``StatusCode`` Failure; an XML
processing report). Response shapes follow the official swagger definitions."""

from __future__ import annotations

import contextlib
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from accord.connectors.base import iso_from_ms, parse_iso
from accord.sandbox.core import AmazonFeed, ChannelState, Listing, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route

if TYPE_CHECKING:
    from accord.sandbox.app import Sandbox

ORDER_ACK_FEED = "POST_ORDER_ACKNOWLEDGEMENT_DATA"
FEED_TYPES = ("JSON_LISTINGS_FEED", ORDER_ACK_FEED)
# OrderAcknowledgement CancelReason values
ACK_CANCEL_REASONS = frozenset(
    {"NoInventory", "ShippingAddressUndeliverable", "CustomerExchange", "BuyerCanceled", "GeneralAdjustment",
     "CarrierCreditDecision", "RiskAssessmentInformationNotValid", "CarrierCoverageFailure", "CustomerReturn",
     "MerchandiseNotReceived"}
)  # fmt: skip
ITEM = r"/listings/2021-08-01/items/(?P<seller>[^/]+)/(?P<sku>[^/]+)"


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message}]}


def check_auth(ctx: Ctx) -> Reply | None:
    if ctx.headers.get("x-amz-access-token") != ctx.channel.credentials["access_token"]:
        return Reply(403, error_body(403, "Unauthorized", "Access to requested resource is denied."))
    return None


def _listing(ctx: Ctx) -> tuple[Listing | None, str]:
    from urllib.parse import unquote

    if unquote(ctx.arg("seller")) != ctx.channel.spec.seller_id:
        raise BadRequest("sellerId does not match the authorised seller", "InvalidInput")
    if not ctx.q("marketplaceIds"):
        raise BadRequest("Missing required 'marketplaceIds' parameter", "InvalidInput")
    sku = unquote(ctx.arg("sku"))
    return ctx.channel.listings.get(sku), sku


def _issue(code: str, message: str, attribute: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "severity": "ERROR",
        "attributeNames": [attribute],
        "categories": ["INVALID_ATTRIBUTE"],
    }


def apply_patches(ch: ChannelState, listing: Listing, patches: Any) -> list[dict[str, Any]]:
    """Validate then apply JSON Patch operations; returns issues (nothing applied if any)."""
    if not isinstance(patches, list) or not patches:
        return [_issue("4000001", "patches must be a non-empty array", "patches")]
    staged: list[tuple[str, Any]] = []
    for p in patches:
        if not isinstance(p, dict) or p.get("op") not in ("add", "replace", "merge", "delete"):
            return [_issue("4000001", "invalid patch operation", "patches")]
        path = str(p.get("path", ""))
        if not path.startswith("/attributes/") or path.count("/") != 2:
            return [_issue("4000001", f"only top-level attributes can be patched: {path}", "patches")]
        name = path.removeprefix("/attributes/")
        value = p.get("value")
        if name == "purchasable_offer":
            entry = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}
            if ch.wrong_currency(entry.get("currency")):
                return [_issue("4000004", f"currency must be {ch.spec.currency}: {entry.get('currency')}", name)]
        if name == "fulfillment_availability":
            entry = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}
            qty = entry.get("quantity")
            err = ch.check_qty(listing, qty)
            if err is WriteError.INVALID:
                return [_issue("4000003", "quantity must be a non-negative integer", name)]
            if err is WriteError.LOCKED:
                return [_issue("STOCK_LOCKED", "quantity is locked for a promotion", name)]
            if err is not None:
                return [_issue("4000004", f"quantity update refused: {err}", name)]
        staged.append((name, value))
    ch.count_revision(listing)
    for name, value in staged:
        first = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}
        if name == "fulfillment_availability":
            listing.qty = int(first["quantity"])
        elif name == "item_name":
            listing.title = str(first.get("value", listing.title))
        elif name == "product_description":
            listing.description = str(first.get("value", listing.description))
        elif name == "purchasable_offer":
            with contextlib.suppress(KeyError, IndexError, TypeError):
                listing.price = Decimal(str(first["our_price"][0]["schedule"][0]["value_with_tax"]))
        else:
            listing.attributes[name] = value
    return []


def patch_item(ctx: Ctx) -> Reply:
    listing, sku = _listing(ctx)
    body = ctx.json_object()
    if not isinstance(body.get("productType"), str):
        raise BadRequest("productType is required")
    submission = f"sub-{ctx.channel.next_id():08d}"
    if listing is None:
        return Reply(404, error_body(404, "NOT_FOUND", f"SKU '{sku}' not found for this seller"))
    issues = apply_patches(ctx.channel, listing, body.get("patches"))
    status = "INVALID" if issues else "ACCEPTED"
    return Reply(200, {"sku": sku, "status": status, "submissionId": submission, "issues": issues})


def get_item(ctx: Ctx) -> Reply:
    listing, sku = _listing(ctx)
    if listing is None:
        return Reply(404, error_body(404, "NOT_FOUND", f"SKU '{sku}' not found"))
    item = {
        "sku": sku,
        "summaries": [
            {
                "marketplaceId": ctx.channel.spec.marketplace_id,
                "asin": listing.ref,
                "productType": "PRODUCT",
                "conditionType": "new_new",
                "status": ["BUYABLE"] if listing.qty > 0 else ["DISCOVERABLE"],
                "itemName": listing.title,
                "createdDate": iso_from_ms(0),
                "lastUpdatedDate": iso_from_ms(listing.updated_ms),
            }
        ],
        "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": listing.qty}],
    }
    return Reply(200, item)


def create_document(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    if not isinstance(body.get("contentType"), str):
        raise BadRequest("contentType is required")
    doc_id = f"amzn1.tortuga.4.sbx.{ctx.channel.next_id():08d}"
    ctx.channel.documents[doc_id] = None
    return Reply(201, {"feedDocumentId": doc_id, "url": f"{ctx.channel_url}/_uploads/{doc_id}"})


def upload_document(ctx: Ctx) -> Reply:
    doc_id = ctx.arg("doc")
    if doc_id not in ctx.channel.documents:
        return Reply(404, raw=b"<Error><Code>NoSuchKey</Code></Error>", media_type="application/xml")
    ctx.channel.documents[doc_id] = ctx.body
    return Reply(200, raw=b"")


def download_document(ctx: Ctx) -> Reply:
    data = ctx.channel.documents.get(ctx.arg("doc"))
    if data is None:
        return Reply(404, raw=b"<Error><Code>NoSuchKey</Code></Error>", media_type="application/xml")
    return Reply(200, raw=data)


def create_feed(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    doc_id = body.get("inputFeedDocumentId")
    feed_type = body.get("feedType")
    if feed_type not in FEED_TYPES:
        raise BadRequest(f"the sandbox accepts feedType {' or '.join(FEED_TYPES)} only")
    mps = body.get("marketplaceIds")
    if not isinstance(mps, list) or len(mps) != 1:
        raise BadRequest(f"{feed_type} takes exactly one marketplace")
    if not isinstance(doc_id, str) or ctx.channel.documents.get(doc_id) is None:
        raise BadRequest("inputFeedDocumentId unknown or not uploaded")
    feed_id = str(50_000_000 + ctx.channel.next_id())
    now = ctx.sandbox.clock.now_ms()
    ctx.channel.amazon_feeds[feed_id] = AmazonFeed(feed_id, doc_id, now, [str(m) for m in mps], feed_type=feed_type)
    return Reply(202, {"feedId": feed_id})


def _ack_report(ch: ChannelState, feed: AmazonFeed, processed: int, errors: list[tuple[int, str, str, str]]) -> bytes:
    """An XML ``ProcessingReport`` (what Amazon returns for XML feeds); ``errors``: (MessageID, AmazonOrderID,
    ResultMessageCode, ResultDescription), MessageID 0 for the document as a whole."""
    env = ET.Element("AmazonEnvelope")
    header = ET.SubElement(env, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.02"
    ET.SubElement(header, "MerchantIdentifier").text = ch.spec.seller_id
    ET.SubElement(env, "MessageType").text = "ProcessingReport"
    msg = ET.SubElement(env, "Message")
    ET.SubElement(msg, "MessageID").text = "1"
    report = ET.SubElement(msg, "ProcessingReport")
    ET.SubElement(report, "DocumentTransactionID").text = feed.feed_id
    ET.SubElement(report, "StatusCode").text = "Complete"
    summary = ET.SubElement(report, "ProcessingSummary")
    failed = len({n for n, *_ in errors if n > 0})
    ET.SubElement(summary, "MessagesProcessed").text = str(processed)
    ET.SubElement(summary, "MessagesSuccessful").text = str(processed - failed)
    ET.SubElement(summary, "MessagesWithError").text = str(failed)
    ET.SubElement(summary, "MessagesWithWarning").text = "0"
    for n, order_id, code, text in errors:
        result = ET.SubElement(report, "Result")
        ET.SubElement(result, "MessageID").text = str(n)
        ET.SubElement(result, "ResultCode").text = "Error"
        ET.SubElement(result, "ResultMessageCode").text = code
        ET.SubElement(result, "ResultDescription").text = text
        if order_id:
            ET.SubElement(ET.SubElement(result, "AdditionalInfo"), "AmazonOrderID").text = order_id
    return bytes(ET.tostring(env, encoding="UTF-8", xml_declaration=True))


def _process_acknowledgements(ch: ChannelState, feed: AmazonFeed, raw: bytes, now_ms: int) -> None:
    """``POST_ORDER_ACKNOWLEDGEMENT_DATA``: each Failure message cancels its order (idempotent; shipped units
    cannot be); an unknown order, an unknown item or a bad reason is an error of that message. A document that is
    not an OrderAcknowledgement envelope makes the feed FATAL, with the reason in the report."""
    errors: list[tuple[int, str, str, str]] = []
    processed = 0
    try:
        root = ET.fromstring(raw)
        if root.tag != "AmazonEnvelope" or root.findtext("MessageType") != "OrderAcknowledgement":
            raise ValueError("not an AmazonEnvelope of MessageType OrderAcknowledgement")
    except (ET.ParseError, ValueError) as exc:
        report = _ack_report(ch, feed, 0, [(0, "", "5001", f"XML Parsing Fatal Error: {exc}")])
        result_id = f"amzn1.tortuga.4.sbx.{ch.next_id():08d}"
        ch.documents[result_id] = report
        feed.status, feed.result_document_id, feed.done_ms = "FATAL", result_id, now_ms
        return
    for msg in root.findall("Message"):
        processed += 1
        n_text = (msg.findtext("MessageID") or "").strip()
        n = int(n_text) if n_text.isdigit() else processed
        ack = msg.find("OrderAcknowledgement")
        order_id = (ack.findtext("AmazonOrderID") if ack is not None else None) or ""
        order = ch.order(order_id) if order_id else None
        if ack is None or order is None:
            errors.append((n, order_id, "18028", f"The order id {order_id!r} was not found for this seller"))
            continue
        if ack.findtext("StatusCode") != "Failure":
            continue  # Success: an acknowledgement, nothing to cancel
        reasons: list[str] = []
        bad = ""
        for item in ack.findall("Item"):
            if item.findtext("AmazonOrderItemCode") != f"{order.seq:014d}":
                bad = f"AmazonOrderItemCode {item.findtext('AmazonOrderItemCode')!r} is not in order {order_id}"
            reason = item.findtext("CancelReason")
            if reason is not None and reason not in ACK_CANCEL_REASONS:
                bad = f"CancelReason {reason!r} is not valid"
            reasons.append(reason or "")
        if bad:
            errors.append((n, order_id, "18029", bad))
            continue
        err = order.cancel(next((r for r in reasons if r), "GeneralAdjustment"))
        if err is not None:
            errors.append((n, order_id, "18030", err))
    result_id = f"amzn1.tortuga.4.sbx.{ch.next_id():08d}"
    ch.documents[result_id] = _ack_report(ch, feed, processed, errors)
    feed.status, feed.result_document_id, feed.done_ms = "DONE", result_id, now_ms


def _process(sandbox: Sandbox, ch: ChannelState, feed: AmazonFeed, now_ms: int) -> None:
    if feed.feed_type == ORDER_ACK_FEED:
        _process_acknowledgements(ch, feed, ch.documents.get(feed.document_id) or b"", now_ms)
        return
    raw = ch.documents.get(feed.document_id) or b"{}"
    issues: list[dict[str, Any]] = []
    processed = accepted = 0
    try:
        doc = json.loads(raw)
        messages = doc.get("messages") or []
    except (ValueError, AttributeError):
        feed.status, feed.done_ms = "FATAL", now_ms
        return
    for msg in messages:
        processed += 1
        n, sku = int(msg.get("messageId", processed)), str(msg.get("sku", ""))
        listing = ch.listings.get(sku)
        if listing is None:
            issues.append(
                {"messageId": n, "sku": sku, "code": "4000002", "severity": "ERROR", "message": "SKU not found"}
            )
            continue
        if msg.get("operationType") != "PATCH":
            issues.append(
                {
                    "messageId": n,
                    "sku": sku,
                    "code": "4000005",
                    "severity": "ERROR",
                    "message": "the sandbox processes PATCH messages only",
                }
            )
            continue
        found = apply_patches(ch, listing, msg.get("patches"))
        for i in found:
            issues.append({"messageId": n, "sku": sku, "code": i["code"], "severity": "ERROR", "message": i["message"]})
        if not found:
            accepted += 1
    report = {
        "header": {"sellerId": ch.spec.seller_id, "version": "2.0", "feedId": feed.feed_id},
        "issues": issues,
        "summary": {
            "errors": len(issues),
            "warnings": 0,
            "messagesProcessed": processed,
            "messagesAccepted": accepted,
            "messagesInvalid": processed - accepted,
        },
    }
    result_id = f"amzn1.tortuga.4.sbx.{ch.next_id():08d}"
    ch.documents[result_id] = json.dumps(report).encode()
    feed.status, feed.result_document_id, feed.done_ms = "DONE", result_id, now_ms


def on_time(sandbox: Sandbox, ch: ChannelState, now_ms: int) -> None:
    for feed in ch.amazon_feeds.values():
        if feed.status == "IN_QUEUE" and now_ms >= feed.created_ms + sandbox.config.feed_processing_ms:
            _process(sandbox, ch, feed, now_ms)


def get_feed(ctx: Ctx) -> Reply:
    on_time(ctx.sandbox, ctx.channel, ctx.sandbox.clock.now_ms())
    feed = ctx.channel.amazon_feeds.get(ctx.arg("feed"))
    if feed is None:
        return Reply(404, error_body(404, "NotFound", "feed not found"))
    body: dict[str, Any] = {
        "feedId": feed.feed_id,
        "feedType": feed.feed_type,
        "marketplaceIds": feed.marketplace_ids,
        "createdTime": iso_from_ms(feed.created_ms),
        "processingStatus": feed.status,
    }
    if feed.done_ms is not None:
        body["processingStartTime"] = iso_from_ms(feed.created_ms)
        body["processingEndTime"] = iso_from_ms(feed.done_ms)
    if feed.result_document_id:
        body["resultFeedDocumentId"] = feed.result_document_id
    return Reply(200, body)


def get_document(ctx: Ctx) -> Reply:
    doc_id = ctx.arg("doc")
    if doc_id not in ctx.channel.documents:
        return Reply(404, error_body(404, "NotFound", "document not found"))
    return Reply(200, {"feedDocumentId": doc_id, "url": f"{ctx.channel_url}/_downloads/{doc_id}"})


def _money(ctx: Ctx, amount: Decimal) -> dict[str, str]:
    return {"CurrencyCode": ctx.channel.spec.currency, "Amount": f"{amount:.2f}"}


def get_orders(ctx: Ctx) -> Reply:
    if not ctx.q("MarketplaceIds"):
        raise BadRequest("MarketplaceIds is required")
    token = ctx.q("NextToken")
    created_after = ctx.q("CreatedAfter")
    offset = 0
    if token:
        try:
            offset_s, created_after = token.split("|", 1)
            offset = int(offset_s)
        except ValueError:
            raise BadRequest("Invalid NextToken") from None
    if not created_after:
        raise BadRequest("Either CreatedAfter or LastUpdatedAfter must be specified")
    page_size = min(100, ctx.qint("MaxResultsPerPage", 100))
    try:
        from accord.connectors.base import ms_from_datetime, parse_iso

        since_ms = ms_from_datetime(parse_iso(created_after))
    except ValueError:
        raise BadRequest("CreatedAfter is not ISO 8601") from None
    matching = [o for o in ctx.channel.orders if o.created_ms >= since_ms]
    page = matching[offset : offset + page_size]
    orders = [
        {
            "AmazonOrderId": o.order_id,
            "PurchaseDate": o.created_iso,
            "LastUpdateDate": o.created_iso,
            "OrderStatus": ORDER_STATUS.get(o.status, "Unshipped"),
            "FulfillmentChannel": "MFN",
            "SalesChannel": "Amazon.com",
            "OrderTotal": _money(ctx, o.unit_price * o.qty),
            "NumberOfItemsShipped": o.shipped_qty,
            "NumberOfItemsUnshipped": o.open_qty,
            "MarketplaceId": ctx.channel.spec.marketplace_id,
            "OrderType": "StandardOrder",
            "IsPrime": False,
            "IsBusinessOrder": False,
        }
        for o in page
    ]
    payload: dict[str, Any] = {"Orders": orders, "CreatedBefore": iso_from_ms(ctx.sandbox.clock.now_ms())}
    if offset + page_size < len(matching):
        payload["NextToken"] = f"{offset + page_size}|{created_after}"
    return Reply(200, {"payload": payload})


def get_order_items(ctx: Ctx) -> Reply:
    order = next((o for o in ctx.channel.orders if o.order_id == ctx.arg("order")), None)
    if order is None:
        return Reply(404, error_body(404, "InvalidInput", "Invalid orderId"))
    item = {
        "ASIN": order.ref,
        "SellerSKU": order.sku,
        "OrderItemId": f"{order.seq:014d}",
        "Title": ctx.channel.listings[order.sku].title,
        "QuantityOrdered": order.qty,
        "QuantityShipped": order.shipped_qty,
        "ItemPrice": _money(ctx, order.unit_price * order.qty),
    }
    return Reply(200, {"payload": {"AmazonOrderId": order.order_id, "OrderItems": [item]}})


ORDER_STATUS = {"partially_shipped": "PartiallyShipped", "shipped": "Shipped", "cancelled": "Canceled"}


def confirm_shipment(ctx: Ctx) -> Reply:
    """``confirmShipment``: validates the ConfirmShipmentRequest shape, 404 for an unknown order, records the
    package (idempotent by packageReferenceId) and marks the order shipped. Success is 204 with no body."""
    order = ctx.channel.order(ctx.arg("order"))
    if order is None:
        return Reply(404, error_body(404, "InvalidInput", "Invalid orderId"))
    body = ctx.json_object()
    if body.get("marketplaceId") != ctx.channel.spec.marketplace_id:
        raise BadRequest("marketplaceId is missing or not this seller's marketplace")
    pkg = body.get("packageDetail")
    if not isinstance(pkg, dict):
        raise BadRequest("packageDetail is required")
    for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate"):
        if not isinstance(pkg.get(name), str) or not pkg[name]:
            raise BadRequest(f"packageDetail.{name} is required")
    if not pkg["packageReferenceId"].isdigit() or int(pkg["packageReferenceId"]) <= 0:
        raise BadRequest("packageReferenceId must be a positive number")
    if pkg["carrierCode"] == "Other" and not pkg.get("carrierName"):
        raise BadRequest("carrierName is required when carrierCode is Other")
    try:
        parse_iso(pkg["shipDate"])
    except ValueError:
        raise BadRequest("shipDate is not ISO 8601") from None
    items = pkg.get("orderItems")
    if not isinstance(items, list) or not items:
        raise BadRequest("packageDetail.orderItems must list the shipped items")
    qty = 0
    for it in items:
        if not isinstance(it, dict) or it.get("orderItemId") != f"{order.seq:014d}":
            raise BadRequest(
                f"orderItemId {it.get('orderItemId') if isinstance(it, dict) else it!r} is not in the order"
            )
        if not isinstance(it.get("quantity"), int) or isinstance(it.get("quantity"), bool):
            raise BadRequest("orderItems[].quantity must be an integer")
        qty += int(it["quantity"])
    carrier = str(pkg.get("carrierName") or pkg["carrierCode"])
    err = order.ship(
        f"pkg:{pkg['packageReferenceId']}", carrier, pkg["trackingNumber"], qty, ctx.sandbox.clock.now_ms()
    )
    if err is not None:
        raise BadRequest(err)
    return Reply(204)


DIALECT = Dialect(
    name="amazon",
    routes=[
        route("PATCH", ITEM, "patchListingsItem", patch_item),
        route("GET", ITEM, "getListingsItem", get_item),
        route("POST", "/feeds/2021-06-30/documents", "createFeedDocument", create_document),
        route("GET", r"/feeds/2021-06-30/documents/(?P<doc>[^/]+)", "getFeedDocument", get_document),
        route("POST", "/feeds/2021-06-30/feeds", "createFeed", create_feed),
        route("GET", r"/feeds/2021-06-30/feeds/(?P<feed>[^/]+)", "getFeed", get_feed),
        route(
            "PUT", r"/_uploads/(?P<doc>[^/]+)", "uploadFeedDocument", upload_document, auth=False, rate_limited=False
        ),
        route(
            "GET",
            r"/_downloads/(?P<doc>[^/]+)",
            "downloadFeedDocument",
            download_document,
            auth=False,
            rate_limited=False,
        ),
        route("GET", "/orders/v0/orders", "getOrders", get_orders),
        route("GET", r"/orders/v0/orders/(?P<order>[^/]+)/orderItems", "getOrderItems", get_order_items),
        route("POST", r"/orders/v0/orders/(?P<order>[^/]+)/shipmentConfirmation", "confirmShipment", confirm_shipment),
    ],
    check_auth=check_auth,
    error=error_body,
)
