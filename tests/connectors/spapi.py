"""Amazon SP-API schema validation for tests: swagger 2.0 definitions with $refs resolved by jsonschema."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

# the project's shared/ folder sits beside the repository checkout (DEVELOPERS.md); ACCORD_SPECS_DIR overrides
SPECS = Path(
    os.environ.get("ACCORD_SPECS_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "amazon-sp-api"
)


@cache
def _doc(name: str) -> dict[str, Any]:
    path = SPECS / name
    if not path.is_file():
        # the official specs live in the project's shared/ folder beside the checkout, not in this repository
        pytest.skip(f"Amazon SP-API spec {path} not found: put shared/ beside the checkout or set ACCORD_SPECS_DIR")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def validator(spec_file: str, definition: str) -> jsonschema.Draft4Validator:
    doc = _doc(spec_file)
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": doc["definitions"]})


def validate(spec_file: str, definition: str, instance: Any) -> None:
    validator(spec_file, definition).validate(instance)


def validate_document(schema_file: str, instance: Any) -> None:
    schema = _doc(schema_file)
    jsonschema.Draft7Validator(schema).validate(instance)


LISTINGS = "listingsItems_2021-08-01.json"
FEEDS = "feeds_2021-06-30.json"
ORDERS = "ordersV0.json"

# (method, path regex) -> (spec, request definition or None, {status: response definition})
RULES: list[tuple[str, re.Pattern[str], str, str | None, dict[int, str]]] = [
    ("PATCH", re.compile(r"/listings/2021-08-01/items/[^/]+/[^/]+$"), LISTINGS, "ListingsItemPatchRequest",
     {200: "ListingsItemSubmissionResponse", 400: "ErrorList", 403: "ErrorList", 404: "ErrorList", 429: "ErrorList",
      500: "ErrorList", 503: "ErrorList"}),
    ("GET", re.compile(r"/listings/2021-08-01/items/[^/]+/[^/]+$"), LISTINGS, None,
     {200: "Item", 404: "ErrorList", 429: "ErrorList"}),
    ("POST", re.compile(r"/feeds/2021-06-30/documents$"), FEEDS, "CreateFeedDocumentSpecification",
     {201: "CreateFeedDocumentResponse", 400: "ErrorList", 429: "ErrorList"}),
    ("GET", re.compile(r"/feeds/2021-06-30/documents/[^/]+$"), FEEDS, None, {200: "FeedDocument", 404: "ErrorList"}),
    ("POST", re.compile(r"/feeds/2021-06-30/feeds$"), FEEDS, "CreateFeedSpecification",
     {202: "CreateFeedResponse", 400: "ErrorList", 429: "ErrorList"}),
    ("GET", re.compile(r"/feeds/2021-06-30/feeds/[^/]+$"), FEEDS, None, {200: "Feed", 404: "ErrorList"}),
    ("GET", re.compile(r"/orders/v0/orders$"), ORDERS, None, {200: "GetOrdersResponse", 400: "GetOrdersResponse",
                                                               429: "GetOrdersResponse"}),
    ("GET", re.compile(r"/orders/v0/orders/[^/]+/orderItems$"), ORDERS, None,
     {200: "GetOrderItemsResponse", 404: "GetOrderItemsResponse", 429: "GetOrderItemsResponse"}),
    ("POST", re.compile(r"/orders/v0/orders/[^/]+/shipmentConfirmation$"), ORDERS, "ConfirmShipmentRequest",
     {204: "", 400: "ConfirmShipmentErrorResponse", 403: "ConfirmShipmentErrorResponse",
      404: "ConfirmShipmentErrorResponse", 429: "ConfirmShipmentErrorResponse",
      503: "ConfirmShipmentErrorResponse"}),
]  # fmt: skip


# OrderAcknowledgement.xsd: the CancelReason enumeration
ACK_CANCEL_REASONS = frozenset(
    {"NoInventory", "ShippingAddressUndeliverable", "CustomerExchange", "BuyerCanceled", "GeneralAdjustment",
     "CarrierCreditDecision", "RiskAssessmentInformationNotValid", "CarrierCoverageFailure", "CustomerReturn",
     "MerchandiseNotReceived"}
)  # fmt: skip


def check_order_acknowledgement(body: bytes) -> None:
    """The structure of a POST_ORDER_ACKNOWLEDGEMENT_DATA document, element order as in amzn-envelope.xsd and
    OrderAcknowledgement.xsd (no XSD validator here: the shapes are asserted one by one)."""
    root = ET.fromstring(body)
    assert root.tag == "AmazonEnvelope"
    assert [c.tag for c in root][:2] == ["Header", "MessageType"]
    header = root.find("Header")
    assert header is not None and [c.tag for c in header] == ["DocumentVersion", "MerchantIdentifier"]
    assert root.findtext("MessageType") == "OrderAcknowledgement"
    messages = root.findall("Message")
    assert messages and [c.tag for c in root][2:] == ["Message"] * len(messages)
    for n, msg in enumerate(messages, start=1):
        assert [c.tag for c in msg] == ["MessageID", "OrderAcknowledgement"]
        assert msg.findtext("MessageID") == str(n)
        ack = msg.find("OrderAcknowledgement")
        assert ack is not None
        tags = [c.tag for c in ack]
        assert tags[:2] == ["AmazonOrderID", "StatusCode"] and set(tags[2:]) <= {"Item"}
        assert ack.findtext("StatusCode") in ("Success", "Failure")
        for item in ack.findall("Item"):
            assert [c.tag for c in item] in (["AmazonOrderItemCode"], ["AmazonOrderItemCode", "CancelReason"])
            assert item.findtext("CancelReason") in ACK_CANCEL_REASONS | {None}


class ValidatingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; validates every SP-API request body and response body against the official schemas,
    and every uploaded feed document against listings-feed-schema-v2. Keeps a log of what it validated."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.validated: list[tuple[str, str, int]] = []
        self.unparseable: list[str] = []
        self.xml_uploads: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path = request.url.path
        rule = next((r for r in RULES if r[0] == request.method and r[1].search(path)), None)
        if rule is not None and rule[3] is not None:
            validate(rule[2], rule[3], json.loads(body))
        if request.method == "PUT" and "/_uploads/" in path and "xml" in request.headers.get("content-type", ""):
            check_order_acknowledgement(body)
            self.xml_uploads.append(body)
        elif request.method == "PUT" and "/_uploads/" in path:
            validate_document("listings-feed-schema-v2.json", json.loads(body))
            for message in json.loads(body)["messages"]:
                validate_document("listings-feed-message-schema-v2.json", message)
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        try:
            parsed = json.loads(content) if content else None
        except ValueError:  # an injected "malformed" fault: nothing to validate, the connector must cope
            self.unparseable.append(path)
            rule = None
        if rule is not None:
            definition = rule[4].get(response.status_code)
            assert definition is not None, f"unexpected status {response.status_code} for {request.method} {path}"
            if definition:
                validate(rule[2], definition, parsed)
            else:
                assert not content, f"{request.method} {path}: {response.status_code} must have no body"
            self.validated.append((request.method, path, response.status_code))
        if "/_downloads/" in path and content.startswith(b"<?xml"):
            ET.fromstring(content)  # an XML processing report: well-formed at least
        elif "/_downloads/" in path:
            validate_document("listings-feed-processing-report-schema-v2.json", json.loads(content))
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)
