"""Available to sell per channel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from accord.api.deps import AppDep

router = APIRouter(prefix="/ats", tags=["ats"])


class AtsOut(BaseModel):
    sku: str
    ats: dict[str, int] = Field(description="channel → available to sell")


class RecomputeOut(BaseModel):
    changed: int = Field(description="how many SKU × channel values changed")


@router.post("/recompute", response_model=RecomputeOut)
def recompute_ats(
    app: AppDep, channel: Annotated[str | None, Query(max_length=64, description="one channel; all when absent")] = None
) -> RecomputeOut:
    """Recompute ATS from balances (a repair tool; movements keep ATS current on their own)."""
    return RecomputeOut(changed=app.engine.recompute_ats(channel))


@router.get("/{sku:path}", response_model=AtsOut)
def get_ats(
    sku: str, app: AppDep, channel: Annotated[str | None, Query(max_length=64, description="one channel")] = None
) -> AtsOut:
    """ATS of one SKU on every channel, or on one."""
    return AtsOut(sku=sku, ats=app.engine.ats(sku, channel))
