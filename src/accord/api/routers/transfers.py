"""Transfers between locations (created by ``POST /v1/stock/transfer``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from accord.api.deps import AppDep

router = APIRouter(prefix="/transfers", tags=["transfers"])


class TransferOut(BaseModel):
    id: str
    sku: str
    from_location: str
    to_location: str
    qty_shipped: int
    qty_received: int
    qty_in_transit: int
    created_at: int
    updated_at: int

    @classmethod
    def of(cls, row: dict[str, Any]) -> TransferOut:
        return cls(
            id=row["id"],
            sku=row["sku_id"],
            from_location=row["from_location"],
            to_location=row["to_location"],
            qty_shipped=int(row["qty_shipped"]),
            qty_received=int(row["qty_received"]),
            qty_in_transit=int(row["qty_shipped"]) - int(row["qty_received"]),
            created_at=int(row["created_at"]),
            updated_at=int(row["updated_at"]),
        )


class TransferList(BaseModel):
    transfers: list[TransferOut]


@router.get("", response_model=TransferList)
def list_transfers(
    app: AppDep, open: Annotated[bool, Query(description="only transfers not fully received")] = False
) -> TransferList:
    return TransferList(transfers=[TransferOut.of(r) for r in app.engine.transfers(open_only=open)])


@router.get("/{transfer_id:path}", response_model=TransferOut)
def get_transfer(transfer_id: str, app: AppDep) -> TransferOut:
    return TransferOut.of(app.engine.transfer(transfer_id))
