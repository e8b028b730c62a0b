"""Orders and returns (issue 5): place, route, ship, deliver, cancel, refund, explain, SLA, health; RMAs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from accord.api.deps import AppDep
from accord.domain.orders import CancelReason
from accord.domain.returns import Grade, Payer, ReturnPolicy, ReturnReason
from accord.orders import Destination, OrderService, PlaceLine, PlaceOrder, ReturnService
from accord.orders.service import health_dict, sla_dict

router = APIRouter(tags=["orders"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LineIn(_In):
    sku: str = Field(min_length=1, max_length=128)
    qty: int
    line_id: str | None = Field(default=None, min_length=1, max_length=64)
    unit_price_minor: int = 0


class DestinationIn(_In):
    region: str = Field(min_length=1, max_length=32)
    lat: float
    lon: float


class PlaceIn(_In):
    channel: str = Field(min_length=1, max_length=64)
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    id: str | None = Field(default=None, min_length=1, max_length=128)
    ship_by_ms: int | None = None
    destination: DestinationIn | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)


class RouteIn(_In):
    failed_location: str | None = None


class ShipIn(_In):
    location: str = Field(min_length=1, max_length=64)
    carrier: str = Field(min_length=1, max_length=64)
    tracking: str = Field(min_length=1, max_length=64)
    lines: dict[str, int] | None = None
    shipment_id: str | None = Field(default=None, min_length=1, max_length=96)


class CancelIn(_In):
    reason: CancelReason = CancelReason.SELLER


class RmaIn(_In):
    order_id: str = Field(min_length=1, max_length=200)
    items: dict[str, int] = Field(min_length=1)
    reason: ReturnReason = ReturnReason.CHANGED_MIND
    id: str | None = Field(default=None, min_length=1, max_length=96)
    requested_at_ms: int | None = None


class ReceiveIn(_In):
    sku: str
    qty: int
    location: str


class GradeIn(_In):
    sku: str
    qty: int
    grade: Grade


class RefundIn(_In):
    amount_minor: int | None = None


class CapacityIn(_In):
    parcels_per_day: StrictInt | None = Field(
        description="parcels the location can ship per local day (a positive number); null = unlimited"
    )


class PolicyIn(_In):
    name: str = Field(min_length=1, max_length=128)
    window_days: int
    return_shipping_paid_by: Payer = Payer.SELLER
    restocking_fee_pct: int = 0
    return_label_cost_minor: int = 0
    refund_requires_receipt: bool = True


# ---------------------------------------------------------------------------------------------- orders


@router.post("/orders", status_code=status.HTTP_201_CREATED)
def place_order(app: AppDep, body: PlaceIn) -> dict[str, Any]:
    """Place an order: stock is reserved in the same transaction, then the order is routed."""
    cmd = PlaceOrder(
        body.channel,
        tuple(PlaceLine(ln.sku, ln.qty, ln.line_id, ln.unit_price_minor) for ln in body.lines),
        body.id,
        None,
        body.ship_by_ms,
        Destination(body.destination.region, body.destination.lat, body.destination.lon) if body.destination else None,
        body.currency,
    )
    return OrderService(app.engine).place(cmd)


@router.get("/orders")
def list_orders(app: AppDep, channel: str | None = None, status: str | None = None, limit: int = 100) -> dict[str, Any]:
    return {"orders": OrderService(app.engine).list_orders(channel, status, limit)}


@router.get("/orders/health")
def order_health(app: AppDep, channel: str | None = None, since_ms: int | None = None) -> dict[str, Any]:
    """Cancellation, late-shipment and valid-tracking rates per channel against Amazon's bars."""
    return {"channels": [health_dict(h) for h in OrderService(app.engine).health(channel, since_ms)]}


@router.post("/orders/sla")
def order_sla(app: AppDep) -> dict[str, Any]:
    """Evaluate SLAs now: at-risk and breached orders (each raises one alert event per state)."""
    return {"alerts": [sla_dict(a) for a in OrderService(app.engine).sla()]}


@router.post("/orders/reoptimise")
def reoptimise(app: AppDep, limit: int = 2000) -> dict[str, Any]:
    """Re-optimise routed, unreleased orders together against current stock."""
    return OrderService(app.engine).reoptimise(limit)


@router.get("/orders/{order_id}")
def show_order(app: AppDep, order_id: str) -> dict[str, Any]:
    return OrderService(app.engine).show(order_id)


@router.get("/orders/{order_id}/explain")
def explain_order(app: AppDep, order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "explanation": OrderService(app.engine).explain(order_id)}


@router.post("/orders/{order_id}/route")
def route_order(app: AppDep, order_id: str, body: RouteIn | None = None) -> dict[str, Any]:
    svc = OrderService(app.engine)
    if body is not None and body.failed_location:
        return svc.reroute(order_id, body.failed_location)
    return svc.route(order_id)


@router.post("/orders/{order_id}/release")
def release_order(app: AppDep, order_id: str) -> dict[str, Any]:
    """A held order whose cause is fixed (SKU added, channel configured): reserve and route it now."""
    return OrderService(app.engine).release(order_id)


@router.post("/orders/{order_id}/ship")
def ship_order(app: AppDep, order_id: str, body: ShipIn) -> dict[str, Any]:
    return OrderService(app.engine).ship(
        order_id, body.location, body.carrier, body.tracking, body.lines, body.shipment_id
    )


@router.post("/orders/{order_id}/deliver")
def deliver_order(app: AppDep, order_id: str) -> dict[str, Any]:
    return OrderService(app.engine).deliver(order_id)


@router.post("/orders/{order_id}/cancel")
def cancel_order(app: AppDep, order_id: str, body: CancelIn | None = None) -> dict[str, Any]:
    return OrderService(app.engine).cancel(order_id, body.reason if body else CancelReason.SELLER)


@router.post("/orders/{order_id}/refund")
def refund_order(app: AppDep, order_id: str, body: RefundIn | None = None) -> dict[str, Any]:
    """Refund the order: ``amount_minor`` (default: all that is left), never more than its lines were paid."""
    return OrderService(app.engine).refund(order_id, body.amount_minor if body else None)


# ---------------------------------------------------------------------------------------------- routing


@router.get("/routing/capacity")
def list_capacity(app: AppDep, location: str | None = None) -> dict[str, Any]:
    """Each location's daily shipping capacity (null: unlimited) and load: parcels waiting, shipped today."""
    return {"locations": OrderService(app.engine).capacity(location)}


@router.put("/routing/capacity/{location_id:path}")
def set_capacity(app: AppDep, location_id: str, body: CapacityIn) -> dict[str, Any]:
    """Set (or, with null, remove) a location's daily shipping capacity used by routing."""
    return OrderService(app.engine).set_location_capacity(location_id, body.parcels_per_day)


# ---------------------------------------------------------------------------------------------- returns


@router.put("/return-policies/{region}")
def set_return_policy(app: AppDep, region: str, body: PolicyIn) -> dict[str, Any]:
    p = ReturnPolicy(
        body.name,
        region,
        body.window_days,
        body.return_shipping_paid_by,
        body.restocking_fee_pct,
        body.return_label_cost_minor,
        body.refund_requires_receipt,
    )
    ReturnService(app.engine).set_policy(p)
    return {"region": region, "name": p.name, "window_days": p.window_days}


@router.post("/rmas", status_code=status.HTTP_201_CREATED)
def create_rma(app: AppDep, body: RmaIn) -> dict[str, Any]:
    """Open an RMA; the region's policy is enforced (a rejection names the rule)."""
    return ReturnService(app.engine).create(body.order_id, body.items, body.reason, body.id, body.requested_at_ms)


@router.get("/rmas/{rma_id}")
def show_rma(app: AppDep, rma_id: str) -> dict[str, Any]:
    return ReturnService(app.engine).show(rma_id)


@router.post("/rmas/{rma_id}/receive")
def receive_rma(app: AppDep, rma_id: str, body: ReceiveIn) -> dict[str, Any]:
    return ReturnService(app.engine).receive(rma_id, body.sku, body.qty, body.location)


@router.post("/rmas/{rma_id}/grade")
def grade_rma(app: AppDep, rma_id: str, body: GradeIn) -> dict[str, Any]:
    return ReturnService(app.engine).grade(rma_id, body.sku, body.qty, body.grade)


@router.post("/rmas/{rma_id}/refund")
def refund_rma(app: AppDep, rma_id: str, body: RefundIn | None = None) -> dict[str, Any]:
    return ReturnService(app.engine).refund(rma_id, body.amount_minor if body else None)
