"""Shopify Admin GraphQL emulation. Not a GraphQL engine: the operation is recognised by its root field
(``inventorySetQuantities``, ``inventoryItems``, ``productUpdate``, ``orders``) and answered in Shopify's shapes, with
cost-based throttling (``extensions.cost``), ``@idempotent(key:)`` replay and signed ``orders/create`` webhooks."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from accord.connectors.shopify import sign_webhook
from accord.sandbox.core import GRAPHQL_IDEMPOTENT, ChannelState, Listing, Order, WriteError
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
    elif "productVariantsBulkUpdate" in query:
        cost, handler = 10, variants_bulk_update
    elif "productVariants" in query:
        cost, handler = 2 + int(variables.get("first") or 10), product_variants
    elif "productUpdate" in query:
        cost, handler = 10, product_update
    elif "inventoryItems" in query:
        cost, handler = 2 + int(variables.get("first") or 10), inventory_items
    elif "orderCancel" in query:
        cost, handler = 10, order_cancel
    elif "fulfillmentCreate" in query:
        cost, handler = 10, fulfillment_create
    elif "fulfillmentOrders" in query:
        cost, handler = 12, fulfillment_orders
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


def variant_gid(listing: Listing) -> str:
    """The listing's ProductVariant gid (the sandbox numbers variants like their inventory items)."""
    return "gid://shopify/ProductVariant/" + listing.ref.rsplit("/", 1)[-1]


def product_variants(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    skus = SKU_TERM.findall(str(variables.get("q") or ""))
    nodes = []
    for sku in skus:
        listing = ctx.channel.listings.get(sku)
        if listing is not None:
            nodes.append(
                {
                    "id": variant_gid(listing),
                    "sku": sku,
                    "price": f"{listing.price:.2f}",
                    "product": {"id": listing.product_ref},
                }
            )
    return {"productVariants": {"nodes": nodes[: int(variables.get("first") or 50)]}}


def variants_bulk_update(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    """Price per variant of one product (prices are in the shop's currency: the input has no currency)."""
    product_id = str(variables.get("productId"))
    by_variant = {variant_gid(li): li for li in ctx.channel.listings.values() if li.product_ref == product_id}
    if not by_variant:
        errors = [{"field": ["productId"], "message": "Product does not exist"}]
        return {"productVariantsBulkUpdate": {"productVariants": None, "userErrors": errors}}
    staged: list[tuple[Listing, Decimal]] = []
    for i, v in enumerate(variables.get("variants") or []):
        listing = by_variant.get(str(v.get("id")))
        if listing is None:
            errors = [{"field": ["variants", str(i), "id"], "message": "Product variant does not exist"}]
            return {"productVariantsBulkUpdate": {"productVariants": None, "userErrors": errors}}
        try:
            price = Decimal(str(v["price"]))
        except (KeyError, InvalidOperation):
            errors = [{"field": ["variants", str(i), "price"], "message": "Price is invalid"}]
            return {"productVariantsBulkUpdate": {"productVariants": None, "userErrors": errors}}
        if price < 0:
            errors = [{"field": ["variants", str(i), "price"], "message": "Price must be greater than or equal to 0"}]
            return {"productVariantsBulkUpdate": {"productVariants": None, "userErrors": errors}}
        staged.append((listing, price))
    for listing, price in staged:
        listing.price = price
    updated = [{"id": variant_gid(li), "price": f"{li.price:.2f}"} for li, _ in staged]
    return {"productVariantsBulkUpdate": {"productVariants": updated, "userErrors": []}}


def line_item_gid(o: Order) -> str:
    """The order's one line item: the same numeric id as ``line_items[].id`` in its ``orders/create`` webhook."""
    return f"gid://shopify/LineItem/{9_000_000 + o.seq}"


def _order_node(o: Order) -> dict[str, Any]:
    money = {"shopMoney": {"amount": f"{o.unit_price:.2f}", "currencyCode": o.currency}}
    line = {"id": line_item_gid(o), "sku": o.sku, "quantity": o.qty, "originalUnitPriceSet": money}
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
    reason = variables.get("reason")
    if reason not in CANCEL_REASONS:
        err = {"field": ["reason"], "message": f"reason must be one of {sorted(CANCEL_REASONS)}", "code": "INVALID"}
        return {"orderCancel": {"job": None, "orderCancelUserErrors": [err]}}
    failed = order.cancel(str(reason))
    if failed is not None:
        err = {"field": ["orderId"], "message": failed, "code": "INVALID"}
        return {"orderCancel": {"job": None, "orderCancelUserErrors": [err]}}
    return {"orderCancel": {"job": {"id": f"gid://shopify/Job/{order.seq}", "done": True}, "orderCancelUserErrors": []}}


CANCEL_REASONS = frozenset({"CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "OTHER", "STAFF"})


def _fulfillment_order(o: Order) -> dict[str, Any]:
    status = {"cancelled": "CANCELLED", "shipped": "CLOSED", "partially_shipped": "IN_PROGRESS"}.get(o.status, "OPEN")
    line = {
        "id": f"gid://shopify/FulfillmentOrderLineItem/{o.seq}",
        "remainingQuantity": o.open_qty,
        "lineItem": {"id": line_item_gid(o), "sku": o.sku},
    }
    return {"id": f"gid://shopify/FulfillmentOrder/{o.seq}", "status": status, "lineItems": {"nodes": [line]}}


def fulfillment_orders(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    """``order(id:) { fulfillmentOrders }``: one fulfillment order per sandbox order (one line)."""
    order = ctx.channel.order(str(variables.get("id") or ""))
    if order is None:
        return {"order": None}
    fulfillments = [
        {"id": f"gid://shopify/Fulfillment/{order.seq}{n}", "trackingInfo": [{"number": s["tracking"]}]}
        for n, s in enumerate(order.shipments)
    ]
    return {
        "order": {
            "id": order.order_id,
            "fulfillments": fulfillments,
            "fulfillmentOrders": {"nodes": [_fulfillment_order(order)]},
        }
    }


def fulfillment_create(ctx: Ctx, variables: dict[str, Any]) -> dict[str, Any]:
    """``fulfillmentCreate(fulfillment: FulfillmentInput!)``: fulfils fulfillment-order line items with tracking."""

    def fail(field: list[str], message: str) -> dict[str, Any]:
        return {"fulfillmentCreate": {"fulfillment": None, "userErrors": [{"field": field, "message": message}]}}

    fulfillment = variables.get("fulfillment")
    if not isinstance(fulfillment, dict):
        return fail(["fulfillment"], "fulfillment is required")
    groups = fulfillment.get("lineItemsByFulfillmentOrder")
    if not isinstance(groups, list) or not groups:
        return fail(["fulfillment", "lineItemsByFulfillmentOrder"], "at least one fulfillment order is required")
    tracking = fulfillment.get("trackingInfo") or {}
    if not isinstance(tracking, dict) or not tracking.get("number"):
        return fail(["fulfillment", "trackingInfo", "number"], "tracking number is required")
    staged: list[tuple[Order, int]] = []
    for i, group in enumerate(groups):
        fo_id = str((group or {}).get("fulfillmentOrderId") or "")
        seq = fo_id.removeprefix("gid://shopify/FulfillmentOrder/")
        order = next((o for o in ctx.channel.orders if str(o.seq) == seq), None)
        if order is None or not fo_id.startswith("gid://shopify/FulfillmentOrder/"):
            return fail(["fulfillment", "lineItemsByFulfillmentOrder", str(i)], "Fulfillment order does not exist.")
        items = group.get("fulfillmentOrderLineItems")
        qty = order.open_qty if not items else 0
        for item in items or []:
            if item.get("id") != f"gid://shopify/FulfillmentOrderLineItem/{order.seq}":
                return fail(["fulfillment", "lineItemsByFulfillmentOrder", str(i)], "Line item does not exist.")
            qty += int(item.get("quantity") or 0)
        staged.append((order, qty))
    key = f"fulfillment:{tracking['number']}"
    for order, qty in staged:
        if order.shipment(key) is None and (order.status == "cancelled" or qty > order.open_qty or qty <= 0):
            return fail(["fulfillment"], f"Invalid quantity or fulfillment order {order.order_id} is not open.")
    now = ctx.sandbox.clock.now_ms()
    for order, qty in staged:
        order.ship(key, str(tracking.get("company") or "Other"), str(tracking["number"]), qty, now)
    out = {
        "id": f"gid://shopify/Fulfillment/{ctx.channel.next_id()}",
        "status": "SUCCESS",
        "trackingInfo": [{"company": tracking.get("company"), "number": tracking["number"]}],
    }
    return {"fulfillmentCreate": {"fulfillment": out, "userErrors": []}}


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
