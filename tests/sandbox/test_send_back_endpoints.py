"""The sandbox's ship-confirmation and cancellation endpoints: shape validation, 404s, rate limits, state."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from typing import Any

import httpx

from accord.app.ports import ManualClock
from accord.sandbox.app import create_app, sandbox_of
from accord.sandbox.core import ChannelSpec, ListingSpec, SandboxConfig

AUTH = {"x-amz-access-token": "sandbox-token"}


def amazon() -> tuple[Any, Any]:
    spec = ChannelSpec("amz", "amazon", [ListingSpec("A", qty=50)])
    app = create_app(SandboxConfig(channels=[spec], clock=ManualClock()))
    return app, sandbox_of(app)


def send(app: Any, *requests: tuple[str, str, Any]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as c:
            return [await c.request(m, "/amz" + path, json=body, headers=AUTH) for m, path, body in requests]

    return asyncio.run(go())


def confirmation(seq: int, ref: str, tracking: str = "T1", qty: int = 1) -> dict[str, Any]:
    return {
        "marketplaceId": "ATVPDKIKX0DER",
        "packageDetail": {
            "packageReferenceId": ref,
            "carrierCode": "UPS",
            "trackingNumber": tracking,
            "shipDate": "2026-01-02T00:00:00Z",
            "orderItems": [{"orderItemId": f"{seq:014d}", "quantity": qty}],
        },
    }


def test_confirm_shipment_validates_records_and_is_idempotent() -> None:
    app, sandbox = amazon()
    order = sandbox.place_order("amz", "A", 2)
    assert order is not None
    path = f"/orders/v0/orders/{order.order_id}/shipmentConfirmation"
    bad = confirmation(order.seq, "1")
    del bad["packageDetail"]["trackingNumber"]
    r_bad, r_ref, r_404, r_ok, r_again, r_over = send(
        app,
        ("POST", path, bad),
        ("POST", path, confirmation(order.seq, "pkg-1")),  # packageReferenceId must be numeric
        ("POST", "/orders/v0/orders/111-0000000-0000000/shipmentConfirmation", confirmation(order.seq, "1")),
        ("POST", path, confirmation(order.seq, "1", qty=2)),
        ("POST", path, confirmation(order.seq, "1", qty=2)),
        ("POST", path, confirmation(order.seq, "2", "T2")),  # nothing left to ship
    )
    assert r_bad.status_code == 400 and "trackingNumber" in r_bad.json()["errors"][0]["message"]
    assert r_ref.status_code == 400
    assert r_404.status_code == 404
    assert (r_ok.status_code, r_ok.content, r_again.status_code) == (204, b"", 204)
    assert r_over.status_code == 400
    assert [(s["tracking"], s["qty"]) for s in order.shipments] == [("T1", 2)] and order.status == "shipped"
    (listed,) = [o for o in sandbox.channel("amz").orders]
    assert listed.sold_qty == 2


def test_confirm_shipment_has_its_own_rate_limit() -> None:
    app, sandbox = amazon()
    orders = [sandbox.place_order("amz", "A", 1) for _ in range(12)]
    reqs = [
        ("POST", f"/orders/v0/orders/{o.order_id}/shipmentConfirmation", confirmation(o.seq, "1"))
        for o in orders
        if o is not None
    ]
    codes = [r.status_code for r in send(app, *reqs)]
    assert codes == [204] * 10 + [429, 429]  # burst 10 at 2/s (confirmShipment's usage plan)
    throttled = [c for c in sandbox.calls("amz") if c.status == 429]
    assert {c.operation for c in throttled} == {"confirmShipment"}


def ack_feed(*messages: tuple[str, str | None, str | None]) -> bytes:
    """An order-acknowledgement document: (AmazonOrderID, AmazonOrderItemCode or None, CancelReason or None)."""
    body = "".join(
        f"<Message><MessageID>{n}</MessageID><OrderAcknowledgement><AmazonOrderID>{oid}</AmazonOrderID>"
        "<StatusCode>Failure</StatusCode>"
        + (f"<Item><AmazonOrderItemCode>{item}</AmazonOrderItemCode>" if item else "")
        + (f"<CancelReason>{reason}</CancelReason>" if item and reason else "")
        + ("</Item>" if item else "")
        + "</OrderAcknowledgement></Message>"
        for n, (oid, item, reason) in enumerate(messages, start=1)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope><Header><DocumentVersion>1.01</DocumentVersion>'
        "<MerchantIdentifier>SANDBOXSELLER</MerchantIdentifier></Header>"
        f"<MessageType>OrderAcknowledgement</MessageType>{body}</AmazonEnvelope>"
    ).encode()


def run_feed(app: Any, sandbox: Any, document: bytes) -> tuple[str, ET.Element]:
    """createFeedDocument → upload → createFeed (POST_ORDER_ACKNOWLEDGEMENT_DATA) → processing → the XML report."""

    async def go() -> tuple[str, bytes]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox/amz") as c:
            doc = (await c.post("/feeds/2021-06-30/documents", json={"contentType": "text/xml"}, headers=AUTH)).json()
            up = await c.put(doc["url"], content=document, headers={"content-type": "text/xml"})
            assert up.status_code == 200
            spec = {
                "feedType": "POST_ORDER_ACKNOWLEDGEMENT_DATA",
                "marketplaceIds": ["ATVPDKIKX0DER"],
                "inputFeedDocumentId": doc["feedDocumentId"],
            }
            created = await c.post("/feeds/2021-06-30/feeds", json=spec, headers=AUTH)
            assert created.status_code == 202
            sandbox.clock.advance(60_000)
            feed = (await c.get(f"/feeds/2021-06-30/feeds/{created.json()['feedId']}", headers=AUTH)).json()
            assert feed["feedType"] == "POST_ORDER_ACKNOWLEDGEMENT_DATA"
            result = await c.get(f"/feeds/2021-06-30/documents/{feed['resultFeedDocumentId']}", headers=AUTH)
            report = await c.get(result.json()["url"])
            return str(feed["processingStatus"]), report.content

    status, report = asyncio.run(go())
    return status, ET.fromstring(report)


def errors_of(report: ET.Element) -> dict[str, str]:
    """MessageID → ResultDescription of the report's errors."""
    return {
        str(r.findtext("MessageID")): str(r.findtext("ResultDescription"))
        for r in report.iter("Result")
        if r.findtext("ResultCode") == "Error"
    }


def test_cancel_then_ship_is_refused_and_cancelled_units_are_not_sold() -> None:
    app, sandbox = amazon()
    order = sandbox.place_order("amz", "A", 3)
    assert order is not None
    item = f"{order.seq:014d}"
    status, report = run_feed(app, sandbox, ack_feed((order.order_id, item, "SoldOut")))
    assert status == "DONE" and "CancelReason 'SoldOut'" in errors_of(report)["1"]
    assert order.status == "new"
    for _ in range(2):  # a resent feed: the order is already cancelled, no error
        status, report = run_feed(app, sandbox, ack_feed((order.order_id, item, "NoInventory")))
        assert status == "DONE" and errors_of(report) == {}
        assert report.findtext("Message/ProcessingReport/ProcessingSummary/MessagesSuccessful") == "1"
    (r_ship,) = send(
        app, ("POST", f"/orders/v0/orders/{order.order_id}/shipmentConfirmation", confirmation(order.seq, "1"))
    )
    assert r_ship.status_code == 400 and "cancelled" in r_ship.json()["errors"][0]["message"]
    assert (order.status, order.cancel_reason) == ("cancelled", "NoInventory")
    assert sandbox.sold_units("amz") == 0
    ops = [c.operation for c in sandbox.calls("amz")]
    assert ops.count("createFeed") == 3 and "cancelOrder" not in ops

    async def control() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox") as c:
            return (await c.get("/_control/channels/amz/listings")).json()  # type: ignore[no-any-return]

    summary = asyncio.run(control())
    assert (summary["orders"], summary["sold_units"], summary["cancelled_orders"]) == (1, 0, 1)


def test_order_acknowledgement_feed_reports_unknown_orders_and_shipped_orders() -> None:
    app, sandbox = amazon()
    shipped, open_ = sandbox.place_order("amz", "A", 1), sandbox.place_order("amz", "A", 2)
    assert shipped is not None and open_ is not None
    (r,) = send(
        app, ("POST", f"/orders/v0/orders/{shipped.order_id}/shipmentConfirmation", confirmation(shipped.seq, "1"))
    )
    assert r.status_code == 204
    status, report = run_feed(
        app,
        sandbox,
        ack_feed(
            ("111-0000000-0000404", "00000000000404", "NoInventory"),
            (shipped.order_id, f"{shipped.seq:014d}", "NoInventory"),
            (open_.order_id, f"{open_.seq:014d}", "BuyerCanceled"),
        ),
    )
    errors = errors_of(report)
    assert status == "DONE" and set(errors) == {"1", "2"}
    assert "111-0000000-0000404" in errors["1"] and "not found" in errors["1"]
    assert "shipped" in errors["2"]
    assert (shipped.status, open_.status, open_.cancel_reason) == ("shipped", "cancelled", "BuyerCanceled")
    assert report.findtext("Message/ProcessingReport/ProcessingSummary/MessagesWithError") == "2"


def test_malformed_order_acknowledgement_feed_is_fatal_with_a_report() -> None:
    app, sandbox = amazon()
    order = sandbox.place_order("amz", "A", 1)
    assert order is not None
    status, report = run_feed(app, sandbox, b"<AmazonEnvelope><Message><AmazonOrderID>" + order.order_id.encode())
    assert status == "FATAL"
    (result,) = report.iter("Result")
    assert result.findtext("MessageID") == "0" and "XML Parsing" in str(result.findtext("ResultDescription"))
    assert order.status == "new"
    status, _ = run_feed(app, sandbox, b'{"messages": []}')  # well-formed JSON is no acknowledgement either
    assert status == "FATAL"
