"""Shopify Admin GraphQL dialect.

- Quantity: ``inventorySetQuantities`` with ``changeFromQuantity`` (compare-and-set; a stale value comes back as the
  user error ``CHANGE_FROM_QUANTITY_STALE`` → :attr:`ItemStatus.CONFLICT`) under ``@idempotent(key:)``. The key is
  derived from the payload (and any caller keys), so resending the same batch reuses it.
- Content: ``productUpdate`` (title, descriptionHtml).
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
    chunked,
    money,
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

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        results: list[ItemResult] = []
        stop: ConnectorError | None = None
        for item in items:
            product: JsonObject = {"id": item.listing_ref}
            if item.title is not None:
                product["title"] = item.title
            if item.description is not None:
                product["descriptionHtml"] = item.description
            if stop is not None:
                results.append(not_attempted(item.sku, stop))
            elif not item.listing_ref:
                results.append(ItemResult(item.sku, ItemStatus.REJECTED, "missing_listing_ref", "Product gid needed"))
            elif item.price is not None or item.attributes:
                results.append(
                    ItemResult(item.sku, ItemStatus.REJECTED, "unsupported", "price/attributes need variant mutations")
                )
            else:
                try:
                    data, resp = await self.graphql(PRODUCT_UPDATE, {"product": product})
                except ConnectorError as err:
                    results.append(retryable_result(item.sku, err))
                    stop = err if err.retryable else None
                    continue
                payload = data.get("productUpdate") or {}
                errs = payload.get("userErrors") or []
                if errs:
                    msg = "; ".join(str(e.get("message", "")) for e in errs)
                    results.append(self.rejected_result(item.sku, resp, "invalid", msg))
                else:
                    results.append(ItemResult(item.sku, ItemStatus.OK))
        return results

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
