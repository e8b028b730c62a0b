"""Amazon SP-API schema validation for tests: swagger 2.0 definitions with $refs resolved by jsonschema."""

from __future__ import annotations

import json
import os
import re
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
]  # fmt: skip


class ValidatingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; validates every SP-API request body and response body against the official schemas,
    and every uploaded feed document against listings-feed-schema-v2. Keeps a log of what it validated."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.validated: list[tuple[str, str, int]] = []
        self.unparseable: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        path = request.url.path
        rule = next((r for r in RULES if r[0] == request.method and r[1].search(path)), None)
        if rule is not None and rule[3] is not None:
            validate(rule[2], rule[3], json.loads(body))
        if request.method == "PUT" and "/_uploads/" in path:
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
            validate(rule[2], definition, parsed)
            self.validated.append((request.method, path, response.status_code))
        if "/_downloads/" in path:
            validate_document("listings-feed-processing-report-schema-v2.json", json.loads(content))
        return httpx.Response(response.status_code, headers=response.headers, content=content, request=request)
