"""Channel sync: status, dead letters, and the marketplace webhook receiver.

The webhook route is exempt from bearer auth (see ``accord.api.security.OPEN_PREFIXES``): marketplaces cannot send
our token, so every delivery is verified by its HMAC instead — a forged or unsigned one gets 401 and nothing is
stored; a redelivery (same ``X-Shopify-Webhook-Id``, or the same order) is acknowledged and ingested once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from accord.api.deps import AppDep
from accord.api.problems import problem_response
from accord.bootstrap import App
from accord.connectors.shopify import WebhookVerificationError, parse_order_webhook
from accord.orders.service import channel_intake
from accord.orders.shipments import ShipmentOutbox
from accord.sync.cancellations import CancelQueue
from accord.sync.store import SyncStore

router = APIRouter(prefix="/sync", tags=["sync"])
WEBHOOK_PREFIX = "/v1/sync/webhooks/"


def _store(app: App) -> SyncStore:
    return SyncStore(app.db)


@router.get("/status")
def sync_status(app: AppDep) -> dict[str, Any]:
    """Per channel: queue depth, calls, 429s, latency percentiles, drift and dead letters."""
    return {"channels": [s.as_dict() for s in _store(app).status()]}


@router.get("/deadletters")
def sync_dead_letters(app: AppDep, channel: str | None = None) -> dict[str, Any]:
    """Parked sends, with the error and the marketplace's body."""
    rows = _store(app).dead_letters(channel)
    return {"dead_letters": [d.as_dict() for d in rows]}


# ---------------------------------------------------------------- ship confirmations and cancellations going back


class RedriveIn(BaseModel):
    channel: str | None = None
    id: str | None = None  # one shipment id (shipments) or channel order id (cancellations)


@router.get("/shipments")
def sync_shipments(
    app: AppDep, channel: str | None = None, state: str | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Ship confirmations for the channels: pending, sent or dead (the error kept); filter by channel and state."""
    return {"shipments": [r.as_dict() for r in ShipmentOutbox(app.db).list(channel, state, limit)]}


@router.post("/shipments/redrive")
def sync_shipments_redrive(app: AppDep, body: RedriveIn | None = None) -> dict[str, int]:
    """Dead ship confirmations (all, one channel's, or one shipment) back to pending, due now."""
    b = body or RedriveIn()
    return {"redriven": ShipmentOutbox(app.db).redrive(b.channel, b.id, app.engine.clock.now_ms())}


@router.get("/cancellations")
def sync_cancellations(
    app: AppDep, channel: str | None = None, state: str | None = None, limit: int = 1000
) -> dict[str, Any]:
    """Order cancellations for the channels: pending, sent or dead (the error and the marketplace's answer kept)."""
    return {"cancellations": [r.as_dict() for r in CancelQueue(app.db).list(channel, state, limit)]}


@router.post("/cancellations/redrive")
def sync_cancellations_redrive(app: AppDep, body: RedriveIn | None = None) -> dict[str, int]:
    """Dead cancellations (all, one channel's, or one channel order) back to pending, due now."""
    b = body or RedriveIn()
    return {"redriven": CancelQueue(app.db).redrive(b.channel, b.id, app.engine.clock.now_ms())}


@router.post("/webhooks/shopify/{channel_id}", response_model=None)
async def shopify_webhook(channel_id: str, request: Request) -> JSONResponse:
    """``orders/create`` from a Shopify channel: verified by ``X-Shopify-Hmac-Sha256``, deduplicated by
    ``X-Shopify-Webhook-Id``; the order reserves stock in the same transaction that records it."""
    app: App = request.app.state.accord
    path = request.url.path
    raw = await request.body()
    endpoint = (await run_in_threadpool(_store(app).endpoints)).get(channel_id)
    secret = endpoint.credentials.get("app_secret") if endpoint is not None else None
    if endpoint is None or endpoint.dialect != "shopify" or not secret:
        return problem_response(404, "not-found", "Not found", f"no shopify channel {channel_id!r} to receive", path)
    headers = dict(request.headers)
    try:
        order = parse_order_webhook(raw, headers, secret)
    except WebhookVerificationError as exc:
        return problem_response(401, "unauthorized", "Unauthorized", str(exc), path)
    except (ValueError, KeyError, TypeError) as exc:
        return problem_response(422, "invalid-webhook", "Invalid webhook", f"cannot parse the order: {exc}", path)
    assert order is not None
    webhook_id = headers.get("x-shopify-webhook-id")
    result = await run_in_threadpool(channel_intake(app.engine).ingest_webhook, channel_id, webhook_id, order)
    body = {"channel": channel_id, "order": result.channel_order_id, "status": result.status, "reason": result.reason}
    return JSONResponse(body)
