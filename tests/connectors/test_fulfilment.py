"""Ship confirmations and cancellations through every dialect, against the sandbox in-process."""

from __future__ import annotations

import asyncio
import csv
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from accord.app.ports import ManualClock
from accord.connectors.amazon import (
    CANCEL_REASON_CODES,
    ORDER_ACK_FEED,
    XML_FEED_CONTENT_TYPE,
    AmazonConnector,
    OrderCancel,
    order_acknowledgement_feed,
    package_reference_id,
)
from accord.connectors.base import (
    CancelReason,
    ChannelConfig,
    ItemStatus,
    RateLimited,
    RequestRejected,
    ServerError,
    ShipmentConfirmation,
    ShipmentLine,
)
from accord.connectors.filefeed import FileFeedConnector
from accord.sandbox.core import ChannelSpec

from .conftest import Env, listings
from .spapi import ACK_CANCEL_REASONS, ORDERS, ValidatingTransport, check_order_acknowledgement, validate

DIALECTS = ["amazon", "shopify", "ebay", "walmart", "mercadolibre", "shopee", "lazada", "allegro"]
SHIPPED_AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
# (operation recorded by the sandbox for the confirmation, for the cancellation, the reason as the dialect says it)
WIRE: dict[str, tuple[str, str, str]] = {
    "amazon": ("confirmShipment", "createFeed", "NoInventory"),  # a POST_ORDER_ACKNOWLEDGEMENT_DATA feed
    "shopify": ("graphql", "graphql", "INVENTORY"),
    "ebay": ("createShippingFulfillment", "createCancellation", "OUT_OF_STOCK_OR_CANNOT_FULFILL"),
    "walmart": ("shipOrderLines", "cancelOrderLines", "SELLER_CANCEL_OUT_OF_STOCK"),
    "mercadolibre": ("putShipment", "postFeedback", "OUT_OF_STOCK"),
    "shopee": ("ship_order", "cancel_order", "OUT_OF_STOCK"),
    "lazada": ("order_rts", "order_cancel", "reason_id:15"),
    "allegro": ("addShipment", "setFulfillmentStatus", "CANCELLED"),
}


def env_with_orders(make_env: Callable[..., Env], dialect: str, *qtys: int) -> tuple[Env, list[str]]:
    env = make_env([ChannelSpec("ch", dialect, listings("K1", "K2", qty=20))])
    env.clock.advance(86_400_000)
    ids = []
    for q in qtys:
        order = env.sandbox.place_order("ch", "K1", q)
        assert order is not None
        ids.append(order.order_id)
    return env, ids


def settle_feeds(env: Env) -> None:
    """Amazon cancels through a feed processed minutes later: let the sandbox's virtual time run that long."""
    env.clock.advance(60_000)
    env.sandbox.process_due()


def shipment(order_id: str, qty: int, shipment_id: str = "shp-1", **kw: Any) -> ShipmentConfirmation:
    return ShipmentConfirmation(
        channel_order_id=order_id,
        shipment_id=shipment_id,
        carrier=kw.pop("carrier", "UPS"),
        tracking=kw.pop("tracking", "1Z999AA10123456784"),
        shipped_at=SHIPPED_AT,
        lines=(ShipmentLine("K1", qty, kw.pop("line_id", None)),),
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ship_confirmation_marks_the_order_shipped_once(make_env: Callable[..., Env], dialect: str) -> None:
    env, (oid,) = env_with_orders(make_env, dialect, 2)

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        await conn.confirm_shipment(shipment(oid, 2))
        await conn.confirm_shipment(shipment(oid, 2))  # a resend after a lost response: no second package

    env.run(go)
    order = env.sandbox.order("ch", oid)
    assert order.status == "shipped"
    assert [(s["tracking"], s["qty"]) for s in order.shipments] == [("1Z999AA10123456784", 2)]
    ops = [c.operation for c in env.sandbox.calls("ch") if c.status < 300]
    assert WIRE[dialect][0] in ops
    assert all(c.status < 400 for c in env.sandbox.calls("ch")), env.sandbox.calls("ch")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_out_of_stock_cancellation_reaches_the_channel(make_env: Callable[..., Env], dialect: str) -> None:
    env, (keep, oversold) = env_with_orders(make_env, dialect, 1, 3)
    assert env.sandbox.sold_units("ch") == 4

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        await conn.cancel_order(oversold, CancelReason.OUT_OF_STOCK, "out of stock: K1 short by 3")
        await conn.cancel_order(oversold, CancelReason.OUT_OF_STOCK, "out of stock: K1 short by 3")  # repeat

    env.run(go)
    settle_feeds(env)
    order = env.sandbox.order("ch", oversold)
    assert order.status == "cancelled"
    assert order.cancel_reason == WIRE[dialect][2]
    assert env.sandbox.order("ch", keep).status == "new"
    assert env.sandbox.sold_units("ch") == 1  # the cancelled units no longer count as sold
    assert WIRE[dialect][1] in [c.operation for c in env.sandbox.calls("ch")]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_orders_and_cancelled_orders_are_rejected(make_env: Callable[..., Env], dialect: str) -> None:
    env, (oid,) = env_with_orders(make_env, dialect, 1)

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        for call in (
            conn.confirm_shipment(shipment("404404404", 1)),
            conn.cancel_order("404404404", CancelReason.OUT_OF_STOCK, "x"),
        ):
            with pytest.raises(RequestRejected) as info:
                await call
            assert not info.value.retryable
        await conn.cancel_order(oid, CancelReason.OUT_OF_STOCK, "x")
        settle_feeds(env)
        with pytest.raises(RequestRejected):
            await conn.confirm_shipment(shipment(oid, 1))

    env.run(go)
    assert env.sandbox.order("ch", oid).shipments == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_throttles_and_outages_are_retryable(make_env: Callable[..., Env], dialect: str) -> None:
    env, (oid,) = env_with_orders(make_env, dialect, 1)

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        env.sandbox.set_faults("ch", script=["429"])
        with pytest.raises(RateLimited) as limited:
            await conn.confirm_shipment(shipment(oid, 1))
        assert limited.value.retryable and limited.value.retry_after_s == 1.0
        env.sandbox.set_faults("ch", script=["503"])
        with pytest.raises(ServerError) as down:
            await conn.cancel_order(oid, CancelReason.OUT_OF_STOCK, "x")
        assert down.value.retryable

    env.run(go)
    assert env.sandbox.order("ch", oid).status == "new"


def test_amazon_confirm_shipment_matches_the_official_schema(make_env: Callable[..., Env]) -> None:
    env, (oid,) = env_with_orders(make_env, "amazon", 2)
    vt = ValidatingTransport(env.transport)
    env.transport = vt

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("ch", client)
        body = conn.confirm_shipment_request(shipment(oid, 2, carrier="Poste Swiss"), {"K1": "00000000000001"})
        validate(ORDERS, "ConfirmShipmentRequest", body)
        pkg = body["packageDetail"]
        assert (pkg["carrierCode"], pkg["carrierName"]) == ("Other", "Poste Swiss")
        assert pkg["shipDate"] == "2026-03-01T12:30:00.000Z"
        assert pkg["packageReferenceId"] == package_reference_id("shp-1") and pkg["packageReferenceId"].isdigit()
        # no orderItemId on the line: looked up by SellerSKU with getOrderItems, then confirmed
        await conn.confirm_shipment(shipment(oid, 2))

    env.run(go)
    assert ("POST", f"/ch/orders/v0/orders/{oid}/shipmentConfirmation", 204) in vt.validated
    assert [c.operation for c in env.sandbox.calls("ch")] == ["getOrderItems", "confirmShipment"]
    assert package_reference_id("17") == "17"


def test_shopify_partial_shipment_then_the_rest(make_env: Callable[..., Env]) -> None:
    env, (oid,) = env_with_orders(make_env, "shopify", 3)

    async def go(client: httpx.AsyncClient) -> None:
        conn = env.connector("ch", client)
        rest_id = str(9_000_000 + env.sandbox.order("ch", oid).seq)  # the line id its orders/create webhook carried
        await conn.confirm_shipment(shipment(oid, 1, "s1", tracking="T1", line_id=rest_id))
        assert env.sandbox.order("ch", oid).status == "partially_shipped"
        await conn.confirm_shipment(shipment(oid, 2, "s2", tracking="T2"))
        await conn.confirm_shipment(shipment(oid, 2, "s2", tracking="T2"))  # a resend: already there
        with pytest.raises(RequestRejected):  # a third parcel: nothing is left to fulfil
            await conn.confirm_shipment(shipment(oid, 1, "s3", tracking="T3"))

    env.run(go)
    order = env.sandbox.order("ch", oid)
    assert order.status == "shipped"
    assert [s["tracking"] for s in order.shipments] == ["T1", "T2"]


def test_filefeed_writes_one_file_per_shipment_and_cancellation(tmp_path: Path) -> None:
    cfg = ChannelConfig("bol-files", "filefeed", "file:///drop", options={"drop_dir": str(tmp_path)})
    conn = FileFeedConnector(cfg, clock=ManualClock())

    async def go() -> None:
        await conn.confirm_shipment(shipment("B-1", 2, "shp/1", carrier="PostNL", tracking="3S123"))
        await conn.confirm_shipment(shipment("B-1", 2, "shp/1", carrier="PostNL", tracking="3S123"))
        await conn.cancel_order("B-2", CancelReason.OUT_OF_STOCK, "short by 1")

    asyncio.run(go())
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2 and not any(n.startswith(".tmp") for n in files)
    shipped = next(tmp_path.glob("bol-files-shipment-*.csv"))
    rows = list(csv.DictReader(shipped.read_text(encoding="utf-8").splitlines()))
    assert [(r["order_id"], r["shipment_id"], r["carrier"], r["tracking"], r["sku"], r["qty"]) for r in rows] == [
        ("B-1", "shp/1", "PostNL", "3S123", "K1", "2")
    ]
    assert rows[0]["shipped_at"] == "2026-03-01T12:30:00.000Z"
    cancel_file = next(tmp_path.glob("bol-files-cancellation-*.csv"))
    cancelled = list(csv.DictReader(cancel_file.read_text(encoding="utf-8").splitlines()))
    assert cancelled == [{"order_id": "B-2", "reason": "out_of_stock", "note": "short by 1"}]


def test_amazon_cancellations_go_as_one_order_acknowledgement_feed(make_env: Callable[..., Env]) -> None:
    env, (a, b, keep) = env_with_orders(make_env, "amazon", 1, 2, 1)
    vt = ValidatingTransport(env.transport)  # createFeedDocument / createFeed against feeds_2021-06-30.json
    env.transport = vt
    ghost = "111-0000000-0000404"

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("ch", client)
        reasons = [(a, CancelReason.OUT_OF_STOCK), (ghost, CancelReason.OTHER), (b, CancelReason.CUSTOMER_REQUEST)]
        feed_id, results = await conn.cancel_orders(reasons)
        assert feed_id is not None
        assert [(r.sku, r.status, r.reason) for r in results] == [
            (a, ItemStatus.OK, None),
            (ghost, ItemStatus.REJECTED, "not_found"),  # getOrderItems 404: never put in the feed
            (b, ItemStatus.OK, None),
        ]
        assert results[1].error is not None and not results[1].error.retryable
        status = await conn.get_feed(feed_id)
        assert status.processing_status == "IN_QUEUE"  # accepted (202), applied minutes later
        settle_feeds(env)
        status = await conn.get_feed(feed_id)
        assert status.processing_status == "DONE"
        done = await conn.get_cancellation_results(status, [a, b])
        assert [(r.sku, r.status) for r in done] == [(a, ItemStatus.OK), (b, ItemStatus.OK)]

    env.run(go)
    (xml,) = vt.xml_uploads
    root = ET.fromstring(xml)
    assert root.findtext("Header/MerchantIdentifier") == "SANDBOXSELLER"
    acks = [(m.findtext("AmazonOrderID"), m.findtext("Item/CancelReason")) for m in root.iter("OrderAcknowledgement")]
    assert acks == [(a, "NoInventory"), (b, "BuyerCanceled")]
    assert {m.findtext("StatusCode") for m in root.iter("OrderAcknowledgement")} == {"Failure"}
    assert [(env.sandbox.order("ch", o).status, env.sandbox.order("ch", o).cancel_reason) for o in (a, b, keep)] == [
        ("cancelled", "NoInventory"),
        ("cancelled", "BuyerCanceled"),
        ("new", None),
    ]
    ops = [c.operation for c in env.sandbox.calls("ch")]
    assert ops.count("createFeed") == 1 and ops.count("createFeedDocument") == 1  # one feed for the batch
    feeds = [(m, p, s) for m, p, s in vt.validated if "/feeds/2021-06-30/" in p and m == "POST"]
    assert feeds == [("POST", "/ch/feeds/2021-06-30/documents", 201), ("POST", "/ch/feeds/2021-06-30/feeds", 202)]


def test_amazon_feed_report_names_unknown_orders_and_fatal_documents(make_env: Callable[..., Env]) -> None:
    env, (oid,) = env_with_orders(make_env, "amazon", 1)
    ghost = "111-0000000-0000404"

    async def go(client: httpx.AsyncClient) -> None:
        conn: AmazonConnector = env.connector("ch", client)
        item = f"{env.sandbox.order('ch', oid).seq:014d}"
        doc = order_acknowledgement_feed(
            "SANDBOXSELLER",
            [OrderCancel(ghost, CancelReason.OUT_OF_STOCK, ("1",)), OrderCancel(oid, CancelReason.OTHER, (item,))],
        )
        feed_id = await conn.submit_feed(ORDER_ACK_FEED, XML_FEED_CONTENT_TYPE, doc)
        settle_feeds(env)
        results = await conn.get_cancellation_results(await conn.get_feed(feed_id), [ghost, oid])
        assert [(r.sku, r.status) for r in results] == [(ghost, ItemStatus.REJECTED), (oid, ItemStatus.OK)]
        assert results[0].detail is not None and ghost in results[0].detail and "not found" in results[0].detail
        assert isinstance(results[0].error, RequestRejected)

        bad = await conn.submit_feed(ORDER_ACK_FEED, XML_FEED_CONTENT_TYPE, b"<AmazonEnvelope><Message>")
        settle_feeds(env)
        status = await conn.get_feed(bad)
        assert status.processing_status == "FATAL" and status.finished
        (fatal,) = await conn.get_cancellation_results(status, [oid])
        assert fatal.status is ItemStatus.REJECTED and fatal.detail is not None and "XML Parsing" in fatal.detail

    env.run(go)
    assert env.sandbox.order("ch", oid).cancel_reason == "GeneralAdjustment"


def test_order_acknowledgement_values_are_escaped() -> None:
    doc = order_acknowledgement_feed("S&<1>", [OrderCancel('A<&>"1', CancelReason.PRICING_ERROR, ("x]]>",))])
    assert b"S&amp;&lt;1&gt;" in doc
    check_order_acknowledgement(doc)
    root = ET.fromstring(doc)
    assert root.findtext("Header/MerchantIdentifier") == "S&<1>"
    assert root.findtext("Message/OrderAcknowledgement/AmazonOrderID") == 'A<&>"1'
    assert root.findtext("Message/OrderAcknowledgement/Item/AmazonOrderItemCode") == "x]]>"
    assert root.findtext("Message/OrderAcknowledgement/Item/CancelReason") == "GeneralAdjustment"
    assert {CANCEL_REASON_CODES[r] for r in CancelReason} <= ACK_CANCEL_REASONS
