"""Local marketplace sandbox: one FastAPI app emulating every dialect Accord speaks.

Addressing: each channel lives under its own path prefix, ``/{channel_id}/...``, followed by the marketplace's real
paths. A channel ``amazon-us`` of dialect ``amazon`` answers ``PATCH /amazon-us/listings/2021-08-01/items/{seller}/
{sku}``; point a connector's ``base_url`` at ``http://<host>/amazon-us``. Channel ids must not start with ``_``.

Per channel the sandbox keeps listings and quantities, enforces the dialect's ``limits.json`` (token bucket per
operation → 429 with ``Retry-After``, sometimes without it; Shopify's cost bucket → ``THROTTLED``), injects faults
(latency, 5xx rate, hangs that trip client timeouts, truncated JSON, campaign stock locks), generates buyer orders from
a seeded Poisson demand model that never sells more than the listing shows (a stale quantity oversells for real),
and records every call.

Control API (JSON):
- ``GET /_control/state`` · ``GET /_control/clock`` · ``POST /_control/tick {"advance_ms": n}`` (demand + feeds)
- ``POST /_control/channels`` (a :class:`ChannelSpec` as JSON) · ``GET /_control/channels/{ch}/listings``
- ``PUT /_control/channels/{ch}/listings/{sku}`` · ``PUT /_control/channels/{ch}/faults`` (fields of :class:`Faults`)
- ``POST /_control/channels/{ch}/orders {"sku", "qty"}`` · ``GET /_control/channels/{ch}/orders``
- ``GET /_control/channels/{ch}/webhooks`` (signed Shopify ``orders/create`` deliveries)
- ``GET /_control/calls?channel=&since_seq=`` · ``DELETE /_control/calls``

Python: ``sandbox_of(app)`` returns the :class:`Sandbox` (``calls()``, ``listing()``, ``tick()``, ``place_order()``,
``set_faults()``). Time: the injected clock (default :class:`ManualClock`, i.e. virtual time moving only by ``tick``).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from accord.app.ports import Clock, ManualClock
from accord.connectors.base import ChannelConfig
from accord.sandbox.core import (
    CallRecord,
    ChannelSpec,
    ChannelState,
    Faults,
    Listing,
    ListingSpec,
    Order,
    SandboxConfig,
    listing_from_spec,
    order_id_for,
    poisson,
    summarize,
)
from accord.sandbox.dialects import DIALECTS, ORDER_HOOKS, TIME_HOOKS
from accord.sandbox.wire import BadRequest, Ctx, Dialect, Reply

FAULT_KINDS = ("429", "500", "502", "503", "504", "timeout", "malformed")


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.clock: Clock = config.clock or ManualClock()
        self.rng = random.Random(config.seed)
        self.channels: dict[str, ChannelState] = {}
        self._calls: deque[CallRecord] = deque(maxlen=config.max_call_records)
        self._call_seq = 0
        self._order_seq = 0
        for spec in config.channels:
            self.add_channel(spec)

    # ----- channels and listings

    def add_channel(self, spec: ChannelSpec) -> ChannelState:
        if spec.channel_id.startswith("_") or "/" in spec.channel_id:
            raise ValueError(f"bad channel id {spec.channel_id!r}")
        if spec.dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {spec.dialect!r}; known: {sorted(DIALECTS)}")
        if spec.channel_id in self.channels:
            raise ValueError(f"channel {spec.channel_id} exists")
        ch = ChannelState(spec, self.clock)
        self.channels[spec.channel_id] = ch
        for listing in spec.listings:
            self.upsert_listing(spec.channel_id, listing)
        return ch

    def channel(self, channel_id: str) -> ChannelState:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise KeyError(f"unknown sandbox channel {channel_id!r}") from None

    def upsert_listing(self, channel_id: str, spec: ListingSpec) -> Listing:
        ch = self.channel(channel_id)
        current = ch.listings.get(spec.sku)
        if current is None:
            current = listing_from_spec(ch.dialect, spec, len(ch.listings) + 1)
            ch.listings[spec.sku] = current
        else:
            current.qty = spec.qty
            current.demand_per_hour = spec.demand_per_hour
        return current

    def listing(self, channel_id: str, sku: str) -> Listing:
        return self.channel(channel_id).listings[sku]

    def set_faults(self, channel_id: str, **changes: Any) -> Faults:
        ch = self.channel(channel_id)
        valid = {f.name for f in fields(Faults)}
        unknown = set(changes) - valid
        if unknown:
            raise ValueError(f"unknown fault fields {sorted(unknown)}")
        merged = {**asdict(ch.faults), **changes}
        bad = [k for k in merged["script"] if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown scripted faults {bad}; known: {FAULT_KINDS}")
        ch.faults = Faults(**merged)
        return ch.faults

    # ----- orders and time

    def place_order(self, channel_id: str, sku: str, qty: int, at_ms: int | None = None) -> Order | None:
        """A buyer buys up to ``qty``; never more than the listing shows. None when it shows 0 (lost demand)."""
        ch = self.channel(channel_id)
        listing = ch.listings[sku]
        sold = min(qty, listing.qty)
        if sold <= 0:
            ch.lost_demand += qty
            return None
        self._order_seq += 1
        order = Order(
            seq=self._order_seq,
            order_id=order_id_for(ch.dialect, self._order_seq),
            channel_id=channel_id,
            created_ms=self.clock.now_ms() if at_ms is None else at_ms,
            sku=sku,
            ref=listing.ref,
            qty=sold,
            unit_price=listing.price,
            currency=ch.spec.currency,
            shown_qty=listing.qty,
        )
        listing.qty -= sold
        ch.orders.append(order)
        hook = ORDER_HOOKS.get(ch.dialect)
        if hook is not None:
            hook(self, ch, order)
        return order

    def tick(self, advance_ms: int) -> list[Order]:
        """Advance virtual time (when the clock is a ManualClock) and let buyers buy during that interval.
        Event times are drawn from the seeded RNG, applied in time order; the result is deterministic."""
        if advance_ms < 0:
            raise ValueError("advance_ms must be >= 0")
        start = self.clock.now_ms()
        manual = isinstance(self.clock, ManualClock)
        events: list[tuple[int, str, str, int]] = []
        for channel_id in sorted(self.channels):
            ch = self.channels[channel_id]
            for sku in sorted(ch.listings):
                listing = ch.listings[sku]
                n = poisson(self.rng, listing.demand_per_hour * advance_ms / 3_600_000)
                for _ in range(n):
                    at = start + self.rng.randint(1, max(1, advance_ms))
                    qty = 2 if self.rng.random() < 0.15 else 1
                    events.append((at, channel_id, sku, qty))
        events.sort()
        placed: list[Order] = []
        for at, channel_id, sku, qty in events:
            if manual:
                assert isinstance(self.clock, ManualClock)
                self.clock.ms = max(self.clock.ms, at)
            order = self.place_order(channel_id, sku, qty, at_ms=at if manual else None)
            if order is not None:
                placed.append(order)
        if manual:
            assert isinstance(self.clock, ManualClock)
            self.clock.ms = start + advance_ms
        self.process_due()
        return placed

    def process_due(self) -> None:
        now = self.clock.now_ms()
        for ch in self.channels.values():
            hook = TIME_HOOKS.get(ch.dialect)
            if hook is not None:
                hook(self, ch, now)

    # ----- recording

    def record(
        self,
        ch: ChannelState | None,
        channel_id: str,
        operation: str,
        method: str,
        path: str,
        status: int,
        fault: str | None,
    ) -> None:
        self._call_seq += 1
        self._calls.append(
            CallRecord(
                self._call_seq,
                self.clock.now_ms(),
                channel_id,
                ch.dialect if ch else "",
                operation,
                method,
                path,
                status,
                fault,
            )
        )

    def order(self, channel_id: str, order_id: str) -> Order:
        found = self.channel(channel_id).order(order_id)
        if found is None:
            raise KeyError(f"no order {order_id!r} on {channel_id}")
        return found

    def sold_units(self, channel_id: str, sku: str | None = None) -> int:
        """Units sold on the channel (cancelled units do not count)."""
        return sum(o.sold_qty for o in self.channel(channel_id).orders if sku is None or o.sku == sku)

    def calls(self, channel: str | None = None, since_seq: int = 0) -> list[CallRecord]:
        return [c for c in self._calls if c.seq > since_seq and (channel is None or c.channel == channel)]

    def clear_calls(self) -> None:
        self._calls.clear()

    # ----- HTTP entry point

    async def handle(self, channel_id: str, path: str, request: Request) -> Response:
        reply = await self.serve(
            channel_id,
            path,
            request.method,
            request.url.path,
            request.query_params.multi_items(),
            {k.lower(): v for k, v in request.headers.items()},
            await request.body(),
            str(request.base_url).rstrip("/"),
        )
        return self.response(reply)

    async def serve(
        self,
        channel_id: str,
        path: str,
        method: str,
        full_path: str,
        query: Sequence[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
        base_url: str,
    ) -> Reply:
        """One channel API call from its parts (``headers`` with lower-case names, ``base_url`` without the
        trailing slash): what :meth:`handle` does for a Starlette request, usable by in-process transports."""
        method = method.upper()
        ch = self.channels.get(channel_id)
        if ch is None:
            self.record(None, channel_id, "", method, full_path, 404, None)
            return Reply(404, raw=b'{"error":"unknown channel"}')
        dialect = DIALECTS[ch.dialect]
        found = dialect.find(method, path)
        if found is None:
            reply = dialect.reply_error(404, "NotFound", f"no {method} {path} in the {ch.dialect} sandbox")
            self.record(ch, channel_id, "", method, full_path, 404, None)
            return reply
        route, match = found
        ctx = Ctx(self, ch, method, path, query, headers, body, base_url + "/" + channel_id, match)
        reply, fault = await self._serve(
            ch, dialect, route.operation, ctx, route.auth, route.rate_limited, route.handler
        )
        self.record(ch, channel_id, route.operation, method, full_path, reply.status, fault)
        return reply

    async def _serve(
        self, ch: ChannelState, dialect: Dialect, operation: str, ctx: Ctx, auth: bool, rate_limited: bool, handler: Any
    ) -> tuple[Reply, str | None]:
        if auth:
            denied = dialect.check_auth(ctx)
            if denied is not None:
                return denied, None
        faults = ch.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        fault: str | None = faults.script.pop(0) if faults.script else None
        if fault is None:
            if faults.timeout_rate and self.rng.random() < faults.timeout_rate:
                fault = "timeout"
            elif faults.error_rate and self.rng.random() < faults.error_rate:
                fault = str(faults.error_status)
            elif faults.malformed_rate and self.rng.random() < faults.malformed_rate:
                fault = "malformed"
        if fault == "timeout":
            await asyncio.sleep(faults.hang_s)  # the client's timeout fires first; cancellation ends this
            return dialect.reply_error(504, "GatewayTimeout", "sandbox hang elapsed"), fault
        if fault is not None and fault.isdigit() and int(fault) >= 500:
            return dialect.reply_error(int(fault), "InternalFailure", "sandbox injected server error"), fault
        if fault == "429":
            return self._throttled(dialect, 1.0), fault
        if rate_limited and self.config.enforce_limits:
            wait = ch.bucket(operation).take(self.clock.now_ms())
            if wait is not None:
                return self._throttled(dialect, wait), None
        try:
            reply: Reply = handler(ctx)
        except BadRequest as exc:
            reply = dialect.reply_error(400, exc.code, str(exc))
        if fault == "malformed":
            reply = Reply(
                reply.status, raw=reply.content()[: max(1, len(reply.content()) // 2)] or b"{", headers=reply.headers
            )
        return reply, fault

    def _throttled(self, dialect: Dialect, wait_s: float) -> Reply:
        reply = dialect.reply_error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
        omit = any(c.faults.omit_retry_after for c in self.channels.values() if c.dialect == dialect.name)
        rate = self.config.missing_retry_after_rate
        if not omit and not (rate and self.rng.random() < rate):
            reply.headers["Retry-After"] = str(max(1, math.ceil(wait_s)) if math.isfinite(wait_s) else 3600)
        return reply

    @staticmethod
    def response(reply: Reply) -> Response:
        return Response(reply.content(), reply.status, headers=reply.headers, media_type=reply.media_type)


# --------------------------------------------------------------------------------------------- control API


class TickIn(BaseModel):
    advance_ms: int


class OrderIn(BaseModel):
    sku: str
    qty: int = 1


class ListingIn(BaseModel):
    qty: int = 0
    title: str = ""
    description: str = ""
    price: str = "10.00"
    demand_per_hour: float = 0.0
    ref: str | None = None


class ChannelIn(BaseModel):
    channel_id: str
    dialect: str
    currency: str = "USD"
    seller_id: str = "SANDBOXSELLER"
    marketplace_id: str = "ATVPDKIKX0DER"
    listings: dict[str, ListingIn] = {}


def _order_json(o: Order) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        "seq": o.seq,
        "created_ms": o.created_ms,
        "sku": o.sku,
        "qty": o.qty,
        "shown_qty": o.shown_qty,
        "unit_price": str(o.unit_price),
        "currency": o.currency,
        "status": o.status,
        "sold_qty": o.sold_qty,
        "cancel_reason": o.cancel_reason,
        "shipments": [dict(s) for s in o.shipments],
    }


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """The sandbox as an ASGI app (use with ``httpx.ASGITransport`` or uvicorn)."""
    sandbox = Sandbox(config or SandboxConfig())
    app = FastAPI(title="Accord marketplace sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = sandbox

    def channel_or_404(channel_id: str) -> ChannelState:
        try:
            return sandbox.channel(channel_id)
        except KeyError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/_control/state")
    def state() -> dict[str, Any]:
        return {"now_ms": sandbox.clock.now_ms(), "channels": [summarize(c) for c in sandbox.channels.values()]}

    @app.get("/_control/clock")
    def clock() -> dict[str, int]:
        return {"now_ms": sandbox.clock.now_ms()}

    @app.post("/_control/tick")
    def tick(body: TickIn) -> dict[str, Any]:
        try:
            orders = sandbox.tick(body.advance_ms)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return {"now_ms": sandbox.clock.now_ms(), "orders": [_order_json(o) for o in orders]}

    @app.post("/_control/channels", status_code=201)
    def add_channel(body: ChannelIn) -> dict[str, Any]:
        listings = [ListingSpec(sku=sku, **li.model_dump()) for sku, li in body.listings.items()]
        spec = ChannelSpec(body.channel_id, body.dialect, listings, body.currency, body.seller_id, body.marketplace_id)
        try:
            ch = sandbox.add_channel(spec)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return dict(summarize(ch))

    @app.get("/_control/channels/{channel_id}/listings")
    def listings(channel_id: str) -> dict[str, Any]:
        return dict(summarize(channel_or_404(channel_id)))

    @app.put("/_control/channels/{channel_id}/listings/{sku}")
    def put_listing(channel_id: str, sku: str, body: ListingIn) -> dict[str, Any]:
        channel_or_404(channel_id)
        li = sandbox.upsert_listing(channel_id, ListingSpec(sku=sku, **body.model_dump()))
        return {"sku": li.sku, "qty": li.qty, "ref": li.ref}

    @app.put("/_control/channels/{channel_id}/faults")
    def put_faults(channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        channel_or_404(channel_id)
        try:
            return asdict(sandbox.set_faults(channel_id, **body))
        except (TypeError, ValueError) as exc:
            raise HTTPException(400, str(exc)) from None

    @app.post("/_control/channels/{channel_id}/orders")
    def post_order(channel_id: str, body: OrderIn) -> dict[str, Any]:
        ch = channel_or_404(channel_id)
        if body.sku not in ch.listings:
            raise HTTPException(404, f"unknown sku {body.sku}")
        order = sandbox.place_order(channel_id, body.sku, body.qty)
        if order is None:
            raise HTTPException(409, "listing shows 0: nothing sold")
        return _order_json(order)

    @app.get("/_control/channels/{channel_id}/orders")
    def get_orders(channel_id: str) -> dict[str, Any]:
        return {"orders": [_order_json(o) for o in channel_or_404(channel_id).orders]}

    @app.get("/_control/channels/{channel_id}/webhooks")
    def webhooks(channel_id: str) -> dict[str, Any]:
        return {"deliveries": list(channel_or_404(channel_id).webhooks)}

    @app.get("/_control/calls")
    def calls(channel: str | None = None, since_seq: int = 0) -> dict[str, Any]:
        return {"calls": [c.as_dict() for c in sandbox.calls(channel, since_seq)]}

    @app.delete("/_control/calls", status_code=204)
    def clear_calls() -> Response:
        sandbox.clear_calls()
        return Response(status_code=204)

    @app.api_route("/{channel_id}/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def dispatch(channel_id: str, rest: str, request: Request) -> Response:
        return await sandbox.handle(channel_id, "/" + rest, request)

    return app


def sandbox_of(app: FastAPI) -> Sandbox:
    sandbox = app.state.sandbox
    assert isinstance(sandbox, Sandbox)
    return sandbox


def channel_config(sandbox: Sandbox, channel_id: str, base_url: str, **overrides: Any) -> ChannelConfig:
    """A connector :class:`ChannelConfig` that talks to ``channel_id`` at ``base_url`` (the sandbox root)."""
    ch = sandbox.channel(channel_id)
    spec = ch.spec
    options = {
        "seller_id": spec.seller_id,
        "marketplace_id": spec.marketplace_id,
        "location_id": spec.location_id,
        "orders_since": "2020-01-01T00:00:00.000Z",
    }
    values: dict[str, Any] = {
        "channel_id": channel_id,
        "dialect": spec.dialect,
        "base_url": base_url.rstrip("/") + "/" + channel_id,
        "credentials": dict(ch.credentials),
        "options": options,
        "currency": spec.currency,
    }
    values.update(overrides)
    return ChannelConfig(**values)
