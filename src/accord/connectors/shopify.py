"""Shopify Admin GraphQL dialect.

- Quantity: ``inventorySetQuantities`` with ``changeFromQuantity`` (compare-and-set; a stale value comes back as the
  user error ``CHANGE_FROM_QUANTITY_STALE`` → :attr:`ItemStatus.CONFLICT`) under ``@idempotent(key:)``. The key is
  derived from the payload (and any caller keys), so resending the same batch reuses it.
- Content: ``productUpdate`` (title, descriptionHtml).
- Ship confirmations: the order's fulfillment orders, then ``fulfillmentCreate`` with tracking info under
  ``@idempotent(key: shipment id)``; cancellations: ``orderCancel`` with the reason as OrderCancelReason.
- Orders: ``orders(sortKey: CREATED_AT, after:)`` polling; ``orders/create`` webhooks via :func:`verify_webhook`
  and :func:`parse_order_webhook` (HMAC-SHA256 of the raw body with the app secret, deduped by webhook id).
- Throttling is cost based: every response carries ``extensions.cost.throttleStatus``, kept in
  :attr:`ShopifyConnector.throttle_status`; a ``THROTTLED`` error becomes :class:`RateLimited` with the time needed
  to restore the requested cost as ``retry_after_s``.

Config: credentials ``access_token`` (and ``app_secret`` for webhooks); options ``location_id`` (gid),
``api_version`` (default 2026-01). ``QuantityUpdate.listing_ref`` is the InventoryItem gid;
``ContentUpdate.listing_ref`` the Product gid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
    RateLimited,
    RequestRejected,
    ShipmentConfirmation,
    ShipmentLine,
    chunked,
    iso_from_ms,
    money,
    ms_from_datetime,
    not_attempted,
    parse_iso,
    retryable_result,
)

SET_QUANTITIES = """
mutation AccordSetQuantities($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange item { id } } }
    userErrors { code field message }
  }
}
""".strip()

GET_QUANTITIES = """
query AccordGetQuantities($q: String!, $first: Int!, $locationId: ID!) {
  inventoryItems(first: $first, query: $q) {
    nodes { id sku inventoryLevel(locationId: $locationId) { quantities(names: ["available"]) { name quantity } } }
  }
}
""".strip()

PRODUCT_UPDATE = """
mutation AccordProductUpdate($product: ProductUpdateInput!) {
  productUpdate(product: $product) {
    product { id title }
    userErrors { field message }
  }
}
""".strip()

FIND_VARIANTS = """
query AccordFindVariants($q: String!, $first: Int!) {
  productVariants(first: $first, query: $q) {
    nodes { id sku product { id } }
  }
}
""".strip()

VARIANTS_BULK_UPDATE = """
mutation AccordVariantPrice($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id price }
    userErrors { field message }
  }
}
""".strip()

ORDERS = """
query AccordOrders($first: Int!, $after: String) {
  orders(first: $first, after: $after, sortKey: CREATED_AT) {
    edges { cursor node {
      id name createdAt displayFinancialStatus currencyCode
      lineItems(first: 100) { nodes { id sku quantity originalUnitPriceSet { shopMoney { amount currencyCode } } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
""".strip()


FULFILLMENT_ORDERS = """
query AccordFulfillmentOrders($id: ID!) {
  order(id: $id) {
    id
    fulfillments(first: 50) { id trackingInfo { number } }
    fulfillmentOrders(first: 20) {
      nodes { id status lineItems(first: 100) { nodes { id remainingQuantity lineItem { id sku } } } }
    }
  }
}
""".strip()

FULFILLMENT_CREATE = """
mutation AccordFulfillmentCreate($fulfillment: FulfillmentInput!, $message: String, $key: String!) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) @idempotent(key: $key) {
    fulfillment { id status trackingInfo { company number } }
    userErrors { field message }
  }
}
""".strip()

ORDER_CANCEL = """
mutation AccordOrderCancel($orderId: ID!, $reason: OrderCancelReason!, $refund: Boolean!, $restock: Boolean!,
  $staffNote: String, $notifyCustomer: Boolean) {
  orderCancel(orderId: $orderId, reason: $reason, refund: $refund, restock: $restock, staffNote: $staffNote,
    notifyCustomer: $notifyCustomer) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
""".strip()


def _numeric_id(value: object) -> str:
    """``gid://shopify/LineItem/123`` and the REST id ``123`` (what webhooks carry) are the same line item."""
    return str(value).rsplit("/", 1)[-1]


def _same_line(item: Mapping[str, Any], line: ShipmentLine) -> bool:
    if line.line_id:
        return _numeric_id(item.get("id")) == _numeric_id(line.line_id)
    return item.get("sku") == line.sku


# OrderCancelReason values: CUSTOMER, DECLINED, FRAUD, INVENTORY, OTHER, STAFF
CANCEL_REASONS = {
    CancelReason.OUT_OF_STOCK: "INVENTORY",
    CancelReason.CUSTOMER_REQUEST: "CUSTOMER",
    CancelReason.PRICING_ERROR: "STAFF",
    CancelReason.UNDELIVERABLE: "OTHER",
    CancelReason.OTHER: "OTHER",
}
OPEN_FULFILLMENT_ORDER = frozenset({"OPEN", "IN_PROGRESS", "SCHEDULED"})


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float


class WebhookVerificationError(ValueError):
    """The webhook's HMAC does not match: reject with 401 and do not process it."""


def sign_webhook(raw_body: bytes, secret: str) -> str:
    """The value Shopify puts in ``X-Shopify-Hmac-Sha256``: base64(HMAC-SHA256(secret, raw body))."""
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()


def verify_webhook(raw_body: bytes, hmac_header: str | None, secret: str) -> bool:
    if not hmac_header:
        return False
    return hmac.compare_digest(sign_webhook(raw_body, secret).encode(), hmac_header.strip().encode())


class WebhookDeduper:
    """Remembers the last ``max_entries`` webhook ids (``X-Shopify-Webhook-Id``); bounded so it cannot grow forever.
    Durable dedupe belongs in the inbox table; this guards a single process against bursts of redeliveries."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, webhook_id: str) -> bool:
        if webhook_id in self._seen:
            self._seen.move_to_end(webhook_id)
            return False
        self._seen[webhook_id] = None
        if len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        return True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_order_webhook(
    raw_body: bytes, headers: Mapping[str, str], secret: str, deduper: WebhookDeduper | None = None
) -> ChannelOrder | None:
    """Verify and parse an ``orders/create`` delivery. Returns None for a duplicate delivery; raises
    :class:`WebhookVerificationError` when the signature is missing or wrong (check before parsing anything)."""
    if not verify_webhook(raw_body, _header(headers, "X-Shopify-Hmac-Sha256"), secret):
        raise WebhookVerificationError("X-Shopify-Hmac-Sha256 does not match the body")
    webhook_id = _header(headers, "X-Shopify-Webhook-Id")
    if deduper is not None and webhook_id and not deduper.first_time(webhook_id):
        return None
    data = json.loads(raw_body)
    lines = tuple(
        OrderLine(str(li.get("sku") or ""), int(li["quantity"]), money(li.get("price")), str(li.get("id")))
        for li in data.get("line_items", [])
    )
    return ChannelOrder(
        channel_order_id=str(data.get("admin_graphql_api_id") or data["id"]),
        created_at=parse_iso(str(data["created_at"])),
        status=str(data.get("financial_status") or "pending"),
        lines=lines,
        currency=data.get("currency"),
        raw=data,
    )


def idempotency_key(quantities: Sequence[Mapping[str, Any]], caller_keys: Sequence[str | None]) -> str:
    canonical = json.dumps([list(quantities), list(caller_keys)], sort_keys=True, separators=(",", ":"))
    return "accord-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


class ShopifyConnector(HttpConnector):
    dialect = "shopify"
    throttle_status: ThrottleStatus | None = None

    def auth_headers(self) -> dict[str, str]:
        return {"X-Shopify-Access-Token": self.config.credential("access_token")}

    @property
    def graphql_path(self) -> str:
        return f"/admin/api/{self.config.option('api_version', '2026-01')}/graphql.json"

    async def graphql(self, query: str, variables: Mapping[str, Any]) -> tuple[JsonObject, httpx.Response]:
        """POST one GraphQL document; returns ``data``. Throttle → :class:`RateLimited`; other top-level errors →
        :class:`RequestRejected` (the document or its variables are wrong)."""
        resp = await self.request("POST", self.graphql_path, json_body={"query": query, "variables": dict(variables)})
        body = self.decode_object(resp)
        cost = (body.get("extensions") or {}).get("cost") or {}
        ts = cost.get("throttleStatus")
        if isinstance(ts, dict):
            self.throttle_status = ThrottleStatus(
                float(ts.get("maximumAvailable", 0)),
                float(ts.get("currentlyAvailable", 0)),
                float(ts.get("restoreRate", 0)) or 1.0,
            )
        errors = body.get("errors")
        if errors:
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)} or {
                "GRAPHQL"
            }
            if "THROTTLED" in codes:
                wait = None
                if self.throttle_status is not None:
                    requested = float(cost.get("requestedQueryCost") or 0)
                    wait = (
                        max(0.0, requested - self.throttle_status.currently_available)
                        / self.throttle_status.restore_rate
                    )
                raise RateLimited("shopify: THROTTLED", status=resp.status_code, body=resp.text, retry_after_s=wait)
            if resp.status_code >= 400 or "data" not in body or body.get("data") is None:
                raise RequestRejected(
                    f"shopify graphql errors: {sorted(codes)}", status=resp.status_code, body=resp.text
                )
        if resp.status_code >= 400:
            raise RequestRejected(f"shopify graphql: {resp.status_code}", status=resp.status_code, body=resp.text)
        data = body.get("data")
        if not isinstance(data, dict):
            raise self.malformed(resp, "GraphQL response lacks data")
        return data, resp

    def set_quantities_variables(self, batch: Sequence[QuantityUpdate]) -> JsonObject:
        location = self.config.option("location_id", "")
        quantities = [
            {
                "inventoryItemId": item.listing_ref,
                "locationId": location,
                "quantity": item.qty,
                "changeFromQuantity": item.expected_qty,  # null opts out of compare-and-set explicitly
            }
            for item in batch
        ]
        return {
            "input": {"name": "available", "reason": "correction", "quantities": quantities},
            "key": idempotency_key(quantities, [i.idempotency_key for i in batch]),
        }

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        results: dict[int, ItemResult] = {}
        sendable: list[tuple[int, QuantityUpdate]] = []
        for n, item in enumerate(items):
            if not item.listing_ref:
                results[n] = ItemResult(
                    item.sku, ItemStatus.REJECTED, "missing_listing_ref", "InventoryItem gid needed"
                )
            else:
                sendable.append((n, item))
        stop: ConnectorError | None = None
        for batch in chunked(sendable, self.limits.max_batch_size):
            if stop is not None:
                results.update({n: not_attempted(i.sku, stop) for n, i in batch})
                continue
            try:
                results.update(await self._set_batch(batch))
            except ConnectorError as err:
                results.update({n: retryable_result(i.sku, err) for n, i in batch})
                if err.retryable:
                    stop = err
        return [results[n] for n in range(len(items))]

    async def _set_batch(self, batch: Sequence[tuple[int, QuantityUpdate]]) -> dict[int, ItemResult]:
        data, resp = await self.graphql(SET_QUANTITIES, self.set_quantities_variables([i for _, i in batch]))
        payload = data.get("inventorySetQuantities")
        if not isinstance(payload, dict):
            raise self.malformed(resp, "inventorySetQuantities missing")
        user_errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        if not user_errors:
            after: dict[str, int] = {}
            group = payload.get("inventoryAdjustmentGroup") or {}
            for change in group.get("changes") or []:
                if change.get("name") == "available" and isinstance(change.get("quantityAfterChange"), int):
                    after[str((change.get("item") or {}).get("id"))] = change["quantityAfterChange"]
            return {
                n: ItemResult(item.sku, ItemStatus.OK, observed_qty=after.get(str(item.listing_ref), item.qty))
                for n, item in batch
            }
        # The mutation is all-or-nothing: items without their own error were not applied either.
        by_index: dict[int, JsonObject] = {}
        general: list[JsonObject] = []
        for err in user_errors:
            field = err.get("field") or []
            idx = next((int(p) for p in field if isinstance(p, str) and p.isdigit()), None)
            if idx is not None and 0 <= idx < len(batch):
                by_index[idx] = err
            else:
                general.append(err)
        out: dict[int, ItemResult] = {}
        for pos, (n, item) in enumerate(batch):
            item_err = by_index.get(pos)
            if item_err is not None:
                code = str(item_err.get("code") or "INVALID")
                status = ItemStatus.CONFLICT if code == "CHANGE_FROM_QUANTITY_STALE" else ItemStatus.REJECTED
                reason = "cas_mismatch" if status is ItemStatus.CONFLICT else code.lower()
                out[n] = ItemResult(item.sku, status, reason, str(item_err.get("message", "")))
            elif general:
                msg = "; ".join(str(e.get("message", "")) for e in general)
                out[n] = ItemResult(
                    item.sku, ItemStatus.REJECTED, str(general[0].get("code") or "invalid").lower(), msg
                )
            else:
                out[n] = ItemResult(item.sku, ItemStatus.RETRYABLE, "batch_aborted", "another item in the batch failed")
        return out

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        found: dict[str, QuantitySnapshot] = {}
        for batch in chunked(list(skus), 50):
            q = " OR ".join(f"sku:{json.dumps(s)}" for s in batch)
            data, resp = await self.graphql(
                GET_QUANTITIES, {"q": q, "first": len(batch), "locationId": self.config.option("location_id", "")}
            )
            nodes = (data.get("inventoryItems") or {}).get("nodes")
            if not isinstance(nodes, list):
                raise self.malformed(resp, "inventoryItems.nodes missing")
            for node in nodes:
                level = node.get("inventoryLevel") or {}
                qty = next(
                    (int(q["quantity"]) for q in level.get("quantities") or [] if q.get("name") == "available"), None
                )
                found[str(node.get("sku"))] = QuantitySnapshot(str(node.get("sku")), qty, str(node.get("id")))
        return [found.get(s, QuantitySnapshot(s, None)) for s in skus]

    async def find_variants(self, skus: Sequence[str]) -> dict[str, tuple[str, str]]:
        """SKU → (ProductVariant gid, Product gid), by ``productVariants(query: "sku:...")`` (50 per query)."""
        found: dict[str, tuple[str, str]] = {}
        for batch in chunked(list(skus), 50):
            q = " OR ".join(f"sku:{json.dumps(s)}" for s in batch)
            data, resp = await self.graphql(FIND_VARIANTS, {"q": q, "first": len(batch)})
            nodes = (data.get("productVariants") or {}).get("nodes")
            if not isinstance(nodes, list):
                raise self.malformed(resp, "productVariants.nodes missing")
            for node in nodes:
                product = (node.get("product") or {}).get("id")
                if node.get("sku") in batch and node.get("id") and product:
                    found[str(node["sku"])] = (str(node["id"]), str(product))
        return found

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        """Title and description by ``productUpdate`` on the Product gid (``listing_ref`` when it is one, else found
        by SKU); price by ``productVariantsBulkUpdate`` on the variant (in the shop's currency only)."""
        results: list[ItemResult] = []
        stop: ConnectorError | None = None
        lookup = [i.sku for i in items if i.price is not None or not _is_product_gid(i.listing_ref)]
        variants: dict[str, tuple[str, str]] = {}
        if lookup:
            try:
                variants = await self.find_variants(lookup)
            except ConnectorError as err:
                return [retryable_result(i.sku, err) for i in items]
        for item in items:
            found = variants.get(item.sku)
            product_id = item.listing_ref if _is_product_gid(item.listing_ref) else (found[1] if found else None)
            if stop is not None:
                results.append(not_attempted(item.sku, stop))
                continue
            if product_id is None or (item.price is not None and found is None):
                results.append(ItemResult(item.sku, ItemStatus.REJECTED, "not_found", "no variant has this SKU"))
                continue
            if item.attributes:
                results.append(
                    ItemResult(item.sku, ItemStatus.REJECTED, "unsupported", "attributes need metafield mutations")
                )
                continue
            if item.price is not None and (item.currency or self.config.currency) != self.config.currency:
                detail = f"prices are in the shop's currency {self.config.currency}, not {item.currency}"
                results.append(ItemResult(item.sku, ItemStatus.REJECTED, "currency", detail))
                continue
            try:
                result = await self._content_calls(item, product_id, found[0] if found else None)
            except ConnectorError as err:
                results.append(retryable_result(item.sku, err))
                stop = err if err.retryable else None
                continue
            results.append(result)
        return results

    async def _content_calls(self, item: ContentUpdate, product_id: str, variant_id: str | None) -> ItemResult:
        product: JsonObject = {"id": product_id}
        if item.title is not None:
            product["title"] = item.title
        if item.description is not None:
            product["descriptionHtml"] = item.description
        if len(product) > 1:
            data, resp = await self.graphql(PRODUCT_UPDATE, {"product": product})
            errs = (data.get("productUpdate") or {}).get("userErrors") or []
            if errs:
                return self.rejected_result(item.sku, resp, "invalid", "; ".join(str(e.get("message")) for e in errs))
        if item.price is not None and variant_id is not None:
            variables = {"productId": product_id, "variants": [{"id": variant_id, "price": f"{item.price:.2f}"}]}
            data, resp = await self.graphql(VARIANTS_BULK_UPDATE, variables)
            errs = (data.get("productVariantsBulkUpdate") or {}).get("userErrors") or []
            if errs:
                return self.rejected_result(item.sku, resp, "invalid", "; ".join(str(e.get("message")) for e in errs))
        return ItemResult(item.sku, ItemStatus.OK)

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        data, resp = await self.graphql(ORDERS, {"first": 50, "after": cursor})
        conn = data.get("orders")
        if not isinstance(conn, dict) or not isinstance(conn.get("edges"), list):
            raise self.malformed(resp, "orders connection missing")
        orders = []
        for edge in conn["edges"]:
            node = edge["node"]
            lines = tuple(
                OrderLine(
                    str(li.get("sku") or ""),
                    int(li["quantity"]),
                    money(((li.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount")),
                    str(li.get("id")),
                )
                for li in (node.get("lineItems") or {}).get("nodes", [])
            )
            orders.append(
                ChannelOrder(
                    channel_order_id=str(node["id"]),
                    created_at=parse_iso(str(node["createdAt"])),
                    status=str(node.get("displayFinancialStatus") or ""),
                    lines=lines,
                    currency=node.get("currencyCode"),
                    raw=node,
                )
            )
        end = (conn.get("pageInfo") or {}).get("endCursor")
        return OrdersPage(orders, str(end) if end else cursor)

    # ----- ship confirmations and cancellations

    def fulfillment_input(self, shipment: ShipmentConfirmation, order: JsonObject) -> JsonObject | None:
        """``FulfillmentInput`` for the shipment from the order's open fulfillment orders: each line takes units
        from fulfillment-order line items of its line item (by gid, else by SKU). None when the order already has a
        fulfillment with this tracking number (a confirmation that went through before)."""
        for f in order.get("fulfillments") or []:
            numbers = {str(t.get("number")) for t in (f or {}).get("trackingInfo") or [] if isinstance(t, dict)}
            if shipment.tracking in numbers:
                return None
        pools: list[tuple[str, JsonObject]] = []
        for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
            if fo.get("status") not in OPEN_FULFILLMENT_ORDER:
                continue
            for li in (fo.get("lineItems") or {}).get("nodes") or []:
                pools.append((str(fo["id"]), dict(li)))
        by_fo: dict[str, list[JsonObject]] = {}
        short: list[str] = []
        taken_any = False
        for line in shipment.lines:
            left = line.qty
            for fo_id, li in pools:
                item = li.get("lineItem") or {}
                if not _same_line(item, line):
                    continue
                take = min(left, int(li.get("remainingQuantity") or 0))
                if take <= 0:
                    continue
                li["remainingQuantity"] = int(li["remainingQuantity"]) - take
                by_fo.setdefault(fo_id, []).append({"id": li["id"], "quantity": take})
                left -= take
                taken_any = True
                if left == 0:
                    break
            if left:
                short.append(f"{line.sku} short by {left}")
        if short or not taken_any:
            raise RequestRejected(f"shopify order {shipment.channel_order_id}: nothing left to fulfil: {short}")
        return {
            "lineItemsByFulfillmentOrder": [
                {"fulfillmentOrderId": fo_id, "fulfillmentOrderLineItems": items} for fo_id, items in by_fo.items()
            ],
            "notifyCustomer": True,
            "trackingInfo": {"company": shipment.carrier, "number": shipment.tracking},
        }

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        """Read the order's fulfillment orders, then ``fulfillmentCreate`` with tracking info under
        ``@idempotent(key: shipment_id)``."""
        data, resp = await self.graphql(FULFILLMENT_ORDERS, {"id": shipment.channel_order_id})
        order = data.get("order")
        if order is None:
            raise RequestRejected(f"shopify order {shipment.channel_order_id} not found", status=404, body=resp.text)
        if not isinstance(order, dict):
            raise self.malformed(resp, "order missing")
        fulfillment = self.fulfillment_input(shipment, order)
        if fulfillment is None:
            return  # already fulfilled: the earlier confirmation went through
        shipped = iso_from_ms(ms_from_datetime(shipment.shipped_at))
        data, resp = await self.graphql(
            FULFILLMENT_CREATE,
            {"fulfillment": fulfillment, "message": f"shipped {shipped}", "key": shipment.shipment_id},
        )
        payload = data.get("fulfillmentCreate")
        if not isinstance(payload, dict):
            raise self.malformed(resp, "fulfillmentCreate missing")
        errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
        if errors:
            msg = "; ".join(str(e.get("message", "")) for e in errors)
            raise RequestRejected(f"fulfillmentCreate {shipment.channel_order_id}: {msg}", body=resp.text[:2000])

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        """``orderCancel`` with the reason as OrderCancelReason, refunding the buyer; nothing is restocked on the
        channel (Accord owns the quantity it shows)."""
        data, resp = await self.graphql(
            ORDER_CANCEL,
            {
                "orderId": channel_order_id,
                "reason": CANCEL_REASONS[reason],
                "refund": True,
                "restock": False,
                "staffNote": note[:255],
                "notifyCustomer": True,
            },
        )
        payload = data.get("orderCancel")
        if not isinstance(payload, dict):
            raise self.malformed(resp, "orderCancel missing")
        errors = [e for e in payload.get("orderCancelUserErrors") or [] if isinstance(e, dict)]
        if errors:
            msg = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}" for e in errors)
            status = 404 if any(e.get("code") == "NOT_FOUND" for e in errors) else None
            raise RequestRejected(f"orderCancel {channel_order_id}: {msg}", status=status, body=resp.text[:2000])


def _is_product_gid(ref: str | None) -> bool:
    return bool(ref) and str(ref).startswith("gid://shopify/Product/")
