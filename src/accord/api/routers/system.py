"""Health, verification and metrics."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel
from starlette.responses import Response

from accord.api.deps import AppDep
from accord.api.problems import problem_response

health_router = APIRouter(tags=["system"])  # mounted at the root, no auth
router = APIRouter(tags=["system"])  # mounted under /v1


class MismatchOut(BaseModel):
    what: str
    sku: str
    where: str
    expected: str
    actual: str


class VerifyOut(BaseModel):
    ok: bool
    mismatches: list[MismatchOut]


@health_router.get("/healthz", response_model=None, responses={503: {"description": "the database is unreachable"}})
def healthz(app: AppDep, request: Request) -> Response:
    """Liveness and database reachability. Needs no token."""
    try:
        with app.db.engine.connect() as conn:
            conn.execute(sa.select(sa.literal(1)))
            conn.rollback()
    except Exception as exc:
        return problem_response(
            503, "unavailable", "Service unavailable", f"database unreachable: {type(exc).__name__}", request.url.path
        )
    return JSONResponse({"status": "ok"})


@router.get("/verify", response_model=VerifyOut)
def verify(app: AppDep) -> VerifyOut:
    """Replay the ledger and compare with balances, transfers and ATS. Always 200; ``ok`` says whether all agree."""
    found = app.engine.verify()
    return VerifyOut(
        ok=not found,
        mismatches=[
            MismatchOut(what=m.what, sku=m.sku, where=m.where, expected=m.expected, actual=m.actual) for m in found
        ],
    )


metrics_router = APIRouter(tags=["system"])  # mounted at the root, with auth


@metrics_router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    registry = request.app.state.metrics_registry
    assert isinstance(registry, CollectorRegistry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
