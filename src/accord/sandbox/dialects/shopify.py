"""Shopify Admin GraphQL emulation. Not a GraphQL engine: the operation is recognised by its root field
(``inventorySetQuantities``, ``inventoryItems``, ``productUpdate``, ``orders``) and answered in Shopify's shapes, with
cost-based throttling (``extensions.cost``), ``@idempotent(key:)`` replay and signed ``orders/create`` webhooks."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from accord.connectors.shopify import sign_webhook
from accord.sandbox.core import GRAPHQL_IDEMPOTENT, ChannelState, Order, WriteError
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply, route

if TYPE_CHECKING:
    from accord.sandbox.app import Sandbox

SKU_TERM = re.compile(r"sku:\"?([^\"\s]+)\"?")


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"errors": message}


def check_auth(ctx: Ctx) -> Reply | None:
    if ctx.headers.get("x-shopify-access-token") != ctx.channel.credentials["access_token"]:
        return Reply(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
    return None


def _cost_ext(ch: ChannelState, requested: int, actual: int | None) -> dict[str, Any]:
    bucket = ch.cost_bucket
    assert bucket is not None
    return {
        "cost": {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": bucket.capacity,
                "currentlyAvailable": int(bucket.tokens),
                "restoreRate": bucket.rate_per_s,
            },
        }
    }


def graphql(ctx: Ctx) -> Reply:
    body = ctx.json_object()
    query = body.get("query")
    variables = body.get("variables") or {}
    if not isinstance(query, str) or not isinstance(variables, dict):
        raise BadRequest("query must be a string and variables an object")
    ch = ctx.channel
    if "inventorySetQuantities" in query:
        cost, handler = 10, set_quantities
    elif "productUpdate" in query:
        cost, handler = 10, product_update
    elif "inventoryItems" in query:
        cost, handler = 2 + int(variables.get("first") or 10), inventory_items
    elif "orderCancel" in query:
        cost, handler = 10, order_cancel
    elif re.search(r"\borders\s*\(", query):
        cost, handler = 2 + int(variables.get("first") or 10) * 2, orders
    else:
        return Reply(
            200,
            {
                "errors": [
                    {"message": "Field is not supported by the sandbox", "extensions": {"code": "undefinedField"}}
                ]
            },
        )
    bucket = ch.cost_bucket
    assert bucket is not None
    if ctx.sandbox.config.enforce_limits and bucket.take(ctx.sandbox.clock.now_ms(), cost) is not None:
        err = {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
        return Reply(200, {"errors": [err], "extensions": _cost_ext(ch, cost, None)})
    key_match = GRAPHQL_IDEMPOTENT.search(query)
    key = None
    if key_match:
        key = str(variables.get(key_match.group(1))) if key_match.group(1) else key_match.group(2)
    fingerprint = hashlib.sha256(json.dumps([query, variables], sort_keys=True).encode()).hexdigest()
    if key is not None and key in ch.idempotency:
        seen_fp, data = ch.idempotency[key]
        if seen_fp != fingerprint:
            err = {"message": "Idempotency key reused with a different request", "extensions": {"code": "BAD_REQUEST"}}
            return Reply(200, {"errors": [err], "extensions": _cost_ext(ch, cost, cost)})
        return Reply(200, {"data": data, "extensions": _cost_ext(ch, cost, cost)})
    data = handler(ctx, variables)
    if key is not None:
        ch.remember(key, fingerprint, data)
    return Reply(200, {"data": data, "extensions": _cost_ext(ch, cost, cost)})


def set_quantities(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    ch = ctx.channel
    inp = variables.get("input") or {}
    errors: list[dict[str, Any]] = []
    staged = []
    if inp.get("name") != "available":
        errors.append(
            {"code": "INVALID_NAME", "field": ["input", "name"], "message": "Only 'available' can be set here"}
        )
    for i, q in enumerate(inp.get("quantities") or []):
        field = ["input", "quantities", str(i)]
        listing = ch.by_ref(str(q.get("inventoryItemId")))
        if q.get("locationId") != ch.spec.location_id:
            errors.append(
                {
                    "code": "INVALID_LOCATION",
                    "field": [*field, "locationId"],
                    "message": "The specified location could not be found.",
                }
            )
            continue
        if "changeFromQuantity" not in q:
            errors.append(
                {
                    "code": "INVALID_INPUT",
                    "field": [*field, "changeFromQuantity"],
                    "message": "changeFromQuantity is required (null skips the check).",
                }
            )
            continue
        err = ch.check_qty(listing, q.get("quantity"), q.get("changeFromQuantity"))
        if err is WriteError.NOT_FOUND:
            errors.append(
                {
                    "code": "INVALID_INVENTORY_ITEM",
                    "field": [*field, "inventoryItemId"],
                    "message": "The specified inventory item could not be found.",
                }
            )
        elif err is WriteError.CAS_MISMATCH:
            errors.append(
                {
                    "code": "CHANGE_FROM_QUANTITY_STALE",
                    "field": [*field, "changeFromQuantity"],
                    "message": "The changeFromQuantity no longer matches the current quantity.",
                }
            )
        elif err is not None:
            errors.append(
                {"code": "INVALID_QUANTITY", "field": [*field, "quantity"], "message": f"Quantity rejected: {err}"}
            )
        else:
            assert listing is not None
            staged.append((listing, int(q["quantity"])))
    if errors:
        return {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": errors}}
    changes = []
    for listing, qty in staged:
        delta = qty - listing.qty
        ch.set_qty(listing, qty)
        changes.append({"name": "available", "delta": delta, "quantityAfterChange": qty, "item": {"id": listing.ref}})
    group = {"id": f"gid://shopify/InventoryAdjustmentGroup/{ch.next_id()}", "changes": changes}
    return {"inventorySetQuantities": {"inventoryAdjustmentGroup": group, "userErrors": []}}


def inventory_items(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    skus = SKU_TERM.findall(str(variables.get("q") or ""))
    nodes = []
    for sku in skus:
        listing = ctx.channel.listings.get(sku)
        if listing is not None:
            level = {"quantities": [{"name": "available", "quantity": listing.qty}]}
            nodes.append({"id": listing.ref, "sku": sku, "inventoryLevel": level})
    return {"inventoryItems": {"nodes": nodes[: int(variables.get("first") or 50)]}}


def product_update(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    product = variables.get("product") or {}
    listing = ctx.channel.by_product_ref(str(product.get("id")))
    if listing is None:
        return {
            "productUpdate": {"product": None, "userErrors": [{"field": ["id"], "message": "Product does not exist"}]}
        }
    if "title" in product:
        if not str(product["title"]).strip():
            return {
                "productUpdate": {
                    "product": None,
                    "userErrors": [{"field": ["title"], "message": "Title can't be blank"}],
                }
            }
        listing.title = str(product["title"])
    if "descriptionHtml" in product:
        listing.description = str(product["descriptionHtml"])
    return {"productUpdate": {"product": {"id": listing.product_ref, "title": listing.title}, "userErrors": []}}


def _order_node(o: Order) -> dict[str, Any]:
    money = {"shopMoney": {"amount": f"{o.unit_price:.2f}", "currencyCode": o.currency}}
    line = {"id": f"gid://shopify/LineItem/{o.seq}", "sku": o.sku, "quantity": o.qty, "originalUnitPriceSet": money}
    return {
        "id": o.order_id,
        "name": f"#{1000 + o.seq}",
        "createdAt": o.created_iso,
        "displayFinancialStatus": "PAID",
        "currencyCode": o.currency,
        "lineItems": {"nodes": [line]},
    }


def orders(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    after = variables.get("after")
    first = min(250, int(variables.get("first") or 50))
    start = 0
    if after:
        try:
            seq = int(str(after).removeprefix("c"))
        except ValueError:
            raise BadRequest("invalid cursor") from None
        start = next((i for i, o in enumerate(ctx.channel.orders) if o.seq > seq), len(ctx.channel.orders))
    page = ctx.channel.orders[start : start + first]
    edges = [{"cursor": f"c{o.seq}", "node": _order_node(o)} for o in page]
    info = {"hasNextPage": start + first < len(ctx.channel.orders), "endCursor": edges[-1]["cursor"] if edges else None}
    return {"orders": {"edges": edges, "pageInfo": info}}


def order_cancel(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    """``orderCancel``: marks the order cancelled (the seller could not fill it)."""
    oid = str(variables.get("orderId") or "")
    order = next((o for o in ctx.channel.orders if o.order_id == oid), None)
    if order is None:
        err = {"field": ["orderId"], "message": "Order does not exist", "code": "NOT_FOUND"}
        return {"orderCancel": {"job": None, "orderCancelUserErrors": [err]}}
    order.status = "cancelled"
    return {"orderCancel": {"job": {"id": f"gid://shopify/Job/{order.seq}", "done": True}, "orderCancelUserErrors": []}}


def on_order(sandbox: Sandbox, ch: ChannelState, o: Order) -> None:
    """Queue a signed ``orders/create`` delivery (REST order JSON, as Shopify sends webhooks)."""
    payload = {
        "id": 5_000_000 + o.seq,
        "admin_graphql_api_id": o.order_id,
        "name": f"#{1000 + o.seq}",
        "created_at": o.created_iso,
        "currency": o.currency,
        "financial_status": "paid",
        "line_items": [{"id": 9_000_000 + o.seq, "sku": o.sku, "quantity": o.qty, "price": f"{o.unit_price:.2f}"}],
    }
    raw = json.dumps(payload, separators=(",", ":"))
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": sign_webhook(raw.encode(), ch.credentials["app_secret"]),
        "X-Shopify-Shop-Domain": f"{ch.channel_id}.myshopify.com",
        "X-Shopify-Webhook-Id": f"b54557e4-sbx-{o.seq:012d}",
        "X-Shopify-API-Version": "2026-01",
        "Content-Type": "application/json",
    }
    ch.webhooks.append({"headers": headers, "body": raw})
    while len(ch.webhooks) > sandbox.config.max_webhooks_per_channel:
        ch.webhooks.popleft()


DIALECT = Dialect(
    name="shopify",
    routes=[route("POST", r"/admin/api/(?P<version>[^/]+)/graphql\.json", "graphql", graphql, rate_limited=False)],
    check_auth=check_auth,
    error=error_body,
)
