"""Shared connector interface: value types, typed errors, limits data and the HTTP plumbing every dialect uses.

A connector translates Accord's neutral operations into one marketplace's real wire protocol. It never loops on
retries or spends rate budget on its own: the sync engine owns both. Transport failures become typed
:class:`ConnectorError` subclasses (``retryable`` tells the engine what to do, ``retry_after_s`` exposes the
server's hint); per-item outcomes of writes come back as :class:`ItemResult`.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from importlib import resources
from typing import Any, Protocol, TypeVar

import httpx
import orjson

from accord.app.ports import Clock, SystemClock

# HTTP calls a connector makes, counted for whoever set a counter in the current task's context: an operation that
# takes several calls (a lookup, then the write) can be charged to the channel's budget in full
CALLS: ContextVar[list[int] | None] = ContextVar("accord_connector_calls", default=None)

JsonObject = dict[str, Any]
_T = TypeVar("_T")


# ----------------------------------------------------------------------------------------------- value types


class ItemStatus(StrEnum):
    OK = "ok"
    RETRYABLE = "retryable"  # try again later (rate limit, 5xx, timeout, stock lock, daily cap, not attempted)
    CONFLICT = "conflict"  # compare-and-set failed: re-read the channel, then re-plan
    REJECTED = "rejected"  # the marketplace refused the payload; retrying the same payload will not help


@dataclass(frozen=True, slots=True)
class QuantityUpdate:
    """Desired sellable quantity of one SKU on one channel.

    ``listing_ref`` is the channel's own identifier where the protocol addresses listings by it (Shopify inventory
    item gid, Mercado Libre item id, Shopee/Lazada item id, Allegro offer id). ``expected_qty`` is the quantity the
    caller believes the channel shows; dialects that support compare-and-set send it (Shopify ``changeFromQuantity``).
    ``idempotency_key`` is sent where the protocol accepts one.
    """

    sku: str
    qty: int
    listing_ref: str | None = None
    expected_qty: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class ContentUpdate:
    sku: str
    listing_ref: str | None = None
    title: str | None = None
    description: str | None = None
    price: Decimal | None = None
    currency: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    # key product features as a list (Amazon ``bullet_point``); dialects without a bullets field get them folded
    # into the description by the sync engine
    bullets: tuple[str, ...] = ()
    locale: str | None = None  # the language of title/description/bullets (BCP 47 with "_", e.g. "de_DE")


@dataclass(frozen=True, slots=True)
class ItemResult:
    sku: str
    status: ItemStatus
    reason: str | None = None  # stable short code: "rate_limited", "cas_mismatch", "stock_locked", "not_found", ...
    detail: str | None = None  # human text / marketplace message
    error: ConnectorError | None = None  # the transport error behind a RETRYABLE result, if any
    retry_after_s: float | None = None
    observed_qty: int | None = None  # what the channel reported back, when it did

    @property
    def ok(self) -> bool:
        return self.status is ItemStatus.OK


@dataclass(frozen=True, slots=True)
class QuantitySnapshot:
    sku: str
    qty: int | None  # None: the channel does not know this SKU
    listing_ref: str | None = None


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    qty: int
    unit_price: Decimal | None = None
    line_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelOrder:
    channel_order_id: str
    created_at: datetime
    status: str
    lines: tuple[OrderLine, ...]
    currency: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # the channel's own ship-by and the buyer's destination, where the channel sends them (order routing, SLA)
    ship_by: datetime | None = None
    ship_to_region: str | None = None
    ship_to_lat: float | None = None
    ship_to_lon: float | None = None


@dataclass(frozen=True, slots=True)
class ShipmentLine:
    sku: str
    qty: int
    line_id: str | None = None  # the channel's own line id where it has one


@dataclass(frozen=True, slots=True)
class ShipmentConfirmation:
    """One physical shipment of (part of) a channel order, to confirm back to the channel.

    ``shipment_id`` is Accord's id for the shipment; dialects that accept an idempotency key send it, and it keys
    the durable queue, so a confirmation is sent once in effect however often it is retried."""

    channel_order_id: str
    shipment_id: str
    carrier: str
    tracking: str
    shipped_at: datetime
    lines: tuple[ShipmentLine, ...]
    ship_from_location: str | None = None


class CancelReason(StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    CUSTOMER_REQUEST = "customer_request"
    PRICING_ERROR = "pricing_error"
    UNDELIVERABLE = "undeliverable"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class OrdersPage:
    orders: list[ChannelOrder]
    next_cursor: str | None  # pass back to fetch_orders; orders may repeat across pages: dedupe by channel_order_id


# ----------------------------------------------------------------------------------------------------- errors


class ConnectorError(Exception):
    """A call failed. ``retryable`` says whether the same request may succeed later."""

    retryable: bool = True
    reason: str = "connector_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after_s = retry_after_s


class RateLimited(ConnectorError):
    """HTTP 429 or a protocol-level throttle. ``retry_after_s`` is None when the server gave no hint."""

    reason = "rate_limited"


class ServerError(ConnectorError):
    reason = "server_error"


class ConnectorTimeout(ConnectorError):
    reason = "timeout"


class TransportError(ConnectorError):
    reason = "transport_error"


class MalformedResponse(ConnectorError):
    reason = "malformed_response"


class RequestRejected(ConnectorError):
    """A 4xx the marketplace will keep returning for this request (validation, unknown listing)."""

    retryable = False
    reason = "rejected"


class AuthError(RequestRejected):
    reason = "auth"


class UnsupportedOperation(ConnectorError):
    retryable = False
    reason = "unsupported"


# ----------------------------------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class OperationLimit:
    rate_per_s: float
    burst: int


@dataclass(frozen=True, slots=True)
class Limits:
    """A dialect's published limits, as data (``limits.json``)."""

    dialect: str
    rate_per_s: float
    burst: int
    max_batch_size: int
    supports_compare_and_set: bool = False
    supports_idempotency_key: bool = False
    daily_updates_per_listing: int | None = None
    feeds_per_hour: int | None = None
    feed_max_messages: int | None = None
    cost_bucket_size: int | None = None  # cost-based (Shopify) throttling: points in the bucket
    cost_restore_per_s: float | None = None  # ... and points restored per second
    stock_lock_during_campaigns: bool = False
    operations: Mapping[str, OperationLimit] = field(default_factory=dict)

    def for_operation(self, operation: str) -> OperationLimit:
        return self.operations.get(operation, OperationLimit(self.rate_per_s, self.burst))


def _limits_from_json(dialect: str, raw: Mapping[str, Any]) -> Limits:
    ops = {
        name: OperationLimit(float(op["rate_per_s"]), int(op["burst"]))
        for name, op in raw.get("operations", {}).items()
    }
    return Limits(
        dialect=dialect,
        rate_per_s=float(raw["rate_per_s"]),
        burst=int(raw["burst"]),
        max_batch_size=int(raw["max_batch_size"]),
        supports_compare_and_set=bool(raw.get("supports_compare_and_set", False)),
        supports_idempotency_key=bool(raw.get("supports_idempotency_key", False)),
        daily_updates_per_listing=raw.get("daily_updates_per_listing"),
        feeds_per_hour=raw.get("feeds_per_hour"),
        feed_max_messages=raw.get("feed_max_messages"),
        cost_bucket_size=raw.get("cost_bucket_size"),
        cost_restore_per_s=raw.get("cost_restore_per_s"),
        stock_lock_during_campaigns=bool(raw.get("stock_lock_during_campaigns", False)),
        operations=ops,
    )


def load_limits(text: str | None = None) -> dict[str, Limits]:
    """Parse the limits data; by default the packaged ``limits.json``."""
    if text is None:
        text = resources.files("accord.connectors").joinpath("limits.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {name: _limits_from_json(name, spec) for name, spec in raw.items() if not name.startswith("$")}


def limits_for(dialect: str) -> Limits:
    return load_limits()[dialect]


# ----------------------------------------------------------------------------------------------- channel config


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """How to reach one channel. ``credentials`` and ``options`` keys are dialect-specific (see each module)."""

    channel_id: str
    dialect: str
    base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    currency: str = "USD"
    timeout_s: float = 10.0

    def credential(self, key: str) -> str:
        try:
            return self.credentials[key]
        except KeyError:
            raise ValueError(f"channel {self.channel_id}: missing credential {key!r}") from None

    def option(self, key: str, default: str) -> str:
        return self.options.get(key, default)


class Connector(Protocol):
    """What the sync engine calls. Every dialect module provides one class implementing this."""

    dialect: str
    config: ChannelConfig
    limits: Limits
    # the channel keeps one ship confirmation (one tracking number) per order: a split order's first parcel
    # confirms it, later parcels are covered by that confirmation and not sent
    one_tracking_per_order: bool

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]: ...

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]: ...

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]: ...

    async def fetch_orders(self, cursor: str | None) -> OrdersPage: ...

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None: ...

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None: ...


# ------------------------------------------------------------------------------------------------- helpers


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """Retry-After as seconds (delta-seconds or HTTP-date); None when absent or unparseable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_ms / 1000)


def iso_from_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds: 2026-01-01T00:00:00.000Z."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def ms_from_datetime(dt: datetime) -> int:
    return math.floor(dt.timestamp() * 1000)


_URLS: dict[str, httpx.URL] = {}  # parsed request URLs (immutable), so repeated calls skip httpx's URL parsing
_URLS_MAX = 4096


def encode_time_cursor(since_ms: int, offset: int = 0) -> str:
    """Cursor for poll-by-creation-time APIs: orders created at or after ``since_ms``, skipping ``offset``."""
    return f"t{since_ms}:{offset}"


def decode_time_cursor(cursor: str | None, default_since_ms: int) -> tuple[int, int]:
    if not cursor:
        return default_since_ms, 0
    try:
        since, offset = cursor.removeprefix("t").split(":", 1)
        return int(since), int(offset)
    except ValueError:
        raise ValueError(f"not a time cursor: {cursor!r}") from None


def next_time_cursor(since_ms: int, offset: int, page: Sequence[ChannelOrder], has_more: bool) -> str:
    """Advance a time cursor: page on with the offset while the server has more, else restart from the newest
    order seen (inclusive, so equal timestamps are re-read rather than lost; callers dedupe by order id)."""
    if has_more:
        return encode_time_cursor(since_ms, offset + len(page))
    if not page:
        return encode_time_cursor(since_ms, offset)
    newest = max(ms_from_datetime(o.created_at) for o in page)
    if newest == since_ms:
        return encode_time_cursor(since_ms, offset + len(page))
    return encode_time_cursor(newest, sum(1 for o in page if ms_from_datetime(o.created_at) == newest))


def chunked(items: Sequence[_T], size: int) -> list[Sequence[_T]]:
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)]


def retryable_result(sku: str, err: ConnectorError) -> ItemResult:
    status = ItemStatus.RETRYABLE if err.retryable else ItemStatus.REJECTED
    return ItemResult(sku, status, err.reason, str(err), error=err, retry_after_s=err.retry_after_s)


def not_attempted(sku: str, err: ConnectorError) -> ItemResult:
    """An item skipped because an earlier call in the same batch hit a retryable transport failure."""
    return ItemResult(
        sku, ItemStatus.RETRYABLE, "not_attempted", f"skipped after: {err}", error=err, retry_after_s=err.retry_after_s
    )


async def run_per_item(
    items: Sequence[_T], sku_of: Callable[[_T], str], call: Callable[[_T], Awaitable[ItemResult]]
) -> list[ItemResult]:
    """One request per item; after a retryable transport failure the rest are reported ``not_attempted``."""
    results: list[ItemResult] = []
    stop: ConnectorError | None = None
    for item in items:
        if stop is not None:
            results.append(
                not_attempted(sku_of(item), stop) if stop.retryable else retryable_result(sku_of(item), stop)
            )
            continue
        try:
            results.append(await call(item))
        except ConnectorError as err:
            results.append(retryable_result(sku_of(item), err))
            if err.retryable or isinstance(err, AuthError):
                stop = err
    return results


def money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


class HttpConnector:
    """Base for HTTP dialects: URL building, error mapping, JSON decoding. Subclasses set ``dialect``."""

    dialect: str = ""
    one_tracking_per_order: bool = False

    def __init__(
        self,
        config: ChannelConfig,
        client: httpx.AsyncClient,
        *,
        limits: Limits | None = None,
        clock: Clock | None = None,
    ) -> None:
        if config.dialect != self.dialect:
            raise ValueError(f"channel {config.channel_id} is {config.dialect!r}, not {self.dialect!r}")
        self.config = config
        self.client = client
        self.limits = limits or limits_for(self.dialect)
        self.clock: Clock = clock or SystemClock()

    def url(self, path: str) -> str:
        return self.config.base_url.rstrip("/") + path

    def auth_headers(self) -> dict[str, str]:
        return {}

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | int | float] | Sequence[tuple[str, str]] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        with_auth: bool = True,
        ok_statuses: Sequence[int] = (),
    ) -> httpx.Response:
        """Send one request; raise a typed :class:`ConnectorError` for 429, 5xx, timeouts, transport failures and
        auth errors. Other 4xx responses are returned unless listed nowhere: callers turn them into item results."""
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self.url(path_or_url)
        counter = CALLS.get()
        if counter is not None:
            counter[0] += 1
        parsed = _URLS.get(url)
        if parsed is None:
            if len(_URLS) >= _URLS_MAX:
                _URLS.clear()
            parsed = _URLS[url] = httpx.URL(url)
        all_headers = {"accept": "application/json", **(self.auth_headers() if with_auth else {}), **(headers or {})}
        try:
            async with asyncio.timeout(self.config.timeout_s):
                resp = await self.client.request(
                    method,
                    parsed,
                    params=params,  # type: ignore[arg-type]
                    json=json_body,
                    content=content,
                    headers=all_headers,
                    files=files,
                    timeout=self.config.timeout_s,
                )
                await resp.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise ConnectorTimeout(f"{method} {url}: timed out after {self.config.timeout_s}s") from exc
        except httpx.TransportError as exc:
            raise TransportError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from exc
        self.raise_for_status(method, url, resp, ok_statuses)
        return resp

    def raise_for_status(self, method: str, url: str, resp: httpx.Response, ok_statuses: Sequence[int]) -> None:
        status = resp.status_code
        if status in ok_statuses:
            return
        if status != 429 and status < 500 and status not in (401, 403):
            return
        body = resp.text
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("retry-after"), self.clock.now_ms())
            raise RateLimited(f"{method} {url}: 429", status=status, body=body, retry_after_s=retry_after)
        if status >= 500:
            retry_after = parse_retry_after(resp.headers.get("retry-after"), self.clock.now_ms())
            raise ServerError(f"{method} {url}: {status}", status=status, body=body, retry_after_s=retry_after)
        if status in (401, 403):
            raise AuthError(f"{method} {url}: {status}", status=status, body=body)

    @staticmethod
    def decode(resp: httpx.Response) -> Any:
        """JSON body or :class:`MalformedResponse` (retryable: a truncated body is usually transient)."""
        try:
            return orjson.loads(resp.content)
        except ValueError:
            pass  # orjson is strict (UTF-8 only, 64-bit integers): let the standard decoder have the last word
        try:
            return json.loads(resp.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedResponse(
                f"{resp.request.method} {resp.request.url}: body is not JSON ({exc})",
                status=resp.status_code,
                body=resp.text[:2000],
            ) from exc

    def decode_object(self, resp: httpx.Response) -> JsonObject:
        data = self.decode(resp)
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"{resp.request.method} {resp.request.url}: expected a JSON object",
                status=resp.status_code,
                body=resp.text[:2000],
            )
        return data

    def malformed(self, resp: httpx.Response, what: str) -> MalformedResponse:
        return MalformedResponse(
            f"{resp.request.method} {resp.request.url}: {what}", status=resp.status_code, body=resp.text[:2000]
        )

    def expect_status(self, resp: httpx.Response, ok: Sequence[int], what: str, detail: str = "") -> None:
        """For single-shot writes (ship confirmations, cancellations): any status outside ``ok`` that
        :meth:`raise_for_status` let through is a 4xx the marketplace will repeat, so :class:`RequestRejected`
        (with the body kept for the dead letter); 404 says ``not_found`` in the message."""
        if resp.status_code in ok:
            return
        kind = "not found" if resp.status_code == 404 else "rejected"
        raise RequestRejected(
            f"{what}: {resp.status_code} {kind}" + (f": {detail}" if detail else ""),
            status=resp.status_code,
            body=resp.text[:2000],
        )

    def rejected_result(self, sku: str, resp: httpx.Response, reason: str, detail: str) -> ItemResult:
        err = RequestRejected(detail, status=resp.status_code, body=resp.text[:2000])
        return ItemResult(sku, ItemStatus.REJECTED, reason, detail, error=err)

    async def set_quantities(self, items: Sequence[QuantityUpdate]) -> list[ItemResult]:
        raise UnsupportedOperation(f"{self.dialect}: set_quantities")

    async def get_quantities(self, skus: Sequence[str]) -> list[QuantitySnapshot]:
        raise UnsupportedOperation(f"{self.dialect}: get_quantities")

    async def update_content(self, items: Sequence[ContentUpdate]) -> list[ItemResult]:
        raise UnsupportedOperation(f"{self.dialect}: update_content")

    async def fetch_orders(self, cursor: str | None) -> OrdersPage:
        raise UnsupportedOperation(f"{self.dialect}: fetch_orders")

    async def confirm_shipment(self, shipment: ShipmentConfirmation) -> None:
        raise UnsupportedOperation(f"{self.dialect}: confirm_shipment")

    async def cancel_order(self, channel_order_id: str, reason: CancelReason, note: str) -> None:
        raise UnsupportedOperation(f"{self.dialect}: cancel_order")

    async def aclose(self) -> None:
        """Connectors do not own the client; nothing to release. Present for symmetry with the file connector."""
